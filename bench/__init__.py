"""Benchmarks of the weekly-aggregate triggers (python -m bench.run)."""
