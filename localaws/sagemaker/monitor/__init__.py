"""Model Monitor: monitoring schedules and the data-quality analyzer, run as processing jobs."""
