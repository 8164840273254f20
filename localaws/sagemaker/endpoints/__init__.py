"""Endpoints that serve the inference contract from worker processes, with data capture."""
