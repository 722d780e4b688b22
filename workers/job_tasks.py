"""Placeholder; filled by the runtime."""
