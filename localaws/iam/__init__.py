"""IAM extensions of the local AWS."""
