"""Which extensions the API serves: live managers of this process, and the store's records."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

from ..backends import as_location, location_exists
from ..dashboard import ExtensionDebugDashboard, configuration_from
from ..exceptions import ConfigurationError, StoreError
from ..manager import ExtensionDebugManager, list_managers
from ..sources import StoreSource
from ..storage import Store

ManagerSource = (
    Iterable[ExtensionDebugManager]
    | Mapping[str, ExtensionDebugManager]
    | Callable[[], Iterable[ExtensionDebugManager] | Mapping[str, ExtensionDebugManager]]
)


def _managers_of(source: Any) -> list[ExtensionDebugManager]:
    if source is None:
        return []
    if callable(source) and not isinstance(source, ExtensionDebugManager):
        source = source()
    if isinstance(source, ExtensionDebugManager):
        return [source]
    if isinstance(source, Mapping):
        source = source.values()
    return [m for m in list(source) if isinstance(m, ExtensionDebugManager)]


class DashboardHub:
    """The dashboards of every extension the API can show, found anew at each request.

    Live managers come first: those given (a list, a mapping or a callable returning one),
    those started through the API, and (with *include_registry*) every live manager of this
    process. An extension with no live manager is shown from the store, when it has records.
    """

    def __init__(
        self,
        managers: ManagerSource | None = None,
        *,
        store_path: str | Path | None = None,
        include_registry: bool = True,
    ) -> None:
        self.managers = managers
        self.store_path = as_location(store_path) if store_path is not None else None
        self.include_registry = include_registry
        self.started: dict[str, ExtensionDebugManager] = {}
        self._store: Store | None = None
        self._dashboards: dict[str, ExtensionDebugDashboard] = {}
        self._lock = threading.RLock()

    # Sources -----------------------------------------------------------------------------
    def live(self) -> dict[str, ExtensionDebugManager]:
        """Live managers by extension id (given ones win over the process registry)."""
        found: dict[str, ExtensionDebugManager] = {}
        if self.include_registry:
            for manager in list_managers():
                found[manager.extension_id] = manager
        for manager in self.started.values():
            found[manager.extension_id] = manager
        for manager in _managers_of(self.managers):
            found[manager.extension_id] = manager
        return found

    def store(self) -> Store | None:
        """The store, opened on first use once its file exists; ``None`` without one."""
        with self._lock:
            if (
                self._store is None
                and self.store_path is not None
                and location_exists(self.store_path)
            ):
                try:
                    self._store = Store(self.store_path, create=False)
                except StoreError:
                    return None
            return self._store

    def stored_extensions(self) -> list[str]:
        store = self.store()
        return StoreSource(store).extensions() if store is not None else []

    # Dashboards --------------------------------------------------------------------------
    def extensions(self) -> list[dict[str, Any]]:
        """Every extension served: id, name, source (live or store) and whether it runs."""
        live = self.live()
        out = [
            {"extension_id": ext, "extension_name": m.extension_name, "source": "live",
             "running": m.running}
            for ext, m in sorted(live.items())
        ]  # fmt: skip
        for ext in self.stored_extensions():
            if ext not in live:
                out.append({"extension_id": ext, "extension_name": ext, "source": "store",
                            "running": False})  # fmt: skip
        return sorted(out, key=lambda e: e["extension_id"])

    def dashboard(self, extension_id: str) -> ExtensionDebugDashboard:
        """The dashboard of *extension_id*; LookupError when nothing is known of it."""
        manager = self.live().get(extension_id)
        with self._lock:
            cached = self._dashboards.get(extension_id)
            if manager is not None:
                if cached is None or cached.manager is not manager:
                    cached = ExtensionDebugDashboard(manager, store=self.store())
                    self._dashboards[extension_id] = cached
                return cached
            store = self.store()
            if store is not None and StoreSource(store).has_extension(extension_id):
                if cached is None or cached.manager is not None:
                    cached = ExtensionDebugDashboard(store=store, extension_id=extension_id)
                    self._dashboards[extension_id] = cached
                return cached
        msg = f"no extension {extension_id!r}: no live manager and nothing recorded for it"
        raise LookupError(msg)

    def start_manager(
        self,
        extension_id: str,
        *,
        extension_name: str | None = None,
        configuration: dict[str, Any] | None = None,
    ) -> tuple[ExtensionDebugManager, bool]:
        """Start the live manager of *extension_id* (created here when none runs).

        Returns the manager and whether it was created.
        """
        with self._lock:
            manager = self.live().get(extension_id)
            created = manager is None
            if manager is None:
                manager = ExtensionDebugManager(
                    extension_id, extension_name, configuration_from(configuration)
                )
                self.started[extension_id] = manager
            elif configuration:
                msg = (
                    f"the manager of {extension_id!r} already exists; its configuration cannot"
                    " change (stop the process that owns it, or leave configuration out)"
                )
                raise ConfigurationError(msg)
            manager.start()
        return manager, created

    def close(self) -> None:
        """Stop the managers started through the API and close the store."""
        with self._lock:
            for manager in self.started.values():
                manager.stop()
            if self._store is not None:
                self._store.close()
                self._store = None
