"""``ErrorTracker``: errors of one extension, grouped by fingerprint, classified and analysed."""

from __future__ import annotations

import math
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import field
from typing import TYPE_CHECKING, Any, NamedTuple

from ..component import Component, export_text
from ..context import CURRENT_SESSION, SessionInfo
from ..lazy import LateImports
from ..model import LOG_LEVELS
from ..redactor import Redactor
from ..scrub import scrubber_for
from ..sharedmethods import dataclass
from ..values import clean_text, safe_repr
from .grouping import (
    ErrorGroup,
    ErrorRecord,
    fingerprint_of,
    group_order,
    normalize_message,
    trend_direction,
)

if TYPE_CHECKING:
    from .capture import (
        MAX_MESSAGE,
        MAX_STACK_TEXT,
        ExceptionNode,
        StackCapture,
        chain_entry,
        render,
        safe_message,
        type_display,
    )
    from .classify import ErrorClassifier

#: The reading of stacks and the classification: imported by the first error recorded (or
#: the first use of the tracker's ``capture`` or ``classifier``), not by every run.
_LATE = LateImports(
    globals(),
    __package__,
    {
        "MAX_MESSAGE": ".capture:MAX_MESSAGE",
        "MAX_STACK_TEXT": ".capture:MAX_STACK_TEXT",
        "StackCapture": ".capture:StackCapture",
        "chain_entry": ".capture:chain_entry",
        "render": ".capture:render",
        "safe_message": ".capture:safe_message",
        "type_display": ".capture:type_display",
        "ErrorClassifier": ".classify:ErrorClassifier",
    },
)

#: Accepted severities of an error record (its ``level``).
#: Error groups kept per tracker; errors of further new fingerprints are only counted.
MAX_GROUPS = 5000
#: Test ids and session ids remembered per group (the counts stop growing past it).
MAX_AFFECTED = 200
#: Seconds of per-second error counts kept for time-bucket trends.
HISTOGRAM_SECONDS = 20_000
#: The shortest window an error rate is extrapolated from (a burst just after start would
#: otherwise read as thousands per hour).
MIN_RATE_WINDOW_S = 60.0


class _Stack(NamedTuple):
    """An error's analysed stack: its exception, the chained ones, the traceback text."""

    root: ExceptionNode | None
    chain: Sequence[ExceptionNode]
    text: str | None

    def culprit(self) -> str | None:
        """Where the error was raised: the innermost in-app frame's module and function."""
        if self.root is None:
            return None
        app_frames = [f for f in self.root.frames if f.in_app] or self.root.frames
        if not app_frames:
            return None
        return f"{app_frames[-1].module} in {app_frames[-1].function}"


_NO_STACK = _Stack(None, (), None)


def _grouping(
    error_type: str, template: str, stack: _Stack, custom: list[str] | None
) -> tuple[str, str]:
    """How an error is grouped (``stack``, ``message`` or ``custom``) and its fingerprint.

    Its exception's code path when the stack has one, else its type and message template;
    a *custom* fingerprint's ``{{ default }}`` parts stand for that one.
    """
    root = stack.root
    if root is not None and root.fingerprint_keys():
        grouping = "stack"
        parts = [error_type, *root.fingerprint_keys()]
        for node in stack.chain:
            parts += ["|", node.type_name, *node.fingerprint_keys()]
        default = fingerprint_of(["stack", *parts])
    else:
        grouping = "message"
        default = fingerprint_of(["message", error_type, template])
    if custom is None:
        return grouping, default
    parts = [default if part == "{{ default }}" else part for part in custom]
    return "custom", fingerprint_of(["custom", *parts])


@dataclass(frozen=True, slots=True)
class _Given:
    """What a record call was given besides the error itself, checked."""

    severity: str
    context: dict[str, Any]
    custom: list[str] | None = None
    nodeid: str | None = None


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


class _OnCapture:
    """An attribute the tracker keeps on its :class:`StackCapture` (set here, seen there)."""

    def __set_name__(self, owner: type, name: str) -> None:
        self.name = name

    def __get__(self, tracker: Any, owner: type | None = None) -> Any:
        return self if tracker is None else getattr(tracker.capture, self.name)

    def __set__(self, tracker: Any, prefixes: Iterable[str]) -> None:
        setattr(tracker.capture, self.name, list(prefixes))


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
    #: Module prefixes counted as in-app even when installed in site-packages.
    in_app_include = _OnCapture()
    #: Module prefixes never counted as in-app.
    in_app_exclude = _OnCapture()

    def __init__(
        self,
        *args: Any,
        clock: Callable[[], float] = time.time,
        classifier: ErrorClassifier | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.clock = clock
        self._classifier = classifier
        #: Capture frame locals of in-app frames (off unless the user asks).
        self.capture_locals = False
        self.groups: dict[str, ErrorGroup] = {}
        self.total_recorded = 0
        self.ungrouped = 0
        self.known_fingerprints: set[str] = set()
        self._window_start = clock()
        self._histogram: OrderedDict[int, int] = OrderedDict()
        #: Open sessions' counts (None: open, no error yet).
        self._sessions: dict[str, _SessionErrors | None] = {}
        self._lock = threading.RLock()
        cfg = self.configuration
        scrubber = scrubber_for(cfg.redact_patterns)
        self._scrub = scrubber.scrub
        #: The serializer of error context: the rule of log fields and span tags (a
        #: secret-named field redacted, secrets in URLs and text scrubbed).
        self._values = Redactor(
            cfg.redact_fields,
            max_repr_length=cfg.max_repr_length,
            max_text_length=cfg.max_repr_length,
            max_depth=5,
            max_items=100,
            scrubber=scrubber,
        )
        self._capture_config = cfg
        self._capture: StackCapture | None = None

    @property
    def capture(self) -> StackCapture:
        """How stacks are read (in-app frames, kept frames, locals); made at its first use."""
        capture = self._capture
        if capture is None:
            with self._lock:
                if self._capture is None:
                    if not _LATE.loaded:
                        _LATE.load()
                    package = self.extension_id.replace("-", "_")
                    self._capture = StackCapture(
                        self._capture_config,
                        is_secret=self._values.is_secret,
                        scrub=self._scrub,
                        in_app_include=[package] if package.isidentifier() else [],
                    )
                capture = self._capture
        return capture

    @property
    def classifier(self) -> ErrorClassifier:
        """How errors are classified (the default classifier made at its first use)."""
        classifier = self._classifier
        if classifier is None:
            with self._lock:
                if self._classifier is None:
                    if not _LATE.loaded:
                        _LATE.load()
                    self._classifier = ErrorClassifier()
                classifier = self._classifier
        return classifier

    @classifier.setter
    def classifier(self, classifier: ErrorClassifier) -> None:
        self._classifier = classifier

    @property
    def group_counts(self) -> dict[str, int]:
        """Occurrences per fingerprint (every error counted, also past ``max_errors``)."""
        with self._lock:
            return {fp: group.count for fp, group in self.groups.items()}

    # Sessions --------------------------------------------------------------------------
    def begin_session(self, session: SessionInfo) -> None:
        """Begin keeping *session*'s records and exact group counts."""
        super().begin_session(session)
        # No lock: no record of a session is filed before it begins, and setdefault is atomic.
        self._sessions.setdefault(session.session_id, None)

    def _session_state(self, session_id: str) -> _SessionErrors | None:
        """The counts of the open session *session_id*, made by its first error (None: not
        open). Called with the lock held."""
        if session_id not in self._sessions:
            return None
        state = self._sessions[session_id]
        if state is None:
            state = self._sessions[session_id] = _SessionErrors()
        return state

    def end_session(self, session: SessionInfo) -> dict[str, Any]:
        """Records of the session (oldest first), drops, exact total and per-group counts."""
        records, dropped = self.records.close_session(session.session_id)
        with self._lock:
            state = self._sessions.pop(session.session_id, None)
        if state is None:
            if not records:  # no error in the session: most sessions
                return {"records": [], "dropped": dropped, "total": 0, "groups": []}
            state = _SessionErrors()
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
        if not _LATE.loaded:
            _LATE.load()
        if not isinstance(error_type, str) or not error_type.strip():
            msg = f"error_type must be a non-empty string, got {error_type!r}"
            raise TypeError(msg)
        if not isinstance(error_message, str):
            error_message = safe_repr(error_message, MAX_MESSAGE)
        if stack_trace is not None and not isinstance(stack_trace, str):
            msg = f"stack_trace must be traceback text or None, got {type(stack_trace).__name__}"
            raise TypeError(msg)
        given = self._given(severity, fingerprint, context, nodeid)
        if not self.enabled:
            return None
        stack = _NO_STACK
        if stack_trace and stack_trace.strip() and stack_trace.strip() != "NoneType: None":
            stack = self._parsed(stack_trace)
        message = error_message[:MAX_MESSAGE]
        return self._store(error_type.strip(), message, stack, given, source="record")

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
        if not _LATE.loaded:
            _LATE.load()
        given = self._given(severity, fingerprint, context, nodeid)
        if not self.enabled:
            return None
        if source == "exception" and given.context.get("source") == "log":
            source = "log"  # reported live by the logger for an ERROR record with exc_info
        message = safe_message(exc)
        type_name = type_display(type(exc))
        session = CURRENT_SESSION.get()
        if session is not None:
            key = (id(exc), type_name, message)
            with self._lock:
                state = self._session_state(session.session_id)
                if state is not None:
                    if key in state.exception_keys:
                        return None
                    if len(state.exception_keys) < 1000:
                        state.exception_keys.add(key)
        want_locals = self.capture_locals if capture_locals is None else bool(capture_locals)
        try:
            nodes = self.capture.exception_nodes(exc, want_locals)
            stack = _Stack(nodes[0], nodes[1:], render(nodes[0])[:MAX_STACK_TEXT])
        except Exception as problem:  # never lose the error to a failure of the analysis
            self.add_diagnostic(f"stack analysis failed: {type(problem).__name__}: {problem}")
            stack = _NO_STACK
        return self._store(type_name, message, stack, given, source=source, exc=exc)

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
        if not _LATE.loaded:
            _LATE.load()
        session_id = data.get("session_id")
        error_type = str(exception.get("type") or "Exception")
        message = str(exception.get("message") or "")[:MAX_MESSAGE]
        log_key = (data.get("ts"), data.get("name"), data.get("message"), error_type, message)
        with self._lock:
            state = self._session_state(session_id) if isinstance(session_id, str) else None
            if state is not None:
                if log_key in state.log_keys or (error_type.rsplit(".", 1)[-1], message) in (
                    state.seen_errors
                ):
                    return None
                if len(state.log_keys) < 10_000:
                    state.log_keys.add(log_key)
        traceback_text = exception.get("traceback")
        stack = _NO_STACK
        if isinstance(traceback_text, str) and traceback_text.strip():
            stack = self._parsed(traceback_text)
        if stack.root is not None and stack.root.type_name:
            error_type = stack.root.type_name
        ts = data.get("ts")
        context = {"log_message": data.get("message"), "logger": data.get("name")}
        return self._store(
            error_type,
            message,
            stack,
            _Given(level, self._context(context)),
            source="log",
            ts=float(ts) if isinstance(ts, (int, float)) else None,
            session_id=session_id if isinstance(session_id, str) else None,
        )

    def record_logs(self, records: Iterable[Any]) -> int:
        """Feed every log record of *records* to :meth:`record_log`; return how many recorded."""
        return sum(1 for record in records if self.record_log(record) is not None)

    def _given(
        self,
        severity: str | None,
        fingerprint: str | Sequence[str] | None,
        context: Mapping[str, Any] | None,
        nodeid: str | None,
    ) -> _Given:
        """The options of a record call, checked (bad ones raise even while disabled)."""
        return _Given(
            severity=_check_severity(severity),
            custom=_check_fingerprint(fingerprint),
            context=self._context(context),
            nodeid=nodeid,
        )

    def _parsed(self, traceback_text: str) -> _Stack:
        text, nodes = self.capture.parse_traceback(traceback_text)
        return _Stack(nodes[0] if nodes else None, nodes[1:], text)

    def _store(
        self,
        error_type: str,
        message: str,
        stack: _Stack,
        given: _Given,
        *,
        source: str,
        exc: BaseException | None = None,
        ts: float | None = None,
        session_id: str | None = None,
    ) -> ErrorRecord:
        # Text leaves here for storage: made writable and its secrets scrubbed.
        message = self._scrub(clean_text(message, MAX_MESSAGE))
        stack_text = (
            None if stack.text is None else self._scrub(clean_text(stack.text, MAX_STACK_TEXT))
        )
        error_type = clean_text(error_type, 500)
        template = normalize_message(message)
        grouping, fingerprint = _grouping(error_type, template, stack, given.custom)
        classification = self.classifier.classify(error_type, message, exc)
        root, nodeid = stack.root, given.nodeid
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
            context=given.context,
            severity=given.severity,
            category=classification.category,
            suggestion=classification.suggestion,
            grouping=grouping,
            culprit=stack.culprit(),
            frames=[frame.to_dict() for frame in root.frames] if root is not None else [],
            frames_omitted=root.omitted + root.outer_omitted if root is not None else 0,
            chain=[chain_entry(node) for node in stack.chain],
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
            state = self._session_state(record.session_id) if record.session_id else None
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
        return sorted(groups, key=group_order)

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
            groups = sorted(self.groups.values(), key=group_order)
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
    if isinstance(text, str) and text.lower() in LOG_LEVELS:
        return text.lower()
    msg = f"severity must be one of {', '.join(LOG_LEVELS)} (or None), got {severity!r}"
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


__all__ = [
    "ErrorAnalysis",
    "ErrorTracker",
]
