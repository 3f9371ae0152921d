"""Simulated AWS IoT Greengrass V2 core device (nucleus stand-in)."""
