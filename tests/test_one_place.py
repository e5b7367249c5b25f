"""Each concept defined once: the version, errors, diagnostics, shared options, the rootdir."""

from __future__ import annotations

import ast
import dataclasses
import importlib.metadata
import threading
from pathlib import Path

import pytest
from click.testing import CliRunner

import pytest_kari_debug
from pytest_kari_debug.cli.app import CliError, cli, find_rootdir
from pytest_kari_debug.diagnostics import Diagnostics
from pytest_kari_debug.exceptions import ConfigurationError, KariDebugError
from pytest_kari_debug.gates import Options
from pytest_kari_debug.optionspec import (
    CONFIRM_RUNS,
    FAIL_REGRESSION,
    MIN_CHANGE_MS,
    RETENTION_RUNS,
    OptionSpec,
)
from pytest_kari_debug.version import plugin_version

PACKAGE = Path(pytest_kari_debug.__file__).parent
#: Modules split by job into a package behind a facade: their modules share internals.
COMPONENT_PACKAGES = frozenset(
    {"profiler", "tracing", "logger", "metrics", "errors", "sources", "storage", "summaries"}
)


def _imports(path: Path) -> list[tuple[ast.ImportFrom, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return [
        (node, alias.name)
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        and (node.level > 0 or (node.module or "").startswith("pytest_kari_debug"))
        for alias in node.names
    ]


def test_version_comes_from_the_installed_metadata() -> None:
    """``__version__`` and every output's plugin_version are the installed distribution's."""
    assert pytest_kari_debug.__version__ == plugin_version()
    assert plugin_version() == importlib.metadata.version("pytest-kari-debug")


def test_no_module_imports_a_name_from_the_package_root_or_a_private_name() -> None:
    """Modules import submodules from the root, never names; and no _private name of another
    module, except between the modules of one component package (its facade is the API)."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        package_depth = len(path.relative_to(PACKAGE).parts)
        for node, name in _imports(path):
            root = (node.level == package_depth and node.module is None) or (
                node.module == "pytest_kari_debug"
            )
            submodule = (PACKAGE / name).with_suffix(".py").exists() or (PACKAGE / name).is_dir()
            if root and not submodule:
                found.append(f"{path.name}:{node.lineno} imports {name} from the root")
            inside_component = node.level == 1 and path.parent.name in COMPONENT_PACKAGES
            if name.startswith("_") and not name.startswith("__") and not inside_component:
                found.append(f"{path.name}:{node.lineno} imports private {name}")
    assert found == []


def test_cli_errors_are_kari_debug_errors() -> None:
    """A CLI usage problem is one of the package's errors, catchable as KariDebugError."""
    assert issubclass(CliError, KariDebugError)
    assert CliError("bad", code=1).code == 1


def test_diagnostics_keep_each_problem_once_up_to_the_limit() -> None:
    """Diagnostics deduplicate, stop at their limit and say whether a problem was new."""
    diagnostics = Diagnostics(3)
    assert diagnostics.add("a") is True
    assert diagnostics.add("a") is False
    for message in ("b", "c", "d"):
        diagnostics.add(message)
    assert diagnostics == ["a", "b", "c"]
    assert diagnostics[-2:] == ["b", "c"]
    assert diagnostics.latest(2) == "b; c"
    assert "a" in diagnostics
    assert "d" not in diagnostics
    assert len(diagnostics) == 3


def test_diagnostics_from_many_threads_keep_each_message_once() -> None:
    """Components add diagnostics from sampler threads: no message is kept twice."""
    diagnostics = Diagnostics(1000)

    def add() -> None:
        for n in range(200):
            diagnostics.add(f"problem {n}")

    threads = [threading.Thread(target=add) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(diagnostics) == sorted(f"problem {n}" for n in range(200))


def test_components_manager_and_plugin_share_one_diagnostics_type(manager) -> None:
    """The components, the manager and the plugin's run keep their problems alike."""
    from pytest_kari_debug.plugin.state import KariState, PluginSettings

    state = KariState(
        PluginSettings(False, manager.configuration, None, None, None, None), is_worker=False
    )
    holders = [manager, *manager.components.values(), state]
    assert {type(holder.diagnostics) for holder in holders} == {Diagnostics}


def test_gate_defaults_are_the_option_specs() -> None:
    """gates.Options reads its defaults from the options the plugin and the CLI render."""
    assert Options().min_change_ms == MIN_CHANGE_MS.default
    assert Options().confirm_runs == CONFIRM_RUNS.default


def test_shared_option_help_and_default_are_the_same_in_pytest_and_the_cli(
    pytester: pytest.Pytester,
) -> None:
    """``pytest --help`` and ``kari-debug compare --help`` show one help text and default."""
    pytest_help = " ".join(pytester.runpytest("--help").stdout.str().split())
    assert f"{MIN_CHANGE_MS.flag}=MS {MIN_CHANGE_MS.help_with_default()}" in pytest_help
    assert f"{FAIL_REGRESSION.flag}=GATES {FAIL_REGRESSION.help}" in pytest_help
    cli_help = " ".join(CliRunner().invoke(cli, ["compare", "--help"]).output.split())
    assert f"--min-change-ms MS {MIN_CHANGE_MS.help} [default: {MIN_CHANGE_MS.default:g}" in (
        cli_help
    )
    assert f"as {FAIL_REGRESSION.flag}" in cli_help


def test_a_bad_shared_option_value_names_its_source_and_what_is_accepted(
    pytester: pytest.Pytester,
) -> None:
    """The plugin and the CLI reject a bad value; the plugin's message names flag or ini."""
    pytester.makepyfile("def test_ok(): pass")
    result = pytester.runpytest("--kari-min-change-ms=-1")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--kari-min-change-ms must be a number >= 0, got '-1'*"])
    pytester.makeini("[pytest]\nkari_retention_runs = 2.5\n")
    result = pytester.runpytest()
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*ini kari_retention_runs must be a whole number >= 0 (0: all), got '2.5'*"]
    )
    cli_result = CliRunner().invoke(cli, ["compare", "a", "--min-change-ms", "-1"])
    assert cli_result.exit_code == 2
    assert "-1" in cli_result.output


@pytest.mark.parametrize(
    ("text", "expected"), [("", 200), (" 7 ", 7), ("0", 0)]
)  # fmt: skip
def test_option_spec_parses_text_and_falls_back_to_its_default(text: str, expected: int) -> None:
    """An empty value is the default; text is converted to the option's type."""
    assert RETENTION_RUNS.parse(text) == expected


@pytest.mark.parametrize("text", ["x", "-1", "1.5", "nan"])
def test_option_spec_rejects_bad_numbers(text: str) -> None:
    """A value that is not a whole number >= 0 is a ConfigurationError naming the flag."""
    with pytest.raises(ConfigurationError, match=r"--kari-retention-runs must be a whole number"):
        RETENTION_RUNS.parse(text)


def test_float_option_rejects_infinity_and_names_the_given_source() -> None:
    """inf is no threshold; the message names where the value came from."""
    spec = OptionSpec("x", "N", "X", default=1.0, kind=float, minimum=0)
    with pytest.raises(ConfigurationError, match=r"^ini kari_x must be a number >= 0, got 'inf'$"):
        spec.parse("inf", source="ini kari_x")


@pytest.mark.parametrize(
    "layout",
    [
        {"pytest.ini": "[pytest]\n"},
        {"tox.ini": "[pytest]\n", "setup.cfg": "[metadata]\n"},
        {"pyproject.toml": "[project]\nname = 'x'\n"},  # no pytest table: still the rootdir
        {"setup.py": "pass\n"},
        {},
    ],
    ids=["pytest-ini", "tox-ini", "bare-pyproject", "setup-py", "nothing"],
)
def test_cli_rootdir_is_the_one_pytest_picks(
    pytester: pytest.Pytester, layout: dict[str, str]
) -> None:
    """From a subfolder, the CLI finds the rootdir pytest reports (so the same store)."""
    for name, text in layout.items():
        (pytester.path / name).write_text(text)
    deeper = pytester.path / "pkg" / "deeper"
    deeper.mkdir(parents=True)
    (deeper / "test_x.py").write_text("def test_ok(): pass\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(deeper)  # as the user starts both: in a subfolder, without arguments
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
        found = find_rootdir(deeper)
    [line] = [line for line in result.outlines if line.startswith("rootdir: ")]
    reported = Path(line.removeprefix("rootdir: ").split(",")[0].strip())
    assert found.resolve() == reported.resolve()


def test_configuration_fields_all_carry_help() -> None:
    """Every configuration field has its help text in its metadata."""
    from pytest_kari_debug.alerting import AlertingConfiguration
    from pytest_kari_debug.config import DebugConfiguration

    for cls in (DebugConfiguration, AlertingConfiguration):
        for spec in dataclasses.fields(cls):
            assert spec.metadata.get("help"), f"{cls.__name__}.{spec.name}"


def test_a_configuration_field_without_help_is_an_error_at_definition() -> None:
    """A new field without help text fails when its class is defined, naming the field."""
    from pytest_kari_debug.config import documented

    with pytest.raises(TypeError, match=r"Broken field\(s\) \['forgotten'\] have no help text"):

        @documented
        @dataclasses.dataclass(frozen=True)
        class Broken:
            kept: int = dataclasses.field(default=1, metadata={"help": "Kept"})
            forgotten: int = 2
