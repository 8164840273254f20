"""Model Monitor: monitoring schedules, and the analyzer image (``ml/monitor.py``) run as processing jobs."""
