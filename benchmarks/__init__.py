"""Performance benchmarks. Run them with ``make bench``; each prints into one table."""
