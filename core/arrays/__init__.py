"""Shared kernel: NaN-aware array statistics and smoothing."""
