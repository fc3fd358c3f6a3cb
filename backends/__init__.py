"""Turning a DSL program into something that runs: numpy evaluation, llvmlite JIT, JAX, code export."""
