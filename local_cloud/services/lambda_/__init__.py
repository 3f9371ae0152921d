"""Local providers."""
