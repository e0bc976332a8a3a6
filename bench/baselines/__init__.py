"""Baseline pacers re-implemented for benchmarking only (never shipped in dialerd)."""
