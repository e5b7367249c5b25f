"""``ProfileSession``: a profiling session and, once stopped, its results."""

from __future__ import annotations

from dataclasses import field
from typing import Any

from ..exceptions import SessionError
from ..sharedmethods import dataclass
from .memory import _MemoryWatch
from .samplers import _CProfileShare, _Sampler


# Sessions --------------------------------------------------------------------------------
@dataclass
class ProfileSession:
    """A profiling session and, once stopped, its results."""

    session_id: str
    name: str
    started_at: float
    profile_cpu: bool
    profile_memory: bool
    enable_cprofile: bool
    debug_session_id: str | None = None
    duration_seconds: float = 0.0
    cpu_seconds: float = 0.0
    sampler: str | None = None
    interval_s: float | None = None
    sample_count: int = 0
    shared: bool = False
    call_tree: dict[str, Any] | None = None
    hot_functions: list[dict[str, Any]] = field(default_factory=list)
    hot_paths: list[dict[str, Any]] = field(default_factory=list)
    cprofile_stats: list[dict[str, Any]] = field(default_factory=list)
    memory: dict[str, Any] = field(default_factory=dict)
    top_allocations: list[dict[str, Any]] = field(default_factory=list)
    snapshot_diff: list[dict[str, Any]] | None = None
    overhead: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    stopped: bool = False
    #: The pyinstrument ``Session`` of the samples (for its HTML and speedscope renderers).
    pyinstrument_session: Any = field(default=None, repr=False)
    _state: Any = field(default=None, repr=False)

    @property
    def status(self) -> str:
        return "stopped" if self.stopped else "running"

    def to_dict(self) -> dict[str, Any]:
        """Return the session's results as JSON-able data."""
        return {
            "profile_id": self.session_id,
            "name": self.name,
            "debug_session_id": self.debug_session_id,
            "started_at": self.started_at,
            "status": self.status,
            "duration_s": round(self.duration_seconds, 6),
            "cpu_s": round(self.cpu_seconds, 6),
            "sampler": self.sampler,
            "interval_s": self.interval_s,
            "samples": self.sample_count,
            "shared": self.shared,
            "call_tree": self.call_tree,
            "hot_functions": self.hot_functions,
            "hot_paths": self.hot_paths,
            "cprofile": self.cprofile_stats,
            "memory": self.memory,
            "top_allocations": self.top_allocations,
            "snapshot_diff": self.snapshot_diff,
            "overhead": self.overhead,
            "notes": list(self.notes),
        }

    def render_html(self) -> str:
        """The call tree as pyinstrument's interactive HTML page."""
        from pyinstrument.renderers import HTMLRenderer

        return str(HTMLRenderer().render(self._pyi_session()))

    def render_speedscope(self) -> str:
        """The samples as a speedscope JSON document (pyinstrument's renderer)."""
        from pyinstrument.renderers import SpeedscopeRenderer

        return str(SpeedscopeRenderer().render(self._pyi_session()))

    def render_text(self) -> str:
        """The call tree as pyinstrument's console text (no colour)."""
        from pyinstrument.renderers import ConsoleRenderer

        return str(ConsoleRenderer(unicode=False, color=False).render(self._pyi_session()))

    def _pyi_session(self) -> Any:
        if self.pyinstrument_session is None:
            msg = f"profiling session {self.session_id!r} has no call-tree samples to render"
            raise SessionError(msg)
        return self.pyinstrument_session


@dataclass
class _Running:
    """What a running session needs to produce its results."""

    thread_id: int
    wall_start: float
    perf_start: float
    cpu_start: float
    sampler: _Sampler | None = None
    sample_index: int = 0
    cprofile: _CProfileShare | None = None
    cprofile_before: dict[Any, tuple[Any, ...]] | None = None
    memory: _MemoryWatch | None = None
    focus: tuple[str, str] | None = None
