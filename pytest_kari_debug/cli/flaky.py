"""``history NODEID`` and ``flaky``: a test's outcomes across stored runs, and the flaky tests."""

from __future__ import annotations

import click

from ..history import DEFAULT_RUNS, TestHistory, load_history
from .app import Env, cli, pass_env
from .figures import shown
from .render import paint, table

_RUNS = click.option(
    "--runs",
    type=click.IntRange(min=1),
    default=DEFAULT_RUNS,
    show_default=True,
    help="How many of the newest stored runs to look at",
)
_SYMBOLS = {
    "passed": "✓",
    "failed": "✗",
    "error": "⚠",
    "skipped": "↷",
    "xfailed": "⊘",
    "xpassed": "★",
}


def _strip(history: TestHistory) -> str:
    return "".join(paint(_SYMBOLS.get(o, "?"), o) for o in history.outcomes)


@cli.command("history")
@click.argument("nodeid")
@_RUNS
@pass_env
def history_command(env: Env, nodeid: str, runs: int) -> int:
    """One test's outcome and duration in each of the newest stored runs it ran in.

    \b
    Examples:
      kari-debug history tests/test_api.py::test_login
      kari-debug --format json history tests/test_api.py::test_login --runs 20
    """
    source = env.source()
    if source is None:
        return env.no_store_hint()
    history = load_history(source, runs=runs, nodeid=nodeid, extension_id=env.extension_id)
    found = history.get(nodeid)
    if env.json:
        env.emit(found.to_dict() if found else None)
        return 0
    if found is None:
        return env.hint(f"no stored run has the test {nodeid!r}; node ids look like path::name")
    env.echo(f"{nodeid}: last {found.runs} run(s), oldest first {_strip(found)}")
    badges = found.badges()
    if badges:
        env.echo(
            "  " + ", ".join(paint(b, "failed" if "fixed" not in b else "passed") for b in badges)
        )
    rows = [
        [f"#{run_id}", paint(outcome, outcome), shown(duration, "ms")]
        for run_id, outcome, duration in reversed(
            list(zip(found.run_ids, found.outcomes, found.durations, strict=True))
        )
    ]
    env.echo(table(["run", "outcome", "duration"], rows))
    return 0


@cli.command("flaky")
@_RUNS
@pass_env
def flaky_command(env: Env, runs: int) -> int:
    """Tests that both passed and failed in the newest stored runs, most failures first.

    \b
    Examples:
      kari-debug flaky
      kari-debug --format json flaky --runs 30
    """
    source = env.source()
    if source is None:
        return env.no_store_hint()
    history = load_history(source, runs=runs, extension_id=env.extension_id)
    found = history.flaky()
    if env.json:
        env.emit(
            {
                "runs": list(history.run_ids),
                "flaky": [h.to_dict() for h in found],
                "new_failures": [h.nodeid for h in history.new_failures()],
                "fixed": [h.nodeid for h in history.fixed()],
            }
        )
        return 0
    if not found:
        return env.hint(f"no flaky test in the last {len(history.run_ids)} stored run(s)")
    env.echo(f"{len(found)} flaky test(s) in the last {len(history.run_ids)} stored run(s):")
    rows = [[_strip(h), f"failed {h.failures} of {h.runs}", h.nodeid] for h in found]
    env.echo(table(["history (oldest first)", "failures", "test"], rows))
    return 0
