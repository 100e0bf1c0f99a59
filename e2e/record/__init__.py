"""Recorders: scripts that make the fixtures in tests/fixtures from real systems."""
