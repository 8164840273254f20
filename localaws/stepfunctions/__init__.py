"""Step Functions: task-token callbacks, Step Functions Local mock configs, scaled waits."""
