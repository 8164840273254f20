"""EventBridge Scheduler: fire a template's schedules on demand."""
