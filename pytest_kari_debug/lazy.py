"""Packages whose public names are imported on first use, through a module ``__getattr__``."""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(
    package: str,
    public: Mapping[str, str],
    computed: Mapping[str, Callable[[], Any]] | None = None,
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The ``__getattr__`` and ``__dir__`` of *package*: a name of *public* (name -> the
    submodule that defines it, or a module's full name) is imported on first use and kept in
    the package's namespace; a name of *computed* is the value its function returns, computed
    once."""
    namespace = sys.modules[package].__dict__
    extra = dict(computed or {})

    def __getattr__(name: str) -> Any:
        if name in extra:
            value = extra[name]()
        else:
            module = public.get(name)
            if module is None:
                msg = f"module {package!r} has no attribute {name!r}"
                raise AttributeError(msg)
            absolute = "." in module  # a module outside the package, by its full name
            from .selfcost import first_use  # (not imported by the package's import)

            with first_use():  # maybe inside a test: not the test's time
                value = getattr(
                    importlib.import_module(module if absolute else f".{module}", package), name
                )
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted({*namespace, *public, *extra})

    return __getattr__, __dir__


class LateImports:
    """Names a module binds in its own namespace at their first use instead of at its import.

    *names* maps each name to ``"module"`` or ``"module:attribute"`` (a module name may be
    relative to *package*). :meth:`load` imports them all once, under a lock; code that uses
    them checks :attr:`loaded` first (one attribute read on a hot path).
    """

    def __init__(self, namespace: dict[str, Any], package: str, names: Mapping[str, str]) -> None:
        self.loaded = False
        self._namespace = namespace
        self._package = package
        self._names = dict(names)
        self._lock = threading.Lock()

    def load(self) -> None:
        """Import every name into the namespace (once; later calls return at once)."""
        from .selfcost import first_use  # (not imported by the package's import)

        with self._lock:
            if self.loaded:
                return
            with first_use():  # maybe inside a test: not the test's time
                for name, target in self._names.items():
                    module_name, _, attribute = target.partition(":")
                    module = importlib.import_module(module_name, self._package)
                    self._namespace[name] = getattr(module, attribute) if attribute else module
            self.loaded = True
