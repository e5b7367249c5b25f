"""A fake forecast provider served on 127.0.0.1 for the weather extension's tests."""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

FORECASTS = {
    "oslo": [(-3.5, "snow"), (-1.0, "cloudy"), (0.5, "sleet")],
    "lisbon": [(18.0, "sunny"), (19.5, "sunny"), (17.0, "windy")],
}


class ProviderHandler(BaseHTTPRequestHandler):
    """Answers ``GET /forecast?city=..&days=..`` like a small weather API."""

    delay = 0.0

    def do_GET(self) -> None:
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        city = query.get("city", [""])[0]
        days = int(query.get("days", ["1"])[0])
        time.sleep(self.delay)
        if city.lower() == "error":
            self._send(500, {"error": "provider failure"})
        elif city.lower() not in FORECASTS:
            self._send(404, {"error": f"unknown city {city}"})
        else:
            rows = FORECASTS[city.lower()][:days]
            body = {"city": city.title(), "days": [{"temp_c": t, "summary": s} for t, s in rows]}
            self._send(200, body)

    def _send(self, status: int, body: dict[str, object]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        """Keep the test output quiet."""


@pytest.fixture(scope="session")
def provider_url() -> Iterator[str]:
    """Base URL of a forecast provider running on 127.0.0.1 at a free port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), ProviderHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
