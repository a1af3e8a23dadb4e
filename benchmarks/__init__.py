"""Benchmark harness comparing optgrad with Optax and torch.optim; entry point: ``run.py``."""
