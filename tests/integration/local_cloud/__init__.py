"""Integration tests of the embedded local cloud (plain boto3 / MQTT against a running endpoint)."""
