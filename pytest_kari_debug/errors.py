"""``ErrorTracker``: errors of one extension, grouped by fingerprint, classified and analysed.

Grouping follows Sentry's idea: two errors are the same bug when they have the same exception
type and were raised through the same in-app code path (modules and functions, never line
numbers or addresses). An error without a stack is grouped by its type and its message with
the variable parts (numbers, ids, quoted values, paths, URLs) replaced by placeholders.
"""

from __future__ import annotations

import builtins
import functools
import hashlib
import itertools
import linecache
import math
import os
import re
import site
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import FrameType, TracebackType
from typing import Any

from .component import Component, export_text
from .context import CURRENT_SESSION, SessionInfo
from .error_classes import ErrorClassifier
from .scrub import scrubber_for
from .values import ValueSerializer, clean_text, safe_repr, safe_str

#: Accepted severities of an error record (its ``level``).
SEVERITIES = ("debug", "info", "warning", "error", "critical")
#: Error groups kept per tracker; errors of further new fingerprints are only counted.
MAX_GROUPS = 5000
#: Test ids and session ids remembered per group (the counts stop growing past it).
MAX_AFFECTED = 200
#: Exceptions kept from one chain (causes, contexts, members of exception groups).
MAX_CHAIN = 16
#: In-app frames (after collapsing recursion) that make up a stack fingerprint.
FINGERPRINT_FRAMES = 50
#: Longest error message kept, in characters.
MAX_MESSAGE = 10_000
#: Longest stack trace text kept, in characters.
MAX_STACK_TEXT = 100_000
#: Seconds of per-second error counts kept for time-bucket trends.
HISTOGRAM_SECONDS = 20_000
#: Variables kept per frame when locals are captured.
MAX_LOCALS = 50
#: The shortest window an error rate is extrapolated from (a burst just after start would
#: otherwise read as thousands per hour).
MIN_RATE_WINDOW_S = 60.0


# Variable parts of messages, replaced in this order (URLs before paths, uuids before hex...).
@functools.cache
def _message_variables() -> tuple[tuple[re.Pattern[str], str], ...]:
    """Variable parts of messages and their placeholders, compiled on first use."""
    return tuple(
        (re.compile(pattern, re.I), placeholder)
        for pattern, placeholder in (
            (r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]+", "<url>"),
            (r"\b[\w.+-]+@[\w-]+(?:\.[\w-]+)+\b", "<email>"),
            (r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b", "<uuid>"),
            (r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"", "<str>"),
            (r"\b[a-z]:\\[^\s'\"]+", "<path>"),
            (r"(?<![\w.<>])(?:~|\.{1,2})?/[\w.@+-]+(?:/[\w.@+-]*)*", "<path>"),
            (
                r"\b\d{4}-\d{2}-\d{2}"
                r"(?:[t ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:z|[+-]\d{2}:?\d{2})?)?",
                "<datetime>",
            ),
            (r"\b\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?\b", "<ip>"),
            (r"\b0x[0-9a-f]+\b", "<hex>"),
            (r"\b(?=[0-9a-f]*[a-f])(?=[0-9a-f]*\d)[0-9a-f]{8,}\b", "<hex>"),
            (r"\d+(?:\.\d+)*", "<num>"),
        )
    )  # fmt: skip


_WHOLE_QUOTED = re.compile(r"(['\"])((?:(?!\1).)*)\1", re.S)
_TRACEBACK_FRAME = re.compile(
    r'^[\s|+-]*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>.+?)\s*$'
)
_CHAIN_CAUSE = "The above exception was the direct cause of the following exception:"
_CHAIN_CONTEXT = "During handling of the above exception, another exception occurred:"
_EXCEPTION_LINE = re.compile(r"^[\s|]*(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<message>.*))?$")
_TEST_FILE = re.compile(r"^(test_.*|.*_test|conftest)\.py$")

#: Module prefixes never in-app: this package and pytest's machinery.
_NOT_IN_APP_MODULES = ("pytest_kari_debug", "_pytest", "pytest", "pluggy", "xdist", "execnet")


def normalize_message(message: str) -> str:
    """*message* with its variable parts (ids, numbers, quoted values...) as placeholders.

    A message that is one quoted string as a whole (``KeyError('user 42 missing')`` prints
    ``'user 42 missing'``) is normalized inside its quotes.
    """
    whole = _WHOLE_QUOTED.fullmatch(message.strip())
    if whole is not None:
        return f"{whole[1]}{normalize_message(whole[2])}{whole[1]}"
    text = message
    for pattern, placeholder in _message_variables():
        text = pattern.sub(placeholder, text)
    return " ".join(text.split())


def trend_direction(counts: Sequence[float]) -> str:
    """``rising``, ``falling`` or ``stable`` for a series of counts, oldest first.

    The series is rising when its least-squares line climbs, from first to last point, by
    more than half the mean (and by at least one error); falling for the mirror case.
    """
    values = [float(v) for v in counts]
    n = len(values)
    if n < 2:
        return "stable"
    mean = sum(values) / n
    if mean == 0:
        return "stable"
    x_mean = (n - 1) / 2
    denominator = sum((x - x_mean) ** 2 for x in range(n))
    slope = sum((x - x_mean) * (y - mean) for x, y in enumerate(values)) / denominator
    change = slope * (n - 1)
    if change > max(0.5 * mean, 1.0):
        return "rising"
    if -change > max(0.5 * mean, 1.0):
        return "falling"
    return "stable"


# Records ---------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class StackFrame:
    """One frame of a stack trace (never with memory addresses; locals only when asked)."""

    filename: str
    module: str
    function: str
    lineno: int | None
    line: str
    in_app: bool
    locals: dict[str, str] | None = None

    @property
    def key(self) -> str:
        """The frame's identity for grouping: ``module:function``."""
        return f"{self.module}:{self.function}"

    def to_dict(self) -> dict[str, Any]:
        """Return the frame as JSON-able data."""
        data: dict[str, Any] = {
            "filename": self.filename,
            "module": self.module,
            "function": self.function,
            "lineno": self.lineno,
            "line": self.line,
            "in_app": self.in_app,
        }
        if self.locals is not None:
            data["locals"] = self.locals
        return data


@dataclass(frozen=True, slots=True)
class ErrorRecord:
    """One recorded error: what happened, where, its group, category and suggestion."""

    error_type: str
    error_message: str
    fingerprint: str
    ts: float
    session_id: str | None = None
    stack_trace: str | None = None
    context: dict[str, Any] = field(default_factory=dict)
    severity: str = "error"
    category: str = "unknown"
    suggestion: str = ""
    grouping: str = "message"
    culprit: str | None = None
    frames: list[dict[str, Any]] = field(default_factory=list)
    frames_omitted: int = 0
    chain: list[dict[str, Any]] = field(default_factory=list)
    exception_notes: list[str] = field(default_factory=list)
    nodeid: str | None = None
    extension_id: str | None = None
    source: str = "record"

    @property
    def level(self) -> str:
        return self.severity

    def to_dict(self) -> dict[str, Any]:
        """Return the record as JSON-able data (the ``error_tracking`` record contract)."""
        return {
            "ts": self.ts,
            "session_id": self.session_id,
            "extension_id": self.extension_id,
            "nodeid": self.nodeid,
            "error_type": self.error_type,
            "error_message": self.error_message,
            "name": self.error_type,
            "fingerprint": self.fingerprint,
            "grouping": self.grouping,
            "category": self.category,
            "suggestion": self.suggestion,
            "culprit": self.culprit,
            "stack_trace": self.stack_trace,
            "frames": self.frames,
            "frames_omitted": self.frames_omitted,
            "chain": self.chain,
            "exception_notes": self.exception_notes,
            "context": self.context,
            "level": self.severity,
            "source": self.source,
        }


@dataclass
class ErrorGroup:
    """Every error of one fingerprint: counts, first and last seen, affected tests, status."""

    fingerprint: str
    error_type: str
    message: str
    template: str
    category: str
    suggestion: str
    grouping: str
    culprit: str | None
    first_seen: float
    last_seen: float
    count: int = 0
    sessions: set[str] = field(default_factory=set)
    nodeids: set[str] = field(default_factory=set)
    status: str = "unresolved"
    resolved_at: float | None = None
    notes: str | None = None
    regressed: bool = False
    last_record: ErrorRecord | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the group as JSON-able data (without its sample record)."""
        return {
            "fingerprint": self.fingerprint,
            "error_type": self.error_type,
            "message": self.message,
            "template": self.template,
            "category": self.category,
            "suggestion": self.suggestion,
            "grouping": self.grouping,
            "culprit": self.culprit,
            "count": self.count,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "affected_tests": sorted(self.nodeids),
            "affected_tests_count": len(self.nodeids),
            "affected_sessions_count": len(self.sessions),
            "status": self.status,
            "resolved_at": self.resolved_at,
            "notes": self.notes,
            "regressed": self.regressed,
        }


@dataclass(frozen=True)
class ErrorAnalysis:
    """Totals, groups, categories, trend and new groups of the errors a tracker saw."""

    total_errors: int
    unique_errors: int
    error_rate: float
    top_groups: list[dict[str, Any]] = field(default_factory=list)
    categories: dict[str, int] = field(default_factory=dict)
    trend: dict[str, Any] = field(default_factory=dict)
    new_groups: list[str] = field(default_factory=list)
    regressed_groups: list[str] = field(default_factory=list)
    window_seconds: float = 0.0
    first_seen: float | None = None
    last_seen: float | None = None
    dropped: int = 0
    ungrouped: int = 0

    @property
    def top_errors(self) -> list[dict[str, Any]]:
        """Alias of :attr:`top_groups`."""
        return self.top_groups

    def to_dict(self) -> dict[str, Any]:
        """Return the analysis as JSON-able data."""
        return {
            "total_errors": self.total_errors,
            "unique_errors": self.unique_errors,
            "error_rate": self.error_rate,
            "top_groups": self.top_groups,
            "categories": self.categories,
            "trend": self.trend,
            "new_groups": self.new_groups,
            "regressed_groups": self.regressed_groups,
            "window_seconds": self.window_seconds,
            "first_seen": self.first_seen,
            "last_seen": self.last_seen,
            "dropped": self.dropped,
            "ungrouped": self.ungrouped,
        }


@dataclass
class _SessionErrors:
    """Exact per-group counts of one open session (they go on past the record limit)."""

    groups: dict[str, dict[str, Any]] = field(default_factory=dict)
    total: int = 0
    exception_keys: set[tuple[int, str, str]] = field(default_factory=set)
    seen_errors: set[tuple[str, str]] = field(default_factory=set)
    log_keys: set[tuple[Any, ...]] = field(default_factory=set)


# In-app detection -------------------------------------------------------------------------
@functools.cache
def _library_dirs() -> tuple[str, ...]:
    """Directories whose code is not the user's: the standard library and site-packages
    (found once, on the first error: sysconfig is slow to import)."""
    import sysconfig

    found: set[str] = set()
    paths = sysconfig.get_paths()
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        if paths.get(key):
            found.add(paths[key])
    try:
        found.update(site.getsitepackages())
        found.add(site.getusersitepackages())
    except AttributeError:  # site of some embedded interpreters lacks these
        pass
    found.add(os.path.dirname(os.path.abspath(__file__)))
    return tuple(sorted({os.path.join(os.path.realpath(p), "") for p in found if p}))


@functools.lru_cache(maxsize=4096)
def _module_from_path(filename: str) -> str:
    """The dotted module name of a source file, from the longest ``sys.path`` entry holding it."""
    if filename.startswith("<"):
        return filename
    path = os.path.realpath(filename)
    best = ""
    for entry in sys.path:
        root = os.path.join(os.path.realpath(entry or os.getcwd()), "")
        if path.startswith(root) and len(root) > len(best):
            best = root
    relative = path[len(best) :] if best else os.path.basename(path)
    stem = os.path.splitext(relative)[0]
    parts = [part for part in stem.split(os.sep) if part]
    if parts and parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts) or os.path.basename(path)


def _type_display(exc_type: type) -> str:
    """The class name as tracebacks print it: bare for builtins, else module-qualified."""
    module = getattr(exc_type, "__module__", None) or ""
    name = getattr(exc_type, "__qualname__", None) or exc_type.__name__
    return name if module in ("builtins", "__main__", "") else f"{module}.{name}"


def _safe_str(exc: BaseException) -> str:
    """The exception's text (bounded user code, cleaned); never raises."""
    return safe_str(exc, MAX_MESSAGE)


class _ContextSerializer(ValueSerializer):
    """The serializer of error context: fields named in ``redact_fields`` are redacted."""

    def __init__(self, redact: frozenset[str], **options: Any) -> None:
        super().__init__(**options)
        self.redact = redact

    def field(self, key: str, value: Any, depth: int, seen: set[int]) -> Any:
        if key.lower() in self.redact:
            return "[REDACTED]"
        return self.value(value, depth + 1, seen)


def _is_group(exc: BaseException) -> bool:
    """True for an exception group (the builtin one, or a backport's)."""
    group_type = getattr(builtins, "BaseExceptionGroup", None)
    if group_type is not None and isinstance(exc, group_type):
        return True
    return isinstance(getattr(exc, "exceptions", None), tuple) and any(
        klass.__name__ == "BaseExceptionGroup" for klass in type(exc).__mro__
    )


def _collapse_cycles(keys: Sequence[str], longest: int = 4) -> list[str]:
    """*keys* with repeated runs (recursion, mutual recursion) reduced to one occurrence."""
    out: list[str] = []
    for key in keys:
        out.append(key)
        changed = True
        while changed:
            changed = False
            for length in range(1, longest + 1):
                if len(out) >= 2 * length and out[-length:] == out[-2 * length : -length]:
                    del out[-length:]
                    changed = True
                    break
    return out


def _outer_library_frames(in_app: Sequence[bool]) -> int:
    """How many outermost frames run before the first in-app one (the harness calling in)."""
    for index, flag in enumerate(in_app):
        if flag:
            return index
    return 0


def _hash(parts: Iterable[str]) -> str:
    digest = hashlib.sha256("\n".join(parts).encode("utf-8", "surrogatepass"))
    return digest.hexdigest()[:16]


@dataclass
class _ExcNode:
    """One exception of a chain, with its extracted frames."""

    type_name: str
    message: str
    relation: str
    depth: int
    all_keys: list[str]
    app_keys: list[str]
    test_free_keys: list[str]
    frames: list[StackFrame]
    omitted: int
    notes: list[str]
    outer_omitted: int = 0
    cause: _ExcNode | None = None
    members: list[_ExcNode] = field(default_factory=list)

    def fingerprint_keys(self) -> list[str]:
        """In-app frames without test files when any remain; in-app; else every frame."""
        keys = self.test_free_keys or self.app_keys or self.all_keys
        return _collapse_cycles(keys)[-FINGERPRINT_FRAMES:]


class ErrorTracker(Component):
    """Records errors in a bounded buffer and groups them by fingerprint.

    ``max_errors`` bounds the records kept (in the ring and per session); group counters keep
    counting past it. Locals of frames are captured only when :attr:`capture_locals` is set
    (or ``capture_locals=True`` is passed), redacted by ``redact_fields`` and cut at
    ``max_repr_length``. Stack traces keep at most ``max_stack_frames`` frames: the outermost
    quarter and the innermost rest, with a marker of what was left out.
    """

    kind = "error_tracking"
    limit_field = "max_errors"

    def __init__(
        self,
        *args: Any,
        clock: Callable[[], float] = time.time,
        classifier: ErrorClassifier | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock
        self.classifier = classifier or ErrorClassifier()
        #: Capture frame locals of in-app frames (off unless the user asks).
        self.capture_locals = False
        #: Module prefixes counted as in-app even when installed in site-packages.
        self.in_app_include: list[str] = []
        package = self.extension_id.replace("-", "_")
        if package.isidentifier():
            self.in_app_include.append(package)
        #: Module prefixes never counted as in-app.
        self.in_app_exclude: list[str] = []
        self.groups: dict[str, ErrorGroup] = {}
        self.total_recorded = 0
        self.ungrouped = 0
        self.known_fingerprints: set[str] = set()
        self._window_start = clock()
        self._histogram: OrderedDict[int, int] = OrderedDict()
        self._sessions: dict[str, _SessionErrors] = {}
        self._in_app_cache: dict[tuple[str, str], bool] = {}
        self._lock = threading.RLock()
        cfg = self.configuration
        self._redact = frozenset(f.lower() for f in cfg.redact_fields)
        self._scrub = scrubber_for(cfg.redact_patterns).scrub
        self._values = _ContextSerializer(
            self._redact,
            max_repr_length=cfg.max_repr_length,
            max_text_length=cfg.max_repr_length,
            max_depth=5,
            max_items=100,
            text_filter=self._scrub,
        )

    @property
    def group_counts(self) -> dict[str, int]:
        """Occurrences per fingerprint (every error counted, also past ``max_errors``)."""
        with self._lock:
            return {fp: group.count for fp, group in self.groups.items()}

    # Sessions --------------------------------------------------------------------------
    def begin_session(self, session: SessionInfo) -> None:
        """Begin keeping *session*'s records and exact group counts."""
        super().begin_session(session)
        with self._lock:
            self._sessions.setdefault(session.session_id, _SessionErrors())

    def end_session(self, session: SessionInfo) -> dict[str, Any]:
        """Records of the session (oldest first), drops, exact total and per-group counts."""
        records, dropped = self.records.close_session(session.session_id)
        with self._lock:
            state = self._sessions.pop(session.session_id, _SessionErrors())
        ordered = sorted(records, key=lambda record: record.ts)
        return {
            "records": [record.to_dict() for record in ordered],
            "dropped": dropped,
            "total": state.total,
            "groups": list(state.groups.values()),
        }

    # Recording -------------------------------------------------------------------------
    def record_error(
        self,
        error_type: str,
        error_message: str,
        stack_trace: str | None = None,
        context: Mapping[str, Any] | None = None,
        severity: str | None = None,
        *,
        fingerprint: str | Sequence[str] | None = None,
        nodeid: str | None = None,
    ) -> ErrorRecord | None:
        """Record one error; return the record (``None`` when the tracker is disabled).

        *stack_trace* is traceback text (``traceback.format_exc()``): its frames group the
        error; without one, the type and the normalized message do. *fingerprint* overrides
        the grouping: a string, or a list of parts where ``"{{ default }}"`` stands for the
        fingerprint the tracker would have computed.
        """
        if not isinstance(error_type, str) or not error_type.strip():
            msg = f"error_type must be a non-empty string, got {error_type!r}"
            raise TypeError(msg)
        if not isinstance(error_message, str):
            error_message = safe_repr(error_message, MAX_MESSAGE)
        if stack_trace is not None and not isinstance(stack_trace, str):
            msg = f"stack_trace must be traceback text or None, got {type(stack_trace).__name__}"
            raise TypeError(msg)
        level = _check_severity(severity)
        custom = _check_fingerprint(fingerprint)
        context_data = self._context(context)
        if not self.enabled:
            return None
        message = error_message[:MAX_MESSAGE]
        text = None
        nodes: list[_ExcNode] = []
        if stack_trace and stack_trace.strip() and stack_trace.strip() != "NoneType: None":
            text, nodes = self._parse_traceback(stack_trace)
        return self._store(
            error_type=error_type.strip(),
            message=message,
            root=nodes[0] if nodes else None,
            flat=nodes[1:],
            stack_text=text,
            context=context_data,
            severity=level,
            custom=custom,
            nodeid=nodeid,
            source="record",
            exc=None,
        )

    def record_exception(
        self,
        exc: BaseException,
        context: Mapping[str, Any] | None = None,
        *,
        severity: str | None = None,
        fingerprint: str | Sequence[str] | None = None,
        nodeid: str | None = None,
        capture_locals: bool | None = None,
        source: str = "exception",
    ) -> ErrorRecord | None:
        """Record *exc* with its stack, its chain (causes, contexts, exception groups).

        Recording the same exception object twice in one debug session keeps one record.
        """
        if not isinstance(exc, BaseException):
            msg = f"record_exception needs an exception instance, got {type(exc).__name__}"
            raise TypeError(msg)
        level = _check_severity(severity)
        custom = _check_fingerprint(fingerprint)
        context_data = self._context(context)
        if not self.enabled:
            return None
        if source == "exception" and context_data.get("source") == "log":
            source = "log"  # reported live by the logger for an ERROR record with exc_info
        message = _safe_str(exc)
        type_name = _type_display(type(exc))
        session = CURRENT_SESSION.get()
        if session is not None:
            key = (id(exc), type_name, message)
            with self._lock:
                state = self._sessions.get(session.session_id)
                if state is not None:
                    if key in state.exception_keys:
                        return None
                    if len(state.exception_keys) < 1000:
                        state.exception_keys.add(key)
        want_locals = self.capture_locals if capture_locals is None else bool(capture_locals)
        root: _ExcNode | None
        flat: list[_ExcNode]
        stack_text: str | None
        try:
            flat = self._exception_nodes(exc, want_locals)
            root = flat[0]
            stack_text = _render(root)[:MAX_STACK_TEXT]
        except Exception as problem:  # never lose the error to a failure of the analysis
            self.add_diagnostic(f"stack analysis failed: {type(problem).__name__}: {problem}")
            root, flat, stack_text = None, [], None
        return self._store(
            error_type=type_name,
            message=message,
            root=root,
            flat=flat[1:],
            stack_text=stack_text,
            context=context_data,
            severity=level,
            custom=custom,
            nodeid=nodeid,
            source=source,
            exc=exc,
        )

    def record_log(self, record: Any) -> ErrorRecord | None:
        """Record an error-level log record that carries an exception (else do nothing).

        *record* is a log record dict (the ``logging`` contract: ``level``, ``message``,
        ``exception{type,message,traceback}``, ``ts``, ``session_id``, ``name``) or an object
        with ``to_dict()``. Feeding the same log record twice records it once; an exception
        already recorded in the same session (say, as the failing test's) is not recorded again.
        """
        data = record.to_dict() if hasattr(record, "to_dict") else record
        if not isinstance(data, Mapping) or not self.enabled:
            return None
        level = str(data.get("level") or "").lower()
        exception = data.get("exception")
        if level not in ("error", "critical") or not isinstance(exception, Mapping):
            return None
        session_id = data.get("session_id")
        error_type = str(exception.get("type") or "Exception")
        message = str(exception.get("message") or "")[:MAX_MESSAGE]
        log_key = (data.get("ts"), data.get("name"), data.get("message"), error_type, message)
        with self._lock:
            state = self._sessions.get(session_id) if isinstance(session_id, str) else None
            if state is not None:
                if log_key in state.log_keys or (error_type.rsplit(".", 1)[-1], message) in (
                    state.seen_errors
                ):
                    return None
                if len(state.log_keys) < 10_000:
                    state.log_keys.add(log_key)
        traceback_text = exception.get("traceback")
        text: str | None = None
        nodes: list[_ExcNode] = []
        if isinstance(traceback_text, str) and traceback_text.strip():
            text, nodes = self._parse_traceback(traceback_text)
        if nodes and nodes[0].type_name:
            error_type = nodes[0].type_name
        ts = data.get("ts")
        context = {"log_message": data.get("message"), "logger": data.get("name")}
        return self._store(
            error_type=error_type,
            message=message,
            root=nodes[0] if nodes else None,
            flat=nodes[1:],
            stack_text=text,
            context=self._context(context),
            severity=level,
            custom=None,
            nodeid=None,
            source="log",
            exc=None,
            ts=float(ts) if isinstance(ts, (int, float)) else None,
            session_id=session_id if isinstance(session_id, str) else None,
        )

    def record_logs(self, records: Iterable[Any]) -> int:
        """Feed every log record of *records* to :meth:`record_log`; return how many recorded."""
        return sum(1 for record in records if self.record_log(record) is not None)

    def _store(
        self,
        *,
        error_type: str,
        message: str,
        root: _ExcNode | None,
        flat: Sequence[_ExcNode],
        stack_text: str | None,
        context: dict[str, Any],
        severity: str,
        custom: list[str] | None,
        nodeid: str | None,
        source: str,
        exc: BaseException | None,
        ts: float | None = None,
        session_id: str | None = None,
    ) -> ErrorRecord:
        # Text leaves here for storage: made writable and its secrets scrubbed.
        message = self._scrub(clean_text(message, MAX_MESSAGE))
        if stack_text is not None:
            stack_text = self._scrub(clean_text(stack_text, MAX_STACK_TEXT))
        error_type = clean_text(error_type, 500)
        template = normalize_message(message)
        if root is not None and root.fingerprint_keys():
            grouping = "stack"
            parts = [error_type, *root.fingerprint_keys()]
            for node in flat:
                parts += ["|", node.type_name, *node.fingerprint_keys()]
            default = _hash(["stack", *parts])
        else:
            grouping = "message"
            default = _hash(["message", error_type, template])
        if custom is not None:
            grouping = "custom"
            fingerprint = _hash(
                ["custom", *(default if part == "{{ default }}" else part for part in custom)]
            )
        else:
            fingerprint = default
        classification = self.classifier.classify(error_type, message, exc)
        culprit = None
        if root is not None:
            app_frames = [f for f in root.frames if f.in_app] or root.frames
            if app_frames:
                culprit = f"{app_frames[-1].module} in {app_frames[-1].function}"
        if session_id is None:
            session = CURRENT_SESSION.get()
            session_id = session.session_id if session else None
            # The session's name is its test's node id, as the stored test record says.
            nodeid = nodeid or (session.name if session else None)
        record = ErrorRecord(
            error_type=error_type,
            error_message=message,
            fingerprint=fingerprint,
            ts=self.clock() if ts is None else ts,
            session_id=session_id,
            stack_trace=stack_text,
            context=context,
            severity=severity,
            category=classification.category,
            suggestion=classification.suggestion,
            grouping=grouping,
            culprit=culprit,
            frames=[frame.to_dict() for frame in root.frames] if root is not None else [],
            frames_omitted=root.omitted + root.outer_omitted if root is not None else 0,
            chain=[_chain_entry(node) for node in flat],
            exception_notes=list(root.notes) if root is not None else [],
            nodeid=nodeid,
            extension_id=self.extension_id,
            source=source,
        )
        self._count(record, template)
        self.records.append(record, session_id)
        return record

    def _count(self, record: ErrorRecord, template: str) -> None:
        with self._lock:
            self.total_recorded += 1
            second = int(record.ts)
            self._histogram[second] = self._histogram.get(second, 0) + 1
            while len(self._histogram) > HISTOGRAM_SECONDS:
                self._histogram.popitem(last=False)
            group = self.groups.get(record.fingerprint)
            if group is None:
                if len(self.groups) >= MAX_GROUPS:
                    self.ungrouped += 1
                else:
                    group = ErrorGroup(
                        fingerprint=record.fingerprint,
                        error_type=record.error_type,
                        message=record.error_message[:500],
                        template=template[:500],
                        category=record.category,
                        suggestion=record.suggestion,
                        grouping=record.grouping,
                        culprit=record.culprit,
                        first_seen=record.ts,
                        last_seen=record.ts,
                    )
                    self.groups[record.fingerprint] = group
            if group is not None:
                group.count += 1
                group.first_seen = min(group.first_seen, record.ts)
                group.last_seen = max(group.last_seen, record.ts)
                group.last_record = record
                if record.session_id and len(group.sessions) < MAX_AFFECTED:
                    group.sessions.add(record.session_id)
                if record.nodeid and len(group.nodeids) < MAX_AFFECTED:
                    group.nodeids.add(record.nodeid)
                if group.status == "resolved":
                    group.status = "unresolved"
                    group.regressed = True
            state = self._sessions.get(record.session_id) if record.session_id else None
            if state is not None:
                state.total += 1
                if len(state.seen_errors) < 1000:
                    state.seen_errors.add(
                        (record.error_type.rsplit(".", 1)[-1], record.error_message)
                    )
                entry = state.groups.get(record.fingerprint)
                if entry is None and len(state.groups) < MAX_GROUPS:
                    entry = state.groups[record.fingerprint] = {
                        "fingerprint": record.fingerprint,
                        "error_type": record.error_type,
                        "message": record.error_message[:500],
                        "template": template[:500],
                        "category": record.category,
                        "grouping": record.grouping,
                        "culprit": record.culprit,
                        "count": 0,
                        "first_ts": record.ts,
                        "last_ts": record.ts,
                    }
                if entry is not None:
                    entry["count"] += 1
                    entry["last_ts"] = max(entry["last_ts"], record.ts)

    # Context and locals ----------------------------------------------------------------
    def _context(self, context: Mapping[str, Any] | None) -> dict[str, Any]:
        if context is None:
            return {}
        if not isinstance(context, Mapping):
            msg = f"context must be a mapping (dict) or None, got {type(context).__name__}"
            raise TypeError(msg)
        return self._values.mapping(context)

    def _locals(self, frame: FrameType) -> dict[str, str]:
        limit = self.configuration.max_repr_length
        found: dict[str, str] = {}
        for name, value in list(frame.f_locals.items())[:MAX_LOCALS]:
            if name.lower() in self._redact:
                found[name] = "[REDACTED]"
            else:
                found[name] = self._scrub(safe_repr(value, limit))
        return found

    # Frames ----------------------------------------------------------------------------
    def _in_app(self, filename: str, module: str) -> bool:
        key = (filename, module)
        cached = self._in_app_cache.get(key)
        if cached is not None:
            return cached
        result = self._decide_in_app(filename, module)
        if len(self._in_app_cache) < 10_000:
            self._in_app_cache[key] = result
        return result

    def _decide_in_app(self, filename: str, module: str) -> bool:
        def under(prefixes: Iterable[str]) -> bool:
            return any(module == p or module.startswith(p + ".") for p in prefixes if p)

        if under(self.in_app_exclude):
            return False
        if under(self.in_app_include):
            return True
        if under(_NOT_IN_APP_MODULES):
            return False
        if filename.startswith("<"):
            return "frozen" not in filename
        path = os.path.realpath(filename)
        if f"{os.sep}site-packages{os.sep}" in path or f"{os.sep}dist-packages{os.sep}" in path:
            return False
        return not path.startswith(_library_dirs())

    def _select(self, count: int, first: int = 0) -> tuple[list[int], int]:
        """Indexes of the frames kept from *first* to *count*, and how many are left out."""
        limit = self.configuration.max_stack_frames
        if count - first <= limit:
            return list(range(first, count)), 0
        head = limit // 4
        tail = limit - head
        return [*range(first, first + head), *range(count - tail, count)], count - first - limit

    def _exception_nodes(self, exc: BaseException, want_locals: bool) -> list[_ExcNode]:
        """The exception and its chain as nodes, preorder (the exception first)."""
        flat: list[_ExcNode] = []
        seen: set[int] = set()

        def visit(current: BaseException, relation: str, depth: int) -> _ExcNode | None:
            if id(current) in seen or len(flat) >= MAX_CHAIN:
                return None
            seen.add(id(current))
            node = self._live_node(current, relation, depth, want_locals)
            flat.append(node)
            if _is_group(current):
                for index, member in enumerate(getattr(current, "exceptions", ())):
                    child = visit(member, f"group[{index}]", depth + 1)
                    if child is not None:
                        node.members.append(child)
            cause = current.__cause__
            context = current.__context__
            if cause is not None:
                node.cause = visit(cause, "cause", depth + 1)
            elif context is not None and not current.__suppress_context__:
                node.cause = visit(context, "context", depth + 1)
            return node

        visit(exc, "exception", 0)
        return flat

    def _live_node(
        self, exc: BaseException, relation: str, depth: int, want_locals: bool
    ) -> _ExcNode:
        entries: list[tuple[FrameType, int | None]] = []
        tb: TracebackType | None = exc.__traceback__
        while tb is not None:
            entries.append((tb.tb_frame, tb.tb_lineno))
            tb = tb.tb_next
        located: list[tuple[str, str, str]] = []
        for frame, _ in entries:
            code = frame.f_code
            module = frame.f_globals.get("__name__")
            if not isinstance(module, str) or module == "__main__":
                module = _module_from_path(code.co_filename)
            located.append((code.co_filename, module, code.co_name))
        all_keys, app_keys, test_free, in_apps = self._frame_keys(located)
        outer = _outer_library_frames(in_apps)
        kept, omitted = self._select(len(entries), outer)
        frames = []
        for index in kept:
            frame, lineno = entries[index]
            filename, module, function = located[index]
            in_app = in_apps[index]
            line = linecache.getline(filename, lineno or 0, frame.f_globals).strip()[:300]
            frames.append(
                StackFrame(
                    filename=clean_text(filename, 1000),
                    module=module,
                    function=function,
                    lineno=lineno,
                    line=self._scrub(clean_text(line)),
                    in_app=in_app,
                    locals=self._locals(frame) if want_locals and in_app else None,
                )
            )
        notes = getattr(exc, "__notes__", None)
        return _ExcNode(
            type_name=_type_display(type(exc)),
            message=_safe_str(exc),
            relation=relation,
            depth=depth,
            all_keys=all_keys,
            app_keys=app_keys,
            test_free_keys=test_free,
            frames=frames,
            omitted=omitted,
            outer_omitted=outer,
            notes=[self._scrub(safe_str(n, 1000)) for n in notes[:20]]
            if isinstance(notes, list)
            else [],
        )

    def _frame_keys(
        self, located: Sequence[tuple[str, str, str]]
    ) -> tuple[list[str], list[str], list[str], list[bool]]:
        """Grouping keys (``module:function``) of frames given as (filename, module, function).

        Returns every frame's key, the in-app frames' keys, the in-app keys outside test
        files, and whether each frame is in-app.
        """
        all_keys: list[str] = []
        app_keys: list[str] = []
        test_free: list[str] = []
        in_apps: list[bool] = []
        for filename, module, function in located:
            in_app = self._in_app(filename, module)
            key = f"{module}:{function}"
            in_apps.append(in_app)
            all_keys.append(key)
            if in_app:
                app_keys.append(key)
                if not _TEST_FILE.match(os.path.basename(filename)):
                    test_free.append(key)
        return all_keys, app_keys, test_free, in_apps

    def _parse_traceback(self, text: str) -> tuple[str, list[_ExcNode]]:
        """Truncated traceback text and its exceptions as nodes (the last printed first)."""
        blocks: list[tuple[str, list[str]]] = [("exception", [])]
        for line in text.splitlines():
            stripped = line.strip(" |")
            if stripped == _CHAIN_CAUSE:
                blocks.append(("cause", []))
            elif stripped == _CHAIN_CONTEXT:
                blocks.append(("context", []))
            else:
                blocks[-1][1].append(line)
        # Python prints the root cause first: the exception itself is the last block.
        ordered = list(reversed(blocks))
        nodes: list[_ExcNode] = []
        for depth, (_, lines) in enumerate(ordered[:MAX_CHAIN]):
            relation = "exception" if depth == 0 else ordered[depth - 1][0]
            nodes.append(self._text_node(lines, relation, depth))
        for parent, child in itertools.pairwise(nodes):
            parent.cause = child
        return _truncate_text(text, self.configuration.max_stack_frames), nodes

    def _text_node(self, lines: list[str], relation: str, depth: int) -> _ExcNode:
        parsed: list[tuple[str, int, str, str]] = []
        type_name, message = "", ""
        for index, line in enumerate(lines):
            match = _TRACEBACK_FRAME.match(line)
            if match:
                following = lines[index + 1] if index + 1 < len(lines) else ""
                source = "" if _TRACEBACK_FRAME.match(following) else following.strip()
                parsed.append((match["file"], int(match["line"]), match["func"], source))
                continue
        for line in reversed(lines):
            match = _EXCEPTION_LINE.match(line)
            if match and line.strip() and not line.startswith((" ", "\t")):
                type_name, message = match["type"], (match["message"] or "")
                break
        located = [
            (filename, _module_from_path(filename), function) for filename, _, function, _ in parsed
        ]
        all_keys, app_keys, test_free, in_apps = self._frame_keys(located)
        outer = _outer_library_frames(in_apps)
        kept, omitted = self._select(len(parsed), outer)
        frames = [
            StackFrame(
                filename=parsed[i][0],
                module=located[i][1],
                function=parsed[i][2],
                lineno=parsed[i][1],
                line=parsed[i][3][:300],
                in_app=in_apps[i],
            )
            for i in kept
        ]
        return _ExcNode(
            type_name=type_name,
            message=message[:MAX_MESSAGE],
            relation=relation,
            depth=depth,
            all_keys=all_keys,
            app_keys=app_keys,
            test_free_keys=test_free,
            frames=frames,
            omitted=omitted,
            outer_omitted=outer,
            notes=[],
        )

    # Reading ---------------------------------------------------------------------------
    def get_errors(
        self,
        *,
        session_id: str | None = None,
        fingerprint: str | None = None,
        category: str | None = None,
        limit: int | None = None,
    ) -> list[ErrorRecord]:
        """Kept error records matching the filters, newest first."""
        found = [
            record
            for record in reversed(self.records.snapshot())
            if (session_id is None or record.session_id == session_id)
            and (fingerprint is None or record.fingerprint.startswith(fingerprint))
            and (category is None or record.category == category)
        ]
        return found[:limit] if limit is not None else found

    def export(self, format: str = "json", *, path: str | os.PathLike[str] | None = None) -> str:
        """The errors kept, oldest first, and their groups as ``json``, or the errors as
        ``csv``; with *path*, also written there atomically."""
        fields = self.export_fields()
        fields["errors"] = [record.to_dict() for record in reversed(self.get_errors())]
        fields["error_groups"] = [group.to_dict() for group in self.get_groups()]
        return export_text("errors", format, fields, path)

    def get_groups(self, *, status: str | None = None) -> list[ErrorGroup]:
        """Every group, most frequent first (*status*: ``resolved`` or ``unresolved`` filters)."""
        if status not in (None, "resolved", "unresolved"):
            msg = f"status must be 'resolved', 'unresolved' or None, got {status!r}"
            raise ValueError(msg)
        with self._lock:
            groups = [g for g in self.groups.values() if status is None or g.status == status]
        return sorted(groups, key=lambda g: (-g.count, -g.last_seen))

    def get_group(self, fingerprint: str) -> ErrorGroup:
        """The group of *fingerprint* (a unique prefix of at least 4 characters will do)."""
        with self._lock:
            if fingerprint in self.groups:
                return self.groups[fingerprint]
            matches = [
                fp for fp in self.groups if len(fingerprint) >= 4 and fp.startswith(fingerprint)
            ]
        if len(matches) == 1:
            return self.groups[matches[0]]
        if matches:
            msg = f"error group prefix {fingerprint!r} is ambiguous: {sorted(matches)[:5]}"
        else:
            msg = f"no error group {fingerprint!r} in extension {self.extension_id!r}"
        raise LookupError(msg)

    def get_error_patterns(self, limit: int = 10) -> list[dict[str, Any]]:
        """The most frequent groups as patterns: template message, culprit, category, counts."""
        patterns = []
        for group in self.get_groups()[:limit]:
            data = group.to_dict()
            sample = group.last_record
            data["stack_trace"] = sample.stack_trace if sample is not None else None
            patterns.append(data)
        return patterns

    def resolve(self, fingerprint: str, notes: str | None = None) -> ErrorGroup:
        """Mark a group resolved; the next error of it flags the group as regressed."""
        group = self.get_group(fingerprint)
        with self._lock:
            group.status = "resolved"
            group.resolved_at = self.clock()
            group.regressed = False
            if notes is not None:
                group.notes = str(notes)
        return group

    def unresolve(self, fingerprint: str) -> ErrorGroup:
        """Mark a resolved group unresolved again."""
        group = self.get_group(fingerprint)
        with self._lock:
            group.status = "unresolved"
            group.resolved_at = None
        return group

    def mark_known(self, fingerprints: Iterable[str]) -> None:
        """Remember fingerprints seen before (e.g. in the store): they are not new groups."""
        with self._lock:
            self.known_fingerprints.update(fingerprints)

    def clear(self) -> None:
        """Forget every record and group and restart the rate window (drops stay counted)."""
        self.records.clear()
        with self._lock:
            self.groups.clear()
            self._histogram.clear()
            self.total_recorded = 0
            self.ungrouped = 0
            self._window_start = self.clock()

    def get_error_analysis(
        self,
        *,
        top: int = 10,
        buckets: int = 12,
        runs: Sequence[Mapping[str, Any]] | None = None,
        known_fingerprints: Iterable[str] | None = None,
    ) -> ErrorAnalysis:
        """Totals, rate per hour, top groups, categories, trend and new groups.

        The rate is per hour over the tracked window (since the tracker started or was
        cleared, at least :data:`MIN_RATE_WINDOW_S`). The trend splits the window into
        *buckets* time buckets; *runs* (``[{"run_id": ..., "count": ...}]``, oldest first,
        from the store) adds a per-run series. A group is new unless its fingerprint is in
        *known_fingerprints* or was passed to :meth:`mark_known`.
        """
        now = self.clock()
        with self._lock:
            groups = sorted(self.groups.values(), key=lambda g: (-g.count, -g.last_seen))
            total = self.total_recorded
            histogram = dict(self._histogram)
            known = set(self.known_fingerprints)
            start = self._window_start
            ungrouped = self.ungrouped
        if known_fingerprints is not None:
            known.update(known_fingerprints)
        window = max(0.0, now - start)
        hours = max(window, MIN_RATE_WINDOW_S) / 3600.0
        categories: dict[str, int] = {}
        for group in groups:
            categories[group.category] = categories.get(group.category, 0) + group.count
        width = max(1.0, float(math.ceil(window / max(1, int(buckets)))))
        # A window shorter than the buckets asked for gets fewer (one-second) buckets.
        bucket_count = max(1, min(int(buckets), math.ceil(window / width)))
        series = [0] * bucket_count
        for second, count in histogram.items():
            index = int((second - int(start)) // width)
            if 0 <= index < bucket_count:
                series[index] += count
            elif index >= bucket_count:
                series[-1] += count
        trend: dict[str, Any] = {
            "bucket_seconds": width,
            "buckets": [
                {"start": start + i * width, "count": count} for i, count in enumerate(series)
            ],
            "direction": trend_direction(series),
        }
        if runs is not None:
            run_series = [dict(run) for run in runs]
            trend["runs"] = run_series
            trend["runs_direction"] = trend_direction(
                [float(run.get("count", 0) or 0) for run in run_series]
            )
        return ErrorAnalysis(
            total_errors=total,
            unique_errors=len(groups) + ungrouped,
            error_rate=round(total / hours, 3),
            top_groups=[group.to_dict() for group in groups[: max(0, top)]],
            categories=dict(sorted(categories.items(), key=lambda item: -item[1])),
            trend=trend,
            new_groups=[g.fingerprint for g in groups if g.fingerprint not in known],
            regressed_groups=[g.fingerprint for g in groups if g.regressed],
            window_seconds=round(window, 3),
            first_seen=min((g.first_seen for g in groups), default=None),
            last_seen=max((g.last_seen for g in groups), default=None),
            dropped=self.records.dropped,
            ungrouped=ungrouped,
        )

    def stats(self) -> dict[str, int]:
        """Counts for ``get_debug_summary()``, with the groups and every error counted."""
        stats = super().stats()
        with self._lock:
            stats["groups"] = len(self.groups)
            stats["errors_total"] = self.total_recorded
        return stats


# Helpers ----------------------------------------------------------------------------------
def _check_severity(severity: str | None) -> str:
    if severity is None:
        return "error"
    text = getattr(severity, "value", severity)
    if isinstance(text, str) and text.lower() in SEVERITIES:
        return text.lower()
    msg = f"severity must be one of {', '.join(SEVERITIES)} (or None), got {severity!r}"
    raise ValueError(msg)


def _check_fingerprint(fingerprint: str | Sequence[str] | None) -> list[str] | None:
    if fingerprint is None:
        return None
    if isinstance(fingerprint, str):
        parts = [fingerprint]
    elif isinstance(fingerprint, Sequence) and all(isinstance(p, str) for p in fingerprint):
        parts = list(fingerprint)
    else:
        parts = []
    if not parts or not all(part.strip() for part in parts):
        msg = (
            "fingerprint must be a non-empty string or a list of non-empty strings"
            f" ('{{{{ default }}}}' stands for the computed one), got {fingerprint!r}"
        )
        raise ValueError(msg)
    return parts


def _chain_entry(node: _ExcNode) -> dict[str, Any]:
    return {
        "relation": node.relation,
        "depth": node.depth,
        "error_type": node.type_name,
        "error_message": node.message,
        "frames": [frame.to_dict() for frame in node.frames],
        "frames_omitted": node.omitted + node.outer_omitted,
        "exception_notes": node.notes,
    }


def _render_frames(frames: Sequence[StackFrame], omitted: int, indent: str) -> list[str]:
    """Frame lines as Python prints them: runs of one repeated line collapsed after three."""
    lines: list[str] = []
    # The kept frames are the outermost quarter and the innermost rest (see _select).
    split = len(frames) // 4 if omitted else None
    previous: tuple[str, int | None, str] | None = None
    repeats = 0

    def close_run() -> None:
        if repeats > 3:
            lines.append(f"{indent}  [Previous line repeated {repeats - 3} more times]")

    for index, frame in enumerate(frames):
        if index == split:
            close_run()
            previous, repeats = None, 0
            lines.append(f"{indent}  [... {omitted} frames omitted ...]")
        identity = (frame.filename, frame.lineno, frame.function)
        if identity == previous:
            repeats += 1
            if repeats > 3:
                continue
        else:
            close_run()
            previous, repeats = identity, 1
        lines.append(f'{indent}  File "{frame.filename}", line {frame.lineno}, in {frame.function}')
        if frame.line:
            lines.append(f"{indent}    {frame.line}")
        if frame.locals:
            lines.extend(f"{indent}    {name} = {value}" for name, value in frame.locals.items())
    if split is not None and split >= len(frames):
        close_run()
        previous, repeats = None, 0
        lines.append(f"{indent}  [... {omitted} frames omitted ...]")
    close_run()
    return lines


def _render(node: _ExcNode, indent: str = "") -> str:
    """Traceback text of *node* and its chain, causes first as Python prints them."""
    lines: list[str] = []
    if node.cause is not None:
        lines.append(_render(node.cause, indent))
        separator = _CHAIN_CAUSE if node.cause.relation == "cause" else _CHAIN_CONTEXT
        lines.append(f"{indent}\n{indent}{separator}\n{indent}")
    if node.frames or node.omitted or node.outer_omitted:
        lines.append(f"{indent}Traceback (most recent call last):")
        if node.outer_omitted:
            lines.append(
                f"{indent}  [... {node.outer_omitted} outer frames of the test runner and"
                " libraries omitted ...]"
            )
        lines.extend(_render_frames(node.frames, node.omitted, indent))
    lines.append(
        f"{indent}{node.type_name}: {node.message}" if node.message else indent + node.type_name
    )
    lines.extend(f"{indent}{note}" for note in node.notes)
    for index, member in enumerate(node.members, start=1):
        lines.append(f"{indent}+---------------- {index} ----------------")
        lines.append(_render(member, indent + "| "))
    return "\n".join(lines)


def _truncate_text(text: str, max_frames: int) -> str:
    """Traceback text with frames past *max_frames* per chain block cut from the middle."""
    blocks: list[list[str]] = [[]]
    for line in text.splitlines():
        blocks[-1].append(line)
        if line.strip(" |") in (_CHAIN_CAUSE, _CHAIN_CONTEXT):
            blocks.append([])
    result = "\n".join(line for block in blocks for line in _truncate_block(block, max_frames))
    if len(result) > MAX_STACK_TEXT:
        half = MAX_STACK_TEXT // 2
        cut = len(result) - MAX_STACK_TEXT
        result = f"{result[:half]}\n[... {cut} characters omitted ...]\n{result[-half:]}"
    return result


def _truncate_block(lines: list[str], max_frames: int) -> list[str]:
    """One exception's traceback lines, keeping the outer quarter and the inner rest of frames."""
    starts = [i for i, line in enumerate(lines) if _TRACEBACK_FRAME.match(line)]
    if len(starts) <= max_frames:
        return lines
    head = max_frames // 4
    tail = max_frames - head
    cut_from = starts[head]
    cut_to = starts[len(starts) - tail] if tail > 0 else _after_last_frame(lines, starts)
    omitted = len(starts) - max_frames
    return [*lines[:cut_from], f"  [... {omitted} frames omitted ...]", *lines[cut_to:]]


def _after_last_frame(lines: list[str], starts: list[int]) -> int:
    last = starts[-1]
    if last + 1 < len(lines) and lines[last + 1].startswith("    "):
        return last + 2
    return last + 1


__all__ = [
    "SEVERITIES",
    "ErrorAnalysis",
    "ErrorGroup",
    "ErrorRecord",
    "ErrorTracker",
    "StackFrame",
    "normalize_message",
    "trend_direction",
]
