"""Typed request bodies and response shapes of the REST API (its OpenAPI document)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Level = Literal[
    "debug", "info", "warning", "error", "critical", "DEBUG", "INFO", "WARNING", "ERROR",
    "CRITICAL",
]  # fmt: skip
Severity = Literal["low", "medium", "high", "critical"]
Status = Literal["healthy", "degraded", "unhealthy"]
#: An error group's status (pytest_kari_debug.views): regressed = seen again after resolved.
ErrorStatus = Literal["open", "regressed", "resolved"]
MetricName = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f]+$")]
Text = Annotated[str, Field(max_length=2000)]
Seconds = Annotated[float, Field(gt=0, le=366 * 24 * 3600)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Sourced(_Open):
    """A view of one extension, read from its live manager or from the store."""

    extension_id: str
    source: Literal["live", "store"]


# Requests --------------------------------------------------------------------------------
class ManagerStart(_Body):
    """Start (creating when needed) the live manager of an extension."""

    extension_name: Annotated[str, Field(min_length=1, max_length=200)] | None = None
    configuration: dict[str, bool | int | float | str | list[str]] = Field(
        default_factory=dict, description="DebugConfiguration fields of a new manager"
    )


class SessionStart(_Body):
    """Start a debug session: its name and its options (enable_profiling...)."""

    name: Annotated[str, Field(min_length=1, max_length=500)] | None = None
    configuration: dict[str, bool | int | float | str] = Field(default_factory=dict)


class Resolve(_Body):
    """Resolution notes of an alert or an error group."""

    notes: Text | None = None


class RealtimeRequest(_Body):
    """Metric and resource names whose newest values are wanted."""

    names: list[MetricName] = Field(min_length=1, max_length=50)


class LogSearch(_Body):
    """A log search: text, least level, time range and how many records."""

    query: Annotated[str, Field(max_length=1000)] | None = None
    level: Level | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: Annotated[int, Field(ge=1, le=1000)] = 100


# Responses -------------------------------------------------------------------------------
class Problem(BaseModel):
    """What was wrong with a request."""

    detail: Any


class ManagerInfo(_Open):
    extension_id: str
    extension_name: str
    source: Literal["live", "store"]
    running: bool


class ManagerList(_Open):
    managers: list[ManagerInfo]
    count: int


class ManagerStatus(_Sourced):
    running: bool
    enabled_components: list[str]
    counts: dict[str, int]
    dropped: dict[str, int]
    sessions: dict[str, int]


class LogRecordOut(_Open):
    ts: float = Field(description="When it was logged (epoch seconds)")
    level: str = Field(description="DEBUG, INFO, WARNING, ERROR or CRITICAL")
    message: str
    name: str | None = Field(default=None, description="The logger's name")
    extension_id: str | None = None
    session_id: str | None = Field(default=None, description="The debug session it was logged in")


class LogsOut(_Sourced):
    count: int
    records: list[LogRecordOut]


class MetricValue(_Open):
    value: float
    unit: str
    ts: float | None = None


class MetricsOut(_Sourced):
    window_seconds: float
    names: list[str]
    aggregates: dict[str, dict[str, Any]]
    series: dict[str, list[list[float]]]
    latest: dict[str, MetricValue]


class RealtimeOut(_Open):
    extension_id: str
    ts: float
    metrics: dict[str, MetricValue | None]


class ErrorGroupOut(_Open):
    fingerprint: str
    count: int
    status: ErrorStatus
    resolution_notes: str | None = None


class ErrorsOut(_Sourced):
    analysis: dict[str, Any]
    groups: list[ErrorGroupOut]


class AlertOut(_Open):
    """One alert per rule and test across runs: its newest occurrence, counted."""

    alert_id: str = Field(description="The newest occurrence's id")
    severity: str = Field(description="low, medium, high or critical")
    status: str = Field(description="active, resolved or inhibited")
    ts: float | None = Field(default=None, description="When the newest occurrence fired")
    title: str | None = None
    message: str | None = None
    group: str | None = Field(
        default=None, description="The group's id (extension, rule and test): resolve takes it"
    )
    occurrences: int | None = Field(default=None, description="Times fired, over every run")
    first_seen: float | None = Field(default=None, description="The first occurrence's time")
    last_seen: float | None = Field(default=None, description="The newest occurrence's time")
    alert_ids: list[str] | None = Field(default=None, description="Its occurrences, newest first")
    runs: list[int] | None = Field(default=None, description="The stored runs it fired in")


class AlertsOut(_Open):
    extension_id: str
    count: int
    alerts: list[AlertOut]


class AlertStatistics(_Open):
    total_alerts: int
    active_alerts: int
    by_severity: dict[str, int]
    by_status: dict[str, int]


class SessionOut(_Open):
    session_id: str | None
    name: str
    status: str
    started_at: float | None = None


class SessionsOut(_Open):
    extension_id: str
    active: list[SessionOut]
    completed: list[SessionOut]


class HealthCheck(_Open):
    component: str
    status: Status
    detail: str


class HealthOut(_Open):
    extension_id: str
    overall_status: Status
    checked_at: float
    checks: list[HealthCheck]


class OverviewOut(_Sourced):
    running: bool
    counts: dict[str, int]
    log_levels: dict[str, int]
    errors: dict[str, int]
    alerts: dict[str, Any]


class DashboardOut(_Sourced):
    run_id: int | None = None
    generated_at: float
    overview: OverviewOut
    health: HealthOut
    metrics: MetricsOut
    logs: list[LogRecordOut]
    errors: ErrorsOut
    alerts: list[AlertOut]
    sessions: dict[str, list[SessionOut]]


# Test history ------------------------------------------------------------------------------
class HistoryRun(_Open):
    """One stored run of a test."""

    run_id: int
    outcome: str
    duration_ms: float | None = None


class TestHistoryOut(_Open):
    """A test's outcomes in the newest stored runs it ran in (oldest first) and its badges."""

    nodeid: str
    runs: list[HistoryRun]
    failures: int
    flips: int
    new_failure: bool
    fixed: bool
    flaky: bool
    badges: list[str]


class FlakyOut(_Open):
    """The flaky tests of the newest stored runs, and the newest run's new failures and fixes."""

    runs: list[int]
    flaky: list[TestHistoryOut]
    new_failures: list[str]
    fixed: list[str]


# Runs --------------------------------------------------------------------------------------
class RunningTest(_Open):
    """A test that has started and not finished."""

    nodeid: str
    started_at: float | None = None


class RunProgress(_Open):
    """A stored run: finished or still running, how far it is and its outcomes so far."""

    id: int
    status: Literal["running", "finished"]
    started_at: float | None = None
    finished_at: float | None = None
    collected: int
    done: int
    outcomes: dict[str, int]
    running: list[RunningTest]


class RunsProgressOut(_Open):
    """The newest stored runs, newest first."""

    runs: list[RunProgress]


# Figures -----------------------------------------------------------------------------------
class FigureOut(_Open):
    """One figure of a test, from the figures catalogue (``kari-debug figures``)."""

    name: str = Field(description="The figure's name, as alert rules and budgets name it")
    value: float | None = Field(description="Its value in ``unit``; null when missing or unseen")
    unit: str
    base: float | None = Field(description="The value in ``base_unit`` (bytes for MiB)")
    base_unit: str
    source: str = Field(description="Where the value was read")
    missing: str | None = Field(
        default=None, description="Why the figure could not be measured (its instrument is off)"
    )


class TestFiguresOut(_Open):
    """A test's figures: a live manager's debug session or a test of a stored run."""

    extension_id: str | None = None
    source: Literal["live", "store"]
    name: str = Field(description="The session's name (a test's node id)")
    status: str | None = None
    session_id: str | None = None
    run_id: int | None = None
    run_uuid: str | None = None
    nodeid: str | None = None
    figures: list[FigureOut]
