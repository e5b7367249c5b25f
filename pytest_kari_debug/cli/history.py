"""``runs``, ``compare`` and ``export``: stored runs, the regression gate and exports."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from ..atomic import write_atomic
from ..exceptions import ConfigurationError
from ..storage import Store
from . import exports
from .app import CliError, Env, cli, pass_env, resolve_run
from .comparison import UNITS, Comparison, compare_runs, figures_of, parse_gate_spec
from .live import _run_json, _run_text
from .render import ago, ms, number, paint, pairs, table
from .views import short_test


@cli.group()
def runs() -> None:
    """Stored test runs."""


@runs.command("list")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)
@pass_env
def runs_list(env: Env, limit: int) -> int:
    """List the newest runs (those with tests of the extension, when one is given).

    \b
    Examples:
      kari-debug runs list
      kari-debug --extension-id my-ext --format json runs list --limit 5
    """
    store = env.open_store()
    if store is None:
        return env.no_store_hint()
    found = store.run_summaries(extension_id=env.extension_id, limit=limit)
    if env.json:
        env.emit([_run_json(run) for run in found])
        return 0
    if not found:
        return env.hint("no test run recorded yet; record one with `pytest --kari-debug`")
    rows = []
    for run in found:
        took = (run["finished_at"] - run["started_at"]) * 1000 if run.get("finished_at") else None
        outcomes = ", ".join(
            paint(f"{n} {o}", o) for o, n in sorted(run["outcomes"].items(), key=lambda i: -i[1])
        )
        commit = (
            f"{run.get('git_branch') or ''}@{str(run['git_commit'])[:8]}"
            if run.get("git_commit")
            else "-"
        )
        rows.append(
            [
                f"#{run['id']}",
                ago(run["started_at"]),
                ms(took),
                str(run["tests_count"]),
                commit,
                ", ".join(run["extensions"]),
                outcomes or "-",
            ]
        )
    env.echo(table(["run", "started", "took", "tests", "commit", "extensions", "outcomes"], rows))
    return 0


def _test_row(test: dict[str, Any]) -> dict[str, Any]:
    figures = figures_of(test)
    return {
        "nodeid": test.get("nodeid"),
        "extension_id": test.get("extension_id"),
        "outcome": test.get("outcome"),
        "figures": figures,
    }


@runs.command("show")
@click.argument("run", default="last")
@pass_env
def runs_show(env: Env, run: str) -> int:
    """Show RUN (an id, a uuid, 'last' or 'last~N') and its tests' figures.

    \b
    Examples:
      kari-debug runs show last
      kari-debug --extension-id my-ext runs show 12
    """
    store = env.open_store()
    if store is None:
        return env.no_store_hint()
    found = resolve_run(store, run, env.extension_id)
    if found is None:
        if run == "last":
            return env.hint("no test run recorded yet; record one with `pytest --kari-debug`")
        msg = f"run {run!r} not found; see `kari-debug runs list`"
        raise CliError(msg)
    summary = store.run_summaries(extension_id=None, limit=1_000_000)
    meta = next((r for r in summary if r["id"] == found["id"]), found)
    tests = [_test_row(t) for t in store.tests(found["id"], extension_id=env.extension_id)]
    if env.json:
        env.emit(
            {
                "run": _run_json(meta),
                "diagnostics": (found.get("data") or {}).get("diagnostics", []),
                "tests": tests,
            }
        )
        return 0
    env.echo(
        pairs(
            [
                ("run", _run_text(meta)),
                ("uuid", str(found["uuid"])),
                (
                    "host",
                    f"{found.get('host')}, Python {found.get('python_version')},"
                    f" pytest {found.get('pytest_version')}",
                ),
                ("args", " ".join(found.get("args") or []) or "-"),
            ]
        )
    )
    if not tests:
        return 0
    env.echo()
    rows = []
    for test in tests:
        f = test["figures"]
        rows.append(
            [
                paint(str(test["outcome"])),
                number(f.get("duration_ms"), "ms"),
                number(f.get("cpu_ms"), "ms"),
                f"{f['peak_rss_mb']:.1f} MiB" if "peak_rss_mb" in f else "-",
                str(int(f.get("log.warning", 0))),
                str(int(f.get("errors", 0))),
                short_test(test["nodeid"]),
            ]
        )
    env.echo(table(["outcome", "duration", "cpu", "peak rss", "warn+", "errors", "test"], rows))
    return 0


# compare -----------------------------------------------------------------------------------
def _tests_of_document(data: Any, extension_id: str | None) -> list[list[dict[str, Any]]]:
    """Test lists (one per run) of a run document, an export or a baseline file."""
    runs: list[list[dict[str, Any]]] = []
    if isinstance(data, list):
        runs = [[t for t in data if isinstance(t, dict)]]
    elif isinstance(data, Mapping):
        if isinstance(data.get("runs"), list):
            for document in data["runs"]:
                runs.extend(_tests_of_document(document, extension_id))
        elif isinstance(data.get("tests"), list):
            runs = [[t for t in data["tests"] if isinstance(t, dict)]]
        elif isinstance(data.get("tests"), Mapping):  # {nodeid: {figure: value}}
            runs = [
                [
                    {"nodeid": nodeid, "figures": figures, "extension_id": extension_id}
                    for nodeid, figures in data["tests"].items()
                    if isinstance(figures, Mapping)
                ]
            ]
    if extension_id is not None:
        runs = [
            [t for t in tests if t.get("extension_id") in (None, extension_id)] for tests in runs
        ]
    return [tests for tests in runs if tests]


def load_reference(
    store: Store | None, text: str, extension_id: str | None, role: str
) -> tuple[list[list[dict[str, Any]]], str]:
    """The test records of *text* (a JSON file, or a run of the store) and a label for it."""
    path = Path(text)
    if path.is_file() or text.endswith(".json"):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            msg = f"{role} file {text!r} does not exist"
            raise CliError(msg) from None
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            msg = f"{role} file {text!r} is not readable JSON ({exc})"
            raise CliError(msg) from None
        found = _tests_of_document(data, extension_id)
        if not found:
            msg = (
                f"{role} file {text!r} holds no test records; give a run document"
                " (pytest --kari-json), a `kari-debug export --format json` file or a baseline"
            )
            raise CliError(msg)
        return found, text
    if store is None:
        msg = f"{role} {text!r} is neither a JSON file nor a run: there is no store yet"
        raise CliError(msg)
    run = resolve_run(store, text, extension_id)
    if run is None:
        msg = f"{role} run {text!r} not found in the store; see `kari-debug runs list`"
        raise CliError(msg)
    tests = store.tests(run["id"], extension_id=extension_id)
    if not tests:
        msg = f"{role} run #{run['id']} has no tests" + (
            f" of extension {extension_id!r}" if extension_id else ""
        )
        raise CliError(msg)
    return [tests], f"run #{run['id']}"


def _render_comparison(env: Env, comparison: Comparison, show_all: bool) -> None:
    shown = [r for r in comparison.results if show_all or r.regressed or r.nodeid == "(total)"]
    if shown:
        rows = []
        for result in shown:
            unit = UNITS.get(result.figure, "")
            change = f"{result.change:+.1%}" if result.change is not None else "new"
            rows.append(
                [
                    paint("REGRESSED" if result.regressed else "ok"),
                    result.figure,
                    number(result.base, unit),
                    number(result.head, unit),
                    change,
                    number(result.threshold, unit),
                    short_test(result.nodeid),
                ]
            )
        env.echo(table(["verdict", "figure", "base", "head", "change", "limit", "test"], rows))
    for label, names in (
        ("not measured in both runs", comparison.unmeasured),
        ("only in the baseline", comparison.only_in_base),
        ("only in head", comparison.only_in_head),
        ("not compared (failed or skipped)", comparison.not_comparable),
    ):
        if names:
            more = f" (+{len(names) - 5} more)" if len(names) > 5 else ""
            env.echo(f"{label}: {', '.join(names[:5])}{more}")


@cli.command()
@click.argument("base")
@click.argument("head", default="last")
@click.option(
    "--fail",
    "spec",
    default="duration:+25%",
    show_default=True,
    metavar="GATES",
    help="Allowed growth per figure: FIGURE:+N% or FIGURE:+N, comma-separated",
)
@click.option("--all", "show_all", is_flag=True, help="Show every comparison, not only regressions")
@pass_env
def compare(env: Env, base: str, head: str, spec: str, show_all: bool) -> int:
    """Gate HEAD (default: the last run) against BASE: exit 1 on a regression.

    BASE and HEAD are runs of the store (id, uuid, 'last', 'last~N') or JSON files: a run
    document (pytest --kari-json), an export (kari-debug export --format json, every run in
    it is a baseline sample) or a baseline file. Each gate applies per test and to the total
    of the tests found in both; an increase must also clear the figure's noise floor and the
    baseline's own spread. Figures: duration, call, cpu, memory (peak RSS), allocated,
    blocks, errors, log.error, log.warning, spans.

    Exit status: 0 no regression, 1 regression, 2 missing or unreadable baseline.

    \b
    Examples:
      kari-debug compare last~1 last --fail "duration:+25%,allocated:+10%"
      kari-debug --extension-id my-ext compare baseline.json --fail "cpu:+20%,errors:+0"
    """
    try:
        rules = parse_gate_spec(spec)
    except ConfigurationError as exc:
        raise CliError(f"--fail: {exc}") from None
    store = env.open_store()
    base_runs, base_label = load_reference(store, base, env.extension_id, "baseline")
    head_runs, head_label = load_reference(store, head, env.extension_id, "head")
    comparison = compare_runs(base_runs, head_runs, rules)
    if comparison.compared_tests == 0:
        msg = f"no passing test is in both {base_label} and {head_label}: nothing to compare"
        raise CliError(msg)
    code = 0 if comparison.ok else 1
    for result in comparison.regressions[:20]:
        click.echo(f"kari-debug: regression: {result.message()}", err=True)
    if env.json:
        env.emit(
            {
                "base": base_label,
                "head": head_label,
                "gates": [r.text for r in rules],
                **comparison.to_dict(),
            }
        )
        return code
    _render_comparison(env, comparison, show_all)
    verdict = (
        paint("no regression", "ok")
        if comparison.ok
        else paint(f"{len(comparison.regressions)} regression(s)", "regressed")
    )
    env.echo(
        f"{head_label} against {base_label} ({comparison.compared_tests} tests,"
        f" gates {', '.join(r.text for r in rules)}): {verdict}"
    )
    return code


# export ------------------------------------------------------------------------------------
@cli.command()
@click.option(
    "--format",
    "export_format",
    type=click.Choice(["json", "csv", "prometheus", "jaeger"]),
    default="json",
    show_default=True,
    help="json: run documents; csv: records; prometheus: text exposition; jaeger: traces",
)
@click.option("--output", "-o", default="-", show_default=True, metavar="PATH", help="'-': stdout")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice(exports.RECORD_KINDS),
    help="CSV only: record kinds to include (repeatable; default all)",
)
@pass_env
def export(env: Env, export_format: str, output: str, kinds: Sequence[str]) -> int:
    """Export the extension's data (every run, or --run) to PATH, written atomically.

    \b
    Examples:
      kari-debug --extension-id my-ext export --format json --output debug-data.json
      kari-debug --extension-id my-ext --run last export --format prometheus -o kari.prom
      kari-debug --extension-id my-ext export --format csv --kind log --kind error -o logs.csv
      kari-debug --extension-id my-ext export --format jaeger --output traces.json
    """
    scope = env.scope()
    if scope is None:
        return 0
    run_ids = [scope.run_id] if scope.run_id is not None else None
    documents, needed, standalone = exports.NEEDS[export_format]
    if export_format == "csv" and kinds:
        needed = tuple(kinds)
    data = exports.collect(
        scope.store, scope.extension_id, run_ids, documents=documents, kinds=needed,
        standalone_only=standalone,
    )  # fmt: skip
    if export_format == "json":
        text = exports.render_json(data, scope.extension_id)
    elif export_format == "csv":
        text = exports.render_csv_export(data, needed)
    elif export_format == "prometheus":
        text = exports.render_prometheus(data, scope.extension_id)
    else:
        text = exports.render_jaeger(data, scope.extension_id)
    if output == "-":
        click.echo(text, nl=not text.endswith("\n"))
        return 0
    try:
        path = write_atomic(output, text)
    except OSError as exc:
        msg = f"cannot write --output {output!r}: {exc.strerror or exc}"
        raise CliError(msg, code=1) from None
    records = sum(len(rows) for rows in data["records"].values()) + sum(
        len(part.get("records") or [])
        for document in data["runs"]
        for test in document["tests"]
        for part in (test.get("collected_data") or {}).values()
        if isinstance(part, dict)
    )
    if env.json:
        env.emit(
            {
                "output": str(path),
                "format": export_format,
                "runs": len(data["runs"]),
                "records": records,
                "bytes": len(text.encode()),
            }
        )
    else:
        env.echo(f"wrote {path} ({export_format}, {len(data['runs'])} run(s), {records} record(s))")
    return 0
