"""Step 7, Uncertainty: stable-ground statistics, coverage, smoothness, agreement."""
