"""The surfaces read the store through sources (issue 22, item 3): the CLI, the API, the
dashboard and the report call no reading method of a store themselves, and import it only
where the import-linter contract allows (where they open it, or to annotate a parameter)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import pytest_kari_debug

PACKAGE = Path(pytest_kari_debug.__file__).parent
SURFACES = ("cli", "api", "report", "dashboard.py")
#: The store methods a surface may call itself, by module, and why.
ALLOWED = {
    "cli/app.py": {"close"},  # the CLI opens and closes the store its commands read
    "api/hub.py": {"close"},  # the API likewise
    "cli/daemon.py": {"write_records", "close"},  # the background manager writes its samples
    # import, prune and the page of a stored run's report change or measure the store itself
    "cli/stored.py": {"import_run", "prune", "reclaim_space", "size_bytes"},
}


def store_calls(source: str) -> list[tuple[int, str]]:
    """``(line, method)`` of each call of a method on something named ``store``
    (``store.tests(...)``, ``scope.store.get_run(...)``, ``self._store.close()``)."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else getattr(owner, "attr", None)
            if name in ("store", "_store"):
                found.append((node.lineno, node.func.attr))
    return sorted(found)


def test_the_scan_sees_a_store_read_however_it_is_reached() -> None:
    source = (
        "def a(store):\n    return store.tests(1)\n"
        "def b(scope):\n    return scope.store.get_run(2)\n"
        "def c(self):\n    self._store.close()\n"
        "def d(source, hub):\n    return source.run_tests(1), hub.store(), StoreSource(x.store)\n"
    )
    assert store_calls(source) == [(2, "tests"), (4, "get_run"), (6, "close")]


def test_surfaces_read_the_store_only_through_sources() -> None:
    """No surface calls a store's reading methods: each reads through a StoreSource."""
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = path.relative_to(PACKAGE).as_posix()
        if module.split("/")[0] not in SURFACES:
            continue
        for line, method in store_calls(path.read_text(encoding="utf-8")):
            if method not in ALLOWED.get(module, ()):
                found.append(f"{module}:{line} calls store.{method}()")
    assert found == [], "read through pytest_kari_debug.sources.StoreSource"


def test_an_import_contract_keeps_the_store_under_the_sources() -> None:
    """The import-linter contract forbids the surfaces the storage package, but where one
    opens the store, writes it, or annotates a parameter with it."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    config = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text(encoding="utf-8"))
    [contract] = [
        c
        for c in config["tool"]["importlinter"]["contracts"]
        if "only through sources" in c["name"]
    ]
    assert contract["type"] == "forbidden"
    assert contract["forbidden_modules"] == ["pytest_kari_debug.storage"]
    surfaces = {name.removesuffix(".py") for name in SURFACES}
    assert {m.rsplit(".", 1)[-1] for m in contract["source_modules"]} == surfaces
    ignored = {
        line.split(" -> ")[0].removeprefix("pytest_kari_debug.")
        for line in contract["ignore_imports"]
    }
    # report and report.data annotate the store= parameter of write_report and the model.
    assert ignored == {"cli.app", "api.hub", "cli.daemon", "dashboard", "report", "report.data"}
