"""Glacier Velocity science core.

Pure numpy/scipy/GDAL: nothing here imports ``qgis``, so every module is
testable and usable without QGIS. Conventions shared by all modules:

* NaN is NoData; arrays are float32 or float64.
* Rasters are indexed ``[row, col]`` with row 0 at the north edge; stacks ``[time, row, col]``.
* East (x) and north (y) are positive. A positive ``vy`` means northward motion, which is
  *upward* in the array (towards smaller row indices).
* Velocities are in m/yr (365.25-day years); trends in m/yr per decade.
* Date intervals are inclusive ISO dates ``START/END``; baselines are ``END - START`` in days.
"""
