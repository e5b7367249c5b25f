"""Per-test profiles: call-phase sampling, ``--kari-profile-dir`` files, run bottlenecks."""

from __future__ import annotations

import functools
import hashlib
import inspect
import re
import sys
from collections.abc import Generator
from dataclasses import field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from ..atomic import write_atomic
from ..context import CURRENT_SESSION, SessionInfo
from ..sharedmethods import dataclass
from ..summaries import RunSections, profiling_lines
from .core import manager_for, session_of
from .options import option_text
from .state import STATE, guard, kari_markers, register_once

if TYPE_CHECKING:
    from ..profiler import PerformanceProfiler, ProfileSession


@dataclass
class _Options:
    profile_dir: Path | None = None
    files_written: int = 0
    marked: bool = False


@dataclass
class _Handle:
    """A profiled test's profiler session, its result and its files."""

    profiler: PerformanceProfiler
    info: SessionInfo
    result: ProfileSession | None = None
    original_obj: Any = None
    files: dict[str, str] = field(default_factory=dict)
    #: On an xdist worker: {"html"|"speedscope": [file name, content]} for the controller.
    pending: dict[str, list[str]] = field(default_factory=dict)


_OPTIONS = pytest.StashKey[_Options]()
_HANDLE = pytest.StashKey[_Handle]()
_MARKED = pytest.StashKey[bool]()  # a kari_profile marker asks for the test's profile


def pytest_configure(config: pytest.Config) -> None:
    """Read ``--kari-profile-dir`` (relative paths are taken from the rootdir)."""
    text = option_text(config, "profile_dir")
    options = _Options()
    if text:
        path = Path(str(text))
        options.profile_dir = path if path.is_absolute() else config.rootpath / path
    config.stash[_OPTIONS] = options
    state = config.stash.get(STATE, None)
    if options.profile_dir is not None and state is not None and not state.is_worker:
        config.pluginmanager.register(ProfileFileWriter(config), "kari-debug-profile-files")


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """A ``kari_profile`` marker or a ``kari_profiler`` fixture switches the profiler on.

    Without it the component would be disabled (``profiling_enabled`` defaults to off) and
    record nothing for the test that asked for it. Profiles (call trees) stay limited to the
    tests that ask for one; other tests only keep the timings of decorated functions.
    """
    state = config.stash.get(STATE, None)
    if state is None:
        return
    with guard(config, "reading kari_profile markers"):
        marked = False
        for item in items:
            if "kari_profile" in kari_markers(item):
                item.stash[_MARKED] = True
                marked = True
        uses_fixture = any("kari_profiler" in getattr(i, "fixturenames", ()) for i in items)
        config.stash[_OPTIONS].marked = marked
        settings = state.settings
        cfg = settings.configuration
        if (marked or uses_fixture) and not cfg.profiling_enabled:
            settings.configuration = cfg = cfg.replace(profiling_enabled=True)
        if cfg.profiling_enabled or settings.profile or settings.memory:
            register_once(config, "kari-debug-profiled-tests", ProfiledTests)


def _test_function(item: pytest.Item) -> Any:
    return getattr(item, "function", None) or getattr(item, "obj", None)


def _focus(item: pytest.Item) -> tuple[str, str] | None:
    code = getattr(inspect.unwrap(_test_function(item)), "__code__", None)
    return (code.co_filename, code.co_name) if code is not None else None


def _start(item: pytest.Item) -> _Handle | None:
    info = CURRENT_SESSION.get()
    if info is None:
        return None
    running = session_of(item)
    profiler = (running[0] if running else manager_for(item)).get_profiler()
    if not profiler.enabled or not profiler.wants_profile(info):
        return None
    handle = _Handle(profiler, info)
    focus = _focus(item)
    obj = getattr(item, "obj", None)
    if isinstance(item, pytest.Function) and inspect.iscoroutinefunction(obj):
        # Start inside the test's coroutine: pyinstrument then attributes awaits to the
        # coroutine that awaits, not to the event loop's select().
        handle.original_obj = obj

        @functools.wraps(obj)
        async def profiled(*args: Any, **kwargs: Any) -> Any:
            with guard(item.config, "starting the test's profile"):
                profiler.start_debug_profile(
                    info, async_mode="enabled", focus=focus, _caller=sys._getframe()
                )
            try:
                return await obj(*args, **kwargs)
            finally:
                with guard(item.config, "stopping the test's profile"):
                    handle.result = profiler.stop_debug_profile(info)

        item.obj = profiled
    else:
        profiler.start_debug_profile(
            info, async_mode="disabled", focus=focus, _caller=sys._getframe()
        )
    return handle


def _stop(item: pytest.Item, handle: _Handle) -> None:
    if handle.original_obj is not None and isinstance(item, pytest.Function):
        item.obj = handle.original_obj  # the async test's function, unwrapped again
    if handle.result is None:
        handle.result = handle.profiler.stop_debug_profile(handle.info)
    options = item.config.stash[_OPTIONS]
    result = handle.result
    if options.profile_dir is None or result is None or result.pyinstrument_session is None:
        return
    if result.call_tree is None:
        return  # the test function itself was never sampled: only pytest's frames would show
    stem = _file_stem(item.nodeid)
    contents = {
        "html": [f"{stem}.html", result.render_html()],
        "speedscope": [f"{stem}.speedscope.json", result.render_speedscope()],
    }
    if item.config.stash[STATE].is_worker:
        handle.pending = contents  # only the controller writes files: it gets them with the record
    else:
        handle.files = _write_files(options, contents)


def _write_files(options: _Options, contents: dict[str, list[str]]) -> dict[str, str]:
    """Write a test's profile files into ``--kari-profile-dir``; return their paths."""
    assert options.profile_dir is not None
    files = {
        kind: str(write_atomic(options.profile_dir / name, text))
        for kind, (name, text) in contents.items()
    }
    options.files_written += 1
    return files


class ProfileFileWriter:
    """On the controller of an xdist run: write the profile files the workers rendered."""

    def __init__(self, config: pytest.Config) -> None:
        self.config = config

    @pytest.hookimpl(tryfirst=True)  # before the core keeps the record
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """Take a test's rendered profiles off its record and write them here."""
        if report.when != "teardown":
            return
        record = getattr(report, "kari_debug", None)
        extra = record.get("extra") if isinstance(record, dict) else None
        profiling = extra.get("profiling") if isinstance(extra, dict) else None
        if not isinstance(profiling, dict) or "pending_files" not in profiling:
            return
        pending = profiling.pop("pending_files")
        with guard(self.config, "writing a worker's profile files"):
            profiling["files"] = _write_files(self.config.stash[_OPTIONS], pending)


def _file_stem(nodeid: str) -> str:
    """A file name for *nodeid*: readable, short, unique (a hash of the full id)."""
    readable = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("._")[:120]
    digest = hashlib.sha1(nodeid.encode("utf-8")).hexdigest()[:8]
    return f"{readable}-{digest}"


class ProfiledTests:
    """The per-test hooks of a run that can profile (registered at the end of collection)."""

    def pytest_kari_debug_session_options(self, item: pytest.Item) -> dict[str, Any] | None:
        """Profile only the call phase: the session starts before fixtures, the profile later.

        A ``kari_profile`` marker asks for the test's profile.
        """
        if item.stash.get(_MARKED, False):
            return {"enable_profiling": True, "profile_deferred": True}
        settings = item.config.stash[STATE].settings
        return {"profile_deferred": True} if settings.profile or settings.memory else None

    @pytest.hookimpl(wrapper=True, trylast=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Generator[None, object, object]:
        """Profile the call phase of a profiled test (innermost wrapper: closest to the test)."""
        handle = None
        with guard(item.config, "starting the test's profile"):
            handle = _start(item)
        try:
            return (yield)
        finally:
            if handle is not None:
                with guard(item.config, "stopping the test's profile"):
                    _stop(item, handle)
                item.stash[_HANDLE] = handle

    def pytest_kari_debug_test_record(self, item: pytest.Item, record: dict[str, Any]) -> None:
        """Name the test's profile files under ``record["extra"]["profiling"]``."""
        handle = item.stash.get(_HANDLE, None)
        if handle is not None and handle.files:
            record["extra"]["profiling"] = {"files": dict(handle.files)}
        elif handle is not None and handle.pending:
            record["extra"]["profiling"] = {"pending_files": handle.pending}


def pytest_kari_debug_run_finished(
    config: pytest.Config, sections: dict[str, Any], built: RunSections
) -> None:
    """Rank the run's bottlenecks and slowest tests; summary lines; the profile folder."""
    state = config.stash[STATE]
    options = config.stash[_OPTIONS]
    with guard(config, "summarising the profiles"):
        section = built.profiling
        if section is None:
            return
        sections["profiling"] = section
        state.summary_lines.extend(profiling_lines(section))
        files = section["files"]
        if options.profile_dir is not None and files:
            state.outputs["profiles"] = f"{options.profile_dir} ({len(files)} test(s))"
