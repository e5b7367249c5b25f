"""The weather extension: validates input, asks a forecast provider over HTTP, caches answers."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass

from pytest_kari_debug import ExtensionDebugManager

_CITY = re.compile(r"^[A-Za-zÀ-ÿ][A-Za-zÀ-ÿ .'-]{0,63}$")


class ValidationError(ValueError):
    """The request to the extension is not acceptable."""


class ProviderError(RuntimeError):
    """The forecast provider failed or could not be reached."""


@dataclass(frozen=True)
class Forecast:
    """Forecast of one city for the next days."""

    city: str
    temperatures_c: tuple[float, ...]
    summaries: tuple[str, ...]
    cached: bool = False


class WeatherExtension:
    """Answers "what is the weather in X" from a provider, with a TTL cache."""

    def __init__(
        self,
        base_url: str,
        *,
        debug_manager: ExtensionDebugManager | None = None,
        cache_ttl: float = 60.0,
        timeout: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.debug = debug_manager or ExtensionDebugManager("weather", "Weather")
        self.logger = self.debug.get_logger()
        self.metrics = self.debug.get_metrics_collector()
        self.errors = self.debug.get_error_tracker()
        self.tracer = self.debug.get_tracer()
        self.cache_ttl = cache_ttl
        self.timeout = timeout
        self._clock = clock
        self._cache: dict[tuple[str, int], tuple[float, Forecast]] = {}
        self.requests_made = 0

    def get_forecast(self, city: str, days: int = 1) -> Forecast:
        """Return the forecast of *city* for *days* days (1 to 7)."""
        city, days = _validate(city, days)
        key = (city.lower(), days)
        with self.tracer.start_span("weather.get_forecast", tags={"city": city, "days": days}):
            hit = self._cache.get(key)
            if hit is not None and self._clock() - hit[0] < self.cache_ttl:
                self.logger.debug("forecast cache hit", city=city, days=days)
                self.metrics.record_metric("cache_hits", 1, "count")
                return Forecast(hit[1].city, hit[1].temperatures_c, hit[1].summaries, cached=True)
            forecast = self._fetch(city, days)
            self._cache[key] = (self._clock(), forecast)
            return forecast

    def _fetch(self, city: str, days: int) -> Forecast:
        query = urllib.parse.urlencode({"city": city, "days": days})
        url = f"{self.base_url}/forecast?{query}"
        started = time.perf_counter()
        status = 0
        self.requests_made += 1
        try:
            with (
                self.tracer.start_span("provider.http_get", tags={"url": url}),
                urllib.request.urlopen(url, timeout=self.timeout) as response,
            ):
                status = response.status
                payload = json.loads(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            status = exc.code
            exc.close()
            error = ProviderError(f"provider answered {exc.code} for {city!r}")
            self.errors.record_exception(error, {"city": city, "status": exc.code})
            raise error from exc
        except (urllib.error.URLError, TimeoutError) as exc:
            error = ProviderError(f"provider unreachable: {exc}")
            self.errors.record_exception(error, {"city": city})
            raise error from exc
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000.0
            self.logger.log_api_request("GET", url, status or 599, elapsed_ms)
        days_data = payload.get("days", [])
        return Forecast(
            city=payload.get("city", city),
            temperatures_c=tuple(float(d["temp_c"]) for d in days_data),
            summaries=tuple(str(d["summary"]) for d in days_data),
        )


def _validate(city: object, days: object) -> tuple[str, int]:
    if not isinstance(city, str) or not _CITY.match(city.strip()):
        msg = f"city must be a place name of letters, spaces, ' . -, got {city!r}"
        raise ValidationError(msg)
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= 7:
        msg = f"days must be a whole number from 1 to 7, got {days!r}"
        raise ValidationError(msg)
    return city.strip(), days
