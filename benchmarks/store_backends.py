"""Per-test cost and end-of-run time of the store: SQLite file vs PostgreSQL server.

Runs pytest on a generated suite of N trivial tests (default 2,000) with ``--kari-debug`` in
rotated rounds, three ways: no store (``--kari-store=none``, the baseline), the SQLite file,
and a PostgreSQL database on the server of ``KARI_DEBUG_TEST_POSTGRES_URL`` (or ``--url``;
``.ci/postgres start`` starts one). A fresh database is made for the run and dropped at the end.

Reports the medians over the rounds of pytest's wall time from session start to unconfigure
and of the end of the run (``pytest_sessionfinish``: the last writes, closing the run,
retention), and the store's cost per test against the no-store baseline of the same round.
Wall time, because a PostgreSQL store's work is partly the server's: noisier than CPU time
on a shared machine, hence rotated rounds and medians.

    python benchmarks/store_backends.py [--tests 2000] [--rounds 5] [--url postgresql://...]
"""

from __future__ import annotations

import argparse
import json
import os
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
            json.dump({"wall": time.perf_counter() - _T["start"], "finish": _T.get("finish")},
                      handle)
"""


def make_suite(folder: Path, tests: int) -> None:
    """Write *tests* trivial tests in files of 100."""
    (folder / "pytest.ini").write_text("[pytest]\n")
    (folder / "conftest.py").write_text(CONFTEST)
    for start in range(0, tests, 100):
        numbers = range(start, min(start + 100, tests))
        body = "".join(f"def test_{n}():\n    pass\n\n" for n in numbers)
        (folder / f"test_gen_{start // 100:03d}.py").write_text(body)


def run(folder: Path, store: str) -> dict[str, float]:
    """Run the suite once with *store*; return its wall and end-of-run seconds."""
    out = folder / "bench.json"
    env = {**os.environ, "KARI_BENCH_OUT": str(out), "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:asyncio",
         "--kari-debug", f"--kari-store={store}"],
        cwd=folder, env=env, check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return dict(json.loads(out.read_text()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--url", default=os.environ.get("KARI_DEBUG_TEST_POSTGRES_URL", ""))
    args = parser.parse_args(argv)
    if not args.url:
        parser.error("no PostgreSQL server: pass --url or set KARI_DEBUG_TEST_POSTGRES_URL")
    import psycopg

    name = f"kari_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.url, autocommit=True) as db:
        db.execute(f'CREATE DATABASE "{name}"')
    pg_url = urlunsplit(urlsplit(args.url)._replace(path=f"/{name}"))
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            make_suite(folder, args.tests)
            stores = {
                "none": "none",
                "sqlite": str(folder / "kari.db"),
                "postgresql": pg_url,
            }
            order = list(stores)
            results: dict[str, list[dict[str, float]]] = {key: [] for key in stores}
            run(folder, stores["sqlite"])  # warm-up: imports compiled, files created
            for round_ in range(args.rounds):
                rotated = order[round_ % len(order) :] + order[: round_ % len(order)]
                for key in rotated:
                    results[key].append(run(folder, stores[key]))
    finally:
        with psycopg.connect(args.url, autocommit=True) as db:
            db.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    base = [r["wall"] for r in results["none"]]
    print(f"{args.tests} trivial tests, --kari-debug, {args.rounds} rotated rounds (medians)")
    print(f"{'store':<12}{'wall s':>9}{'end of run ms':>15}{'store per test µs':>19}"
          f"{'vs sqlite':>11}")  # fmt: skip
    per_test: dict[str, float] = {}
    for key in stores:
        walls = [r["wall"] for r in results[key]]
        cost = statistics.median(w - b for w, b in zip(walls, base, strict=True))
        per_test[key] = cost / args.tests * 1e6
    for key in stores:
        walls = [r["wall"] for r in results[key]]
        finish = statistics.median(r["finish"] or 0.0 for r in results[key]) * 1000
        ratio = statistics.median(
            w / s for w, s in zip(walls, (r["wall"] for r in results["sqlite"]), strict=True)
        )
        print(f"{key:<12}{statistics.median(walls):>9.2f}{finish:>15.0f}"
              f"{per_test[key]:>19.0f}{ratio:>10.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
