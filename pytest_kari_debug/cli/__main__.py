"""``python -m pytest_kari_debug.cli``: the ``kari-debug`` command line."""

from __future__ import annotations

import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
