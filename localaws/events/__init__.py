"""EventBridge: deliver matched events to Lambda, Step Functions and SNS targets."""
