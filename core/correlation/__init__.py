"""Step 1, Correlation: image pairs to pair products (sub-pixel frequency correlation)."""
