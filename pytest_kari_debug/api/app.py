"""The FastAPI app: every endpoint of the seed's "API Endpoints" and the live page at ``/``."""

from __future__ import annotations

import asyncio
import math
import secrets
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path as FilePath
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Depends, FastAPI, Header, Path, Query, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from pydantic import Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..dashboard import DashboardError, ExtensionDebugDashboard
from ..exceptions import ConfigurationError, StoreError
from ..history import DEFAULT_RUNS, load_history
from ..logger import to_epoch
from ..manager import ExtensionDebugManager
from ..sources import StoreSource
from ..version import plugin_version
from . import exports, figures, models
from .hub import DashboardHub, ManagerSource
from .page import render_page
from .security import ApiSecurity, check_token, host_names, is_loopback
from .stream import StreamSettings, log_events

PREFIX = "/api/extensions/debugging"
ExtensionId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        pattern=r"^[^\x00-\x1f\x7f/]+$",
        description="Extension id (a live manager's or one recorded in the store)",
    ),
]
SessionId = Annotated[
    str, Path(pattern=r"^[0-9a-f]{32}$", description="Debug session id (32 hex digits)")
]
AlertId = Annotated[
    str, Path(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$", description="Alert id")
]
Fingerprint = Annotated[
    str,
    Path(
        min_length=1,
        max_length=200,
        pattern=r"^[A-Za-z0-9_.:-]+$",
        description="Error group fingerprint (as the errors endpoint lists it)",
    ),
]
Limit = Annotated[int, Query(ge=1, le=1000, description="Most records returned")]
RunScope = Annotated[
    int | None,
    Query(ge=1, description="Only this stored run (every counter, panel and chart is its own)"),
]
FigureNames = Annotated[
    list[Annotated[str, Field(min_length=1, max_length=300)]] | None,
    Query(description="Figures to read (repeatable; default: all); e.g. duration_ms, log.error,"
          " span:db.query.p95_ms; an unknown name is a 422 listing the catalogue"),
]  # fmt: skip
#: The problems every endpoint may answer with, as ``{"detail": ...}``: an unknown extension,
#: bad input (a validation list, or the reason as text), and an unreadable store.
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": models.Problem, "description": "Unknown extension, session, alert or group"},
    422: {"model": models.Problem, "description": "Bad parameters or body"},
    503: {"model": models.Problem, "description": "The store cannot be read"},
}
#: What an endpoint that needs a live manager adds.
LIVE_ONLY: dict[int | str, dict[str, Any]] = {
    409: {"model": models.Problem, "description": "Needs a live manager"},
}


def _hub(request: Request) -> DashboardHub:
    return request.app.state.hub  # type: ignore[no-any-return]


def _dashboard(
    extension_id: ExtensionId, request: Request, run_id: RunScope = None
) -> ExtensionDebugDashboard:
    """The extension's dashboard; with ``?run_id=N`` every view of it is stored run N's."""
    return _hub(request).dashboard(extension_id).for_run(run_id)


Dashboard = Annotated[ExtensionDebugDashboard, Depends(_dashboard)]


def _epoch(value: datetime | None, name: str) -> float | None:
    if value is None:
        return None
    try:
        found = to_epoch(value, name)
    except (OverflowError, OSError, ValueError) as exc:
        raise ConfigurationError(f"{name} {value.isoformat()!r} is out of range") from exc
    if not math.isfinite(found):
        raise ConfigurationError(f"{name} {value.isoformat()!r} is out of range")
    return found


def _status(dashboard: ExtensionDebugDashboard) -> dict[str, Any]:
    return {"extension_id": dashboard.extension_id, **dashboard.get_status()}


def _search_logs(
    dashboard: ExtensionDebugDashboard,
    query: str | None,
    level: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
) -> dict[str, Any]:
    """The log records found, newest first, as ``LogsOut``."""
    records = dashboard.search_logs(
        query, level, _epoch(since, "since"), _epoch(until, "until"), limit
    )
    return {"extension_id": dashboard.extension_id, "source": dashboard.source,
            "count": len(records), "records": records}  # fmt: skip


def _attachment(
    dashboard: ExtensionDebugDashboard, kind: str, fmt: str, limit: int
) -> Response:
    """The export of *kind* in *fmt* as a download named for the extension."""
    body = exports.export(dashboard, kind, fmt, limit=limit)
    name = exports.filename(dashboard.extension_id, kind, fmt)
    return Response(
        body,
        media_type=exports.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


def create_app(
    manager: ExtensionDebugManager | None = None,
    *,
    managers: ManagerSource | None = None,
    extension_id: str | None = None,
    store_path: str | FilePath | None = None,
    token: str | None = None,
    host: str = "127.0.0.1",
    allowed_hosts: Iterable[str] = (),
    include_registry: bool = True,
    stream: StreamSettings | None = None,
) -> ApiSecurity:
    """The REST API and live page as an ASGI app, guarded by :class:`ApiSecurity`.

    It serves the live managers given (*manager*, *managers*: a list, a mapping or a
    callable returning one), those started through the API, every live manager of this
    process (*include_registry*), and what the store at *store_path* recorded. *host* is the
    address the server binds: a non-loopback one needs a *token*. *extension_id* is the
    extension the page shows first. The FastAPI app is the returned app's ``.app``.
    """
    token = check_token(token)
    if token is None and not is_loopback(host):
        msg = (
            f"serving on {host!r} (not a loopback address) needs a token; ApiServer and"
            " `kari-debug serve` generate one when none is given"
        )
        raise ConfigurationError(msg)
    given: list[Any] = [manager] if manager is not None else []
    source: Any = managers
    if given and managers is not None:
        source = lambda: [*given, *_listed(managers)]  # noqa: E731
    elif given:
        source = given
    hub = DashboardHub(source, store_path=store_path, include_registry=include_registry)
    api = FastAPI(
        title="pytest-kari-debug",
        version=plugin_version(),
        description="Live debugging data of Kari extensions: managers, dashboards, logs, "
        "metrics, errors, alerts, sessions, health and exports.",
        docs_url=None,  # Swagger UI loads from a CDN; the page and the API are self-contained
        redoc_url=None,
    )
    api.state.hub = hub
    api.state.stream = stream or StreamSettings()
    api.state.first_extension = extension_id or (manager.extension_id if manager else None)
    _handlers(api)
    _routes(api)
    api.router.add_event_handler("shutdown", api.state.stream.closing.set)
    api.router.add_event_handler("shutdown", hub.close)
    guarded = ApiSecurity(api, token=token, allowed_hosts=host_names(host, allowed_hosts))
    guarded.app_state = api.state  # type: ignore[attr-defined]
    return guarded


def _listed(source: Any) -> list[Any]:
    found = source() if callable(source) else source
    return list(found.values()) if isinstance(found, dict) else list(found)


def _handlers(api: FastAPI) -> None:
    def problem(status: int) -> Any:
        async def handler(request: Request, exc: Exception) -> JSONResponse:
            text = exc.args[0] if exc.args and isinstance(exc.args[0], str) else str(exc)
            return JSONResponse({"detail": text}, status_code=status)

        return handler

    async def bad_request(request: Request, exc: Exception) -> Response:
        # A body that is not JSON is bad input like any other: 422, as the API documents.
        if isinstance(exc, StarletteHTTPException) and exc.status_code == 400:
            return JSONResponse({"detail": exc.detail}, status_code=422)
        return await http_exception_handler(request, exc)  # type: ignore[arg-type]

    api.add_exception_handler(StarletteHTTPException, bad_request)
    api.add_exception_handler(LookupError, problem(404))
    api.add_exception_handler(ConfigurationError, problem(422))
    api.add_exception_handler(DashboardError, problem(409))
    api.add_exception_handler(StoreError, problem(503))


def _routes(api: FastAPI) -> None:
    router = APIRouter(prefix=PREFIX, responses=NOT_FOUND)

    # Debug managers ------------------------------------------------------------------------
    @router.post("/managers/{extension_id}/start", tags=["managers"],
                 response_model=models.ManagerStatus)  # fmt: skip
    def start_manager(
        extension_id: ExtensionId,
        request: Request,
        body: Annotated[models.ManagerStart | None, Body()] = None,
    ) -> dict[str, Any]:
        """Start the extension's live manager (created in this process when none exists)."""
        body = body or models.ManagerStart()
        hub = _hub(request)
        _, created = hub.start_manager(
            extension_id, extension_name=body.extension_name, configuration=body.configuration
        )
        return {**_status(hub.dashboard(extension_id)), "created": created}

    @router.post("/managers/{extension_id}/stop", tags=["managers"],
                 response_model=models.ManagerStatus, responses=LIVE_ONLY)  # fmt: skip
    def stop_manager(dashboard: Dashboard) -> dict[str, Any]:
        """Stop the extension's live manager's background work (its data stays)."""
        dashboard.stop_manager()
        return _status(dashboard)

    @router.get("/managers/{extension_id}/status", tags=["managers"],
                response_model=models.ManagerStatus)  # fmt: skip
    def manager_status(dashboard: Dashboard) -> dict[str, Any]:
        """Whether the manager runs, its components, record counts, drops and sessions."""
        return _status(dashboard)

    @router.get("/managers", tags=["managers"], response_model=models.ManagerList)
    def list_managers(request: Request) -> dict[str, Any]:
        """Every extension served: live managers of this process and recorded extensions."""
        found = _hub(request).extensions()
        return {"managers": found, "count": len(found)}

    # Dashboard ---------------------------------------------------------------------------
    @router.get("/dashboard/{extension_id}", tags=["dashboard"], response_model=models.DashboardOut)
    def dashboard_data(
        dashboard: Dashboard,
        window_seconds: Annotated[float, Query(gt=0, le=366 * 24 * 3600)] = 3600.0,
        log_limit: Limit = 50,
    ) -> dict[str, Any]:
        """Overview, health, metrics, recent logs, error groups, alerts and sessions.

        With ``run_id``, all of them are that stored run's.
        """
        return dashboard.get_dashboard_data(window_seconds=window_seconds, log_limit=log_limit)

    @router.get("/dashboard/{extension_id}/overview", tags=["dashboard"],
                response_model=models.OverviewOut)  # fmt: skip
    def overview(dashboard: Dashboard) -> dict[str, Any]:
        """Who, whether it runs, counts and drops, log levels, errors, alerts, health."""
        return dashboard.get_overview()

    @router.get("/dashboard/{extension_id}/metrics", tags=["dashboard"],
                response_model=models.MetricsOut)  # fmt: skip
    def metrics(
        dashboard: Dashboard,
        window_seconds: Annotated[float, Query(gt=0, le=366 * 24 * 3600)] = 3600.0,
        name: Annotated[list[models.MetricName] | None, Query(max_length=50)] = None,
        max_points: Annotated[int, Query(ge=1, le=5000)] = 240,
    ) -> dict[str, Any]:
        """Statistics and time series of every metric (or of the names given) in the window."""
        return dashboard.get_metrics(
            window_seconds=window_seconds, names=name or None, max_points=max_points
        )

    @router.get("/dashboard/{extension_id}/logs", tags=["dashboard"], response_model=models.LogsOut)
    def logs(
        dashboard: Dashboard,
        level: models.Level | None = None,
        query: Annotated[str | None, Query(max_length=1000)] = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: Limit = 100,
    ) -> dict[str, Any]:
        """Log records, newest first: least level, text, time range."""
        return _search_logs(dashboard, query, level, since, until, limit)

    @router.get("/dashboard/{extension_id}/errors", tags=["dashboard"],
                response_model=models.ErrorsOut)  # fmt: skip
    def errors(
        dashboard: Dashboard,
        status: Annotated[
            Literal["open", "regressed", "resolved", "unresolved"] | None,
            Query(description="Only groups of this status (unresolved: open or regressed)"),
        ] = None,
        limit: Limit = 50,
    ) -> dict[str, Any]:
        """Error analysis (totals, rate, categories, trend) and the error groups."""
        return dashboard.get_errors(status=status, limit=limit)

    @router.post("/dashboard/{extension_id}/errors/{fingerprint}/resolve", tags=["dashboard"],
                 response_model=models.ErrorGroupOut)  # fmt: skip
    def resolve_error_group(
        dashboard: Dashboard,
        fingerprint: Fingerprint,
        body: Annotated[models.Resolve | None, Body()] = None,
    ) -> dict[str, Any]:
        """Mark the error group resolved, with notes (a later error of it: regressed)."""
        return dashboard.resolve_error_group(fingerprint, (body or models.Resolve()).notes)

    @router.post("/dashboard/{extension_id}/errors/{fingerprint}/reopen", tags=["dashboard"],
                 response_model=models.ErrorGroupOut)  # fmt: skip
    def reopen_error_group(dashboard: Dashboard, fingerprint: Fingerprint) -> dict[str, Any]:
        """Mark the error group open again (undoes a resolution)."""
        return dashboard.reopen_error_group(fingerprint)

    router.get("/dashboard/{extension_id}/alerts", tags=["dashboard"],
               response_model=models.AlertsOut, name="dashboard_alerts")(_list_alerts)  # fmt: skip

    # Real time ---------------------------------------------------------------------------
    @router.post("/dashboard/{extension_id}/metrics/realtime", tags=["real-time"],
                 response_model=models.RealtimeOut)  # fmt: skip
    def realtime(dashboard: Dashboard, body: models.RealtimeRequest) -> dict[str, Any]:
        """The newest value of each metric or resource field named (null when never seen)."""
        values = dashboard.get_real_time_metrics(body.names)
        return {"extension_id": dashboard.extension_id, "ts": time.time(), "metrics": values}

    @router.get(
        "/dashboard/{extension_id}/logs/stream",
        tags=["real-time"],
        response_class=StreamingResponse,
        responses={
            200: {"content": {"text/event-stream": {}},
                  "description": "One `log` event per record; `dropped` says how many were lost"},
        },
    )  # fmt: skip
    async def stream_logs(
        extension_id: ExtensionId,
        request: Request,
        level: models.Level | None = None,
        query: Annotated[str | None, Query(max_length=1000)] = None,
        backlog: Annotated[int, Query(ge=0, le=1000)] = 0,
        run_id: RunScope = None,
        last_event_id: Annotated[str | None, Query(max_length=200)] = None,
        last_event_header: Annotated[
            str | None, Header(alias="Last-Event-ID", max_length=200)
        ] = None,
    ) -> Response:
        """New log records as server-sent events, from the newest (or after Last-Event-ID)."""
        settings: StreamSettings = request.app.state.stream
        dashboard = _hub(request).dashboard(extension_id).for_run(run_id)
        if settings.open_streams >= settings.max_streams:
            return JSONResponse(
                {"detail": f"too many open log streams (at most {settings.max_streams})"},
                status_code=503,
            )
        first = await asyncio.to_thread(
            dashboard.logs_after,
            last_event_header or last_event_id,
            level=level,
            query=query,
            backlog=backlog,
        )
        events = log_events(dashboard, settings, first=first, level=level, query=query)
        return StreamingResponse(
            events,
            media_type="text/event-stream; charset=utf-8",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
        )

    @router.post("/dashboard/{extension_id}/logs/search", tags=["real-time"],
                 response_model=models.LogsOut)  # fmt: skip
    def search_logs(dashboard: Dashboard, body: models.LogSearch) -> dict[str, Any]:
        """Log records holding the text (case-insensitive), newest first."""
        return _search_logs(dashboard, body.query, body.level, body.since, body.until, body.limit)

    # Sessions ----------------------------------------------------------------------------
    @router.post("/sessions/{extension_id}/start", tags=["sessions"],
                 response_model=models.SessionOut, responses=LIVE_ONLY)  # fmt: skip
    def start_session(
        dashboard: Dashboard, body: Annotated[models.SessionStart | None, Body()] = None
    ) -> dict[str, Any]:
        """Start a debug session on the live manager (options: enable_profiling...)."""
        body = body or models.SessionStart()
        return dashboard.start_session(body.configuration or None, name=body.name)

    @router.post("/sessions/{extension_id}/{session_id}/stop", tags=["sessions"],
                 response_model=models.SessionOut, responses=LIVE_ONLY)  # fmt: skip
    def stop_session(dashboard: Dashboard, session_id: SessionId) -> dict[str, Any]:
        """Stop a running session; returns it with what every component collected."""
        return dashboard.stop_session(session_id)

    @router.get("/sessions/{extension_id}/{session_id}/figures", tags=["figures"],
                response_model=models.TestFiguresOut, responses=LIVE_ONLY)  # fmt: skip
    def session_figures(
        dashboard: Dashboard, session_id: SessionId, figure: FigureNames = None
    ) -> dict[str, Any]:
        """A live debug session's figures (a test's, under the plugin), running or stopped:
        every figure of the catalogue, or those named by ``figure``."""
        return figures.session_figures(dashboard, session_id, figure)

    @router.get("/runs/{run}/figures", tags=["figures"], response_model=models.TestFiguresOut)
    def stored_figures(
        request: Request,
        run: Annotated[
            str,
            Path(
                min_length=1,
                max_length=200,
                pattern=r"^[A-Za-z0-9_.:~-]+$",
                description="A stored run: its id, its uuid, or last",
            ),
        ],
        nodeid: Annotated[str, Query(min_length=1, max_length=2000, description="The test")],
        extension_id: Annotated[str | None, Query(max_length=200)] = None,
        figure: FigureNames = None,
    ) -> dict[str, Any]:
        """A test's figures in a stored run: every figure of the catalogue, or those named by
        ``figure``; the values the JSON, the report, the CLI and the exports show."""
        return figures.stored_figures(_stored(request, extension_id), run, nodeid, figure)

    @router.get("/sessions/{extension_id}", tags=["sessions"], response_model=models.SessionsOut)
    def list_sessions(dashboard: Dashboard, limit: Limit = 100) -> dict[str, Any]:
        """Running sessions and the newest completed ones."""
        return {"extension_id": dashboard.extension_id, **dashboard.get_sessions(limit=limit)}

    # Health ------------------------------------------------------------------------------
    @router.post("/health/{extension_id}/check", tags=["health"], response_model=models.HealthOut)
    def health_check(dashboard: Dashboard) -> dict[str, Any]:
        """Check every component (or the store) now."""
        return dashboard.run_health_check()

    @router.get("/health/{extension_id}", tags=["health"], response_model=models.HealthOut)
    def health(dashboard: Dashboard) -> dict[str, Any]:
        """The last health check's report (one is run when there was none)."""
        return dashboard.get_health()

    # Alerts ------------------------------------------------------------------------------
    router.get("/alerts/{extension_id}", tags=["alerts"], response_model=models.AlertsOut,
               name="alerts")(_list_alerts)  # fmt: skip

    @router.post("/alerts/{extension_id}/{alert_id}/resolve", tags=["alerts"],
                 response_model=models.AlertOut)  # fmt: skip
    def resolve_alert(
        dashboard: Dashboard,
        alert_id: AlertId,
        body: Annotated[models.Resolve | None, Body()] = None,
    ) -> dict[str, Any]:
        """Mark the alert resolved, with notes."""
        return dashboard.resolve_alert(alert_id, (body or models.Resolve()).notes)

    @router.post("/alerts/{extension_id}/{alert_id}/reopen", tags=["alerts"],
                 response_model=models.AlertOut)  # fmt: skip
    def reopen_alert(dashboard: Dashboard, alert_id: AlertId) -> dict[str, Any]:
        """Mark the alert (a group id: every occurrence of it) active again."""
        return dashboard.reopen_alert(alert_id)

    @router.get("/alerts/{extension_id}/statistics", tags=["alerts"],
                response_model=models.AlertStatistics)  # fmt: skip
    def alert_statistics(dashboard: Dashboard) -> dict[str, Any]:
        """Counts by severity, type and status; mean time to resolve; notifications."""
        return dashboard.get_alert_statistics()

    # Runs --------------------------------------------------------------------------------
    @router.get("/runs/progress", tags=["history"], response_model=models.RunsProgressOut)
    def runs_progress(
        request: Request, limit: Annotated[int, Query(ge=1, le=200)] = 10
    ) -> dict[str, Any]:
        """The newest runs, a running one with its progress (done of collected, tests running)."""
        store = _hub(request).store()
        return {"runs": StoreSource(store).run_progress(limit=limit) if store is not None else []}

    # Test history ------------------------------------------------------------------------
    @router.get("/history/flaky", tags=["history"], response_model=models.FlakyOut)
    def flaky_tests(
        request: Request,
        runs: Annotated[int, Query(ge=1, le=1000)] = DEFAULT_RUNS,
        extension_id: Annotated[str | None, Query(max_length=200)] = None,
    ) -> dict[str, Any]:
        """Tests that both passed and failed in the newest stored runs, most failures first."""
        store = _hub(request).store()
        if store is None:  # nothing recorded (yet): no flaky test
            return {"runs": [], "flaky": [], "new_failures": [], "fixed": []}
        found = load_history(StoreSource(store), runs=runs, extension_id=extension_id)
        return {
            "runs": list(found.run_ids),
            "flaky": [h.to_dict() for h in found.flaky()],
            "new_failures": [h.nodeid for h in found.new_failures()],
            "fixed": [h.nodeid for h in found.fixed()],
        }

    @router.get("/history/test", tags=["history"], response_model=models.TestHistoryOut)
    def test_history(
        request: Request,
        nodeid: Annotated[str, Query(min_length=1, max_length=2000)],
        runs: Annotated[int, Query(ge=1, le=1000)] = DEFAULT_RUNS,
    ) -> dict[str, Any]:
        """One test's outcome and duration in each of the newest stored runs it ran in."""
        found = load_history(_stored(request), runs=runs, nodeid=nodeid).get(nodeid)
        if found is None:
            msg = f"no stored run has the test {nodeid!r}"
            raise LookupError(msg)
        return found.to_dict()

    # Export ------------------------------------------------------------------------------
    export_responses: dict[int | str, dict[str, Any]] = {
        200: {"content": {media.split(";")[0]: {} for media in exports.MEDIA_TYPES.values()},
              "description": "The export, as the format (or Accept header) asked"},
        406: {"model": models.Problem},
    }  # fmt: skip

    def export(kind: str) -> Any:
        def handler(
            dashboard: Dashboard,
            request: Request,
            format: Annotated[
                Literal["json", "csv", "prometheus", "openmetrics"] | None,
                Query(description="json, csv, prometheus or openmetrics (default: Accept)"),
            ] = None,
            limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
        ) -> Response:
            fmt = exports.negotiate(format, request.headers.get("accept"))
            if fmt is None:
                return JSONResponse(
                    {"detail": "none of the Accept header's types is served; accepted: "
                     + ", ".join(sorted(m.split(";")[0] for m in exports.MEDIA_TYPES.values()))},
                    status_code=406,
                )  # fmt: skip
            return _attachment(dashboard, kind, fmt, limit)

        handler.__name__ = f"export_{kind}"
        handler.__doc__ = f"Export {'every kind of data' if kind == 'all' else kind}."
        return handler

    for kind in exports.KINDS:
        if kind == "traces":
            continue
        router.get(
            f"/export/{{extension_id}}/{kind}",
            tags=["export"],
            response_class=Response,
            responses=export_responses,
            name=f"export_{kind}",
        )(export(kind))

    @router.get(
        "/export/{extension_id}/traces",
        tags=["export"],
        response_class=Response,
        responses={200: {"content": {"application/json": {}},
                         "description": "Jaeger JSON or an OTLP/JSON document"}},
        name="export_traces",
    )  # fmt: skip
    def export_traces(
        dashboard: Dashboard,
        format: Annotated[
            Literal["jaeger", "otlp"],
            Query(description="jaeger (the Jaeger UI's JSON upload) or otlp (OTLP/JSON)"),
        ] = "jaeger",
        limit: Annotated[int, Query(ge=1, le=100_000)] = 10_000,
    ) -> Response:
        """Export the spans as Jaeger JSON or OTLP/JSON."""
        return _attachment(dashboard, "traces", format, limit)

    api.include_router(router)

    # The page ----------------------------------------------------------------------------
    @api.get("/", include_in_schema=False)
    def page(request: Request) -> HTMLResponse:
        nonce = secrets.token_urlsafe(16)
        html = render_page(
            extensions=_hub(request).extensions(),
            first=request.app.state.first_extension,
            api_prefix=PREFIX,
            nonce=nonce,
        )
        csp = (
            f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'nonce-{nonce}';"
            " connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'self';"
            " frame-ancestors 'none'"
        )
        return HTMLResponse(html, headers={"Content-Security-Policy": csp})


def _stored(request: Request, extension_id: str | None = None) -> StoreSource:
    """What the store recorded (of *extension_id*); a LookupError (404) without a store."""
    store = _hub(request).store()
    if store is None:
        msg = "no store: runs and test histories are read from the store (serve with --store PATH)"
        raise LookupError(msg)
    return StoreSource(store, extension_id)


def _list_alerts(
    dashboard: Dashboard,
    status: Literal["active", "resolved", "inhibited"] | None = None,
    severity: models.Severity | None = None,
    limit: Limit = 100,
) -> dict[str, Any]:
    """Alerts, newest first, by status and least severity."""
    found = dashboard.get_alerts(status=status, severity=severity, limit=limit)
    return {"extension_id": dashboard.extension_id, "count": len(found), "alerts": found}
