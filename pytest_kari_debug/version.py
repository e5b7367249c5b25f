"""The installed distribution's version: the one source of ``__version__`` and of every
"plugin_version" the outputs carry."""

from __future__ import annotations

import functools

DISTRIBUTION = "pytest-kari-debug"


@functools.cache
def plugin_version() -> str:
    """The version pip installed (``0+unknown`` when imported from a source tree that is not)."""
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        found = distribution(DISTRIBUTION)
    except PackageNotFoundError:
        return "0+unknown"
    # The core metadata's one-line Version header, read without the e-mail parser that
    # ``Distribution.version`` imports for it (the first recorded test asks for the version).
    for line in (found.read_text("METADATA") or "").splitlines():
        if not line:  # the end of the headers
            break
        if line.startswith("Version:"):
            return line[len("Version:") :].strip()
    return str(found.version)
