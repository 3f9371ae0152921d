"""Shared pytest configuration: fixtures live in tests/fixtures and are registered here."""

pytest_plugins = [
    "tests.fixtures.paths",
    "tests.fixtures.local_cloud",
    "tests.fixtures.devices",
    "tests.fixtures.assembly",
    "tests.fixtures.ports",
]
