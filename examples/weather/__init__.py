"""A small Kari extension: weather forecasts from an HTTP provider, cached and validated."""

from __future__ import annotations

from .extension import Forecast, ProviderError, ValidationError, WeatherExtension

__all__ = ["Forecast", "ProviderError", "ValidationError", "WeatherExtension"]
