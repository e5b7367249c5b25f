"""Exporters: records in standard formats (JSON, CSV, Prometheus, Jaeger, OTLP).

Importing the package hands the component renderers down to the components
(:func:`.registry.install`), so ``logger.export()`` and its siblings work.
"""

from .registry import install

install()
