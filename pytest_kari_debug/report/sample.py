"""A synthetic run that follows the per-test data contract, for the report's tests and benchmark."""

from __future__ import annotations

import random
import zlib
from typing import Any

_LEVELS = ("DEBUG", "INFO", "INFO", "INFO", "WARNING", "ERROR")
_ERRORS = (
    ("TimeoutError", "provider did not answer within 2.0 s", "network", "raise the timeout"),
    ("KeyError", "'forecast'", "data", "check the provider's response schema"),
    ("ValueError", "temperature out of range: -400", "validation", None),
    ("ConnectionResetError", "peer reset the connection", "network", "retry with backoff"),
)
_SEVERITIES = ("critical", "high", "medium", "low")


def _hex(rng: random.Random, nbytes: int) -> str:
    return "".join(f"{rng.randrange(256):02x}" for _ in range(nbytes))


def _call_tree(rng: random.Random, total: float, depth: int = 0) -> dict[str, Any]:
    node: dict[str, Any] = {
        "function": f"step_{depth}_{rng.randrange(100)}",
        "file": f"weather/handlers_{depth}.py",
        "line": rng.randrange(1, 400),
        "time_s": round(total, 6),
    }
    children = []
    if depth < 4:
        left = total * rng.uniform(0.5, 0.95)
        for _ in range(rng.randrange(1, 4)):
            share = left * rng.uniform(0.2, 0.8)
            children.append(_call_tree(rng, share, depth + 1))
            left -= share
    node["self_s"] = round(max(0.0, total - sum(c["time_s"] for c in children)), 6)
    node["children"] = children
    return node


def sample_test(
    index: int, rng: random.Random, started_at: float, *, payload: str = ""
) -> dict[str, Any]:
    """One test record with logs, metrics samples, spans and, for some, errors and alerts."""
    session = _hex(rng, 16)
    module = index // 50
    nodeid = f"tests/test_mod{module:03d}.py::test_case_{index:05d}"
    if payload:
        nodeid += f"[{payload}]"
    call_ms = rng.lognormvariate(2.0, 0.9)
    phases = {
        "setup": round(rng.uniform(0.05, 1.5), 3),
        "call": round(call_ms, 3),
        "teardown": round(rng.uniform(0.05, 0.8), 3),
    }
    duration = sum(phases.values())
    end = started_at + duration / 1000.0
    failed = rng.random() < 0.05
    outcome = "failed" if failed else rng.choices(("passed", "skipped"), (0.97, 0.03))[0]
    logs = []
    for k in range(rng.randrange(2, 8)):
        level = rng.choice(_LEVELS)
        logs.append(
            {
                "ts": started_at + (k + 1) * duration / 10_000.0,
                "level": level,
                "message": f"{payload} handled request {k} for city {rng.randrange(900)}".strip(),
                "name": "kari.weather",
                "session_id": session,
                "extension_id": "weather",
                "correlation_id": f"req-{index}-{k}",
                "thread": "MainThread",
                "fields": {"city": f"c{rng.randrange(900)}", "attempt": k},
            }
        )
    samples = []
    rss = 80_000_000 + index * 1500 + rng.randrange(2_000_000)
    for k in range(rng.randrange(2, 5)):
        samples.append(
            {
                "ts": started_at + k * duration / 4000.0,
                "cpu_percent": round(rng.uniform(2, 98), 1),
                "rss_bytes": rss + k * rng.randrange(50_000, 400_000),
                "vms_bytes": rss * 3 + k * 4096,
                "threads": rng.randrange(1, 5),
                "open_files": rng.randrange(3, 12),
                "ctx_switches": k * rng.randrange(10, 90),
            }
        )
    trace_id = _hex(rng, 16)
    root_id = _hex(rng, 8)
    spans: list[dict[str, Any]] = [
        {
            "trace_id": trace_id,
            "span_id": root_id,
            "parent_id": None,
            "name": nodeid if not payload else f"test {payload}",
            "start": started_at,
            "end": end,
            "duration_ms": duration,
            "status": "error" if failed else "ok",
            "tags": {"test": "true"},
            "session_id": session,
        }
    ]
    cursor = started_at + phases["setup"] / 1000.0
    for k in range(rng.randrange(1, 4)):
        length = phases["call"] / 4000.0
        child_id = _hex(rng, 8)
        spans.append(
            {
                "trace_id": trace_id,
                "span_id": child_id,
                "parent_id": root_id,
                "name": f"provider.fetch#{k}",
                "start": cursor,
                "end": cursor + length,
                "duration_ms": length * 1000.0,
                "status": "error" if failed and k == 0 else "ok",
                "tags": {"http.status": 500 if failed and k == 0 else 200},
                "session_id": session,
            }
        )
        spans.append(
            {
                "trace_id": trace_id,
                "span_id": _hex(rng, 8),
                "parent_id": child_id,
                "name": "cache.lookup",
                "start": cursor,
                "end": cursor + length / 3,
                "duration_ms": length * 333.0,
                "status": "ok",
                "session_id": session,
            }
        )
        cursor += length
    for span in spans:
        span["ts"] = span["start"]
        span["value"] = span["duration_ms"]
    errors = []
    if failed or rng.random() < 0.05:
        kind, message, category, suggestion = rng.choice(_ERRORS)
        errors.append(
            {
                "ts": end,
                "session_id": session,
                "error_type": kind,
                "error_message": message,
                "fingerprint": f"{kind}-{zlib.crc32(message.encode()) % 10_000:04d}",
                "category": category,
                "suggestion": suggestion,
                "stack_trace": f'File "weather/extension.py", line 42, in fetch\n{kind}: {message}',
                "level": "error",
                "nodeid": nodeid,
            }
        )
    alerts = []
    if rng.random() < 0.03:
        severity = rng.choice(_SEVERITIES)
        alerts.append(
            {
                "alert_id": _hex(rng, 8),
                "alert_type": "budget",
                "name": "duration_ms",
                "rule": "duration_ms > 50",
                "severity": severity,
                "level": severity,
                "title": f"{payload} slow test".strip(),
                "message": f"duration_ms={duration:.1f}, threshold 50.0",
                "metric_name": "duration_ms",
                "current_value": duration,
                "value": duration,
                "threshold_value": 50.0,
                "status": "active",
                "occurrences": 1,
                "ts": end,
                "session_id": session,
                "source": "kari_budget",
            }
        )
    profiling: dict[str, Any] = {"records": [], "dropped": 0}
    if rng.random() < 0.05:
        profiling["call_tree"] = _call_tree(rng, phases["call"] / 1000.0)
    longrepr = None
    if failed:
        longrepr = (
            f"def test_case_{index:05d}(weather):\n>       assert weather.fetch('c1').temp < 40\n"
            f"E       AssertionError: {payload} assert 41.5 < 40\n\n"
            f"tests/test_mod{module:03d}.py:{10 + index % 50}: AssertionError"
        )
    return {
        "nodeid": nodeid,
        "extension_id": "weather",
        "extension_name": "Weather",
        "outcome": outcome,
        "phases": phases,
        "duration_ms": round(duration, 3),
        "started_at": started_at,
        "finished_at": end,
        "session_id": session,
        "worker": None,
        "longrepr": longrepr,
        "collected_data": {
            "logging": {"records": logs, "dropped": 0},
            "metrics": {
                "records": [
                    {
                        "name": "request_time",
                        "value": round(rng.uniform(1, 30), 3),
                        "unit": "ms",
                        "ts": started_at + i / 1000.0,
                        "session_id": session,
                        "labels": {},
                    }
                    for i in range(2)
                ],
                "dropped": 0,
                "resources": {
                    "cpu_ms": round(call_ms * rng.uniform(0.3, 1.0), 3),
                    "rss_start_bytes": rss,
                    "rss_end_bytes": samples[-1]["rss_bytes"],
                    "peak_rss_bytes": max(s["rss_bytes"] for s in samples),
                },
                "samples": samples,
            },
            "error_tracking": {"records": errors, "dropped": 0},
            "tracing": {"records": spans, "dropped": 0, "trace_id": trace_id},
            "profiling": profiling,
            "alerting": {"records": alerts, "dropped": 0},
        },
        "extra": {},
    }


def sample_run(
    count: int, *, seed: int = 9, payload: str = "", started_at: float = 1_800_000_000.0
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Return ``(run, tests)`` of a synthetic run of *count* tests (deterministic per seed).

    *payload* is put into every test name, log message, alert title and failure, to check
    escaping.
    """
    rng = random.Random(seed)
    tests = []
    now = started_at
    for index in range(count):
        test = sample_test(index, rng, now, payload=payload)
        tests.append(test)
        now = test["finished_at"] + 0.0002
    run = {
        "uuid": _hex(rng, 16),
        "id": None,
        "started_at": started_at,
        "finished_at": now,
        "duration_s": round(now - started_at, 3),
        "rootdir": "/ci/weather-extension",
        "args": ["--kari-debug", "--kari-report", "report.html"],
        "git_commit": _hex(rng, 20),
        "git_branch": "main",
        "host": "ci-runner",
        "python_version": "3.11.7",
        "pytest_version": "8.3.0",
        "plugin_version": "0.1.0",
        "platform": "linux",
        "exit_status": 1,
        "workers": 0,
    }
    return run, tests
