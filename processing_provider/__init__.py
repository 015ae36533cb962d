"""Processing algorithms: one thin algorithm per file around a ``core`` call."""
