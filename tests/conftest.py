"""The suite's fixtures live in tests/support/harness.py (a pytest plugin), shared by every tier."""

pytest_plugins = ["tests.support.harness"]
