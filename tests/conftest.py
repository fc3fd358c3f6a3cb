"""Shared test setup: the repository root on ``sys.path``, so that plain ``pytest`` (not only
``python -m pytest`` from the root) imports the project's packages without installing them."""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)
