"""Stacks of errors: exception chains, in-app frames, traceback text parsed and rendered.

A frame is in-app when it is the user's code: not the standard library, not an installed
package (unless its module is named in ``in_app_include``), not this package or pytest's
machinery. Tracebacks keep the outermost quarter and the innermost rest of their frames.
"""

from __future__ import annotations

import builtins
import functools
import itertools
import linecache
import os
import re
import site
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import field
from types import FrameType, TracebackType
from typing import Any

from ..config import DebugConfiguration
from ..sharedmethods import dataclass
from ..values import clean_text, safe_repr, safe_str

#: Exceptions kept from one chain (causes, contexts, members of exception groups).
MAX_CHAIN = 16
#: In-app frames (after collapsing recursion) that make up a stack fingerprint.
FINGERPRINT_FRAMES = 50
#: Longest error message kept, in characters.
MAX_MESSAGE = 10_000
#: Longest stack trace text kept, in characters.
MAX_STACK_TEXT = 100_000
#: Variables kept per frame when locals are captured.
MAX_LOCALS = 50

_TRACEBACK_FRAME = re.compile(
    r'^[\s|+-]*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>.+?)\s*$'
)
_CHAIN_CAUSE = "The above exception was the direct cause of the following exception:"
_CHAIN_CONTEXT = "During handling of the above exception, another exception occurred:"
_EXCEPTION_LINE = re.compile(r"^[\s|]*(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<message>.*))?$")
_TEST_FILE = re.compile(r"^(test_.*|.*_test|conftest)\.py$")

#: Module prefixes never in-app: this package and pytest's machinery.
_NOT_IN_APP_MODULES = ("pytest_kari_debug", "_pytest", "pytest", "pluggy", "xdist", "execnet")


@dataclass(frozen=True, slots=True)
class StackFrame:
    """One frame of a stack trace (never with memory addresses; locals only when asked)."""

    filename: str
    module: str
    function: str
    lineno: int | None
    line: str
    in_app: bool
    locals: dict[str, str] | None = None

    @property
    def key(self) -> str:
        """The frame's identity for grouping: ``module:function``."""
        return f"{self.module}:{self.function}"

    def to_dict(self) -> dict[str, Any]:
        """Return the frame as JSON-able data."""
        data: dict[str, Any] = {
            "filename": self.filename,
            "module": self.module,
            "function": self.function,
            "lineno": self.lineno,
            "line": self.line,
            "in_app": self.in_app,
        }
        if self.locals is not None:
            data["locals"] = self.locals
        return data


# In-app detection -------------------------------------------------------------------------
@functools.cache
def _library_dirs() -> tuple[str, ...]:
    """Directories whose code is not the user's: the standard library and site-packages
    (found once, on the first error: sysconfig is slow to import)."""
    import sysconfig

    found: set[str] = set()
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        if paths.get(key):
            found.add(paths[key])
    try:
        found.update(site.getsitepackages())
        found.add(site.getusersitepackages())
    except AttributeError:  # site of some embedded interpreters lacks these
        pass
    # this package (its frames are never the user's)
    found.add(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return tuple(sorted({os.path.join(os.path.realpath(p), "") for p in found if p}))


@functools.lru_cache(maxsize=4096)
def _module_from_path(filename: str) -> str:
    """The dotted module name of a source file, from the longest ``sys.path`` entry holding it."""
    if filename.startswith("<"):
        return filename
    path = os.path.realpath(filename)
    best = ""
    for entry in sys.path:
        root = os.path.join(os.path.realpath(entry or os.getcwd()), "")
        if path.startswith(root) and len(root) > len(best):
            best = root
    relative = path[len(best) :] if best else os.path.basename(path)
    stem = os.path.splitext(relative)[0]
    parts = [part for part in stem.split(os.sep) if part]
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) or os.path.basename(path)


def type_display(exc_type: type) -> str:
    """The class name as tracebacks print it: bare for builtins, else module-qualified."""
    module = getattr(exc_type, "__module__", None) or ""
    name = getattr(exc_type, "__qualname__", None) or exc_type.__name__
    return name if module in ("builtins", "__main__", "") else f"{module}.{name}"


def _safe_str(exc: BaseException) -> str:
    """The exception's text (bounded user code, cleaned); never raises."""
    return safe_str(exc, MAX_MESSAGE)


def safe_message(exc: BaseException) -> str:
    """The exception's text (bounded user code, cleaned); never raises."""
    return safe_str(exc, MAX_MESSAGE)


def _is_group(exc: BaseException) -> bool:
    """True for an exception group (the builtin one, or a backport's)."""
    group_type = getattr(builtins, "BaseExceptionGroup", None)
    if group_type is not None and isinstance(exc, group_type):
        return True
    return isinstance(getattr(exc, "exceptions", None), tuple) and any(
        klass.__name__ == "BaseExceptionGroup" for klass in type(exc).__mro__
    )


def _collapse_cycles(keys: Sequence[str], longest: int = 4) -> list[str]:
    """*keys* with repeated runs (recursion, mutual recursion) reduced to one occurrence."""
    out: list[str] = []
    for key in keys:
        out.append(key)
        changed = True
        while changed:
            changed = False
            for length in range(1, longest + 1):
                if len(out) >= 2 * length and out[-length:] == out[-2 * length : -length]:
                    del out[-length:]
                    changed = True
                    break
    return out


def _outer_library_frames(in_app: Sequence[bool]) -> int:
    """How many outermost frames run before the first in-app one (the harness calling in)."""
    for index, flag in enumerate(in_app):
        if flag:
            return index
    return 0


@dataclass
class ExceptionNode:
    """One exception of a chain, with its extracted frames."""

    type_name: str
    message: str
    relation: str
    depth: int
    all_keys: list[str]
    app_keys: list[str]
    test_free_keys: list[str]
    frames: list[StackFrame]
    omitted: int
    notes: list[str]
    outer_omitted: int = 0
    cause: ExceptionNode | None = None
    members: list[ExceptionNode] = field(default_factory=list)

    def fingerprint_keys(self) -> list[str]:
        """In-app frames without test files when any remain; in-app; else every frame."""
        keys = self.test_free_keys or self.app_keys or self.all_keys
        return _collapse_cycles(keys)[-FINGERPRINT_FRAMES:]


class StackCapture:
    """How a tracker reads stacks: which frames are in-app, which are kept, their locals.

    *configuration* gives ``max_stack_frames`` and ``max_repr_length``; *is_secret* (a local's
    name holds a secret) and *scrub* keep secrets out of locals, source lines and notes.
    """

    def __init__(
        self,
        configuration: DebugConfiguration,
        *,
        is_secret: Callable[[str], bool],
        scrub: Callable[[str], str],
        in_app_include: Iterable[str] = (),
    ) -> None:
        self.configuration = configuration
        self.is_secret = is_secret
        self.scrub = scrub
        #: Module prefixes counted as in-app even when installed in site-packages.
        self.in_app_include: list[str] = list(in_app_include)
        #: Module prefixes never counted as in-app.
        self.in_app_exclude: list[str] = []
        self._in_app_cache: dict[tuple[str, str], bool] = {}

    def _locals(self, frame: FrameType) -> dict[str, str]:
        limit = self.configuration.max_repr_length
        found: dict[str, str] = {}
        for name, value in list(frame.f_locals.items())[:MAX_LOCALS]:
            if self.is_secret(name):
                found[name] = "[REDACTED]"
            else:
                found[name] = self.scrub(safe_repr(value, limit))
        return found

    def _in_app(self, filename: str, module: str) -> bool:
        key = (filename, module)
        cached = self._in_app_cache.get(key)
        if cached is not None:
            return cached
        result = self._decide_in_app(filename, module)
        if len(self._in_app_cache) < 10_000:
            self._in_app_cache[key] = result
        return result

    def _decide_in_app(self, filename: str, module: str) -> bool:
        def under(prefixes: Iterable[str]) -> bool:
            return any(module == p or module.startswith(p + ".") for p in prefixes if p)

        if under(self.in_app_exclude):
            return False
        if under(self.in_app_include):
            return True
        if under(_NOT_IN_APP_MODULES):
            return False
        if filename.startswith("<"):
            return "frozen" not in filename
        path = os.path.realpath(filename)
        if f"{os.sep}site-packages{os.sep}" in path or f"{os.sep}dist-packages{os.sep}" in path:
            return False
        return not path.startswith(_library_dirs())

    def _select(self, count: int, first: int = 0) -> tuple[list[int], int]:
        """Indexes of the frames kept from *first* to *count*, and how many are left out."""
        limit = self.configuration.max_stack_frames
        if count - first <= limit:
            return list(range(first, count)), 0
        head = limit // 4
        tail = limit - head
        return [*range(first, first + head), *range(count - tail, count)], count - first - limit

    def exception_nodes(self, exc: BaseException, want_locals: bool) -> list[ExceptionNode]:
        """The exception and its chain as nodes, preorder (the exception first)."""
        flat: list[ExceptionNode] = []
        seen: set[int] = set()

        def visit(current: BaseException, relation: str, depth: int) -> ExceptionNode | None:
            if id(current) in seen or len(flat) >= MAX_CHAIN:
                return None
            seen.add(id(current))
            node = self._live_node(current, relation, depth, want_locals)
            flat.append(node)
            if _is_group(current):
                for index, member in enumerate(getattr(current, "exceptions", ())):
                    child = visit(member, f"group[{index}]", depth + 1)
                    if child is not None:
                        node.members.append(child)
            cause = current.__cause__
            context = current.__context__
            if cause is not None:
                node.cause = visit(cause, "cause", depth + 1)
            elif context is not None and not current.__suppress_context__:
                node.cause = visit(context, "context", depth + 1)
            return node

        visit(exc, "exception", 0)
        return flat

    def _live_node(
        self, exc: BaseException, relation: str, depth: int, want_locals: bool
    ) -> ExceptionNode:
        entries: list[tuple[FrameType, int | None]] = []
        tb: TracebackType | None = exc.__traceback__
        while tb is not None:
            entries.append((tb.tb_frame, tb.tb_lineno))
            tb = tb.tb_next
        located: list[tuple[str, str, str]] = []
        for frame, _ in entries:
            code = frame.f_code
            module = frame.f_globals.get("__name__")
            if not isinstance(module, str) or module == "__main__":
                module = _module_from_path(code.co_filename)
            located.append((code.co_filename, module, code.co_name))

        def make_frame(index: int, in_app: bool) -> StackFrame:
            frame, lineno = entries[index]
            filename, module, function = located[index]
            line = linecache.getline(filename, lineno or 0, frame.f_globals).strip()[:300]
            return StackFrame(
                filename=clean_text(filename, 1000),
                module=module,
                function=function,
                lineno=lineno,
                line=self.scrub(clean_text(line)),
                in_app=in_app,
                locals=self._locals(frame) if want_locals and in_app else None,
            )

        notes = getattr(exc, "__notes__", None)
        kept_notes = (
            [self.scrub(safe_str(n, 1000)) for n in notes[:20]] if isinstance(notes, list) else []
        )
        head = (type_display(type(exc)), safe_message(exc), relation, depth)
        return self._node(*head, located, make_frame, kept_notes)

    def _node(
        self,
        type_name: str,
        message: str,
        relation: str,
        depth: int,
        located: Sequence[tuple[str, str, str]],
        make_frame: Callable[[int, bool], StackFrame],
        notes: list[str],
    ) -> ExceptionNode:
        """A node of the frames *located* (filename, module, function), outermost first;
        *make_frame(index, in_app)* builds each frame kept."""
        all_keys, app_keys, test_free, in_apps = self._frame_keys(located)
        outer = _outer_library_frames(in_apps)
        kept, omitted = self._select(len(located), outer)
        return ExceptionNode(
            type_name=type_name,
            message=message,
            relation=relation,
            depth=depth,
            all_keys=all_keys,
            app_keys=app_keys,
            test_free_keys=test_free,
            frames=[make_frame(index, in_apps[index]) for index in kept],
            omitted=omitted,
            outer_omitted=outer,
            notes=notes,
        )

    def _frame_keys(
        self, located: Sequence[tuple[str, str, str]]
    ) -> tuple[list[str], list[str], list[str], list[bool]]:
        """Grouping keys (``module:function``) of frames given as (filename, module, function).

        Returns every frame's key, the in-app frames' keys, the in-app keys outside test
        files, and whether each frame is in-app.
        """
        all_keys: list[str] = []
        app_keys: list[str] = []
        test_free: list[str] = []
        in_apps: list[bool] = []
        for filename, module, function in located:
            in_app = self._in_app(filename, module)
            key = f"{module}:{function}"
            in_apps.append(in_app)
            all_keys.append(key)
            if in_app:
                app_keys.append(key)
                if not _TEST_FILE.match(os.path.basename(filename)):
                    test_free.append(key)
        return all_keys, app_keys, test_free, in_apps

    def parse_traceback(self, text: str) -> tuple[str, list[ExceptionNode]]:
        """Truncated traceback text and its exceptions as nodes (the last printed first)."""
        blocks: list[tuple[str, list[str]]] = [("exception", [])]
        for line in text.splitlines():
            stripped = line.strip(" |")
            if stripped == _CHAIN_CAUSE:
                blocks.append(("cause", []))
            elif stripped == _CHAIN_CONTEXT:
                blocks.append(("context", []))
            else:
                blocks[-1][1].append(line)
        # Python prints the root cause first: the exception itself is the last block.
        ordered = list(reversed(blocks))
        nodes: list[ExceptionNode] = []
        for depth, (_, lines) in enumerate(ordered[:MAX_CHAIN]):
            relation = "exception" if depth == 0 else ordered[depth - 1][0]
            nodes.append(self._text_node(lines, relation, depth))
        for parent, child in itertools.pairwise(nodes):
            parent.cause = child
        return _truncate_text(text, self.configuration.max_stack_frames), nodes

    def _text_node(self, lines: list[str], relation: str, depth: int) -> ExceptionNode:
        parsed: list[tuple[str, int, str, str]] = []
        type_name, message = "", ""
        for index, line in enumerate(lines):
            match = _TRACEBACK_FRAME.match(line)
            if match:
                following = lines[index + 1] if index + 1 < len(lines) else ""
                source = "" if _TRACEBACK_FRAME.match(following) else following.strip()
                parsed.append((match["file"], int(match["line"]), match["func"], source))
                continue
        for line in reversed(lines):
            match = _EXCEPTION_LINE.match(line)
            if match and line.strip() and not line.startswith((" ", "\t")):
                type_name, message = match["type"], (match["message"] or "")
                break
        located = [
            (filename, _module_from_path(filename), function) for filename, _, function, _ in parsed
        ]

        def make_frame(index: int, in_app: bool) -> StackFrame:
            filename, line_number, function, source = parsed[index]
            module = located[index][1]
            return StackFrame(filename, module, function, line_number, source[:300], in_app)

        return self._node(
            type_name, message[:MAX_MESSAGE], relation, depth, located, make_frame, []
        )


def chain_entry(node: ExceptionNode) -> dict[str, Any]:
    return {
        "relation": node.relation,
        "depth": node.depth,
        "error_type": node.type_name,
        "error_message": node.message,
        "frames": [frame.to_dict() for frame in node.frames],
        "frames_omitted": node.omitted + node.outer_omitted,
        "exception_notes": node.notes,
    }


def _render_frames(frames: Sequence[StackFrame], omitted: int, indent: str) -> list[str]:
    """Frame lines as Python prints them: runs of one repeated line collapsed after three."""
    lines: list[str] = []
    # The kept frames are the outermost quarter and the innermost rest (see _select).
    split = len(frames) // 4 if omitted else None
    previous: tuple[str, int | None, str] | None = None
    repeats = 0

    def close_run() -> None:
        if repeats > 3:
            lines.append(f"{indent}  [Previous line repeated {repeats - 3} more times]")

    for index, frame in enumerate(frames):
        if index == split:
            close_run()
            previous, repeats = None, 0
            lines.append(f"{indent}  [... {omitted} frames omitted ...]")
        identity = (frame.filename, frame.lineno, frame.function)
        if identity == previous:
            repeats += 1
            if repeats > 3:
                continue
        else:
            close_run()
            previous, repeats = identity, 1
        lines.append(f'{indent}  File "{frame.filename}", line {frame.lineno}, in {frame.function}')
        if frame.line:
            lines.append(f"{indent}    {frame.line}")
        if frame.locals:
            lines.extend(f"{indent}    {name} = {value}" for name, value in frame.locals.items())
    if split is not None and split >= len(frames):
        close_run()
        previous, repeats = None, 0
        lines.append(f"{indent}  [... {omitted} frames omitted ...]")
    close_run()
    return lines


def render(node: ExceptionNode, indent: str = "") -> str:
    """Traceback text of *node* and its chain, causes first as Python prints them."""
    lines: list[str] = []
    if node.cause is not None:
        lines.append(render(node.cause, indent))
        separator = _CHAIN_CAUSE if node.cause.relation == "cause" else _CHAIN_CONTEXT
        lines.append(f"{indent}\n{indent}{separator}\n{indent}")
    if node.frames or node.omitted or node.outer_omitted:
        lines.append(f"{indent}Traceback (most recent call last):")
        if node.outer_omitted:
            lines.append(
                f"{indent}  [... {node.outer_omitted} outer frames of the test runner and"
                " libraries omitted ...]"
            )
        lines.extend(_render_frames(node.frames, node.omitted, indent))
    lines.append(
        f"{indent}{node.type_name}: {node.message}" if node.message else indent + node.type_name
    )
    lines.extend(f"{indent}{note}" for note in node.notes)
    for index, member in enumerate(node.members, start=1):
        lines.append(f"{indent}+---------------- {index} ----------------")
        lines.append(render(member, indent + "| "))
    return "\n".join(lines)


def _truncate_text(text: str, max_frames: int) -> str:
    """Traceback text with frames past *max_frames* per chain block cut from the middle."""
    blocks: list[list[str]] = [[]]
    for line in text.splitlines():
        blocks[-1].append(line)
        if line.strip(" |") in (_CHAIN_CAUSE, _CHAIN_CONTEXT):
            blocks.append([])
    result = "\n".join(line for block in blocks for line in _truncate_block(block, max_frames))
    if len(result) > MAX_STACK_TEXT:
        half = MAX_STACK_TEXT // 2
        cut = len(result) - MAX_STACK_TEXT
        result = f"{result[:half]}\n[... {cut} characters omitted ...]\n{result[-half:]}"
    return result


def _truncate_block(lines: list[str], max_frames: int) -> list[str]:
    """One exception's traceback lines, keeping the outer quarter and the inner rest of frames."""
    starts = [i for i, line in enumerate(lines) if _TRACEBACK_FRAME.match(line)]
    if len(starts) <= max_frames:
        return lines
    head = max_frames // 4
    tail = max_frames - head
    cut_from = starts[head]
    cut_to = starts[len(starts) - tail] if tail > 0 else _after_last_frame(lines, starts)
    omitted = len(starts) - max_frames
    return [*lines[:cut_from], f"  [... {omitted} frames omitted ...]", *lines[cut_to:]]


def _after_last_frame(lines: list[str], starts: list[int]) -> int:
    last = starts[-1]
    if last + 1 < len(lines) and lines[last + 1].startswith("    "):
        return last + 2
    return last + 1


__all__ = [
    "FINGERPRINT_FRAMES",
    "MAX_CHAIN",
    "MAX_LOCALS",
    "MAX_MESSAGE",
    "MAX_STACK_TEXT",
    "ExceptionNode",
    "StackCapture",
    "StackFrame",
    "chain_entry",
    "render",
    "safe_message",
    "type_display",
]
