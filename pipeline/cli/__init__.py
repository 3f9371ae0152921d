"""The `mlops-edge` command line."""
