"""The Celery side: task definitions and the daemon runtime. May import stashhog/."""
