"""Exporters: records of a run in standard formats."""
