"""Step 2, Filters: quality filters, ramp removal and destriping of pair products."""
