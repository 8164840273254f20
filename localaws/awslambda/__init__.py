"""Lambda: run the project's handlers in-process instead of in Docker."""
