"""S3: evaluate the template's TLS-only bucket policy as AWS would for an HTTPS request."""
