"""EventBridge delivery that moto lacks: AWS service events and Step Functions targets (provider.py)."""
