"""Celery settings. The broker URL comes from the Flask config (REDIS_URL); everything else
about queues, routing and acks is decided here."""

from kombu import Exchange, Queue

# Tasks are sent by name from stashhog/ (it never imports workers/); these modules define them.
imports = ("workers.daemon_tasks", "workers.job_tasks", "workers.supervisor_tasks")

# Each queue on its own exchange and key. Declared bare, all three would bind to the default
# exchange with key "jobs", and the Redis transport would copy a message into every queue.
task_queues = tuple(
    Queue(name, Exchange(name, type="direct"), routing_key=name)
    for name in ("daemons", "jobs", "supervisor")
)
task_default_queue = "jobs"
task_default_exchange = "jobs"
task_default_routing_key = "jobs"
task_routes = {
    "stashhog.run_daemon": {"queue": "daemons"},
    "stashhog.run_job": {"queue": "jobs"},
    "stashhog.reconcile": {"queue": "supervisor"},
    "stashhog.prune": {"queue": "supervisor"},
}

# Early acks: with the Redis broker an unacked message is redelivered after visibility_timeout
# (1 h), which would start a second copy of a long-running daemon. A daemon whose worker dies
# is recovered by the reconciler instead (ARCHITECTURE.md §6).
task_acks_late = False
task_reject_on_worker_lost = False
worker_prefetch_multiplier = 1
# Daemons run until stopped: no time limits (per-task settings keep these off too).
task_time_limit = None
task_soft_time_limit = None

# PostgreSQL holds every result that matters; Celery's result backend is not used.
task_ignore_result = True
task_serializer = "json"
accept_content = ["json"]
broker_connection_retry_on_startup = True
worker_hijack_root_logger = False
worker_send_task_events = True
task_send_sent_event = True
beat_schedule = {
    # Interval overridden from the Flask config (RECONCILE_INTERVAL) in stashhog.celery_app.
    "reconcile": {"task": "stashhog.reconcile", "schedule": 1.5},
    # Retention in small batches (stashhog.observability.retention); PRUNE_INTERVAL.
    "prune": {"task": "stashhog.prune", "schedule": 10.0},
}
