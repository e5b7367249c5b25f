"""Bottleneck ranking, shared by the profiler and the pytest plugin."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .limits import WAIT_FUNCTIONS
from .trees import _split_identifier, function_label


# Ranking, shared by the profiler and the pytest plugin (which ranks from test records) ----
def _recommend_function(function: str, own: float, wait: float, calls: int | None) -> str:
    short = function.rsplit(".", 1)[-1]
    waiting = wait > 0.5 * own or function in WAIT_FUNCTIONS or short in WAIT_FUNCTIONS
    if waiting:
        return (
            "waits (sleep, I/O or a lock) rather than computes: run the waits concurrently,"
            " batch the requests, add a cache or a timeout"
        )
    if calls is not None and calls >= 1000:
        return (
            f"called {calls} times: batch the calls, cache the results or hoist the work out"
            " of the loop"
        )
    return (
        "CPU-bound: improve the algorithm or data structures, cache results, or move it to a"
        " worker process"
    )


def _recommend_timed(stats: dict[str, Any]) -> str | None:
    wall, cpu, calls = stats["total_ms"], stats["cpu_total_ms"], stats["calls"]
    if calls >= 100 and stats["mean_ms"] < 1.0:
        return (
            f"called {calls} times at {stats['mean_ms']:.3f} ms each: batch the calls or cache"
            " the results"
        )
    if wall > 0 and cpu / wall < 0.5:
        return (
            f"only {100 * cpu / wall:.0f}% of its wall time is CPU: it waits on I/O, sleep or"
            " locks; overlap the waits or cache"
        )
    if wall > 0 and cpu / wall >= 0.9:
        return "CPU-bound: improve the algorithm, cache results or move it to a worker process"
    return None


def rank_bottlenecks(
    functions: dict[str, list[float]],
    paths: dict[tuple[str, ...], float],
    calls: dict[str, int],
    total: float,
    timed: list[dict[str, Any]],
    limit: int,
) -> list[dict[str, Any]]:
    """Bottleneck entries from aggregated self times, paths and timed-name statistics.

    *functions* maps ``function\\0file\\0line`` to ``[self_s, wait_s, total_s]``; *paths*
    maps call paths (labels, root first) to self seconds of their last function; *calls*
    maps the same function keys to cProfile call counts; *total* is the sampled seconds.
    """
    found: list[dict[str, Any]] = []
    denominator = total or 1e-12
    ranked = sorted(functions.items(), key=lambda item: -item[1][0])[:limit]
    for key, (own, wait, inclusive) in ranked:
        function, file, line = _split_identifier(key)
        call_count = calls.get(key) or calls.get(f"{function}\x00{file}\x00{line}")
        found.append(
            {
                "kind": "function",
                "name": function_label(function, file, line),
                "function": function,
                "file": file or None,
                "line": line or None,
                "self_s": round(own, 6),
                "wait_s": round(wait, 6),
                "total_s": round(inclusive, 6),
                "share": round(own / denominator, 4),
                "calls": call_count,
                "recommendation": _recommend_function(function, own, wait, call_count),
            }
        )
    for path, own in sorted(paths.items(), key=lambda item: -item[1])[: max(1, limit // 2)]:
        found.append(
            {
                "kind": "path",
                "name": " > ".join(path[-6:]),
                "path": list(path),
                "self_s": round(own, 6),
                "share": round(own / denominator, 4),
                "recommendation": f"hottest path: most time is spent in {path[-1]}",
            }
        )
    grand = sum(t["total_ms"] for t in timed) or 1e-12
    for stats in sorted(timed, key=lambda t: -t["total_ms"])[:limit]:
        found.append(
            {
                "kind": "timed",
                **stats,
                "share": round(stats["total_ms"] / grand, 4),
                "recommendation": _recommend_timed(stats),
            }
        )
    return found


def bottlenecks_from_profiles(
    profiles: Iterable[dict[str, Any]], limit: int = 10
) -> list[dict[str, Any]]:
    """Rank bottlenecks across per-session ``collected_data["profiling"]`` dicts."""
    functions: dict[str, list[float]] = {}
    paths: dict[tuple[str, ...], float] = {}
    calls: dict[str, int] = {}
    timed: dict[str, dict[str, Any]] = {}
    total = 0.0
    for data in profiles:
        details = data.get("profile") or {}
        tree = data.get("call_tree")
        if tree:
            total += float(tree.get("time_s") or 0.0)
        for hot in details.get("hot_functions") or ():
            key = "\x00".join((hot["function"], hot.get("file") or "", str(hot.get("line") or 0)))
            entry = functions.setdefault(key, [0.0, 0.0, 0.0])
            entry[0] += hot.get("self_s", 0.0)
            entry[1] += hot.get("wait_s", 0.0)
            entry[2] += hot.get("total_s", 0.0)
        for hot in details.get("hot_paths") or ():
            path = tuple(hot["path"])
            paths[path] = paths.get(path, 0.0) + hot.get("self_s", 0.0)
        for row in details.get("cprofile") or ():
            key = f"{row['name']}\x00{row['file']}\x00{row['line']}"
            calls[key] = calls.get(key, 0) + int(row["calls"])
        for name, figures in (data.get("functions") or {}).items():
            entry2 = timed.setdefault(
                name,
                {"name": name, "calls": 0, "timed_calls": 0, "failed": 0, "total_ms": 0.0,
                 "cpu_total_ms": 0.0, "max_ms": 0.0, "p95_ms": 0.0},
            )  # fmt: skip
            entry2["calls"] += figures["timed_calls"]
            entry2["timed_calls"] += figures["timed_calls"]
            entry2["failed"] += figures["failed"]
            entry2["total_ms"] += figures["total_ms"]
            entry2["cpu_total_ms"] += figures["cpu_total_ms"]
            entry2["max_ms"] = max(entry2["max_ms"], figures["max_ms"])
            entry2["p95_ms"] = max(entry2["p95_ms"], figures["p95_ms"])
    for entry2 in timed.values():
        entry2["mean_ms"] = entry2["total_ms"] / (entry2["timed_calls"] or 1)
    return rank_bottlenecks(functions, paths, calls, total, list(timed.values()), limit)
