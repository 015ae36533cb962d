"""Step 4-6, Fusion: UAV-calibrated weights, weighted fusion, Sentinel-1-guided gap filling."""
