"""Step 8, Trends: pixel, glacier and month-resolved trends, seasonal cycle, attributes."""
