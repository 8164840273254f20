"""CloudWatch Logs: what the local services write, in the groups and streams AWS uses."""
