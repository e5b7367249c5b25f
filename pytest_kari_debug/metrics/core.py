"""``MetricsCollector``: the metrics component of one extension."""

from __future__ import annotations

import math
import numbers
import os
import sys
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from .. import memtrace, selfcost
from ..component import Component, export_text
from ..config import is_positive_number
from ..context import CURRENT_SESSION, SessionInfo
from ..exceptions import ConfigurationError
from ..lazy import LateImports
from ..model import ALERT_SEVERITIES, MIB, OPERATOR_ALIASES, OPERATORS
from ..stats import quantile
from ..values import clean_text, label_text
from .readings import _PROBE, SAMPLE_FIELDS, Reading, _resources

if TYPE_CHECKING:
    import psutil

    from .records import MetricAggregate, MetricPoint, Threshold, ThresholdBreach

#: The metric records and thresholds: imported by the first custom metric, aggregate or
#: threshold, not by a run that records none.
_RECORDS = ("MetricAggregate", "MetricPoint", "Threshold", "ThresholdBreach")
_LATE = LateImports(globals(), __package__, {name: f".records:{name}" for name in _RECORDS})

try:
    import resource as _resource
except ImportError:  # Windows
    _resource = None  # type: ignore[assignment]


#: Per-session cap on sampler points kept for the report's charts.
MAX_SESSION_SAMPLES = 10_000
#: Sampler points kept for the whole run (real-time view, run aggregation).
MAX_RUN_SAMPLES = 10_000
#: USS reads every mapping of the process (about 0.2 ms): refreshed at most this often.
USS_EVERY_SECONDS = 1.0
MAX_SESSION_BREACHES = 100
MAX_BREACHES = 1000


# tracemalloc, shared with other code -----------------------------------------------------
_MEMORY_LOCK = threading.Lock()


class _MemoryMeter:
    __slots__ = ("closed", "meter", "start_blocks")

    def __init__(self, meter: memtrace.Meter, start_blocks: int) -> None:
        self.meter = meter
        self.start_blocks = start_blocks
        self.closed: str | None = None  # why tracking ended before the session did


# Sessions ------------------------------------------------------------------------------
class _Meter:
    """What the collector keeps for one open debug session."""

    __slots__ = (
        "breaches", "memory", "peak_rss", "samples", "samples_dropped", "start", "started_at",
    )  # fmt: skip

    def __init__(self, start: Reading, started_at: float) -> None:
        self.start = start
        self.started_at = started_at
        self.peak_rss = start[5] or 0
        self.samples: list[dict[str, Any]] = []
        self.samples_dropped = 0
        self.memory: _MemoryMeter | None = None
        self.breaches: list[dict[str, Any]] = []


def _sampler_loop(ref: weakref.ref[MetricsCollector], stop: threading.Event, every: float) -> None:
    """Body of the sampler thread; holds the collector weakly so it never keeps it alive."""
    with selfcost.own_thread():  # its CPU time is not the running test's
        deadline = time.monotonic() + every
        while True:
            with selfcost.idle():
                if stop.wait(max(0.0, deadline - time.monotonic())):
                    return
            collector = ref()
            if collector is None:
                return
            try:
                collector.sample_now()
            except Exception as exc:  # the sampler keeps going whatever a reading does
                collector.sampler_failed(exc)
            del collector
            deadline += every
            now = time.monotonic()
            if deadline < now:  # fell behind (suspended, overloaded): skip the missed ticks
                deadline = now + every


class MetricsCollector(Component):
    """Custom metrics, resource sampling, per-session resources, aggregation and thresholds."""

    kind = "metrics"
    limit_field = "max_metrics"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.custom_collectors: dict[str, Callable[[], float]] = {}
        self.thresholds: dict[tuple[str, str], Threshold] = {}
        self.breaches: deque[ThresholdBreach] = deque(maxlen=MAX_BREACHES)
        self.samples: deque[dict[str, Any]] = deque(maxlen=MAX_RUN_SAMPLES)
        self.samples_total = 0
        #: Resource readings that failed (the first is a diagnostic).
        self.sampler_failures = 0
        #: Wall clock of every timestamp (tests inject a fake one).
        self.clock: Callable[[], float] = time.time
        self.created_at = self.clock()
        self._alert_handler: Callable[..., Any] | None = None
        self._breached: set[tuple[str, str]] = set()
        self._names: dict[str, str] = {}
        self._latest: dict[str, MetricPoint] = {}
        self._meters: dict[str, _Meter] = {}
        self._psutil_process: psutil.Process | None = None
        #: (monotonic, process CPU seconds) at the last point: the base of its cpu_percent.
        self._cpu_mark: tuple[float, float] | None = None
        self._sample_lock = threading.Lock()
        self._read_lock = threading.Lock()
        self._uss: tuple[float, int] | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    # Lifecycle -------------------------------------------------------------------------
    def start(self) -> None:
        """Start the resource sampler thread (daemon; idempotent)."""
        if not self.enabled or (self._thread is not None and self._thread.is_alive()):
            return
        with self._read_lock:
            self._cpu_mark = _cpu_mark()  # the first point's cpu_percent counts from here
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=_sampler_loop,
            args=(weakref.ref(self), self._stop, self.configuration.metrics_interval),
            name=f"kari-metrics-sampler[{self.extension_id}]",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop the sampler, and the memory tracking of sessions still open (their end says so)."""
        thread, self._thread = self._thread, None
        self._stop.set()
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=2.0)
        with self._sample_lock:
            memories = [m.memory for m in self._meters.values() if m.memory is not None]
        for memory in memories:
            self._cut_short(memory, "the collector stopped before the session ended")

    @property
    def _process(self) -> psutil.Process:
        """This process in psutil, which is imported at the first sampler point (a run
        shorter than ``metrics_interval`` never needs it)."""
        process = self._psutil_process
        if process is None:
            import psutil

            process = self._psutil_process = psutil.Process()
        return process

    @_process.setter
    def _process(self, process: psutil.Process) -> None:
        self._psutil_process = process

    @property
    def sampling(self) -> bool:
        """Whether the sampler thread is running."""
        return self._thread is not None and self._thread.is_alive()

    # Sessions --------------------------------------------------------------------------
    def begin_session(self, session: SessionInfo) -> None:
        super().begin_session(session)
        if not self.enabled:
            return
        meter = _Meter(_PROBE.read(), session.started_at)
        if self.configuration.memory_tracking or session.options.get("profile_memory"):
            meter.memory = self._begin_memory()
        self._meters[session.session_id] = meter

    def end_session(self, session: SessionInfo) -> dict[str, Any]:
        end = _PROBE.read() if self.enabled else None  # first, before our own work
        data = super().end_session(session)
        with self._sample_lock:
            meter = self._meters.pop(session.session_id, None)
        if meter is None or end is None:
            return data
        data["resources"] = _resources(meter.start, end, meter.peak_rss)
        data["samples"] = meter.samples
        data["samples_dropped"] = meter.samples_dropped
        if meter.breaches:
            data["breaches"] = meter.breaches
        if meter.memory is not None:
            data["memory"] = self._memory_figures(meter.memory, close=True)
        return data

    def session_resources(self, session_id: str) -> dict[str, Any]:
        """Resource figures of the open session *session_id* from its start until now.

        Keys: ``cpu_user_s``, ``cpu_system_s``, ``cpu_ms``, ``rss_start_bytes``,
        ``rss_end_bytes``, ``peak_rss_bytes``, ``peak_rss_mb`` and, where the platform has
        them, ``io_read_bytes``, ``io_write_bytes``, ``ctx_switches`` (plus its voluntary and
        involuntary parts). Empty when the session is unknown or already stopped.
        """
        meter = self._meters.get(session_id)
        if meter is None:
            return {}
        now = _PROBE.read()
        if now[5] is not None and now[5] > meter.peak_rss:
            meter.peak_rss = now[5]  # a peak seen now is the session's, at its end too
        return _resources(meter.start, now, meter.peak_rss)

    def session_memory(self, session_id: str) -> dict[str, Any]:
        """tracemalloc figures of the open session *session_id* so far (empty without them).

        Keys: ``peak_bytes`` (highest traced memory above the session's start), ``allocated_bytes``
        (traced bytes allocated and not freed since the start), ``allocated_blocks`` (memory
        blocks of the Python allocator still allocated since the start, from
        ``sys.getallocatedblocks``), ``allocated_mb``, ``traced_start_bytes``,
        ``traced_bytes``.
        """
        meter = self._meters.get(session_id)
        if meter is None or meter.memory is None:
            return {}
        return self._memory_figures(meter.memory, close=False)

    def session_samples(self, session_id: str) -> list[dict[str, Any]]:
        """The sampler points taken so far during the open session *session_id*."""
        meter = self._meters.get(session_id)
        return list(meter.samples) if meter is not None else []

    def _begin_memory(self) -> _MemoryMeter:
        memtrace.acquire()
        return _MemoryMeter(memtrace.open_meter(), sys.getallocatedblocks())

    def _cut_short(self, memory: _MemoryMeter, why: str) -> None:
        """End the memory tracking of a session that is still open (its end reports *why*)."""
        with _MEMORY_LOCK:
            if memory.closed is not None:
                return
            memory.closed = why
        memtrace.close_meter(memory.meter)
        memtrace.release()

    def _memory_figures(self, memory: _MemoryMeter, *, close: bool) -> dict[str, Any]:
        with _MEMORY_LOCK:
            cut_short = memory.closed
            if close and cut_short is None:
                memory.closed = ""
        if cut_short is not None:
            return {"error": cut_short or "the session's memory tracking already ended"}
        if close:
            figures = memtrace.close_meter(memory.meter)
            memtrace.release()
        else:
            figures = memtrace.read(memory.meter)
        blocks = sys.getallocatedblocks()
        if figures is None:
            return {"error": "tracemalloc was stopped by other code during the session"}
        current, peak = figures
        start = memory.meter.start_bytes
        allocated = max(0, current - start)
        return {
            "peak_bytes": max(0, peak - start),
            "allocated_bytes": allocated,
            "allocated_blocks": max(0, blocks - memory.start_blocks),
            "allocated_mb": round(allocated / MIB, 6),
            "traced_start_bytes": start,
            "traced_bytes": current,
        }

    # Recording -------------------------------------------------------------------------
    def _check_name(self, name: Any) -> None:
        if name in self._names:
            return
        with selfcost.first_use():  # inside a test: the first name's import is not its time
            from ..naming import sanitize_metric_name  # (most runs record no custom metric)

        try:
            clean = sanitize_metric_name(name)
        except ValueError as exc:
            raise ConfigurationError(str(exc)) from None
        if len(self._names) < 10_000:
            self._names[name] = clean

    def record_metric(self, name: str, value: float, unit: str = "", **labels: Any) -> None:
        """Record *value* of metric *name* in *unit*, with optional labels.

        *name* must be able to become a Prometheus name (see
        :func:`~pytest_kari_debug.naming.sanitize_metric_name`); *value* a finite real number.
        """
        self._check_name(name)
        kind = type(value)
        if (kind is not float and kind is not int) and (
            isinstance(value, bool) or not isinstance(value, numbers.Real)
        ):
            msg = f"metric {name!r} value must be a real number, got {value!r}"
            raise ConfigurationError(msg)
        value = float(value)
        if value - value != 0.0:  # NaN or an infinity, without a function call
            msg = f"metric {name!r} value must be finite, got {value!r}"
            raise ConfigurationError(msg)
        if not isinstance(unit, str):
            msg = f"metric {name!r} unit must be a string, got {unit!r}"
            raise ConfigurationError(msg)
        if not self.enabled:
            return
        session = CURRENT_SESSION.get()
        session_id = session.session_id if session is not None else None
        if not _LATE.loaded:
            _LATE.load()
        point = MetricPoint(
            name,
            value,
            unit if unit.isascii() else clean_text(unit, 100),
            self.clock(),
            session_id,
            {label_text(k, 200): label_text(v) for k, v in labels.items()} if labels else {},
        )
        self.records.append(point, session_id)
        self._latest[name] = point
        if self.thresholds:
            self._check_thresholds(name, value, session_id)

    def record_request_time(self, duration_ms: float) -> None:
        """Record the duration of one handled request, in milliseconds."""
        self.record_metric("request_time", duration_ms, "ms")

    def record_error(self, error_type: str) -> None:
        """Count one error of *error_type* (metric ``errors``, label ``error_type``)."""
        self.record_metric("errors", 1, "count", error_type=error_type)

    def register_custom_collector(self, name: str, collector: Callable[[], float]) -> None:
        """Register *collector*, called at each sample for the current value of metric *name*."""
        self._check_name(name)
        if not callable(collector):
            msg = f"collector for {name!r} must be callable, got {collector!r}"
            raise ConfigurationError(msg)
        self.custom_collectors[name] = collector

    def unregister_custom_collector(self, name: str) -> None:
        """Stop calling the custom collector of *name* (no error when there is none)."""
        self.custom_collectors.pop(name, None)

    def collect_custom(self) -> dict[str, float]:
        """Call every custom collector once and record its value; return the values.

        A collector that raises (or returns something that is not a finite number) is
        reported once as a diagnostic and skipped from then on.
        """
        values: dict[str, float] = {}
        for name, collector in list(self.custom_collectors.items()):
            try:
                value = collector()
                self.record_metric(name, value)
            except Exception as exc:  # a user collector must never stop sampling
                self.add_diagnostic(
                    f"custom collector {name!r} raised {type(exc).__name__}: {exc}; skipped"
                    " from now on"
                )
                self.custom_collectors.pop(name, None)
                continue
            values[name] = float(value)
        return values

    # Sampling --------------------------------------------------------------------------
    def read_resources(self) -> dict[str, Any]:
        """Read the process's resources now with psutil (one sampler point, not recorded)."""
        import psutil

        process = self._process
        point: dict[str, Any] = {"ts": self.clock()}
        with process.oneshot():
            point["cpu_percent"] = self._cpu_percent()
            times = _get(getattr(process, "cpu_times", None))
            if times is not None:
                point["cpu_user_s"] = times.user
                point["cpu_system_s"] = times.system
            memory = _get(getattr(process, "memory_info", None))
            if memory is not None:
                point["rss_bytes"] = memory.rss
                point["memory_mb"] = round(memory.rss / MIB, 3)
                point["vms_bytes"] = memory.vms
            _put(point, "threads", getattr(process, "num_threads", None))
            # num_fds on POSIX, num_handles on Windows
            fds = getattr(process, "num_fds", None) or getattr(process, "num_handles", None)
            _put(point, "open_fds", fds)
            if _resource is not None:
                # Whole-process counts (psutil's Linux figure covers only the main thread).
                usage = _resource.getrusage(_resource.RUSAGE_SELF)
                point["ctx_switches"] = usage.ru_nvcsw + usage.ru_nivcsw
            else:
                ctx = _get(getattr(process, "num_ctx_switches", None))
                if ctx is not None:
                    point["ctx_switches"] = ctx.voluntary + ctx.involuntary
            io = _get(getattr(process, "io_counters", None))  # absent on macOS
            if io is not None:
                point["io_read_bytes"] = io.read_bytes
                point["io_write_bytes"] = io.write_bytes
        uss = self._read_uss(point["ts"])
        if uss is not None:
            point["uss_bytes"] = uss
        net = _get(psutil.net_io_counters)
        if net is not None:  # system-wide: psutil has no per-process network counters
            point["net_bytes_sent"] = net.bytes_sent
            point["net_bytes_recv"] = net.bytes_recv
        return point

    def _cpu_percent(self) -> float:
        """The process's CPU time over the wall time since the last point, in percent of one
        CPU (psutil's ``cpu_percent(None)``: 0.0 for a first point without a mark)."""
        mark, self._cpu_mark = self._cpu_mark, _cpu_mark()
        if mark is None:
            return 0.0
        wall = self._cpu_mark[0] - mark[0]
        if wall <= 0.0:
            return 0.0
        return round((self._cpu_mark[1] - mark[1]) / wall * 100.0, 1)

    def _read_uss(self, now: float) -> int | None:
        if self._uss is not None and now - self._uss[0] < USS_EVERY_SECONDS:
            return None
        full = _get(getattr(self._process, "memory_full_info", None))
        uss = getattr(full, "uss", None)
        if uss is None:
            self._uss = (math.inf, 0)  # the platform has no USS: never ask again
            return None
        self._uss = (now, uss)
        return int(uss)

    def sample_now(self) -> dict[str, Any]:
        """Take one sampler point now: resources plus every custom collector's value.

        The point is kept for the run (bounded), added to every open session's ``samples``,
        raises their peak RSS, and is checked against the thresholds.
        """
        if not self.enabled:
            return {}
        with self._read_lock:  # psutil's cpu_percent keeps state between calls
            point = self.read_resources()
            custom = self.collect_custom()
        if "rss_bytes" not in point and "cpu_user_s" not in point:
            # psutil answered nothing (access denied, a dead /proc...): not a silent zero.
            self.sampler_failed(RuntimeError("psutil returned no CPU or memory reading"))
        if custom:
            point["custom"] = custom
        # Short critical section: end_session takes this lock to detach its meter, so a
        # point is never appended to samples that were already handed over.
        with self._sample_lock:
            self.samples.append(point)
            self.samples_total += 1
            rss = point.get("rss_bytes", 0)
            for meter in list(self._meters.values()):
                if rss > meter.peak_rss:
                    meter.peak_rss = rss
                if len(meter.samples) < MAX_SESSION_SAMPLES:
                    meter.samples.append(point)
                else:
                    meter.samples_dropped += 1
        if self.thresholds:
            for key, value in point.items():
                if key in SAMPLE_FIELDS:
                    self._check_thresholds(key, float(value), None)
        return point

    def sampler_failed(self, exc: BaseException) -> None:
        """Count a failed resource reading; the first one becomes a diagnostic (once, not one
        per tick), so a run whose samples are missing says why."""
        self.sampler_failures += 1
        if self.sampler_failures == 1:
            self.add_diagnostic(
                f"resource sampler failed, its samples are missing: {type(exc).__name__}: {exc}"
            )

    @property
    def samples_dropped(self) -> int:
        """How many run-level sampler points were pushed out of their bounded buffer."""
        return max(0, self.samples_total - len(self.samples))

    # Views -----------------------------------------------------------------------------
    def get_metrics(self, name: str | None = None) -> list[MetricPoint]:
        """Return the kept points, oldest first, of *name* or of every metric."""
        return [p for p in self.records.snapshot() if name is None or p.name == name]

    def get_resource_samples(self, since: float | None = None) -> list[dict[str, Any]]:
        """Return the kept sampler points (taken at or after *since*), oldest first."""
        points = list(self.samples)
        return points if since is None else [p for p in points if p["ts"] >= since]

    def latest(self, names: Iterable[str] | None = None) -> dict[str, dict[str, Any] | None]:
        """The latest value of each of *names* (recorded metrics and resource fields).

        Each value is ``{"value", "unit", "ts", "source"}``, or ``None`` when nothing was
        seen. Without *names*: every recorded metric and resource field.
        """
        sample = self.samples[-1] if self.samples else None
        if names is None:
            names = [*self._latest, *(k for k in SAMPLE_FIELDS if sample and k in sample)]
        out: dict[str, dict[str, Any] | None] = {}
        for name in names:
            point = self._latest.get(name)
            found: dict[str, Any] | None = None
            if point is not None:
                found = {"value": point.value, "unit": point.unit, "ts": point.ts,
                         "source": "recorded"}  # fmt: skip
            fresher = found is None or (sample is not None and sample["ts"] >= found["ts"])
            if sample is not None and name in sample and name in SAMPLE_FIELDS and fresher:
                found = {"value": sample[name], "unit": SAMPLE_FIELDS[name],
                         "ts": sample["ts"], "source": "sampler"}  # fmt: skip
            out[name] = found
        return out

    def get_real_time_metrics(self, names: Sequence[str]) -> dict[str, dict[str, Any] | None]:
        """Latest values of *names*; resource fields are read fresh when no sample is recent."""
        sample = self.samples[-1] if self.samples else None
        stale = sample is None or self.clock() - sample["ts"] > self.configuration.metrics_interval
        if self.enabled and stale and any(n in SAMPLE_FIELDS for n in names):
            self.sample_now()
        return self.latest(names)

    def _values(
        self, name: str, session_id: str | None, since: float | None, labels: dict[str, str]
    ) -> list[tuple[float, float]]:
        if session_id is not None:
            points = self.records.peek_session(session_id) if session_id in self._meters else [
                p for p in self.records.snapshot() if p.session_id == session_id
            ]  # fmt: skip
        else:
            points = self.records.snapshot()
        found = [
            (p.ts, p.value)
            for p in points
            if p.name == name
            and (since is None or p.ts >= since)
            and all(p.labels.get(k) == v for k, v in labels.items())
        ]
        if name in SAMPLE_FIELDS and not labels:
            if session_id is not None:
                meter = self._meters.get(session_id)
                samples: Iterable[dict[str, Any]] = meter.samples if meter is not None else ()
            else:
                samples = list(self.samples)
            found.extend(
                (s["ts"], float(s[name]))
                for s in samples
                if name in s and (since is None or s["ts"] >= since)
            )
            found.sort()
        return found

    def aggregate(
        self,
        name: str,
        *,
        window_seconds: float | None = None,
        session_id: str | None = None,
        **labels: Any,
    ) -> MetricAggregate | None:
        """Statistics of metric (or resource field) *name*; ``None`` when it has no value.

        The window is the last *window_seconds*, or the debug session *session_id* (open or
        recently stopped), or else everything kept (the whole run, within ``max_metrics``).
        Only points carrying every given label value count. ``rate_per_second`` is the count
        divided by the window's length.
        """
        if window_seconds is not None and not is_positive_number(window_seconds):
            msg = f"window_seconds must be a finite number > 0, got {window_seconds!r}"
            raise ConfigurationError(msg)
        now = self.clock()
        since = now - window_seconds if window_seconds is not None else None
        wanted = {k: str(v) for k, v in labels.items()}
        found = self._values(name, session_id, since, wanted)
        if not found:
            return None
        values = sorted(v for _, v in found)
        if window_seconds is not None:
            span = float(window_seconds)
        elif session_id is not None and session_id in self._meters:
            span = now - self._meters[session_id].started_at
        elif session_id is not None:
            span = found[-1][0] - found[0][0]
        else:
            span = now - self.created_at
        total = math.fsum(values)
        count = len(values)
        if not _LATE.loaded:
            _LATE.load()
        return MetricAggregate(
            name=name,
            count=count,
            sum=total,
            min=values[0],
            max=values[-1],
            mean=total / count,
            p50=quantile(values, 0.5),
            p90=quantile(values, 0.9),
            p95=quantile(values, 0.95),
            p99=quantile(values, 0.99),
            last=found[-1][1],
            rate_per_second=count / span if span > 0 else 0.0,
            window_seconds=span,
            first_ts=found[0][0],
            last_ts=found[-1][0],
        )

    def aggregate_all(
        self, *, window_seconds: float | None = None, session_id: str | None = None
    ) -> dict[str, MetricAggregate]:
        """:meth:`aggregate` of every recorded metric name (and resource field) in the window."""
        names = {p.name for p in self.records.snapshot()}
        if self.samples:
            names.update(k for k in self.samples[-1] if k in SAMPLE_FIELDS)
        out = {}
        for name in sorted(names):
            found = self.aggregate(name, window_seconds=window_seconds, session_id=session_id)
            if found is not None:
                out[name] = found
        return out

    # Thresholds ------------------------------------------------------------------------
    def set_threshold(self, name: str, op: str, value: float, severity: Any = "high") -> Threshold:
        """Breach when metric (or resource field) *name* satisfies ``value <op> limit``.

        *op* is one of ``>``, ``>=``, ``<``, ``<=``, ``==``, ``!=`` (or ``gt``, ``ge``, ``lt``,
        ``le``, ``eq``, ``ne``); *severity* low, medium, high or critical (an
        ``AlertSeverity`` works too). Setting the same *name* and *op* again replaces it.
        A breach is recorded when a value goes across the limit (not again while it stays
        across) and handed to the alert handler when one is set.
        """
        self._check_name(name)
        canonical = OPERATOR_ALIASES.get(op, op) if isinstance(op, str) else op
        if canonical not in OPERATORS:
            accepted = ", ".join([*OPERATORS, *OPERATOR_ALIASES])
            msg = f"threshold operator {op!r} is not known; accepted: {accepted}"
            raise ConfigurationError(msg)
        if (
            isinstance(value, bool)
            or not isinstance(value, numbers.Real)
            or not math.isfinite(float(value))
        ):
            msg = f"threshold for {name!r} must be a finite number, got {value!r}"
            raise ConfigurationError(msg)
        if not _LATE.loaded:
            _LATE.load()
        threshold = Threshold(name, canonical, float(value), _severity(severity))
        self.thresholds[(name, canonical)] = threshold
        self._breached.discard((name, canonical))
        return threshold

    def remove_threshold(self, name: str, op: str | None = None) -> None:
        """Forget the thresholds of *name* (only the one with *op* when given)."""
        canonical = OPERATOR_ALIASES.get(op, op) if op is not None else None
        for key in [k for k in self.thresholds if k[0] == name and canonical in (None, k[1])]:
            self.thresholds.pop(key, None)
            self._breached.discard(key)

    def set_alert_handler(self, handler: Callable[..., Any] | None) -> None:
        """Hand threshold breaches to *handler* (the alert manager's ``raise_alert``).

        It is called with keyword arguments ``alert_type``, ``severity``, ``title``,
        ``message``, ``metric_name``, ``current_value``, ``threshold_value``.
        """
        if handler is not None and not callable(handler):
            msg = f"alert handler must be callable or None, got {handler!r}"
            raise ConfigurationError(msg)
        self._alert_handler = handler

    def _check_thresholds(self, name: str, value: float, session_id: str | None) -> None:
        for key, threshold in list(self.thresholds.items()):
            if key[0] != name:
                continue
            if not threshold.breached_by(value):
                self._breached.discard(key)
                continue
            if key in self._breached:
                continue
            self._breached.add(key)
            breach = ThresholdBreach(
                name, threshold.op, threshold.value, value, threshold.severity, self.clock(),
                session_id,
            )  # fmt: skip
            self.breaches.append(breach)
            meters = [self._meters.get(session_id)] if session_id else self._meters.values()
            for meter in list(meters):
                if meter is not None and len(meter.breaches) < MAX_SESSION_BREACHES:
                    meter.breaches.append(breach.to_dict())
            self._notify(breach)

    def _notify(self, breach: ThresholdBreach) -> None:
        handler = self._alert_handler
        if handler is None:
            return
        try:
            result = handler(
                alert_type=f"threshold:{breach.name}",
                severity=breach.severity,
                title=f"Threshold breached: {breach.name} {breach.op} {breach.threshold:g}",
                message=breach.message,
                metric_name=breach.name,
                current_value=breach.value,
                threshold_value=breach.threshold,
            )
            if isinstance(result, Coroutine):
                result.close()
                self.add_diagnostic(
                    "the alert handler returned a coroutine; pass a synchronous callable"
                    " (AlertManager.raise_alert)"
                )
        except Exception as exc:
            self.add_diagnostic(f"alert handler raised {type(exc).__name__}: {exc}")

    def export(self, format: str = "json", *, path: str | os.PathLike[str] | None = None) -> str:
        """Everything kept (:meth:`export_data`) as ``json``, ``csv``, ``prometheus`` or
        ``openmetrics`` text; with *path*, also written there atomically."""
        fields = self.export_fields()
        fields["metrics"] = self.export_data()
        fields["latest_metrics"] = self.latest_values()
        return export_text("metrics", format, fields, path)

    def latest_values(self) -> dict[str, dict[str, Any]]:
        """The newest value of each metric and resource field: name -> value and unit."""
        latest: dict[str, dict[str, Any]] = {}
        for sample in list(self.samples):
            for key, value in sample.items():
                if key != "ts":
                    latest[key] = {"value": value, "unit": ""}
        for point in self.records.snapshot():
            latest[point.name] = {"value": point.value, "unit": point.unit}
        return latest

    def export_data(self) -> dict[str, Any]:
        """Everything kept, as JSON-able data (for JSON and CSV exports outside pytest).

        Keys: ``records`` (points), ``samples`` (sampler points), ``aggregates`` (per name,
        whole run), ``thresholds``, ``breaches`` and the drop counters.
        """
        return {
            "extension_id": self.extension_id,
            "records": [p.to_dict() for p in self.records.snapshot()],
            "dropped": self.records.dropped,
            "samples": list(self.samples),
            "samples_dropped": self.samples_dropped,
            "aggregates": {n: a.to_dict() for n, a in self.aggregate_all().items()},
            "thresholds": [t.to_dict() for t in self.thresholds.values()],
            "breaches": [b.to_dict() for b in self.breaches],
        }

    # Self-monitoring -------------------------------------------------------------------
    def stats(self) -> dict[str, int]:
        """Record counts plus the sampler's: samples kept, taken and dropped."""
        out = super().stats()
        out.update(
            samples=len(self.samples),
            samples_taken=self.samples_total,
            samples_dropped=self.samples_dropped,
            open_sessions=len(self._meters),
        )
        return out

    def check(self) -> tuple[str, str]:
        """Healthy unless a collector failed, records were dropped or the sampler died."""
        status, detail = super().check()
        if status == "healthy" and self.enabled and self._thread is not None and not self.sampling:
            return "degraded", "the resource sampler thread is not running"
        return status, detail


def _severity(value: Any) -> str:
    text = getattr(value, "value", value)
    if isinstance(text, str) and text.lower() in ALERT_SEVERITIES:
        return text.lower()
    msg = f"unknown severity {value!r}; accepted: {', '.join(ALERT_SEVERITIES)}"
    raise ConfigurationError(msg)


def _cpu_mark() -> tuple[float, float]:
    """Now on the monotonic clock, and the CPU seconds of the whole process (every thread)."""
    times = os.times()
    return time.monotonic(), times.user + times.system


def _get(read: Callable[[], Any] | None) -> Any:
    if read is None:  # the platform's psutil has no such method
        return None
    import psutil

    try:
        return read()
    except (psutil.Error, OSError, NotImplementedError, AttributeError):
        return None


def _put(point: dict[str, Any], key: str, read: Callable[[], Any] | None) -> None:
    value = _get(read)
    if value is not None:
        point[key] = value
