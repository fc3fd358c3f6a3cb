"""The search: regularized evolution, the equivalence cache, executors, checkpoints, the CLI.

The public Python API is ``search.api`` (``run``, ``resume``, ``load_run``, ``export``,
``verify`` and ``RunConfig``).
"""
