"""``kari.*`` properties on each test case of pytest's JUnit XML (``--junitxml``).

pytest writes a test case's properties from its teardown report's ``user_properties``; this
feature adds the test's figures there once its record is built. The values are the user's
(the figures the alert rules read), never the plugin's own cost.
"""

from __future__ import annotations

from collections.abc import Generator, Mapping
from typing import Any
from urllib.parse import quote

import pytest

from ..backends import redact
from ..figures import RecordFigures
from .options import option_path
from .state import STATE, guard, kari_markers, register_when_sessions

PLUGIN = "kari-debug-junit"
#: Figure -> property name, in the order they are written.
FIGURES = {
    "duration_ms": "kari.duration_ms",
    "call_ms": "kari.call_ms",
    "cpu_ms": "kari.cpu_ms",
    "peak_rss_mb": "kari.peak_rss_mb",
    "allocated_mb": "kari.allocated_mb",
    "errors": "kari.errors",
}


def junit_properties(
    record: Mapping[str, Any],
    *,
    report_path: str | None = None,
    store: str | None = None,
    has_budget: bool = False,
) -> list[tuple[str, str]]:
    """The ``kari.*`` properties of one test record, as ``(name, text)`` pairs."""
    props = [("kari.outcome", str(record.get("outcome")))]
    source = RecordFigures(record)
    for figure, name in FIGURES.items():
        measured = source.measure(figure)
        if measured.missing is None and measured.value is not None:
            props.append((name, _number(measured.value)))
    extra = record.get("extra") or {}
    alerts = extra.get("alerts") or {}
    fired = [entry for entry in alerts.get("fired") or () if isinstance(entry, Mapping)]
    props.append(("kari.alerts", str(len(fired))))
    if fired:
        props.append(("kari.alerts.fired", "; ".join(_fired_text(entry) for entry in fired)))
    budget = [entry for entry in fired if entry.get("origin") == "kari_budget"]
    if budget:
        props.append(("kari.budget", "exceeded: " + "; ".join(_fired_text(e) for e in budget)))
    elif has_budget:
        props.append(("kari.budget", "within"))
    verdicts = alerts.get("verdicts") or []
    if verdicts:
        props.append(("kari.verdicts", "\n".join(str(v) for v in verdicts)))
    hang = extra.get("hang_dump")
    if isinstance(hang, Mapping) and hang.get("dumps"):
        props.append(("kari.hang_dumps", str(len(hang["dumps"]))))
    if report_path:
        props.append(("kari.report", f"{report_path}#test={quote(str(record.get('nodeid')))}"))
    if store:
        props.append(("kari.store", store))
    return props


def _fired_text(entry: Mapping[str, Any]) -> str:
    message = str(entry.get("message") or "").strip().splitlines()
    return f"[{entry.get('severity')}] {entry.get('name')}: {message[0] if message else ''}"


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


class JunitProperties:
    """Adds the properties to each teardown report (where the test ran, xdist workers too)."""

    def __init__(self, report_path: str | None, store: str | None) -> None:
        self.report_path = report_path
        self.store = store

    @pytest.hookimpl(wrapper=True, tryfirst=True)
    def pytest_runtest_makereport(
        self, item: pytest.Item, call: pytest.CallInfo[None]
    ) -> Generator[None, pytest.TestReport, pytest.TestReport]:
        """Outermost: the core has attached the record to the teardown report by now."""
        report = yield
        record = getattr(report, "kari_debug", None)
        if report.when == "teardown" and isinstance(record, dict):
            with guard(item.config, "adding JUnit XML properties"):
                props = junit_properties(
                    record,
                    report_path=self.report_path,
                    store=self.store,
                    has_budget="kari_budget" in kari_markers(item),
                )
                report.user_properties.extend(props)
        return report


def _report_path(config: pytest.Config) -> str | None:
    path = option_path(config, "report")
    return None if path is None else str(path)


def pytest_collection_finish(session: pytest.Session) -> None:
    """With ``--junitxml`` (xdist workers see the option too) and debug sessions: add the
    properties to every recorded test."""
    config = session.config
    state = config.stash.get(STATE, None)
    if not config.getoption("xmlpath", None) or state is None:
        return
    store = redact(state.settings.store_path) if state.settings.store_path else None
    register_when_sessions(config, PLUGIN, lambda: JunitProperties(_report_path(config), store))
