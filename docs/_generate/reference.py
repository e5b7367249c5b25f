"""The reference pages, generated from the code at build time (an mkdocs hook).

``mkdocs.yml`` loads this file as a hook: ``on_files`` adds each page of :data:`PAGES` to the
site, so nothing generated is checked in and nothing can go stale. ``tests/test_docs.py``
imports it to check the pages against the code.

Sources: pytest options and ini keys from the plugin's ``pytest_addoption`` hooks run on a
real pytest parser; configuration fields from the dataclasses' fields and their ``help``
metadata; the CLI from click (``mkdocs-click``); the REST API from the FastAPI app's OpenAPI
document; the run JSON from its JSON Schema; hooks and the Python API from docstrings
(``mkdocstrings``).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

PLUGIN = "pytest_kari_debug.plugin"


def cell(text: object) -> str:
    """*text* as one cell of a Markdown table (plain text: no links, no HTML, no emphasis)."""
    text = " ".join(str(text).split()).replace("&", "&amp;").replace("<", "&lt;")
    for special in "\\|[]*`":
        text = text.replace(special, "\\" + special)
    return text


def _sibling(name: str) -> Any:
    """The module *name* of this folder (mkdocs loads this file by path, not as a package)."""
    path = Path(__file__).with_name(f"{name}.py")
    spec = importlib.util.spec_from_file_location(f"kari_docs_{name}", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


#: A docstring's reStructuredText roles and literals as Markdown (as the API pages get them).
prose = _sibling("griffe_roles").markdown


def code(text: object) -> str:
    """*text* as inline code in a table cell."""
    return "`" + " ".join(str(text).split()).replace("`", "'") + "`"


def table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


# pytest options, ini keys, markers, fixtures ------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Option:
    """One ``--kari-*`` flag as the plugin registers it."""

    flag: str
    dest: str
    help: str
    metavar: str | None
    takes_value: bool
    group: str


@dataclasses.dataclass(frozen=True)
class IniKey:
    """One ``kari_*`` ini key as the plugin registers it."""

    name: str
    help: str
    type: str
    default: Any


def plugin_parser() -> Any:
    """A real pytest parser with the plugin's options (its ``pytest_addoption`` hooks run)."""
    from _pytest.config import get_config

    config = get_config()
    config.pluginmanager.import_plugin(PLUGIN)  # pytest_addoption is historic: it runs now
    return config._parser


def pytest_options() -> list[Option]:
    """Every ``--kari-*`` flag, in registration order."""
    found = []
    for group in plugin_parser()._groups:
        for option in group.options:
            attrs = option.attrs()
            for flag in option.names():
                if flag.startswith("--kari-"):
                    found.append(
                        Option(
                            flag=flag,
                            dest=attrs.get("dest") or flag[2:].replace("-", "_"),
                            help=(attrs.get("help") or "").replace("%%", "%"),
                            metavar=attrs.get("metavar"),
                            takes_value=attrs.get("nargs") != 0
                            and attrs.get("action") not in ("store_true", "store_false"),
                            group=group.name,
                        )
                    )
    return found


def ini_keys() -> list[IniKey]:
    """Every ``kari_*`` ini key, in registration order."""
    keys = []
    for name, spec in plugin_parser()._inidict.items():
        if name.startswith("kari_"):
            help_text, kind, default = spec[:3]
            keys.append(IniKey(name, help_text, kind or "string", default))
    return keys


def pytest_listing(option: str) -> str:
    """What ``pytest OPTION`` (``--markers``, ``--fixtures``) prints outside any project."""
    with tempfile.TemporaryDirectory() as folder:  # no project configuration, no conftest
        result = subprocess.run(
            [sys.executable, "-m", "pytest", option, "-p", "no:cacheprovider"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        )
    return result.stdout


def fixtures() -> list[tuple[str, str]]:
    """``(name, docstring)`` of every ``kari_*`` fixture, as ``pytest --fixtures`` lists them."""
    found = []
    lines = pytest_listing("--fixtures").splitlines()
    for index, line in enumerate(lines):
        match = re.match(r"(kari_\w+)(?: \[\w+ scope\])? -- ", line)
        if match:
            doc = []
            for following in lines[index + 1 :]:
                if not following.startswith("    "):
                    break
                doc.append(following.strip())
            found.append((match.group(1), " ".join(doc)))
    return found


def markers() -> list[tuple[str, str]]:
    """``(signature, help)`` of every ``kari_*`` marker, as ``pytest --markers`` lists them."""
    found = []
    for line in pytest_listing("--markers").splitlines():
        if line.startswith("@pytest.mark.kari_"):
            signature, _, text = line.removeprefix("@pytest.mark.").partition(": ")
            found.append((signature, text))
    return found


def _default_text(value: Any) -> str:
    if value in ("", None, []):
        return "—"
    return f"`{value!r}`" if not isinstance(value, str) else f"`{value}`"


def pytest_plugin_page() -> str:
    options = pytest_options()
    keys = {key.name: key for key in ini_keys()}
    rows = []
    for option in options:
        key = keys.pop(option.dest, None)
        usage = (
            f"`{option.flag}={option.metavar or 'VALUE'}`"
            if option.takes_value
            else (f"`{option.flag}`")
        )
        ini = f"`{key.name}` ({key.type})" if key else "—"
        rows.append([usage, ini, cell(option.help)])
    out = [
        "# pytest plugin: options, ini keys, markers, fixtures",
        "",
        "*Generated from the plugin's `pytest_addoption` hooks run on a real pytest parser,"
        " its markers and its fixtures; `pytest --help` prints the same options.*",
        "",
        "Give a value with `=` (`--kari-json=run.json`): pytest reads a separate value that"
        " names an existing file as a test path before plugins load. A flag beats its ini"
        " key; an ini key (in `pytest.ini`, `tox.ini`, `setup.cfg` or"
        " `[tool.pytest.ini_options]`) sets the default. A bad value stops the run at start-up"
        " with a usage error naming the option, the value and what is accepted.",
        "",
        "## Options and their ini keys",
        "",
        table(["flag", "ini key", "meaning"], rows),
    ]
    if keys:
        out += [
            "## Ini keys without a flag",
            "",
            table(
                ["ini key", "type", "default", "meaning"],
                [
                    [f"`{k.name}`", k.type, _default_text(k.default), cell(k.help)]
                    for k in keys.values()
                ],
            ),
        ]
    out += [
        "## Markers",
        "",
        "Arguments are checked at collection: a wrong one is a usage error naming the marker"
        " and the test.",
        "",
        table(["marker", "meaning"], [[code(n), cell(t)] for n, t in markers()]),
        "## Fixtures",
        "",
        "Requesting one wraps the test in a debug session, also without `--kari-debug`.",
        "",
        table(["fixture", "what it gives"], [[f"`{n}`", cell(d)] for n, d in fixtures()]),
    ]
    return "\n".join(out)


# Configuration dataclasses ------------------------------------------------------------------
def configuration_classes() -> list[type]:
    from pytest_kari_debug.alerting import AlertingConfiguration
    from pytest_kari_debug.config import DebugConfiguration

    return [DebugConfiguration, AlertingConfiguration]


def field_default(spec: dataclasses.Field[Any]) -> Any:
    if spec.default is not dataclasses.MISSING:
        return spec.default
    if spec.default_factory is not dataclasses.MISSING:
        return spec.default_factory()
    return dataclasses.MISSING


def configuration_page() -> str:
    out = [
        "# Configuration",
        "",
        "*Generated from the fields of the configuration dataclasses and their `help` metadata.*",
        "",
    ]
    for cls in configuration_classes():
        rows = []
        for spec in dataclasses.fields(cls):
            kind = spec.type if isinstance(spec.type, str) else getattr(spec.type, "__name__", "")
            rows.append(
                [
                    f"`{spec.name}`",
                    code(kind),
                    code(repr(field_default(spec))),
                    cell(spec.metadata.get("help", "")),
                ]
            )
        doc = inspect.getdoc(cls) or ""
        out += [
            f"## `{cls.__name__}`",
            "",
            f"`from {cls.__module__} import {cls.__name__}`",
            "",
            prose(doc),
            "",
            table(["field", "type", "default", "meaning"], rows),
        ]
        if cls.__name__ == "DebugConfiguration":
            out += [
                "In a pytest run each field is also the flag `--kari-<field>` (dashes for"
                " underscores) and the ini key `kari_<field>`; `memory_tracking` is"
                " `--kari-memory`. See [the pytest plugin](pytest-plugin.md).",
                "",
            ]
    return "\n".join(out)


# Figures ------------------------------------------------------------------------------------
def figures_page() -> str:
    from pytest_kari_debug import figures

    rows = [
        [
            f"`{spec.name}`",
            cell(spec.unit or "its own"),
            cell(spec.base_unit if spec.unit else ""),
            "yes" if spec.series else "no",
            cell(spec.description),
            cell(spec.source),
        ]
        for spec in figures.catalogue()
    ]
    return "\n".join(
        [
            "# Figures",
            "",
            "*Generated from the catalogue in `pytest_kari_debug/figures/catalogue.json`.*",
            "",
            "A figure is something measured about a test, named by alert rules"
            " (`kari_alert_rules`, `kari_alert`), budgets (`kari_budget`) and regression gates."
            " A series figure has many values in a test (samples); the others have one.",
            "",
            prose(inspect.getdoc(figures) or "").split("\n\n", 1)[1],
            "",
            table(["figure", "unit", "base unit", "series", "meaning", "source"], rows),
        ]
    )


# CLI ------------------------------------------------------------------------------------------
def cli_commands() -> list[str]:
    """Every ``kari-debug`` command path (``kari-debug logs show``...), groups included."""
    import click

    from pytest_kari_debug.cli import cli

    def walk(command: click.Command, path: str) -> Iterator[str]:
        yield path
        if isinstance(command, click.Group):
            for name, sub in sorted(command.commands.items()):
                if not sub.hidden:
                    yield from walk(sub, f"{path} {name}")

    return list(walk(cli, "kari-debug"))


def _cli_sections() -> Iterator[tuple[str, str, str]]:
    """``(command path, summary, --help text)`` of every command, depth first."""
    import click

    from pytest_kari_debug.cli import cli

    def walk(
        command: click.Command, path: str, parent: click.Context | None
    ) -> Iterator[tuple[str, str, str]]:
        ctx = click.Context(command, info_name=path.rsplit(" ", 1)[-1], parent=parent)
        ctx.max_content_width = ctx.terminal_width = 88
        yield path, command.get_short_help_str(limit=200), command.get_help(ctx)
        if isinstance(command, click.Group):
            for name, sub in sorted(command.commands.items()):
                if not sub.hidden:
                    yield from walk(sub, f"{path} {name}", ctx)

    yield from walk(cli, "kari-debug", None)


def cli_page() -> str:
    out = [
        "# Command line: `kari-debug`",
        "",
        "*Generated from the click commands: each section is what `--help` prints.*",
        "",
        "Global options go before the command: `kari-debug --extension-id my-ext logs show`."
        " Errors are one line on stderr (`kari-debug: error: ...`); the exit status is 2 for"
        " a usage error and 1 for a failure (a broken gate, say).",
        "",
    ]
    sections = list(_cli_sections())
    out.append(table(["command", "what it does"], [[f"`{p}`", cell(s)] for p, s, _ in sections]))
    for path, _summary, help_text in sections:
        depth = min(path.count(" ") + 1, 4)
        out += [f"{'#' * (depth + 1)} `{path}`", "", "```text", help_text, "```", ""]
    return "\n".join(out)


# REST API -------------------------------------------------------------------------------------
def openapi_document() -> dict[str, Any]:
    """The OpenAPI document of the FastAPI app that ``kari-debug serve`` runs."""
    from pytest_kari_debug.api import create_app

    document: dict[str, Any] = create_app(include_registry=False).app.openapi()
    return document


def _schema_name(schema: dict[str, Any]) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return f"[`{name}`](#{name.lower()})"
    if "anyOf" in schema:
        return " or ".join(_schema_name(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"array of {_schema_name(schema.get('items', {}))}"
    if "enum" in schema:
        return " \\| ".join(f"`{v}`" for v in schema["enum"])
    return f"`{schema.get('type', 'any')}`"


def _operation(method: str, path: str, op: dict[str, Any]) -> list[str]:
    out = [f"### `{method.upper()} {path}`", "", op.get("summary", ""), ""]
    if op.get("description"):
        out += [op["description"], ""]
    params = op.get("parameters", [])
    if params:
        rows = [
            [
                f"`{p['name']}`",
                p.get("in", ""),
                "yes" if p.get("required") else "no",
                _schema_name(p.get("schema", {})),
                cell(p.get("description") or p.get("schema", {}).get("description", "")),
            ]
            for p in params
        ]
        out.append(table(["parameter", "in", "required", "type", "meaning"], rows))
    body = op.get("requestBody", {}).get("content", {})
    for media, content in body.items():
        out += [f"Body ({media}): {_schema_name(content.get('schema', {}))}", ""]
    rows = []
    for status, response in op.get("responses", {}).items():
        kinds = [
            f"{media}: {_schema_name(content.get('schema', {}))}"
            if content.get("schema")
            else media
            for media, content in response.get("content", {}).items()
        ]
        rows.append([status, cell(response.get("description", "")), "; ".join(kinds)])
    out.append(table(["status", "meaning", "body"], rows))
    return out


def rest_api_page() -> str:
    document = openapi_document()
    out = [
        "# REST API",
        "",
        f"*Generated from the OpenAPI document of the app (`{document['info']['title']}`"
        f" {document['info']['version']}).* `kari-debug serve` and"
        " `pytest --kari-serve` run it; see [serving the dashboard](../how-to/dashboard.md) for"
        " tokens and hosts.",
        "",
        document["info"].get("description", ""),
        "",
    ]
    by_tag: dict[str, list[tuple[str, str, dict[str, Any]]]] = {}
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            tag = (op.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).append((method, path, op))
    for tag, operations in by_tag.items():
        out += [f"## {tag.capitalize()}", ""]
        for method, path, op in operations:
            out += _operation(method, path, op)
    out += ["## Schemas", ""]
    for name, schema in document.get("components", {}).get("schemas", {}).items():
        out += [f"### {name}", ""]
        if schema.get("description"):
            out += [cell(schema["description"]), ""]
        required = set(schema.get("required", []))
        rows = [
            [
                f"`{prop}`",
                _schema_name(spec),
                "yes" if prop in required else "no",
                cell(spec.get("description", "")),
            ]
            for prop, spec in schema.get("properties", {}).items()
        ]
        if rows:
            out.append(table(["field", "type", "required", "meaning"], rows))
    return "\n".join(out)


# Run JSON -------------------------------------------------------------------------------------
def run_schema() -> dict[str, Any]:
    import pytest_kari_debug

    path = Path(pytest_kari_debug.__file__).parent / "schemas" / "run.schema.json"
    schema: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return schema


def _type_text(spec: dict[str, Any]) -> str:
    if "const" in spec:
        return f"`{json.dumps(spec['const'])}`"
    if "$ref" in spec:
        return spec["$ref"].rsplit("/", 1)[-1]
    if "enum" in spec and "type" not in spec:
        return "one of " + ", ".join(f"`{v}`" for v in spec["enum"])
    kind = spec.get("type", "any")
    kinds = kind if isinstance(kind, list) else [kind]
    text = " or ".join(kinds)
    if "array" in kinds and "items" in spec:
        text += f" of {_type_text(spec['items'])}"
    if "enum" in spec:
        text += ": " + ", ".join(f"`{v}`" for v in spec["enum"])
    return text


def schema_rows(spec: dict[str, Any], prefix: str) -> Iterator[list[str]]:
    """One row per property under *spec*, depth first, as ``path | type | required | note``."""
    required = set(spec.get("required", []))
    for name, sub in spec.get("properties", {}).items():
        path = f"{prefix}.{name}" if prefix else name
        note = sub.get("description", "")
        bounds = [f"{k} {sub[k]}" for k in ("minimum", "maximum", "minLength") if k in sub]
        yield [
            f"`{path}`",
            _type_text(sub),
            "yes" if name in required else "no",
            cell("; ".join(filter(None, [note, *bounds]))),
        ]
        yield from schema_rows(sub, path)
        items = sub.get("items")
        if isinstance(items, dict) and "properties" in items:
            yield from schema_rows(items, f"{path}[]")


def run_json_page() -> str:
    schema = run_schema()
    out = [
        "# Run JSON (`--kari-json`)",
        "",
        "*Generated from the JSON Schema the plugin validates against"
        " (`pytest_kari_debug/schemas/run.schema.json`, draft"
        f" `{schema.get('$schema', '')}`).*",
        "",
        "One document per run: the run, a summary, every test's record, diagnostics and the"
        " sections the features add.",
        "",
        "## Document",
        "",
        table(["field", "type", "required", "note"], list(schema_rows(schema, ""))),
    ]
    for name, spec in schema.get("$defs", {}).items():
        out += [
            f"## `{name}`",
            "",
            table(["field", "type", "required", "note"], list(schema_rows(spec, ""))),
        ]
    out += [
        "## The schema",
        "",
        "```json",
        json.dumps(schema, indent=2),
        "```",
        "",
    ]
    return "\n".join(out)


# Hooks and the Python API (mkdocstrings) ------------------------------------------------------
def hook_names() -> list[str]:
    from pytest_kari_debug import hookspecs

    return [name for name in vars(hookspecs) if name.startswith("pytest_kari_debug_")]


def hooks_page() -> str:
    out = [
        "# Hooks",
        "",
        "*Generated from `pytest_kari_debug/hookspecs.py`.* Implement one in a `conftest.py`"
        " or a plugin, like any pytest hook:",
        "",
        "```python",
        "def pytest_kari_debug_session_options(item):",
        '    return {"profile_memory": True} if "memory" in item.keywords else None',
        "```",
        "",
        "::: pytest_kari_debug.hookspecs",
        "    options:",
        "      show_root_heading: false",
        "      show_source: false",
        "      heading_level: 2",
        "      members:",
    ]
    out += [f"        - {name}" for name in hook_names()]
    return "\n".join(out) + "\n"


PUBLIC_MODULES = (
    "pytest_kari_debug",
    "pytest_kari_debug.alerting",
    "pytest_kari_debug.dashboard",
    "pytest_kari_debug.sources",
    "pytest_kari_debug.report",
    "pytest_kari_debug.api",
)


def public_names(module_name: str) -> list[str]:
    """The names of *module_name*'s ``__all__``, else the public classes and functions it
    defines."""
    module = importlib.import_module(module_name)
    names: list[str] | None = getattr(module, "__all__", None)
    if names is None:
        names = [
            name
            for name, value in vars(module).items()
            if (inspect.isclass(value) or inspect.isfunction(value))
            and getattr(value, "__module__", "") == module_name
        ]
    return [n for n in names if not n.startswith("_")]


def python_api_page() -> str:
    out = [
        "# Python API",
        "",
        "*Generated from the docstrings of the public names (each module's `__all__`).* The"
        " names of the [seed API](../seed-README.md) are importable from `pytest_kari_debug`.",
        "",
    ]
    seen: set[str] = set()
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        names = [n for n in public_names(module_name) if n not in seen]
        seen.update(names)
        constants = [n for n in names if isinstance(getattr(module, n), (str, int))]
        documented = [n for n in names if n not in constants]
        out += [f"## `{module_name}`", ""]
        if constants:
            rows = [[f"`{n}`", code(repr(getattr(module, n)))] for n in constants]
            out += [table(["constant", "value"], rows)]
        for name in documented:
            target = getattr(module, name)
            home = getattr(target, "__module__", module_name) or module_name
            # An alias (``DashboardError = LiveOnlyError``) is documented under the name it is
            # defined with, after a line naming the alias.
            defined = getattr(target, "__qualname__", name)
            if defined != name:
                out += [f"`{name}` is another name of `{defined}`.", ""]
            out += [
                f"::: {home}.{defined}",
                "    options:",
                "      heading_level: 3",
                "      show_root_heading: true",
                "      show_root_full_path: false",
                "",
            ]
    return "\n".join(out)


PAGES: dict[str, Callable[[], str]] = {
    "reference/pytest-plugin.md": pytest_plugin_page,
    "reference/configuration.md": configuration_page,
    "reference/figures.md": figures_page,
    "reference/cli.md": cli_page,
    "reference/rest-api.md": rest_api_page,
    "reference/run-json.md": run_json_page,
    "reference/hooks.md": hooks_page,
    "reference/python-api.md": python_api_page,
}


def on_files(files: Any, config: Any) -> Any:
    """mkdocs hook: add every generated reference page to the site."""
    from mkdocs.structure.files import File

    for uri, make in PAGES.items():
        files.append(File.generated(config, uri, content=make()))
    return files
