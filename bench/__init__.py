"""Benchmarks for rotation-picker: scenarios, load generators and the results table (``scripts/bench``)."""
