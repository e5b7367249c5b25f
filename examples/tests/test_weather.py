"""Tests of the weather extension, each run inside a debug session of the extension."""

from __future__ import annotations

import pytest
from weather import ProviderError, ValidationError, WeatherExtension

from pytest_kari_debug import ExtensionDebugManager

pytestmark = pytest.mark.kari_extension("weather", name="Weather")


@pytest.fixture
def weather(provider_url: str, kari_debug: ExtensionDebugManager) -> WeatherExtension:
    """The extension, reporting into this test's debug session."""
    return WeatherExtension(provider_url, debug_manager=kari_debug, timeout=2.0)


def test_forecast_for_a_known_city(weather: WeatherExtension) -> None:
    """A known city gets one temperature and summary per requested day."""
    forecast = weather.get_forecast("Oslo", days=3)
    assert forecast.city == "Oslo"
    assert forecast.temperatures_c == (-3.5, -1.0, 0.5)
    assert forecast.summaries[0] == "snow"


def test_second_request_is_served_from_the_cache(weather: WeatherExtension, kari_logger) -> None:
    """Asking twice makes one provider request; the second answer is marked cached."""
    first = weather.get_forecast("Lisbon", days=2)
    second = weather.get_forecast("lisbon", days=2)
    assert not first.cached
    assert second.cached
    assert weather.requests_made == 1
    assert any(r.message == "forecast cache hit" for r in kari_logger.get_logs())


def test_cache_entries_expire(provider_url: str, kari_debug: ExtensionDebugManager) -> None:
    """After the TTL the provider is asked again."""
    now = [0.0]
    weather = WeatherExtension(
        provider_url, debug_manager=kari_debug, cache_ttl=10, clock=lambda: now[0]
    )
    weather.get_forecast("Oslo")
    now[0] = 11.0
    weather.get_forecast("Oslo")
    assert weather.requests_made == 2


@pytest.mark.parametrize(
    ("city", "days"),
    [("", 1), ("Oslo<script>", 1), ("Oslo", 0), ("Oslo", 8), ("Oslo", True), (42, 1)],
)
def test_bad_input_is_rejected_before_any_request(weather: WeatherExtension, city, days) -> None:
    """Invalid cities and day counts raise ValidationError and never reach the provider."""
    with pytest.raises(ValidationError):
        weather.get_forecast(city, days)
    assert weather.requests_made == 0


def test_provider_failure_is_recorded(weather: WeatherExtension, kari_errors) -> None:
    """A provider 500 raises ProviderError and lands in the error tracker."""
    with pytest.raises(ProviderError, match="500"):
        weather.get_forecast("Error")
    analysis = kari_errors.get_error_analysis()
    assert analysis.total_errors == 1


def test_unknown_city_is_a_provider_error(weather: WeatherExtension, kari_logger) -> None:
    """A 404 from the provider becomes a ProviderError and a warning-level API log record."""
    with pytest.raises(ProviderError, match="404"):
        weather.get_forecast("Atlantis")
    statuses = [r.fields.get("status_code") for r in kari_logger.get_logs()]
    assert 404 in statuses


def test_unreachable_provider_is_a_provider_error(kari_debug: ExtensionDebugManager) -> None:
    """A provider nobody listens on fails fast with ProviderError."""
    weather = WeatherExtension("http://127.0.0.1:9", debug_manager=kari_debug, timeout=0.5)
    with pytest.raises(ProviderError, match="unreachable"):
        weather.get_forecast("Oslo")
