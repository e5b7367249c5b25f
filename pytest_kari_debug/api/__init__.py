"""The REST API and live dashboard (the ``server`` extra: FastAPI and uvicorn).

``create_app(...)`` builds the ASGI app (``kari-debug start`` finds it by default);
``ApiServer`` serves it from a background thread (``pytest --kari-serve``,
``kari-debug serve``).
"""

from __future__ import annotations

try:
    import fastapi  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised without the extra
    msg = "the REST API needs an extra: pip install 'pytest-kari-debug[server]'"
    raise ImportError(msg) from exc

from .app import PREFIX, create_app
from .server import ApiServer
from .stream import StreamSettings, sse_event

__all__ = ["PREFIX", "ApiServer", "StreamSettings", "create_app", "sse_event"]
