"""Puts ``examples/`` on the import path so the tests import the ``weather`` extension."""
