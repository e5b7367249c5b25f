"""Typed, frozen records of a test and a run, and the vocabulary every layer shares.

Everything above the components (rules, gates, the report, the CLI, the API, the exporters)
reads a test through :class:`TestRecord` and a run through :class:`RunRecord`, built from the
stored dictionaries by ``from_dict`` (which also migrates the documents of older versions).

Version history of a test record (``record_version``) and of a run document (``version``):

1. phases as pytest timed them, *including* the plugin's own start/stop work; ``duration_ms``
   the sum of every phase; CPU only as the debug session's ``resources.cpu_ms``.
2. phases cover the test's own setup/call/teardown only; ``duration_ms`` is setup + call (see
   :mod:`pytest_kari_debug.figures`); ``cpu_ms`` is the test's own CPU time over the same
   window; ``kari_overhead_ms`` is the plugin's own time in the test's window.
"""

from __future__ import annotations

import enum
import functools
import math
import operator
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import field
from types import MappingProxyType
from typing import Any, TypeAlias, TypeGuard

from .exceptions import ConfigurationError
from .sharedmethods import dataclass

#: Version of a test record and of a run document written today.
SCHEMA_VERSION = 2
#: ``format`` of a run document (``--kari-json``).
RUN_FORMAT = "pytest-kari-debug/run"
#: pytest's outcome words, as a record spells them.
OUTCOMES = ("passed", "failed", "skipped", "xfailed", "xpassed", "error")
#: The phases of a test, in order.
PHASES = ("setup", "call", "teardown")
#: ``origin`` of the log record a capped session puts where it dropped records (a marker, not
#: one of the user's records: no figure counts it).
DROP_MARKER_ORIGIN = "kari.drops"


# Vocabulary ----------------------------------------------------------------------------------
class Kind(enum.Enum):
    """A component's records, under the three spellings in use.

    ``value`` is the key of a test's ``collected_data`` (``"logging"``), ``record`` the kind of
    one record in the store (``"log"``), ``plural`` the name of a list of them in a document,
    an API route or a CLI command (``"logs"``).
    """

    LOGGING = "logging"
    METRICS = "metrics"
    ERROR_TRACKING = "error_tracking"
    TRACING = "tracing"
    ALERTING = "alerting"
    PROFILING = "profiling"

    @property
    def record(self) -> str:
        """The store's kind of one record (``log``, ``metric``, ``error``...)."""
        return _RECORD[self]

    @property
    def plural(self) -> str:
        """The name of a list of these records (``logs``, ``metrics``, ``errors``...)."""
        return _RECORD[self] + "s"

    @classmethod
    def parse(cls, name: str | Kind) -> Kind:
        """The kind spelled *name* in any of its three spellings (case-insensitive)."""
        if isinstance(name, Kind):
            return name
        found = _SPELLINGS.get(str(name).strip().lower())
        if found is None:
            accepted = ", ".join(sorted(_SPELLINGS))
            msg = f"unknown record kind {name!r}; accepted: {accepted}"
            raise ConfigurationError(msg)
        return found


_RECORD = {
    Kind.LOGGING: "log",
    Kind.METRICS: "metric",
    Kind.ERROR_TRACKING: "error",
    Kind.TRACING: "span",
    Kind.ALERTING: "alert",
    Kind.PROFILING: "profile",
}
_KINDS = {kind.value: kind for kind in Kind}
#: The value of each kind (``Kind.value`` is a descriptor call).
_VALUES: dict[Kind | str, str] = {kind: kind.value for kind in Kind}
_SPELLINGS = {
    spelling: kind for kind in Kind for spelling in (kind.value, _RECORD[kind], _RECORD[kind] + "s")
}


@functools.total_ordering
class AlertSeverity(enum.Enum):
    """How bad an alert is; severities are ordered LOW < MEDIUM < HIGH < CRITICAL."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        """1 for LOW up to 4 for CRITICAL."""
        return ALERT_SEVERITIES.index(self.value) + 1

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, AlertSeverity):
            return NotImplemented
        return self.rank < other.rank

    @classmethod
    def parse(cls, value: str | AlertSeverity) -> AlertSeverity:
        """Return the severity named *value* (case-insensitive)."""
        if isinstance(value, AlertSeverity):
            return value
        if isinstance(value, str):
            found = cls.__members__.get(value.strip().upper())
            if found is not None:
                return found
        accepted = ", ".join(s.value for s in cls)
        msg = f"unknown alert severity {value!r}; accepted: {accepted}"
        raise ConfigurationError(msg)


#: Alert severity names, lowest first.
ALERT_SEVERITIES: tuple[str, ...] = tuple(s.value for s in AlertSeverity)
#: Alert severity names, worst first (the order views list them in).
ALERT_SEVERITIES_WORST_FIRST: tuple[str, ...] = ALERT_SEVERITIES[::-1]
#: Log level names and their numbers (``logging``'s), lowest first.
LOG_LEVELS: Mapping[str, int] = MappingProxyType(
    {"debug": 10, "info": 20, "warning": 30, "error": 40, "critical": 50}
)
#: Log level names as log records spell them, lowest first.
LOG_LEVEL_NAMES: tuple[str, ...] = tuple(name.upper() for name in LOG_LEVELS)
#: Other spellings accepted for a log level name.
LOG_LEVEL_ALIASES: Mapping[str, str] = MappingProxyType({"WARN": "WARNING", "FATAL": "CRITICAL"})
#: Comparison operators of rules and thresholds.
OPERATORS: Mapping[str, Callable[[float, float], bool]] = MappingProxyType(
    {
        ">": operator.gt,
        ">=": operator.ge,
        "<": operator.lt,
        "<=": operator.le,
        "==": operator.eq,
        "!=": operator.ne,
    }
)
#: Other spellings accepted for a comparison operator.
OPERATOR_ALIASES: Mapping[str, str] = MappingProxyType(
    {"gt": ">", "ge": ">=", "gte": ">=", "lt": "<", "le": "<=", "lte": "<=", "eq": "==", "ne": "!="}
)
MIB = 1024.0 * 1024.0


class Unit(enum.Enum):
    """The unit of a figure's value; ``base`` and ``factor`` give it in base units."""

    MS = "ms"
    PERCENT = "%"
    MIB = "MiB"
    BYTES = "bytes"
    BLOCKS = "blocks"
    RECORDS = "records"
    ERRORS = "errors"
    SPANS = "spans"
    PER_SECOND = "errors/s"
    NONE = ""

    @property
    def base(self) -> Unit:
        """The base unit of this one (MiB -> bytes; the others are their own base)."""
        return Unit.BYTES if self is Unit.MIB else self

    @property
    def factor(self) -> float:
        """Multiply a value in this unit by this to get it in :attr:`base` units."""
        return MIB if self is Unit.MIB else 1.0


# Records -------------------------------------------------------------------------------------
def finite(value: Any) -> float | None:
    """*value* as a float when it is a finite number (not a bool), else None."""
    kind = type(value)
    if kind is float:  # the common cases first: records are read by the thousand
        return value if math.isfinite(value) else None
    try:
        if kind is int:
            return float(value)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        return float(value) if math.isfinite(value) else None
    except OverflowError:  # an integer past a float's range: no finite number
        return None


def _is_mapping(value: Any) -> TypeGuard[Mapping[Any, Any]]:
    return type(value) is dict or (value is not None and isinstance(value, Mapping))


def _frozen(value: Any) -> Mapping[str, Any]:
    return MappingProxyType(dict(value)) if _is_mapping(value) else MappingProxyType({})


@dataclass(frozen=True, slots=True)
class ComponentData:
    """One component's data for one test: its records, how many it dropped, the rest."""

    kind: Kind
    records: tuple[Mapping[str, Any], ...] = ()
    dropped: int = 0
    #: Everything else the component recorded (``resources``, ``memory``, ``samples``...).
    details: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def count(self) -> int:
        """Records the component saw: those kept plus those dropped at its cap."""
        return len(self.records) + self.dropped

    @classmethod
    def from_dict(cls, kind: Kind, data: Mapping[str, Any]) -> ComponentData:
        """Read one ``collected_data`` entry."""
        records, dropped, details = component_parts(data)
        return cls(kind=kind, records=records, dropped=dropped, details=details)

    def to_dict(self) -> dict[str, Any]:
        """The ``collected_data`` entry this was read from."""
        out: dict[str, Any] = {"records": [dict(r) for r in self.records]}
        if self.dropped:
            out["dropped"] = self.dropped
        out.update(self.details)
        return out


@dataclass(frozen=True, slots=True)
class TestRecord:
    """Everything recorded about one test (one entry of a run document's ``tests``)."""

    __test__ = False  # not a pytest test class

    nodeid: str
    extension_id: str
    outcome: str
    #: The test's own time per phase, in ms (without the plugin's work, from version 2).
    phases: Mapping[str, float]
    #: setup + call, in ms (see :mod:`pytest_kari_debug.figures`).
    duration_ms: float
    #: The test's own CPU time (user + system) over setup + call, in ms; None if unknown.
    cpu_ms: float | None = None
    #: The plugin's own time inside the test's window, in ms; None if not measured.
    kari_overhead_ms: float | None = None
    extension_name: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    session_id: str | None = None
    worker: str | None = None
    longrepr: str | None = None
    #: Where and why the test failed (phase, message, location, excerpt, verdict), if it did.
    failure: Mapping[str, Any] | None = None
    #: Output captured per phase and stream (``{"phase", "stream", "text"}`` each).
    captured: tuple[Mapping[str, Any], ...] = ()
    crashed: bool = False
    collected: Mapping[Kind, ComponentData] = field(default_factory=lambda: MappingProxyType({}))
    #: Unknown components' data, kept as written so nothing is lost on a round trip.
    other_data: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    extra: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    #: Keys this version does not know, kept as written.
    unknown: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    version: int = SCHEMA_VERSION

    def component(self, kind: Kind | str) -> ComponentData | None:
        """The data of component *kind* (any spelling), or None when it was off."""
        return self.collected.get(Kind.parse(kind))

    def detail(self, kind: Kind, key: str) -> Mapping[str, Any] | None:
        """A mapping a component recorded besides its records (``metrics`` ``resources``)."""
        data = self.collected.get(kind)
        found = data.details.get(key) if data is not None else None
        return found if isinstance(found, Mapping) and found else None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TestRecord:
        """Read a test record of any version (older ones are migrated, see the module)."""
        version = int(finite(data.get("record_version")) or 1)
        phases = _phases(data)
        collected, other = _components(data)
        duration = finite(data.get("duration_ms"))
        if version < 2 or duration is None:
            # Version 1 summed every phase; the figure is setup + call.
            duration = round(phases.get("setup", 0.0) + phases.get("call", 0.0), 3)
        return cls(
            nodeid=str(data.get("nodeid", "")),
            extension_id=str(data.get("extension_id") or "unknown"),
            outcome=str(data.get("outcome") or "error"),
            phases=phases,
            duration_ms=duration,
            cpu_ms=finite(data.get("cpu_ms")) if version >= 2 else None,
            kari_overhead_ms=finite(data.get("kari_overhead_ms")) if version >= 2 else None,
            extension_name=_text(data.get("extension_name")),
            started_at=finite(data.get("started_at")),
            finished_at=finite(data.get("finished_at")),
            session_id=_text(data.get("session_id")),
            worker=_text(data.get("worker")),
            longrepr=_text(data.get("longrepr")),
            failure=_frozen(data["failure"]) if _is_mapping(data.get("failure")) else None,
            captured=tuple(
                MappingProxyType(dict(c)) for c in data.get("captured") or () if _is_mapping(c)
            ),
            crashed=bool(data.get("crashed", False)),
            collected=MappingProxyType(collected),
            other_data=MappingProxyType(other),
            extra=_frozen(data.get("extra")),
            unknown=MappingProxyType(
                {}
                if data.keys() <= _KNOWN_KEYS
                else {k: v for k, v in data.items() if k not in _KNOWN_KEYS}
            ),
            version=version,
        )

    def to_dict(self) -> dict[str, Any]:
        """The record as the JSON document and the store write it (current version)."""
        out: dict[str, Any] = {
            "record_version": SCHEMA_VERSION,
            "nodeid": self.nodeid,
            "extension_id": self.extension_id,
            "outcome": self.outcome,
            "phases": dict(self.phases),
            "duration_ms": self.duration_ms,
            "cpu_ms": self.cpu_ms,
            "kari_overhead_ms": self.kari_overhead_ms,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "session_id": self.session_id,
            "worker": self.worker,
            "longrepr": self.longrepr,
            "collected_data": {
                **{kind.value: data.to_dict() for kind, data in self.collected.items()},
                **self.other_data,
            },
            "extra": dict(self.extra),
        }
        if self.extension_name is not None:
            out["extension_name"] = self.extension_name
        if self.failure is not None:
            out["failure"] = None if self.failure is None else dict(self.failure)
        if self.captured:
            out["captured"] = [dict(c) for c in self.captured]
        if self.crashed:
            out["crashed"] = True
        out.update(self.unknown)
        return out


_TEST_KEYS = (
    "nodeid", "extension_id", "extension_name", "outcome", "phases", "duration_ms", "cpu_ms",
    "kari_overhead_ms", "started_at", "finished_at", "session_id", "worker", "longrepr",
    "failure", "captured", "crashed", "collected_data", "extra",
)  # fmt: skip
_KNOWN_KEYS = frozenset((*_TEST_KEYS, "record_version"))


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


# Reading a test as a stored dict or a typed record -------------------------------------------
#: A test as the layers above the components get it: typed, or the dict the journal, the store
#: and a run document keep (read here, by the functions below, without building a record).
AnyTest: TypeAlias = "TestRecord | Mapping[str, Any]"


def _collected(data: Mapping[str, Any]) -> Mapping[str, Any]:
    raw = data.get("collected_data")
    return raw if _is_mapping(raw) else {}


def _components(data: Mapping[str, Any]) -> tuple[dict[Kind, ComponentData], dict[str, Any]]:
    """The known components' data of a test's dict, and the unknown entries as written."""
    collected: dict[Kind, ComponentData] = {}
    other: dict[str, Any] = {}
    for key, value in _collected(data).items():
        kind = _KINDS.get(key) if type(key) is str else None
        if kind is None:
            try:
                kind = Kind(key)
            except ValueError:
                other[key] = value
                continue
        if _is_mapping(value):
            collected[kind] = ComponentData.from_dict(kind, value)
    return collected, other


def _phases(data: Mapping[str, Any]) -> Mapping[str, float]:
    phases: dict[str, float] = {}
    raw = data.get("phases")
    if type(raw) is dict or _is_mapping(raw):
        for phase in PHASES:
            value = raw.get(phase)
            if type(value) is not float:  # (read for every kept test: a float as written)
                value = finite(value)
                if value is None:
                    continue
            elif not math.isfinite(value):
                continue
            phases[phase] = value
    return MappingProxyType(phases)


def _component_records(data: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...]:
    records = data.get("records")
    if not records or not isinstance(records, (list, tuple)):
        return ()
    return tuple(r for r in records if _is_mapping(r))


def _component_dropped(data: Mapping[str, Any]) -> int:
    dropped = data.get("dropped")
    if type(dropped) is not int:  # an int as written is the common case
        dropped = int(finite(dropped) or 0.0)
    return dropped if dropped > 0 else 0


def component_parts(
    data: Mapping[str, Any],
) -> tuple[tuple[Mapping[str, Any], ...], int, Mapping[str, Any]]:
    """One component's ``collected_data`` entry as :class:`ComponentData` keeps it: its
    records, how many it dropped, the rest (also for a component this version does not know,
    kept in :attr:`TestRecord.other_data`)."""
    details = dict(data)
    details.pop("records", None)
    details.pop("dropped", None)
    return _component_records(data), _component_dropped(data), MappingProxyType(details)


def phases_of(test: AnyTest) -> Mapping[str, float]:
    """The test's own time per phase, in ms (:attr:`TestRecord.phases`)."""
    return test.phases if isinstance(test, TestRecord) else _phases(test)


def component_of(test: AnyTest, kind: Kind | str) -> ComponentData | None:
    """The data of component *kind* (any spelling) of *test*, or None when it was off."""
    if isinstance(test, TestRecord):
        return test.component(kind)
    kind = Kind.parse(kind)
    data = _collected(test).get(kind.value)
    return ComponentData.from_dict(kind, data) if _is_mapping(data) else None


def kept_and_dropped(
    test: AnyTest, kind: Kind | str
) -> tuple[tuple[Mapping[str, Any], ...], int] | None:
    """The records component *kind* kept for *test* and how many it dropped at its cap; None
    when it was off (what :func:`component_of` gives, without building its details)."""
    if isinstance(test, TestRecord):
        found = test.component(kind)
        return None if found is None else (found.records, found.dropped)
    collected = test.get("collected_data")
    if type(collected) is not dict and not _is_mapping(collected):
        collected = {}
    data = collected.get(_VALUES.get(kind) or Kind.parse(kind).value)
    if type(data) is dict:  # read at every kept test: the shape a session's end gives first
        records, dropped = data.get("records"), data.get("dropped")
        if type(records) is list and type(dropped) is int and dropped >= 0:
            for record in records:
                if type(record) is not dict:
                    break
            else:
                return tuple(records), dropped
    if not _is_mapping(data):
        return None
    return _component_records(data), _component_dropped(data)


def records_of(test: AnyTest, kind: Kind | str) -> tuple[Mapping[str, Any], ...]:
    """The records component *kind* (any spelling) kept for *test*; none when it was off."""
    if isinstance(test, TestRecord):
        found = test.component(kind)
        return found.records if found is not None else ()
    data = _collected(test).get(Kind.parse(kind).value)
    return _component_records(data) if _is_mapping(data) else ()


def dropped_of(test: AnyTest) -> dict[str, int]:
    """Records each component of *test* dropped at its cap, by ``collected_data`` key: every
    component the test has data of (0 where it dropped none), unknown ones too."""
    if isinstance(test, TestRecord):
        found = {kind.value: data.dropped for kind, data in test.collected.items()}
        entries: Iterable[tuple[str, Any]] = test.other_data.items()
    else:
        found, entries = {}, _collected(test).items()
    for key, data in entries:  # (read for every kept test: the common types first)
        if type(data) is dict or _is_mapping(data):
            dropped = data.get("dropped")
            if type(dropped) is not int:
                dropped = _component_dropped(data)
            found[key if type(key) is str else str(key)] = dropped if dropped > 0 else 0
    return found


_UNREAD = object()
#: A component's entries that are not its details.
_PARTS = frozenset(("records", "dropped"))


class RecordView:
    """A test's stored dict read as :class:`TestRecord` reads it, each part only when asked.

    For a reader that looks at a few parts of many records (the run's sections, built as each
    test finishes): the same values as ``TestRecord.from_dict(data)`` gives, without reading
    the parts nobody asks for. :attr:`data` is the dict itself.
    """

    __slots__ = (
        "_collected", "_components", "_entries", "_extra", "_other", "_phases", "_version", "data",
    )  # fmt: skip

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        raw = data.get("collected_data")
        #: The ``collected_data`` entries as written (every reader asks for some).
        self._entries: Mapping[Any, Any] = raw if type(raw) is dict or _is_mapping(raw) else {}
        #: Component data read so far, by ``collected_data`` key (an enum's hash runs in Python).
        self._components: dict[str, ComponentData | None] | None = None
        self._collected: Mapping[Kind, ComponentData] | None = None
        self._other: Mapping[Any, Any] | None = None
        self._phases: Mapping[str, float] | None = None
        self._extra: Mapping[str, Any] | None = None
        self._version: int | None = None

    @property
    def nodeid(self) -> str:
        return str(self.data.get("nodeid", ""))

    @property
    def extension_id(self) -> str:
        return str(self.data.get("extension_id") or "unknown")

    @property
    def outcome(self) -> str:
        return str(self.data.get("outcome") or "error")

    @property
    def version(self) -> int:
        version = self._version
        if version is None:
            version = self._version = int(finite(self.data.get("record_version")) or 1)
        return version

    @property
    def cpu_ms(self) -> float | None:
        version = self._version
        if version is None:
            version = self.version
        return finite(self.data.get("cpu_ms")) if version >= 2 else None

    @property
    def kari_overhead_ms(self) -> float | None:
        version = self._version
        if version is None:
            version = self.version
        return finite(self.data.get("kari_overhead_ms")) if version >= 2 else None

    @property
    def phases(self) -> Mapping[str, float]:
        if self._phases is None:
            self._phases = _phases(self.data)
        return self._phases

    def phase(self, name: str) -> float | None:
        """``phases.get(name)``, without reading the other phases."""
        if self._phases is not None:
            return self._phases.get(name)
        raw = self.data.get("phases")
        if name in PHASES and (type(raw) is dict or _is_mapping(raw)):
            return finite(raw.get(name))
        return None

    @property
    def extra(self) -> Mapping[str, Any]:
        if self._extra is None:  # read-only, not a copy: a view lives as long as its reader
            raw = self.data.get("extra")
            self._extra = MappingProxyType(raw if type(raw) is dict or _is_mapping(raw) else {})
        return self._extra

    @property
    def collected(self) -> Mapping[Kind, ComponentData]:
        """Every known component's data, as :attr:`TestRecord.collected`."""
        found = self._collected
        return found if found is not None else self._read_components()[0]

    @property
    def other_data(self) -> Mapping[Any, Any]:
        """Unknown components' data as written, as :attr:`TestRecord.other_data`."""
        found = self._other
        return found if found is not None else self._read_components()[1]

    def _read_components(self) -> tuple[Mapping[Kind, ComponentData], Mapping[Any, Any]]:
        collected, other = _components(self.data)
        self._collected, self._other = MappingProxyType(collected), MappingProxyType(other)
        return self._collected, self._other

    def component(self, kind: Kind | str) -> ComponentData | None:
        """The data of component *kind* (any spelling), or None when it was off."""
        if type(kind) is not Kind:
            kind = Kind.parse(kind)
        components = self._components
        if components is None:
            components = self._components = {}
        key = kind._value_
        found = components.get(key, _UNREAD)
        if found is _UNREAD:
            raw = self._entries.get(key)
            if type(raw) is dict or _is_mapping(raw):
                found = ComponentData.from_dict(kind, raw)
            else:
                found = None
            components[key] = found
        return found  # type: ignore[return-value]

    # What a reader of many records asks most, without building the component's data (each
    # reads the entry as component does, inline: these run a few times a test for every test).
    def has(self, kind: Kind) -> bool:
        """Whether component *kind* recorded (``component(kind) is not None``)."""
        raw = self._entries.get(kind._value_)
        return type(raw) is dict or (raw is not None and _is_mapping(raw))

    def kept(self, kind: Kind) -> tuple[tuple[Mapping[str, Any], ...], int] | None:
        """``(records, dropped)`` of component *kind*, None when it was off (one call for a
        reader that asks for both)."""
        raw = self._entries.get(kind._value_)
        if raw is None or (type(raw) is not dict and not _is_mapping(raw)):
            return None
        dropped = raw.get("dropped")
        if type(dropped) is not int:
            dropped = _component_dropped(raw)
        elif dropped < 0:
            dropped = 0
        return (_component_records(raw) if raw.get("records") else ()), dropped

    def records(self, kind: Kind) -> tuple[Mapping[str, Any], ...]:
        """``component(kind).records`` (none when it was off)."""
        raw = self._entries.get(kind._value_)
        if type(raw) is dict or _is_mapping(raw):
            # (most components of most tests kept no record: no call for them)
            return _component_records(raw) if raw.get("records") else ()
        return ()

    def dropped(self, kind: Kind) -> int:
        """``component(kind).dropped`` (0 when it was off)."""
        raw = self._entries.get(kind._value_)
        if type(raw) is dict or _is_mapping(raw):
            dropped = raw.get("dropped")
            if type(dropped) is int:  # (as written: no call)
                return dropped if dropped > 0 else 0
            return _component_dropped(raw)
        return 0

    def value(self, kind: Kind, key: str) -> Any:
        """``component(kind).details.get(key)`` (None when it was off)."""
        raw = self._entries.get(kind._value_)
        if (type(raw) is dict or _is_mapping(raw)) and key not in _PARTS:
            return raw.get(key)
        return None

    def detail(self, kind: Kind, key: str) -> Mapping[str, Any] | None:
        """As :meth:`TestRecord.detail`."""
        raw = self._entries.get(kind._value_)
        if (type(raw) is dict or _is_mapping(raw)) and key not in _PARTS:
            found = raw.get(key)
            if found is not None and (type(found) is dict or _is_mapping(found)) and found:
                return found
        return None


@dataclass(frozen=True, slots=True)
class RunRecord:
    """One run: its metadata, its tests, the plugin's diagnostics and the features' sections."""

    meta: Mapping[str, Any]
    tests: tuple[TestRecord, ...]
    diagnostics: tuple[str, ...] = ()
    sections: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))
    version: int = SCHEMA_VERSION

    def __iter__(self) -> Iterator[TestRecord]:
        return iter(self.tests)

    @property
    def kari_overhead_ms(self) -> float | None:
        """The plugin's own time in every test's window, in ms (None if never measured)."""
        values = [t.kari_overhead_ms for t in self.tests if t.kari_overhead_ms is not None]
        return round(sum(values), 3) if values else None

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> RunRecord:
        """Read a run document (``--kari-json``) of any version."""
        found = document.get("format")
        if found is not None and found != RUN_FORMAT:
            msg = f"not a run document: format {found!r}, expected {RUN_FORMAT!r}"
            raise ConfigurationError(msg)
        version = int(finite(document.get("version")) or 1)
        if version > SCHEMA_VERSION:
            msg = (
                f"run document version {version} is newer than this pytest-kari-debug reads"
                f" ({SCHEMA_VERSION}): upgrade pytest-kari-debug"
            )
            raise ConfigurationError(msg)
        tests = document.get("tests") or ()
        return cls(
            meta=_frozen(document.get("run")),
            tests=tuple(TestRecord.from_dict(t) for t in tests if isinstance(t, Mapping)),
            diagnostics=tuple(str(d) for d in document.get("diagnostics") or ()),
            sections=_frozen(document.get("sections")),
            version=version,
        )

    @classmethod
    def of(cls, meta: Mapping[str, Any], tests: Sequence[Mapping[str, Any]]) -> RunRecord:
        """A run from its metadata and its tests' stored dictionaries."""
        return cls(meta=_frozen(meta), tests=tuple(TestRecord.from_dict(t) for t in tests))

    def to_dict(self) -> dict[str, Any]:
        """The run as a document of the current version (without the derived ``summary``)."""
        return {
            "format": RUN_FORMAT,
            "version": SCHEMA_VERSION,
            "run": dict(self.meta),
            "tests": [test.to_dict() for test in self.tests],
            "diagnostics": list(self.diagnostics),
            "sections": dict(self.sections),
        }
