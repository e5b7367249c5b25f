"""The docs site: it builds strictly, its links hold, and its reference matches the code."""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[1]
GENERATE = ROOT / "docs" / "_generate"


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"kari_docs_{name}", GENERATE / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


reference = _load("reference")
linkcheck = _load("linkcheck")


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def page_text(site: Path, page: str) -> str:
    """The visible text of a built page, whitespace collapsed."""
    parser = _Text()
    parser.feed((site / page / "index.html").read_text(encoding="utf-8"))
    return " ".join(" ".join(parser.parts).split())


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site as ``mkdocs build --strict`` builds it (a warning fails the build)."""
    out = tmp_path_factory.mktemp("site")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture(scope="module")
def pytest_help() -> str:
    """What ``pytest --help`` prints with the plugin installed."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--help", "-p", "no:cacheprovider"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_every_option_of_pytest_help_is_in_the_site(site: Path, pytest_help: str) -> None:
    """Each --kari-* flag and kari_* ini key that pytest --help prints is on the plugin page."""
    flags = set(re.findall(r"(--kari-[a-z0-9-]+)", pytest_help))
    keys = set(re.findall(r"^\s+(kari_[a-z0-9_]+)", pytest_help, re.MULTILINE))
    assert len(flags) > 20, flags  # the parse found the plugin's options
    assert len(keys) > 20, keys
    text = page_text(site, "reference/pytest-plugin")
    shown_flags = set(re.findall(r"(--kari-[a-z0-9-]+)", text))
    assert flags <= shown_flags, sorted(flags - shown_flags)
    assert keys <= set(re.findall(r"(kari_[a-z0-9_]+)", text)), sorted(keys)


def test_every_marker_and_fixture_is_in_the_site(site: Path) -> None:
    """Each kari_* marker of pytest --markers and fixture of pytest --fixtures is documented."""
    listed = {}
    for option in ("--markers", "--fixtures"):
        result = subprocess.run(
            [sys.executable, "-m", "pytest", option, "-p", "no:cacheprovider"],
            cwd=site,
            capture_output=True,
            text=True,
            timeout=120,
        )
        names = re.findall(r"^(?:@pytest\.mark\.)?(kari_[a-z_]+)", result.stdout, re.M)
        listed[option] = set(names)
    assert "kari_budget" in listed["--markers"]
    assert "kari_debug" in listed["--fixtures"]
    text = page_text(site, "reference/pytest-plugin")
    for name in listed["--markers"] | listed["--fixtures"]:
        assert name in text, name


def test_option_reference_is_exactly_the_parsers_options(pytest_help: str) -> None:
    """The generated option list has every flag of pytest --help and nothing else."""
    generated = {option.flag for option in reference.pytest_options()}
    assert generated == set(re.findall(r"(--kari-[a-z0-9-]+)", pytest_help))
    for option in reference.pytest_options():
        assert option.help, option.flag


def test_every_configuration_field_is_in_the_site(site: Path) -> None:
    """Each DebugConfiguration and AlertingConfiguration field appears with its help text."""
    text = page_text(site, "reference/configuration")
    for cls in reference.configuration_classes():
        for spec in dataclasses.fields(cls):
            assert spec.name in text, spec.name
            assert spec.metadata["help"] in text, spec.name


def test_every_figure_is_in_the_site(site: Path) -> None:
    """Each figure of the catalogue appears with its meaning on the figures page."""
    from pytest_kari_debug.figures import catalogue

    text = page_text(site, "reference/figures")
    for spec in catalogue():
        assert spec.name in text, spec.name
        assert " ".join(spec.description.split()) in text, spec.name


def test_every_cli_command_is_in_the_site(site: Path) -> None:
    """Each kari-debug command and subcommand has its section on the CLI page."""
    commands = reference.cli_commands()
    assert "kari-debug logs show" in commands
    text = page_text(site, "reference/cli")
    for command in commands:
        assert command in text, command


def test_every_endpoint_is_in_the_site(site: Path) -> None:
    """Each path and method of the OpenAPI document appears on the REST API page."""
    text = page_text(site, "reference/rest-api")
    paths = reference.openapi_document()["paths"]
    assert paths
    for path, methods in paths.items():
        for method in methods:
            assert f"{method.upper()} {path}" in text, (method, path)


def test_run_json_hooks_and_api_are_in_the_site(site: Path) -> None:
    """The run JSON's fields, every hook and every public name are documented."""
    schema = reference.run_schema()
    run_json = page_text(site, "reference/run-json")
    for name in [*schema["properties"], *schema["$defs"]["test"]["properties"]]:
        assert name in run_json, name
    hooks = page_text(site, "reference/hooks")
    assert reference.hook_names()
    for name in reference.hook_names():
        assert name in hooks, name
    api = page_text(site, "reference/python-api")
    for module in reference.PUBLIC_MODULES:
        for name in reference.public_names(module):
            assert name in api, (module, name)


def test_site_has_no_broken_internal_links(site: Path) -> None:
    """Every internal link and anchor of the built site resolves."""
    assert linkcheck.broken_links(site) == []


def test_linkcheck_reports_missing_pages_files_and_anchors(tmp_path: Path) -> None:
    """The link check names a missing page, a missing file and a missing anchor, and
    accepts directory links, existing anchors and external links."""
    (tmp_path / "guide").mkdir()
    (tmp_path / "guide" / "index.html").write_text('<h2 id="setup">Set-up</h2>')
    (tmp_path / "index.html").write_text(
        '<a href="guide/">ok</a><a href="guide/#setup">ok</a><a href="https://x.invalid/">x</a>'
        '<a href="#top" id="top">ok</a><a href="missing/">bad</a>'
        '<img src="img/shot.png"><a href="guide/#teardown">bad</a>'
    )
    problems = linkcheck.broken_links(tmp_path)
    assert len(problems) == 3, problems
    assert any("missing/" in p for p in problems)
    assert any("img/shot.png" in p for p in problems)
    assert any("no anchor #teardown" in p for p in problems)
    assert linkcheck.main([str(tmp_path)]) == 1


def test_readme_is_a_short_entry_page_whose_links_resolve() -> None:
    """The README stays short, starts with the demo and test commands (the test command is
    what .ci/run runs) and links only to files that exist."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 200
    commands = re.findall(r"```bash\n(.*?)\n```", readme, re.S)
    assert "pytest --kari-debug" in commands[0]
    assert "examples/" in commands[0]
    assert commands[1].endswith("-m pytest -n 2 tests/")
    assert "-m pytest -n 2 tests/" in (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme)
    assert targets
    for target in targets:
        if "://" not in target:
            assert (ROOT / target).exists(), target
