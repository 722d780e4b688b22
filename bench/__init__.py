"""Benchmarks on the real services and worker processes (run as ``python -m bench.NAME``)."""
