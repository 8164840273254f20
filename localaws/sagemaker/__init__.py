"""SageMaker: jobs, endpoints and monitoring that really run, and the registry's events."""
