"""Step 3, Time series: harmonisation onto one grid, monthly stacks, temporal filter."""
