"""Shared test setup: the repository root on ``sys.path``, so that plain ``pytest`` (not only
``python -m pytest`` from the root) imports the project's packages without installing them."""

import sys
from pathlib import Path

ROOT = str(Path(__file__).resolve().parent.parent)
if ROOT not in sys.path:
    sys.path.insert(0, ROOT)

# Hypothesis profiles: the default run keeps fuzzing bounded (CI has 2 cores and 10 minutes for
# the suite); `pytest --hypothesis-profile=long` runs far more generated cases.
from hypothesis import HealthCheck, settings  # noqa: E402

settings.register_profile("default", max_examples=40, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.register_profile("long", max_examples=2000, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
settings.load_profile("default")
