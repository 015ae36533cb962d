"""Shared kernel: grids, rasters, vectors, dates, the plugin's file formats and readers."""
