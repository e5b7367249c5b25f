"""The installed distribution's version: the one source of ``__version__`` and of every
"plugin_version" the outputs carry."""

from __future__ import annotations

import functools

DISTRIBUTION = "pytest-kari-debug"


@functools.cache
def plugin_version() -> str:
    """The version pip installed (``0+unknown`` when imported from a source tree that is not)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:
        return "0+unknown"
