"""The synthetic sample scene with known truth (tests, demo, benchmarks)."""
