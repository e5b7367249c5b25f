"""The lazy entry point: importing it is cheap, and the features come only when asked for."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

import pytest_kari_debug
from pytest_kari_debug.plugin import FEATURES
from pytest_kari_debug.plugin.options import KARI_FIXTURES
from pytest_kari_debug.storage import Store

PLUGIN_DIR = Path(pytest_kari_debug.__file__).parent / "plugin"
#: What importing the entry module may add to what ``import pytest`` loads.
ENTRY_MODULES = {
    "pytest_kari_debug",
    "pytest_kari_debug.lazy",  # the package's public names, imported on first use
    "pytest_kari_debug.config",
    "pytest_kari_debug.exceptions",
    "pytest_kari_debug.optionspec",  # the options shared with the CLI: data, no imports
    "pytest_kari_debug.sharedmethods",  # the dataclasses' shared methods (stdlib only)
    "pytest_kari_debug.plugin",
    "pytest_kari_debug.plugin.options",
}
#: Libraries the entry must never pull in (the plugin's dependencies and the heavy stdlib).
HEAVY = (
    "psutil", "pyinstrument", "jinja2", "opentelemetry", "prometheus_client", "smtplib",
    "sqlite3", "tracemalloc", "http.client", "urllib.request", "json", "socket", "email.mime",
    "fastapi", "uvicorn", "click", "psycopg",
)  # fmt: skip
#: A conftest that writes, at the end of the run, which of the plugin's modules were loaded.
PROBE = """
import json, sys

def pytest_unconfigure(config):
    loaded = sorted(m for m in sys.modules if m.startswith("pytest_kari_debug"))
    features = [n for n in {features!r} if config.pluginmanager.has_plugin(n)]
    with open("probe.json", "w") as handle:
        json.dump({{"loaded": loaded, "features": features}}, handle)
"""


def _new_modules(code: str) -> set[str]:
    """The modules *code* adds to a fresh interpreter that has imported pytest."""
    script = (
        "import json, sys\nimport pytest\nbefore = set(sys.modules)\n"
        f"{code}\nprint(json.dumps(sorted(set(sys.modules) - before)))"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    return set(json.loads(done.stdout))


def test_entry_import_pulls_in_nothing_heavy() -> None:
    """Importing the pytest11 module loads only its options module and no library of the
    plugin's: no component, store, exporter, OpenTelemetry, psutil, jinja2 or smtplib."""
    new = _new_modules("import pytest_kari_debug.plugin")
    ours = {m for m in new if m.startswith("pytest_kari_debug")}
    assert ours == ENTRY_MODULES
    heavy = sorted(m for m in new if m.split(".")[0] in HEAVY or m in HEAVY)
    assert heavy == []


def test_package_import_is_lazy_and_public_names_still_resolve() -> None:
    """``import pytest_kari_debug`` loads no component; each public name is imported on first
    use and is the defining module's object."""
    new = _new_modules("import pytest_kari_debug")
    assert new == {"pytest_kari_debug", "pytest_kari_debug.lazy"}
    new = _new_modules("from pytest_kari_debug import ExtensionDebugManager")
    assert "pytest_kari_debug.manager" in new
    from pytest_kari_debug import DebugConfiguration, ExtensionDebugManager, KariDebugWarning
    from pytest_kari_debug.config import DebugConfiguration as Defined
    from pytest_kari_debug.exceptions import KariDebugWarning as DefinedWarning
    from pytest_kari_debug.manager import ExtensionDebugManager as DefinedManager

    assert (DebugConfiguration, ExtensionDebugManager, KariDebugWarning) == (
        Defined,
        DefinedManager,
        DefinedWarning,
    )
    assert set(pytest_kari_debug.__all__) <= set(dir(pytest_kari_debug))
    for name in pytest_kari_debug.__all__:
        assert getattr(pytest_kari_debug, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'NoSuchThing'"):
        _ = pytest_kari_debug.NoSuchThing


def test_features_declare_no_options() -> None:
    """Every flag and ini key is registered by the entry point: a feature module with its own
    ``pytest_addoption`` would only be seen once the feature is loaded, too late for pytest."""
    for name in FEATURES:
        path = PLUGIN_DIR / f"{name.rsplit('.', 1)[1]}.py"
        tree = ast.parse(path.read_text())
        hooks = {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)}
        assert "pytest_addoption" not in hooks, f"{path.name}: declare options in options.py"


def _probe(pytester: pytest.Pytester, *args: str) -> tuple[pytest.RunResult, dict[str, list[str]]]:
    pytester.makeconftest(PROBE.format(features=list(FEATURES)))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", *args)
    return result, json.loads((pytester.path / "probe.json").read_text())


def test_a_run_that_does_not_ask_loads_no_feature(pytester: pytest.Pytester) -> None:
    """Without a kari flag, ini key, fixture or marker no feature module is imported or
    registered, and nothing is written."""
    pytester.makepyfile("import pytest\n\n@pytest.mark.slow\ndef test_a():\n    pass\n")
    pytester.makeini("[pytest]\nmarkers = slow: slow\n")
    result, probe = _probe(pytester)
    result.assert_outcomes(passed=1)
    assert probe["features"] == []
    assert set(probe["loaded"]) == ENTRY_MODULES | {"pytest_kari_debug.hookspecs"}
    assert not (pytester.path / ".kari-debug").exists()


@pytest.mark.parametrize(
    ("test_file", "args"),
    [
        ("def test_a(kari_metrics):\n    assert kari_metrics is not None\n", ()),
        ("import pytest\n\n@pytest.mark.kari_extension('ext')\ndef test_a():\n    pass\n", ()),
        (
            "import pytest\n\npytestmark = pytest.mark.kari_profile\n\ndef test_a():\n    pass\n",
            (),
        ),
        ("def test_a():\n    pass\n", ("--kari-debug",)),
        ("def test_a():\n    pass\n", ("-o", "kari_debug=true")),
    ],
    ids=["fixture", "marker", "module-marker", "flag", "ini"],
)
def test_what_asks_for_the_plugin_loads_it(
    pytester: pytest.Pytester, test_file: str, args: tuple[str, ...]
) -> None:
    """A kari fixture, a marker (on the test or its module), a flag or an ini key loads every
    feature, and the test is recorded in the default store."""
    pytester.makepyfile(test_file)
    result, probe = _probe(pytester, *args)
    result.assert_outcomes(passed=1)
    assert probe["features"] == list(FEATURES)
    store = Store(pytester.path / ".kari-debug" / "kari.db")
    try:
        (run,) = store.runs()
        assert [t["nodeid"] for t in store.tests(run["id"])] == [
            "test_what_asks_for_the_plugin_loads_it.py::test_a"
        ]
    finally:
        store.close()


def test_a_fixture_asked_for_inside_a_test_loads_the_plugin(pytester: pytest.Pytester) -> None:
    """``request.getfixturevalue('kari_debug')`` works in a run that asked for nothing else."""
    pytester.makepyfile(
        """
        def test_a(request):
            manager = request.getfixturevalue("kari_debug")
            assert manager.extension_id
        """
    )
    result, probe = _probe(pytester)
    result.assert_outcomes(passed=1)
    assert probe["features"] == list(FEATURES)


def test_xdist_controller_records_workers_tests_asked_for_by_a_marker(
    pytester: pytest.Pytester,
) -> None:
    """Under xdist the controller collects nothing: the workers' records of marked tests bring
    the plugin in on the controller, and every marked test is recorded once."""
    pytester.makepyfile(
        "import pytest\n\n"
        + "".join(
            f"@pytest.mark.kari_extension('ext')\ndef test_{n}():\n    pass\n\n" for n in range(6)
        )
        + "def test_plain():\n    pass\n"
    )
    result, probe = _probe(pytester, "-n", "2")
    result.assert_outcomes(passed=7)
    assert probe["features"] == list(FEATURES)
    store = Store(pytester.path / ".kari-debug" / "kari.db")
    try:
        (run,) = store.runs()
        assert sorted(t["nodeid"].split("::")[1] for t in store.tests(run["id"])) == [
            f"test_{n}" for n in range(6)
        ]
        assert run["started_at"] <= min(t["started_at"] for t in store.tests(run["id"]))
    finally:
        store.close()


#: The hook objects a ``--kari-debug`` run registers (besides the feature modules).
HOOK_OBJECTS = [
    "kari-debug-recorder", "kari-debug-progress", "kari-debug-test-sessions",
    "kari-debug-own-work-clock", "kari-debug-failures",
]  # fmt: skip
#: A conftest that writes, per registered feature and hook object, what ``dir()`` lists and
#: the hooks pluggy registered for it.
HOOKS_PROBE = """
import json, sys

def pytest_sessionfinish(session):
    manager = session.config.pluginmanager
    seen = {{}}
    for name in {features!r}:
        plugin = manager.get_plugin(name)
        defined = sorted(n for n, v in vars(plugin).items()
                         if n.startswith("pytest_") and callable(v))
        hooks = sorted(c.name for c in manager.get_hookcallers(plugin))
        seen[name] = {{"dir": sorted(dir(plugin)), "defined": defined, "hooks": hooks}}
    for name in {objects!r}:
        plugin = manager.get_plugin(name)
        defined = sorted(n for n in dir(type(plugin)) if n.startswith("pytest_"))
        hooks = sorted(c.name for c in manager.get_hookcallers(plugin))
        seen[name] = {{"dir": sorted(dir(plugin)), "defined": defined, "hooks": hooks}}
    with open("hooks.json", "w") as handle:
        json.dump(seen, handle)
"""


def test_features_show_pytest_only_their_hooks(pytester: pytest.Pytester) -> None:
    """pytest looks at every name a plugin's ``dir()`` lists (for fixtures): a feature module
    or hook object lists only its hook implementations, and every one of them is registered;
    the entry module's fixtures are all found."""
    pytester.makeconftest(HOOKS_PROBE.format(features=list(FEATURES), objects=HOOK_OBJECTS))
    fixtures = ", ".join(sorted(KARI_FIXTURES))
    pytester.makepyfile(f"def test_a({fixtures}):\n    assert None not in ({fixtures})\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--kari-debug")
    result.assert_outcomes(passed=1)
    seen = json.loads((pytester.path / "hooks.json").read_text())
    for name in (*FEATURES, *HOOK_OBJECTS):
        assert seen[name]["dir"] == seen[name]["defined"] == seen[name]["hooks"], name


#: What a default ``--kari-debug`` run never needs: the report, the Prometheus exporter, the
#: e-mail and webhook senders, the profiler's sampler, asyncio (no test here uses it); psutil
#: (the resource sampler imports it at its first point, ``metrics_interval`` after the start:
#: the readings at a test's start and end come from getrusage and /proc); OpenTelemetry (a
#: disabled tracer imports it with the span classes at its first span); cProfile and
#: tracemalloc (the profiler's first session imports its samplers and memory watch; memory
#: figures import tracemalloc when they start it).
NOT_IN_A_DEFAULT_RUN = (
    "jinja2", "prometheus_client", "smtplib", "ssl", "urllib.request", "http.client",
    "pyinstrument", "asyncio", "sysconfig", "pstats", "psutil", "opentelemetry", "cProfile",
    "tracemalloc",
)  # fmt: skip
#: The package's own modules a default run never needs: the export formats (a manager's start
#: imports none; the first export does), the Markdown summary, the history of past runs, the
#: tracer's spans, OpenTelemetry capture, propagation and decorator (tracing is off), the
#: profiler's sessions, samplers and memory watch (profiling is off), the log query (nothing
#: asks the logger for its records by filter), the regression gates (no gate flag or marker),
#: the alert rules (no ini rule, kari_alert or kari_budget marker), the error tracker's stack
#: reading and classifier (no error recorded), the metric records and thresholds (no custom
#: metric, aggregate or threshold), the Jaeger and OTLP writers (no such output asked for);
#: the CSV writers (no --kari-csv), the metric name rules (no custom metric), the profiles'
#: call trees and bottlenecks and the traces' analysis (nothing profiled or traced), the
#: figures' display helpers (no report).
OWN_NOT_IN_A_DEFAULT_RUN = (
    "pytest_kari_debug.exporters.bundle", "pytest_kari_debug.exporters.formats",
    "pytest_kari_debug.summaries.ci_markdown", "pytest_kari_debug.history",
    "pytest_kari_debug.tracing.spans", "pytest_kari_debug.tracing.capture",
    "pytest_kari_debug.tracing.propagation", "pytest_kari_debug.tracing.decorate",
    "pytest_kari_debug.profiler.samplers", "pytest_kari_debug.profiler.memory",
    "pytest_kari_debug.profiler.session", "pytest_kari_debug.logger.query",
    "pytest_kari_debug.gates", "pytest_kari_debug.rules",
    "pytest_kari_debug.errors.capture", "pytest_kari_debug.errors.classify",
    "pytest_kari_debug.metrics.records", "pytest_kari_debug.exporters.jaeger",
    "pytest_kari_debug.exporters.otlp", "pytest_kari_debug.exporters.csv_export",
    "pytest_kari_debug.exporters.logs_export", "pytest_kari_debug.naming",
    "pytest_kari_debug.profiler.trees", "pytest_kari_debug.profiler.frames",
    "pytest_kari_debug.profiler.bottlenecks", "pytest_kari_debug.tracing.analysis",
    "pytest_kari_debug.figures.display",
)  # fmt: skip


def test_a_default_run_imports_only_what_it_uses(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--kari-debug`` without outputs imports no library that only an output, a channel or
    the profiler needs (this plugin alone, no other plugin autoloaded)."""
    pytester.makepyfile("def test_a():\n    pass\n")
    pytester.makeconftest(
        "import json, sys\n\n"
        "def pytest_unconfigure(config):\n"
        "    with open('modules.json', 'w') as handle:\n"
        "        json.dump(sorted(sys.modules), handle)\n"
    )
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    result = pytester.runpytest_subprocess(
        "-p", "pytest_kari_debug.plugin", "-p", "no:cacheprovider", "--kari-debug"
    )
    result.assert_outcomes(passed=1)
    loaded = set(json.loads((pytester.path / "modules.json").read_text()))
    assert "pytest_kari_debug.manager" in loaded  # the run did load the features
    assert sorted(loaded.intersection(NOT_IN_A_DEFAULT_RUN)) == []
    assert sorted(loaded.intersection(OWN_NOT_IN_A_DEFAULT_RUN)) == []


#: A conftest that writes which loader imported each of the plugin's modules.
LOADERS = """
import json, sys

def pytest_unconfigure(config):
    loaders = {
        name: type(module.__spec__.loader).__name__
        for name, module in list(sys.modules.items())
        if name.startswith("pytest_kari_debug")
    }
    with open("loaders.json", "w") as handle:
        json.dump(loaders, handle)
"""


def test_the_package_is_imported_outside_the_assertion_rewriter(pytester: pytest.Pytester) -> None:
    """pytest's assertion rewriter would load every module of the plugin's distribution (about
    0.3 ms each): only the three modules imported before the entry point runs go through it,
    the rest load as outside pytest, and pytest warns about none of them. The three then hold
    the loader Python gives them, not the rewriter (which holds the run's config)."""
    pytester.makeconftest(LOADERS)
    pytester.makepyfile("def test_a():\n    assert 1 + 1 == 2\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--kari-debug", "-W", "error::pytest.PytestAssertRewriteWarning"
    )
    result.assert_outcomes(passed=1)
    loaders = json.loads((pytester.path / "loaders.json").read_text())
    assert "pytest_kari_debug.manager" in loaders
    assert {name for name, kind in loaders.items() if kind != "SourceFileLoader"} == set()
    assert "PytestAssertRewriteWarning" not in result.stdout.str() + result.stderr.str()


def test_an_in_process_run_warns_about_no_already_imported_module(
    pytester: pytest.Pytester,
) -> None:
    """In a process that already imported the package (pytester's in-process runs) pytest
    finds nothing to warn about: the features are registered without marking them for
    rewriting, and the test file's own asserts are still rewritten."""
    pytester.makepyfile("def test_a():\n    value = 3\n    assert value == 2\n")
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--kari-debug", "-W", "error::pytest.PytestAssertRewriteWarning"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*assert 3 == 2*"])
    assert "PytestAssertRewriteWarning" not in result.stdout.str()


@pytest.mark.parametrize(
    "use",
    [
        "with tracer.start_span('outer') as span:\n    kind = type(span).__name__\n",
        "tracer.enabled = True\n"
        "session = manager.start_debug_session({'enable_tracing': True})\n"
        "with tracer.start_span('inner') as span:\n    kind = type(span).__name__\n"
        "data = manager.stop_debug_session(session).collected_data['tracing']\n"
        "assert 'inner' in [s['name'] for s in data['records']], data\n",
    ],
    ids=["span-of-a-disabled-tracer", "session-of-a-tracer-enabled-later"],
)
def test_a_tracer_imports_opentelemetry_at_its_first_use(use: str) -> None:
    """A manager's tracer, off by default, loads no OpenTelemetry; its first span (inert while
    it is off) or a session after it is switched on imports it, and works."""
    code = (
        "import sys\n"
        "from pytest_kari_debug import ExtensionDebugManager\n"
        "manager = ExtensionDebugManager('ext')\n"
        "tracer = manager.get_tracer()\n"
        "assert not any(m.startswith('opentelemetry') for m in sys.modules)\n"
        f"{use}"
        "assert 'opentelemetry.trace' in sys.modules\n"
        "print(kind)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() in ("UnsampledSpan", "Span")


def test_the_alerting_modules_rule_names_resolve_when_first_used() -> None:
    """``pytest_kari_debug.alerting`` still exports the rules' names (imported on first use),
    and a manager without rules imports no rule machinery until it evaluates one."""
    code = (
        "import sys\n"
        "from pytest_kari_debug.alerting import AlertManager\n"
        "manager = AlertManager('ext')\n"
        "assert 'pytest_kari_debug.rules' not in sys.modules\n"
        "from pytest_kari_debug.alerting import AlertRule, Evaluation\n"
        "import pytest_kari_debug.rules as rules\n"
        "assert (AlertRule, Evaluation) == (rules.AlertRule, rules.Evaluation)\n"
        "assert manager.rule_states is manager.rule_states\n"
        "rule = manager.add_rule('errors > 0 for 2 tests')\n"
        "assert isinstance(rule, AlertRule)\n"
        "figures = rules.StaticFigures({'errors': 1})\n"
        "fired = [manager.evaluate(figures, labels={'t': 1})[0].fired for _ in range(2)]\n"
        "assert fired == [False, True], fired\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


def test_the_entry_module_lists_its_public_names() -> None:
    """Only the features' modules (internal) hide their helpers from ``dir()``: the entry
    module, which users import (``help()``, ``inspect``, ``mock.create_autospec``), lists
    everything it defines."""
    import inspect
    from unittest import mock

    import pytest_kari_debug.plugin as entry

    names = dir(entry)
    assert {"activate", "asked_for", "FEATURES", "kari_debug", "pytest_addoption"} <= set(names)
    assert mock.create_autospec(entry).activate is not None
    assert dict(inspect.getmembers(entry))["activate"] is entry.activate
