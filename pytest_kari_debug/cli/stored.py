"""``import``, ``report`` and ``prune``: run documents into the store, a stored run's HTML
report, and retention."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from ..backends import redact
from ..history import load_history
from ..model import RUN_FORMAT, SCHEMA_VERSION
from ..optionspec import RETENTION_DAYS, RETENTION_RUNS
from ..report import ReportError, write_report
from ..sources import StoreSource
from ..summaries import metrics_section
from ..views import run_error_groups
from .app import CliError, Env, cli, pass_env, spec_option


def read_run_document(path: Path) -> dict[str, Any]:
    """The run document in *path* (``--kari-json``), checked; :class:`CliError` names the file
    and what is wrong with it."""

    def refuse(reason: str) -> CliError:
        return CliError(f"{str(path)!r} not imported: {reason}", code=1)

    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise refuse(f"cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError as exc:
        raise refuse(f"not UTF-8 text (byte {exc.start})") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        raise refuse(f"not JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from None
    except RecursionError:
        raise refuse("not JSON this reader can hold (nested too deeply)") from None
    if not isinstance(document, dict) or document.get("format") != RUN_FORMAT:
        found = document.get("format") if isinstance(document, dict) else type(document).__name__
        raise refuse(
            f"not a pytest-kari-debug run document (format {found!r}, expected {RUN_FORMAT!r}:"
            " a --kari-json file)"
        )
    version = document.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise refuse(f"its version {version!r} is not a positive whole number")
    if version > SCHEMA_VERSION:
        raise refuse(
            f"version {version} is newer than this pytest-kari-debug reads ({SCHEMA_VERSION})"
        )
    run = document.get("run")
    if not isinstance(run, dict) or not isinstance(run.get("uuid"), str) or not run["uuid"]:
        raise refuse("its 'run' has no uuid (the run id)")
    if not isinstance(run.get("started_at"), (int, float)) or isinstance(run["started_at"], bool):
        raise refuse(f"its run's started_at {run.get('started_at')!r} is not a time")
    tests = document.get("tests")
    if not isinstance(tests, list):
        raise refuse("its 'tests' is not a list")
    for index, test in enumerate(tests):
        if not isinstance(test, dict) or not isinstance(test.get("nodeid"), str):
            raise refuse(f"test {index} has no node id")
    return document


@cli.command("import")
@click.argument("files", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=Path))
@pass_env
def import_(env: Env, files: tuple[Path, ...]) -> int:
    """Add run JSON documents (--kari-json files, e.g. CI shard artifacts) to the store.

    Documents of one run id (--kari-run-id) join one run; a test already stored is skipped,
    so importing a document twice changes nothing. A file that is not a run document is
    named with the reason, and nothing of it is imported; exit status 1 then.

    \b
    Examples:
      kari-debug import shard-1.json shard-2.json
      kari-debug --store postgresql://ci@db:5432/kari import artifacts/*.json
    """
    store = env.open_store(create=True)
    assert store is not None
    results: list[dict[str, Any]] = []
    failed = 0
    for path in files:
        try:
            document = read_run_document(path)
        except CliError as exc:
            failed += 1
            click.echo(f"kari-debug: error: {exc}", err=True)
            continue
        result = store.import_run(document, error_groups=run_error_groups)
        results.append({"file": str(path), **vars(result)})
        if not env.json:
            how = "joined" if result.joined else "new"
            env.echo(
                f"{path}: run {result.uuid!r} ({how}, store run {result.run_id}):"
                f" {result.added} test(s) added, {result.skipped} already stored"
            )
    if env.json:
        env.emit({"store": store.label, "imported": results, "failed": failed})
    return 1 if failed else 0


@cli.command("report")
@click.option(
    "--run", "run_text", metavar="RUN_ID|last", help="The run (default: --run before, or last)"
)
@click.option(
    "--output",
    "-o",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where to write the HTML page",
)
@pass_env
def report(env: Env, run_text: str | None, output: Path) -> int:
    """Write the HTML report of a stored run (every shard of it): the page --kari-report
    writes.

    \b
    Examples:
      kari-debug report --output report.html
      kari-debug report --run ci-1234 --output report.html
    """
    store = env.open_store()
    if store is None:
        return env.no_store_hint()
    text = run_text or env.run or "last"
    source = StoreSource(store)
    run = source.find_run(text)
    if run is None:
        msg = f"no run {text!r} in the store {redact(env.store_path)!r} (see `kari-debug runs`)"
        raise CliError(msg, code=1)
    tests = [{k: v for k, v in test.items() if k != "id"} for test in source.run_tests(run["id"])]
    data: dict[str, Any] = run["data"] if isinstance(run.get("data"), dict) else {}
    meta = {k: v for k, v in run.items() if k not in ("data", "outcomes")}
    if run.get("finished_at") is not None and run.get("started_at") is not None:
        meta["duration_s"] = round(max(0.0, run["finished_at"] - run["started_at"]), 3)
    try:
        written = write_report(
            output,
            meta,
            tests,
            # every shard's tests: the stored section is the last shard's
            sections={**(data.get("sections") or {}), "metrics": metrics_section(tests)},
            diagnostics=[str(d) for d in data.get("diagnostics") or ()],
            history=load_history(source, until_run=int(run["id"])),
            store=store,  # today's resolutions, not those kept at the run's end
        )
    except ReportError as exc:
        raise CliError(str(exc), code=1) from None
    if env.json:
        env.emit(
            {"run": run["id"], "uuid": run["uuid"], "tests": len(tests), "output": str(written)}
        )
    else:
        env.echo(f"report of run {run['uuid']!r} ({len(tests)} tests): {written}")
    return 0


@cli.command("prune")
@spec_option(RETENTION_RUNS, "keep_runs", default=None, show_default=False)
@spec_option(RETENTION_DAYS, "older_than", default=None, show_default=False)
@click.option("--baselines", is_flag=True, help="Also remove baselines older than --older-than")
@click.option("--resolutions", is_flag=True, help="Also remove resolutions older than --older-than")
@click.option("--dry-run", is_flag=True, help="Say what would go; remove nothing")
@pass_env
def prune(
    env: Env,
    keep_runs: int | None,
    older_than: float | None,
    baselines: bool,
    resolutions: bool,
    dry_run: bool,
) -> int:  # fmt: skip
    """Remove old runs (their tests and records) from the store and give the space back.

    Baselines and resolutions stay unless --baselines / --resolutions ask. The plugin does
    the same at the end of every run (kari_retention_runs, kari_retention_days).

    \b
    Examples:
      kari-debug prune --keep-runs 100 --dry-run
      kari-debug prune --older-than 30
    """
    if keep_runs is None and older_than is None:
        msg = "say what to remove: --keep-runs N and/or --older-than DAYS"
        raise CliError(msg)
    if (baselines or resolutions) and not older_than:
        msg = "--baselines and --resolutions remove those older than --older-than DAYS: give it"
        raise CliError(msg)
    store = env.open_store()
    if store is None:
        return env.no_store_hint()
    before = store.size_bytes()
    result = store.prune(
        keep_runs=keep_runs or 0,
        older_than_days=older_than or 0.0,
        baselines=baselines,
        resolutions=resolutions,
        dry_run=dry_run,
    )
    if not dry_run and result.runs:
        store.reclaim_space()
    after = store.size_bytes()
    if env.json:
        env.emit({**result.to_dict(), "size_before": before, "size_after": after})
        return 0
    verb = "would remove" if dry_run else "removed"
    env.echo(
        f"{verb} {len(result.runs)} run(s), {result.tests} test(s), {result.records} record(s),"
        f" {result.baselines} baseline(s), {result.resolutions} resolution(s)"
        + ("" if dry_run else f"; store {before:,} -> {after:,} bytes")
    )
    return 0
