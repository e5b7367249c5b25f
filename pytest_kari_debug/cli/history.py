"""``runs``, ``compare`` and ``export``: stored runs, the regression gate and exports."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import click

from ..atomic import write_atomic
from ..exceptions import ConfigurationError
from ..gates import (
    BASELINE_FORMAT,
    UNITS,
    BaselineError,
    Comparison,
    Options,
    build_baseline,
    check_baseline,
    compare_runs,
    merge_baselines,
    parse_gates,
    slowdown_of,
)
from ..model import TestRecord
from ..optionspec import FAIL_REGRESSION, MIN_CHANGE_MS
from ..sources import StoreSource
from ..summaries import comparison_markdown
from . import exports
from .app import CliError, Env, cli, pass_env, spec_option
from .figures import figures_of, shown, shown_figure
from .records import short_test
from .render import ago, ms, paint, pairs, run_json, run_text, table


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
    source = env.source(env.extension_id)
    if source is None:
        return env.no_store_hint()
    found = source.runs(limit=limit)
    if env.json:
        env.emit([run_json(run) for run in found])
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
                ms(took) if run.get("status") == "finished" else str(run.get("status")),
                str(run["tests_count"]),
                commit,
                ", ".join(run["extensions"]),
                outcomes or "-",
            ]
        )
    env.echo(table(["run", "started", "took", "tests", "commit", "extensions", "outcomes"], rows))
    return 0


def _test_row(test: TestRecord) -> dict[str, Any]:
    return {
        "nodeid": test.nodeid,
        "extension_id": test.extension_id,
        "outcome": test.outcome,
        "figures": figures_of(test),
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
    source = env.source(env.extension_id)
    if source is None:
        return env.no_store_hint()
    found = source.find_run(run)
    if found is None:
        if run == "last":
            return env.hint("no test run recorded yet; record one with `pytest --kari-debug`")
        msg = f"run {run!r} not found; see `kari-debug runs list`"
        raise CliError(msg)
    meta = source.run_summary(found["id"]) or found
    tests = [_test_row(t) for t in source.run_records(found["id"])]
    if env.json:
        env.emit(
            {
                "run": run_json(meta),
                "diagnostics": (found.get("data") or {}).get("diagnostics", []),
                "tests": tests,
            }
        )
        return 0
    env.echo(
        pairs(
            [
                ("run", run_text(meta)),
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
                shown_figure("duration_ms", f),
                shown_figure("cpu_ms", f),
                shown_figure("peak_rss_mb", f),
                str(int(f.get("log.warning", 0))),
                str(int(f.get("errors", 0))),
                short_test(test["nodeid"]),
            ]
        )
    env.echo(table(["outcome", "duration", "cpu", "peak rss", "warn+", "errors", "test"], rows))
    return 0


# compare -----------------------------------------------------------------------------------
def _read_json(text: str, role: str) -> Any:
    try:
        return json.loads(Path(text).read_text(encoding="utf-8"))
    except FileNotFoundError:
        msg = f"{role} file {text!r} does not exist"
        raise CliError(msg) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        msg = f"{role} file {text!r} is not readable JSON ({exc})"
        raise CliError(msg) from None


def _is_file(text: str) -> bool:
    return Path(text).is_file() or text.endswith(".json")


def _runs_of_document(data: Any) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    """(run metadata, test records) of each run in a run document or an export."""
    if isinstance(data, list):  # a bare list of test records
        return [({}, [t for t in data if isinstance(t, dict) and "nodeid" in t])]
    if not isinstance(data, Mapping):
        return []
    if isinstance(data.get("runs"), list):  # kari-debug export --format json
        found = []
        for document in data["runs"]:
            found.extend(_runs_of_document(document))
        return found
    if isinstance(data.get("tests"), list):  # a run document (pytest --kari-json)
        run = data.get("run")
        if not isinstance(run, Mapping):
            run = {}
        return [(dict(run), [t for t in data["tests"] if isinstance(t, dict) and "nodeid" in t])]
    return []


def _of_extension(tests: Sequence[Mapping[str, Any]], extension_id: str | None) -> list[Any]:
    if extension_id is None:
        return list(tests)
    return [t for t in tests if t.get("extension_id") in (None, extension_id)]


def _checked_baseline(document: Any, source: str, extension_id: str | None) -> dict[str, Any]:
    try:
        baseline = check_baseline(document, source=source)
    except BaselineError as exc:
        raise CliError(str(exc)) from None
    tests = baseline["tests"]
    if extension_id is not None:
        tests = {n: e for n, e in tests.items() if e.get("extension_id") in (None, extension_id)}
    return {**baseline, "tests": tests}


_KINDS = (
    "give a run document (pytest --kari-json), a `kari-debug export --format json` file"
    " or a baseline file (pytest --kari-save-baseline NAME --kari-baseline-file PATH)"
)


def load_baseline(source: StoreSource | None, text: str) -> tuple[dict[str, Any], str]:
    """The baseline document BASE names, and a label for it.

    BASE is a JSON file (a baseline file, a run document, or an export whose runs merge into
    one baseline), a run of the store (id, uuid, ``last``, ``last~N``) or a baseline saved in
    the store by ``--kari-save-baseline NAME``.
    """
    extension_id = None if source is None else source.extension_id
    if _is_file(text):
        data = _read_json(text, "baseline")
        if isinstance(data, Mapping) and data.get("format") == BASELINE_FORMAT:
            checked = _checked_baseline(data, f"baseline file {text!r}", extension_id)
            return checked, f"baseline file {text}"
        runs = [(run, _of_extension(tests, extension_id)) for run, tests in _runs_of_document(data)]
        runs = [(run, tests) for run, tests in runs if tests]
        if not runs:
            msg = f"baseline file {text!r} holds no test records; {_KINDS}"
            raise CliError(msg)
        documents = [build_baseline(text, tests, run) for run, tests in runs]
        label = text if len(runs) == 1 else f"{text} ({len(runs)} runs)"
        return merge_baselines(text, documents), label
    if source is None:
        msg = f"baseline {text!r} is neither a JSON file nor a run: there is no store yet"
        raise CliError(msg)
    run = source.find_run(text)
    if run is None and (text == "last" or text.startswith("last~") or text.isdigit()):
        msg = f"baseline run {text!r} not found in the store; see `kari-debug runs list`"
        raise CliError(msg)
    if run is not None:
        tests = source.run_tests(run["id"])
        if not tests:
            msg = f"baseline run #{run['id']} has no tests" + (
                f" of extension {extension_id!r}" if extension_id else ""
            )
            raise CliError(msg)
        return build_baseline(f"run #{run['id']}", tests, run), f"run #{run['id']}"
    saved = source.baseline(text)
    if saved is None:
        names = source.baseline_names()
        known = f" (saved baselines: {', '.join(names[:10])})" if names else ""
        msg = (
            f"baseline {text!r} is not a run nor a baseline saved in the store{known};"
            f" see `kari-debug runs list`, or {_KINDS}"
        )
        raise CliError(msg)
    return _checked_baseline(saved, f"baseline {text!r}", extension_id), f"baseline {text}"


def load_head(source: StoreSource | None, text: str) -> tuple[list[dict[str, Any]], str]:
    """The test records of HEAD (a run of the store, or a run document) and a label."""
    extension_id = None if source is None else source.extension_id
    if _is_file(text):
        data = _read_json(text, "head")
        if isinstance(data, Mapping) and data.get("format") == BASELINE_FORMAT:
            msg = f"head file {text!r} is a baseline; HEAD is a run: a stored run or a run document"
            raise CliError(msg)
        runs = [_of_extension(tests, extension_id) for _, tests in _runs_of_document(data)]
        runs = [tests for tests in runs if tests]
        if len(runs) != 1:
            msg = (
                f"head file {text!r} holds {len(runs)} runs with test records; HEAD is one run"
                " (a run document from pytest --kari-json, or an export of one run with --run)"
            )
            raise CliError(msg)
        return runs[0], text
    if source is None:
        msg = f"head {text!r} is neither a JSON file nor a run: there is no store yet"
        raise CliError(msg)
    run = source.find_run(text)
    if run is None:
        msg = f"head run {text!r} not found in the store; see `kari-debug runs list`"
        raise CliError(msg)
    tests = source.run_tests(run["id"])
    if not tests:
        msg = f"head run #{run['id']} has no tests" + (
            f" of extension {extension_id!r}" if extension_id else ""
        )
        raise CliError(msg)
    return tests, f"run #{run['id']}"


def _value(value: float | None, metric: str) -> str:
    return shown(value, UNITS.get(metric, ""))


#: The gates of ``compare`` without --fail.
DEFAULT_GATES = "duration:+25%"


def _render_comparison(env: Env, comparison: Comparison, show_all: bool) -> None:
    shown = [
        c
        for c in comparison.sorted()
        if c.verdict != "unmeasured" and (show_all or c.verdict in ("regression", "faster"))
    ] + comparison.totals
    if shown:
        rows = []
        for change in shown:
            verdict = "REGRESSED" if change.verdict == "regression" else change.verdict
            rows.append(
                [
                    paint(verdict, "regressed" if change.verdict == "regression" else "ok"),
                    change.metric,
                    _value(change.baseline, change.metric),
                    _value(change.current, change.metric),
                    f"{change.percent:+.1f}%" if change.percent is not None else "-",
                    short_test(change.nodeid),
                    change.note,
                ]
            )
        headers = ["verdict", "metric", "base", "head", "change", "test", "note"]
        env.echo(table(headers, rows))
    unmeasured = ("not measured on both sides", comparison.unmeasured())
    for reason, names in [unmeasured, *comparison.left_out()]:
        if names:
            more = f" (+{len(names) - 5} more)" if len(names) > 5 else ""
            env.echo(f"{reason}: {', '.join(names[:5])}{more}")


@cli.command()
@click.argument("base")
@click.argument("head", default="last")
@spec_option(
    FAIL_REGRESSION,
    "spec",
    help=f"Gates, as {FAIL_REGRESSION.flag}: METRIC:+N% or METRIC:+N<unit>, comma-separated;"
    f" default {DEFAULT_GATES}, judged only on enough samples",
)
@spec_option(MIN_CHANGE_MS)
@click.option("--all", "show_all", is_flag=True, help="Show every comparison, not only regressions")
@click.option(
    "--format",
    "compare_format",
    type=click.Choice(["table", "json", "markdown"]),
    default=None,
    help="As the global --format, or markdown: the gate table for a PR comment",
)
@pass_env
def compare(
    env: Env,
    base: str,
    head: str,
    spec: str | None,
    min_change_ms: float,
    show_all: bool,
    compare_format: str | None,
) -> int:
    """Gate HEAD (default: the last run) against BASE: exit 1 on a regression.

    BASE is a run of the store (id, uuid, 'last', 'last~N'), a baseline saved with
    `pytest --kari-save-baseline NAME`, or a JSON file: a baseline file
    (--kari-baseline-file), a run document (pytest --kari-json) or an export (kari-debug
    export --format json; its runs merge into one baseline whose spread is the runs'
    spread). HEAD is a run of the store or a run document.

    The method is the plugin's regression gates (README "Performance regression gates"),
    deciding on the samples recorded (nothing is re-run): minimum of samples, a noise floor
    for timings, the baseline's median, deterministic counts compared exactly. Each gate also
    applies to the total over the tests passing in both. Gates: duration (call phase), cpu,
    allocated, blocks, peak_rss (alias memory, rss), spans, logs, errors.

    Without --fail a timing change is judged only when the baseline has at least 2 samples
    and head at least 5 (pytest --kari-repeat=5); with fewer it is "not enough samples" and
    does not fail. Given --fail, single samples are judged (their minimum). Deterministic
    figures (allocated, blocks, spans, logs, errors) always compare exactly.

    Exit status: 0 no regression, 1 regression, 2 missing or unreadable baseline (with every
    --format; markdown puts regressions first, then improvements, then how many are unchanged).

    \b
    Examples:
      kari-debug compare last~1 last --fail "duration:+25%,allocated:+10%"
      kari-debug compare main last --format markdown >> "$GITHUB_STEP_SUMMARY"
      kari-debug compare main --fail "cpu:+20%,errors:+0"
      kari-debug --extension-id my-ext compare baseline.json run.json --fail "peak_rss:+50MB"
    """
    explicit = spec is not None
    try:
        gates = parse_gates(spec or DEFAULT_GATES, source="--fail")
    except ConfigurationError as exc:
        raise CliError(str(exc)) from None
    source = env.source(env.extension_id)
    baseline, base_label = load_baseline(source, base)
    head_tests, head_label = load_head(source, head)
    references = [
        value
        for test in head_tests
        for value in (TestRecord.from_dict(test).extra.get("gates") or {}).get("reference_ms") or []
    ]
    comparison = compare_runs(
        baseline["tests"],
        head_tests,
        gates,
        baseline_name=base_label,
        options=Options(min_change_ms=min_change_ms, confirm_runs=1)
        if explicit
        else Options(min_change_ms=min_change_ms, base_runs=2),
        excluded=baseline.get("excluded") or {},
        slowdown=slowdown_of(references, baseline.get("reference_ms")),
    )
    if comparison.compared_tests == 0:
        msg = f"no passing test is in both {base_label} and {head_label}: nothing to compare"
        raise CliError(msg)
    regressions = comparison.regressions()
    fmt = compare_format or env.fmt
    if fmt == "markdown":
        text = comparison_markdown(
            comparison,
            base_label=base_label,
            head_label=head_label,
            gates=[gate.text for gate in gates],
        )
        click.echo(text, nl=False)
        return 1 if regressions else 0
    if fmt == "json":
        env.emit(
            {
                "ok": not regressions,
                "base": base_label,
                "head": head_label,
                "gates": [gate.text for gate in gates],
                **comparison.to_dict(),
            }
        )
        return 1 if regressions else 0
    _render_comparison(env, comparison, show_all)
    verdict = (
        paint(f"{len(regressions)} regression(s)", "regressed")
        if regressions
        else paint("no regression", "ok")
    )
    slower = (
        f", machine slower x{comparison.slowdown:.2f}: timings scaled back"
        if comparison.slowdown > 1.0
        else ""
    )
    undecided = sum(1 for c in comparison.changes if c.verdict == "unconfirmed")
    if undecided:
        env.echo(
            f"{undecided} timing change(s) not judged: not enough samples (record them with"
            " pytest --kari-repeat=5, or pass --fail to judge single samples)"
        )
    env.echo(
        f"{head_label} against {base_label} ({comparison.compared_tests} tests,"
        f" gates {', '.join(gate.text for gate in gates)}{slower}): {verdict}"
    )
    return 1 if regressions else 0


# export ------------------------------------------------------------------------------------
def _export_format(export_format: str | None, kinds: Sequence[str]) -> str:
    """The format asked for, checked against --kind (traces go as jaeger or otlp only)."""
    traces = "traces" in kinds
    if export_format is None:
        return "jaeger" if traces else "json"
    if export_format in ("jaeger", "otlp") and set(kinds) - {"traces", "span"}:
        msg = f"--format {export_format} exports traces only; got --kind {', '.join(kinds)}"
        raise CliError(msg)
    if traces and export_format not in ("jaeger", "otlp", "csv"):
        msg = f"--kind traces exports as --format jaeger, otlp or csv, not {export_format!r}"
        raise CliError(msg)
    return export_format


@cli.command()
@click.option(
    "--format",
    "export_format",
    type=click.Choice(["json", "csv", "prometheus", "jaeger", "otlp"]),
    default=None,
    help="json: run documents (default); csv: records; prometheus: text exposition;"
    " jaeger or otlp (OTLP/JSON): traces (default with --kind traces: jaeger)",
)
@click.option("--output", "-o", default="-", show_default=True, metavar="PATH", help="'-': stdout")
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    type=click.Choice([*exports.RECORD_KINDS, "traces"]),
    help="Record kinds to include in CSV (repeatable; default all); traces: the spans, as"
    " jaeger or otlp",
)
@pass_env
def export(env: Env, export_format: str | None, output: str, kinds: Sequence[str]) -> int:
    """Export the extension's data (every run, or --run) to PATH, written atomically.

    \b
    Examples:
      kari-debug --extension-id my-ext export --format json --output debug-data.json
      kari-debug --extension-id my-ext --run last export --format prometheus -o kari.prom
      kari-debug --extension-id my-ext export --format csv --kind log --kind error -o logs.csv
      kari-debug --extension-id my-ext export --format jaeger --output traces.json
      kari-debug --extension-id my-ext export --kind traces --format otlp -o traces.otlp.json
    """
    export_format = _export_format(export_format, kinds)
    if export_format == "csv":
        kinds = tuple("span" if kind == "traces" else kind for kind in kinds)
    scope = env.scope()
    if scope is None:
        return 0
    bundle = exports.gather(scope.source, export_format, kinds if export_format == "csv" else ())
    text = exports.render(bundle, export_format)
    if output == "-":
        click.echo(text, nl=not text.endswith("\n"))
        return 0
    try:
        path = write_atomic(output, text)
    except OSError as exc:
        msg = f"cannot write --output {output!r}: {exc.strerror or exc}"
        raise CliError(msg, code=1) from None
    records = exports.record_count(bundle)
    if env.json:
        env.emit(
            {
                "output": str(path),
                "format": export_format,
                "runs": len(bundle.runs),
                "records": records,
                "bytes": len(text.encode()),
            }
        )
    else:
        env.echo(f"wrote {path} ({export_format}, {len(bundle.runs)} run(s), {records} record(s))")
    return 0
