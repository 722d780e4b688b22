"""Helpers for tests: real services, real worker processes."""
