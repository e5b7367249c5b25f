"""Call trees from sampled stacks: build, trim, prune, compact, hot functions."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Sequence
from typing import Any

from .frames import _ours, frame_owner
from .limits import MAX_HOT_FUNCTIONS, MAX_HOT_PATHS, MAX_TREE_DEPTH, MAX_TREE_NODES, SYNTHETIC


# Call trees ------------------------------------------------------------------------------
def _split_identifier(key: str) -> tuple[str, str | None, int | None]:
    parts = key.split("\x00")
    function = parts[0]
    file = parts[1] if len(parts) > 1 else None
    line = None
    if len(parts) > 2:
        with contextlib.suppress(ValueError):
            line = int(parts[2])
    return function, file, line


def function_label(function: str, file: str | None, line: int | None) -> str:
    """``function (file:line)``, the name bottlenecks and paths use for a function."""
    if not file:
        return function
    return f"{function} ({file}:{line})" if line else f"{function} ({file})"


class _Node:
    __slots__ = ("children", "key", "time")

    def __init__(self, key: str) -> None:
        self.key = key
        self.time = 0.0
        self.children: dict[str, _Node] = {}

    @property
    def self_time(self) -> float:
        return max(0.0, self.time - sum(child.time for child in self.children.values()))


def _build_tree(records: Iterable[tuple[Sequence[str], float]]) -> _Node:
    """Aggregate frame records (root-first identifier stacks) into a tree keyed by function."""
    root = _Node("[root]")
    for stack, seconds in records:
        node = root
        node.time += seconds
        for info in stack:
            key = info.split("\x01", 1)[0]
            child = node.children.get(key)
            if child is None:
                child = node.children[key] = _Node(key)
            child.time += seconds
            node = child
    return root


def _trim(root: _Node, start_stack: Sequence[str], focus: tuple[str, str] | None) -> _Node | None:
    """The node the tree should start at: *focus* ``(file, function)`` (``None`` when it was
    never sampled), else the first node below the stem shared with the profiler's start."""
    if focus is not None:
        queue = [root]
        while queue:
            node = queue.pop(0)
            function, file, _ = _split_identifier(node.key)
            if function == focus[1] and file is not None and _same_file(file, focus[0]):
                return node
            queue.extend(node.children.values())
        return None
    node = root
    stem = [info.split("\x01", 1)[0] for info in start_stack]
    for expected in stem:
        if len(node.children) != 1 or node.self_time > 0:
            break
        (child,) = node.children.values()
        if child.key != expected:
            break
        node = child
    return node


def _cut_at(
    records: list[tuple[list[str], float]], focus: tuple[str, str]
) -> list[tuple[list[str], float]]:
    """The samples taken inside *focus* ``(file, function)``, each from that frame down."""
    prefix = f"{focus[1]}\x00{focus[0]}\x00"
    cut = []
    for stack, seconds in records:
        for index, info in enumerate(stack):
            if info.startswith(prefix):
                cut.append((stack[index:], seconds))
                break
    return cut or records


def _same_file(a: str, b: str) -> bool:
    return a == b or os.path.abspath(a) == os.path.abspath(b)


def _merge_into(children: dict[str, _Node], node: _Node) -> None:
    found = children.get(node.key)
    if found is None:
        children[node.key] = node
        return
    found.time += node.time
    for child in node.children.values():
        _merge_into(found.children, child)


def prune_tree(node: _Node, *, framework_frames: bool = False) -> float:
    """Leave this package's frames (and their time) out of the tree under *node*, and fold
    pytest's and pluggy's frames into their callers unless *framework_frames*.

    The package's time inside a test is its own cost, reported as ``kari_overhead_ms``, not
    the test's; the runner's frames between the test and the code it calls are noise.
    Returns the seconds taken out.
    """
    removed = 0.0
    for key, child in list(node.children.items()):
        owner = frame_owner(_split_identifier(key)[1])
        if owner == "package":
            del node.children[key]
            removed += child.time
            continue
        removed += prune_tree(child, framework_frames=framework_frames)
        if owner == "framework" and not framework_frames:
            del node.children[key]
            for grandchild in child.children.values():
                _merge_into(node.children, grandchild)
    node.time -= removed
    return removed


def compact_tree(node: _Node, total: float, min_share: float) -> dict[str, Any]:
    """The tree under *node* as JSON-able dicts, keeping children with at least *min_share*
    of *total* time, at most ``MAX_TREE_DEPTH`` deep and ``MAX_TREE_NODES`` nodes."""
    budget = [MAX_TREE_NODES]
    floor = total * min_share

    def convert(current: _Node, depth: int) -> dict[str, Any]:
        budget[0] -= 1
        function, file, line = _split_identifier(current.key)
        kept = sorted(current.children.values(), key=lambda c: -c.time)
        children = []
        for child in kept:
            if child.time < floor or depth >= MAX_TREE_DEPTH or budget[0] <= 0:
                break
            children.append(convert(child, depth + 1))
        return {
            "function": function,
            "file": file,
            "line": line,
            "time_s": round(current.time, 6),
            "self_s": round(current.self_time, 6),
            "children": children,
        }

    return convert(node, 0)


def _hot_functions(node: _Node) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Self time per function and per call path under *node* (largest first)."""
    functions: dict[str, list[float]] = {}
    paths: dict[tuple[str, ...], float] = {}
    stack: list[tuple[_Node, tuple[str, ...], frozenset[str]]] = [(node, (), frozenset())]
    while stack:
        current, path, seen = stack.pop()
        function, file, line = _split_identifier(current.key)
        label = function_label(function, file, line)
        here = (*path, label)
        if current.key in SYNTHETIC:
            continue  # counted in its parent (as self time, and as waiting)
        wait = sum(c.time for c in current.children.values() if c.key in SYNTHETIC)
        own = current.self_time + wait
        if own > 0 and current.key != "[root]" and not _ours(file):
            entry = functions.setdefault(current.key, [0.0, 0.0, 0.0])
            entry[0] += own
            entry[1] += wait
            if current.key not in seen:  # recursion: count the inclusive time once
                entry[2] += current.time
            paths[here[-MAX_TREE_DEPTH:]] = paths.get(here[-MAX_TREE_DEPTH:], 0.0) + own
        for child in current.children.values():
            stack.append((child, here, seen | {current.key}))
    hot: list[dict[str, Any]] = []
    for key, (own, wait, inclusive) in functions.items():
        function, file, line = _split_identifier(key)
        hot.append(
            {
                "function": function,
                "file": file,
                "line": line,
                "self_s": round(own, 6),
                "wait_s": round(wait, 6),
                "total_s": round(max(inclusive, own), 6),
            }
        )
    hot.sort(key=lambda h: -h["self_s"])
    hot_paths = [
        {"path": list(path), "self_s": round(seconds, 6)}
        for path, seconds in sorted(paths.items(), key=lambda item: -item[1])[:MAX_HOT_PATHS]
    ]
    return hot[:MAX_HOT_FUNCTIONS], hot_paths
