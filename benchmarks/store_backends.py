"""Per-test cost and end-of-run time of the store: SQLite file vs PostgreSQL server.

Runs pytest on a generated suite of N trivial tests (default 2,000) with ``--kari-debug`` in
rotated rounds, three ways: no store (``--kari-store=none``, the baseline), the SQLite file,
and a PostgreSQL database on the server of ``KARI_DEBUG_TEST_POSTGRES_URL`` (or ``--url``;
``.ci/postgres start`` starts one). A fresh database is made for the run and dropped at the end.

Reports the medians over the rounds of pytest's wall time from session start to unconfigure
and of the end of the run (``pytest_sessionfinish``: the last writes, closing the run,
retention), and the store's cost per test against the no-store baseline of the same round.
Wall time, because a PostgreSQL store's work is partly the server's: noisier than CPU time
on a shared machine, hence rotated rounds and medians. Next to it: the CPU time of pytest's own
thread from session start to unconfigure (what the tests wait for; SQLite's checkpoint thread
works beside it), and of the whole process (all threads: the checkpoint thread included).

``--baseline-ref REF`` also runs every configuration with the package as it was at git commit
*REF* (``git archive`` into a temporary folder, first on ``PYTHONPATH``), in the same rotated
rounds, and prints each store's per-test cost before and after with their ratio: e.g. ``3a6c4c9``,
the last commit that wrote the store in batches of 200 tests / 1 s rather than a commit per test.
The working tree runs the same way (first on ``PYTHONPATH``), and both trees' modules are
compiled by a warm-up run of each store and read from their bytecode caches after, as an
installed package's are.

    python benchmarks/store_backends.py [--tests 2000] [--rounds 5] [--url postgresql://...]
                                        [--baseline-ref REF]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

CONFTEST = """
import json, os, time

import pytest

_T = {}


@pytest.hookimpl(tryfirst=True)
def pytest_sessionstart(session):
    _T["start"] = time.perf_counter()
    _T["thread"] = time.thread_time()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_sessionfinish(session):
    begin = time.perf_counter()
    try:
        return (yield)
    finally:
        _T["finish"] = time.perf_counter() - begin


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    if "start" in _T:
        with open(os.environ["KARI_BENCH_OUT"], "w") as handle:
            json.dump({"wall": time.perf_counter() - _T["start"], "finish": _T.get("finish"),
                       "main_cpu": time.thread_time() - _T["thread"]}, handle)
"""


def make_suite(folder: Path, tests: int) -> None:
    """Write *tests* trivial tests in files of 100."""
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "conftest.py").write_text(CONFTEST)
    for start in range(0, tests, 100):
        numbers = range(start, min(start + 100, tests))
        body = "".join(f"def test_{n}():\n    pass\n\n" for n in numbers)
        (folder / f"test_gen_{start // 100:03d}.py").write_text(body)


def run(folder: Path, store: str, pythonpath: str | None = None) -> dict[str, float]:
    """Run the suite once with *store* (and the package at *pythonpath*, when given); return its
    wall and end-of-run seconds and the CPU seconds of the pytest process."""
    out = folder / "bench.json"
    env = {**os.environ, "KARI_BENCH_OUT": str(out)}
    # Every tree's modules compiled once (by the warm-up) and read from their caches after, as
    # an installed package's are. Without writing caches, a run compiled whatever the tree had
    # no cache for: the working tree had the caches earlier runs left, the archive none, so the
    # same code measured differently (and each compile added noise to every round).
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env.pop("PYTEST_ADDOPTS", None)
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio",
         "--kari-debug", f"--kari-store={store}"],
        cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {**json.loads(out.read_text()), "cpu": cpu}


def extract(ref: str, folder: Path) -> str:
    """The package as it was at git commit *ref*, unpacked under *folder*; its import path."""
    root = Path(__file__).resolve().parent.parent
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", ref, "pytest_kari_debug", "report_templates"],
        check=True, capture_output=True,
    ).stdout  # fmt: skip
    folder.mkdir(parents=True)
    subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return str(folder)


def _check_stored(stores: dict[str, str], rounds: int, tests: int) -> None:
    """Fail unless every test of every round is in the tree's stores (a store the tree
    refused, a newer schema say, is disabled and would seem to cost nothing)."""
    import sqlite3

    import psycopg

    with contextlib.closing(sqlite3.connect(stores["sqlite"])) as db:
        in_file = db.execute("SELECT count(*) FROM tests").fetchone()[0]
    with psycopg.connect(stores["postgresql"]) as db:
        in_server = db.execute("SELECT count(*) FROM tests").fetchone()[0]  # type: ignore[index]
    # Each store also holds the warm-up run's tests.
    for where, count, expected in (
        ("sqlite", in_file, tests * (rounds + 1)),
        ("postgresql", in_server, tests * (rounds + 1)),
    ):
        if count != expected:
            raise SystemExit(f"{where} store holds {count} tests, not {expected}")


def _median_cost(results: list[dict[str, float]], base: list[dict[str, float]], key: str) -> float:
    """Median over the rounds of *key* minus the baseline's in the same round."""
    return statistics.median(r[key] - b[key] for r, b in zip(results, base, strict=True))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--url", default=os.environ.get("KARI_DEBUG_TEST_POSTGRES_URL", ""))
    parser.add_argument("--baseline-ref", default="", help="also run the package at this commit")
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("no PostgreSQL server: pass --url or set KARI_DEBUG_TEST_POSTGRES_URL")
    import psycopg

    # Both trees imported the same way (first on PYTHONPATH, bytecode cached beside them): the
    # working tree's package as it stands, the baseline's as git archived it.
    trees: dict[str, str | None] = {"now": str(Path(__file__).resolve().parent.parent)}
    if args.baseline_ref:
        trees["before"] = None  # extracted below
    # A store of its own for each tree: a tree refuses a store of a newer schema.
    names = {tree: f"kari_bench_{uuid.uuid4().hex[:8]}" for tree in trees}
    with psycopg.connect(args.url, autocommit=True) as db:
        for name in names.values():
            db.execute(f'CREATE DATABASE "{name}"')
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "suite"
            folder.mkdir()
            make_suite(folder, args.tests)
            if args.baseline_ref:
                trees["before"] = extract(args.baseline_ref, Path(tmp) / "before")
            stores = {
                tree: {
                    "none": "none",
                    "sqlite": str(folder / f"kari-{tree}.db"),
                    "postgresql": urlunsplit(urlsplit(args.url)._replace(path=f"/{name}")),
                }
                for tree, name in names.items()
            }
            keys = list(stores["now"])
            order = [(tree, key) for key in keys for tree in trees]
            results: dict[tuple[str, str], list[dict[str, float]]] = {c: [] for c in order}
            for tree, path in trees.items():  # warm-up: modules compiled, files created
                for key in keys:
                    run(folder, stores[tree][key], path)
            for round_ in range(args.rounds):
                rotated = order[round_ % len(order) :] + order[: round_ % len(order)]
                for tree, key in rotated:
                    results[tree, key].append(run(folder, stores[tree][key], trees[tree]))
            for tree in trees:
                _check_stored(stores[tree], args.rounds, args.tests)
    finally:
        with psycopg.connect(args.url, autocommit=True) as db:
            for name in names.values():
                db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    load = os.getloadavg()[0]
    print(f"{args.tests} trivial tests, --kari-debug, {args.rounds} rotated rounds (medians),"
          f" load average {load:.1f} at the end")  # fmt: skip
    print("store per test: the median over the rounds of the difference with no store, µs")
    print(f"{'tree':<8}{'store':<12}{'wall s':>8}{'end of run ms':>15}{'wall':>8}"
          f"{'main-thread CPU':>17}{'process CPU':>13}{'vs sqlite':>11}")  # fmt: skip
    per_test: dict[tuple[str, str], tuple[float, float, float]] = {}
    for tree, key in results:
        base = results[tree, "none"]
        per_test[tree, key] = tuple(  # type: ignore[assignment]
            _median_cost(results[tree, key], base, figure) / args.tests * 1e6
            for figure in ("wall", "main_cpu", "cpu")
        )
    for tree in trees:
        for key in keys:
            found = results[tree, key]
            finish = statistics.median(r["finish"] or 0.0 for r in found) * 1000
            ratio = statistics.median(
                r["wall"] / s["wall"] for r, s in zip(found, results[tree, "sqlite"], strict=True)
            )
            wall, main, cpu = per_test[tree, key]
            median = statistics.median(r["wall"] for r in found)
            print(f"{tree:<8}{key:<12}{median:>8.2f}{finish:>15.0f}{wall:>8.0f}{main:>17.0f}"
                  f"{cpu:>13.0f}{ratio:>10.2f}x")  # fmt: skip
    if "before" in trees:
        print(f"store cost per test, now / before ({args.baseline_ref}), same rounds:")
        for key in ("sqlite", "postgresql"):
            (now_wall, now_main, now_cpu) = per_test["now", key]
            (old_wall, old_main, old_cpu) = per_test["before", key]
            print(
                f"  {key:<11} wall {old_wall:.0f} -> {now_wall:.0f} µs, main-thread CPU"
                f" {old_main:.0f} -> {now_main:.0f} µs,"
                f" process CPU {old_cpu:.0f} -> {now_cpu:.0f} µs"
            )
        for key in keys:
            ratio = statistics.median(
                n["wall"] / b["wall"]
                for n, b in zip(results["now", key], results["before", key], strict=True)
            )
            print(f"  whole run, {key:<11} now / before: {ratio:.3f}x (wall, paired by round)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
