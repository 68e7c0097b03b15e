"""Benchmarks: each measures the hub against a baseline in the same run and reports a ratio."""
