"""Observability: runs, process metrics, alerts and notifications, log search, retention
and the Prometheus view. Models live in ``stashhog.models.observability``."""
