"""Benchmarks: each prints one JSON line with its figure and its anchor measured in the same run."""
