"""EventBridge Scheduler: fire a template's schedules on demand (schedules.py) or when they come due (clock.py)."""
