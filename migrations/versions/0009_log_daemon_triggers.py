"""daemon_logs.daemon_id (PostgreSQL): the foreign key becomes statement-level triggers.

The foreign key checked each new line with a trigger of its own, one query per row: 35-40 %
of the cost of a log batch. The same guarantees, once a statement:
- an INSERT or UPDATE of log lines locks the daemons it names ``FOR KEY SHARE`` (so no
  concurrent delete can orphan them: the delete waits for our commit) and refuses the
  statement with a foreign_key_violation if any of them does not exist;
- deleting daemons deletes their lines (was ON DELETE CASCADE), in one statement;
- changing the id of a daemon that has lines is refused (was NO ACTION);
- TRUNCATE of daemons is refused while lines exist (truncate daemon_logs first).
SQLite keeps its foreign key (the embedded default writes far fewer lines).

Revision ID: 0009_log_daemon_triggers
Revises: 0008_log_statistics
Create Date: 2026-12-01
"""

from alembic import op

revision = "0009_log_daemon_triggers"
down_revision = "0008_log_statistics"
branch_labels = None
depends_on = None

FOREIGN_KEY = "daemon_logs_daemon_id_fkey"

UPGRADE = [
    f"ALTER TABLE daemon_logs DROP CONSTRAINT {FOREIGN_KEY}",
    f"""
    CREATE FUNCTION daemon_logs_check_daemon() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
        wanted uuid[];
        found integer;
    BEGIN
        SELECT array_agg(DISTINCT daemon_id) INTO wanted FROM new_lines;
        IF wanted IS NULL THEN
            RETURN NULL;
        END IF;
        SELECT count(*) INTO found
            FROM (SELECT 1 FROM daemons WHERE id = ANY (wanted) FOR KEY SHARE) AS held;
        IF found < cardinality(wanted) THEN
            RAISE foreign_key_violation USING
                MESSAGE = 'insert or update on table "daemon_logs" violates foreign key '
                    || 'constraint "{FOREIGN_KEY}"',
                DETAIL = 'A log line names a daemon that does not exist.',
                CONSTRAINT = '{FOREIGN_KEY}', TABLE = 'daemon_logs';
        END IF;
        RETURN NULL;
    END $$
    """,
    *(
        f"CREATE TRIGGER daemon_logs_daemon_exists_{event.lower()} AFTER {event} ON daemon_logs "
        "REFERENCING NEW TABLE AS new_lines FOR EACH STATEMENT "
        "EXECUTE FUNCTION daemon_logs_check_daemon()"
        for event in ("INSERT", "UPDATE")
    ),
    """
    CREATE FUNCTION daemons_delete_logs() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        DELETE FROM daemon_logs WHERE daemon_id IN (SELECT id FROM old_daemons);
        RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER daemons_delete_logs AFTER DELETE ON daemons "
    "REFERENCING OLD TABLE AS old_daemons FOR EACH STATEMENT "
    "EXECUTE FUNCTION daemons_delete_logs()",
    f"""
    CREATE FUNCTION daemons_keep_log_ids() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM daemon_logs WHERE daemon_id = OLD.id) THEN
            RAISE foreign_key_violation USING
                MESSAGE = 'update on table "daemons" violates foreign key constraint '
                    || '"{FOREIGN_KEY}" on table "daemon_logs"',
                CONSTRAINT = '{FOREIGN_KEY}', TABLE = 'daemons';
        END IF;
        RETURN NEW;
    END $$
    """,
    # The WHEN clause keeps the function off every heartbeat's UPDATE.
    "CREATE TRIGGER daemons_keep_log_ids BEFORE UPDATE OF id ON daemons FOR EACH ROW "
    "WHEN (OLD.id IS DISTINCT FROM NEW.id) EXECUTE FUNCTION daemons_keep_log_ids()",
    """
    CREATE FUNCTION daemons_truncate_logs() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM daemon_logs) THEN
            RAISE feature_not_supported USING
                MESSAGE = 'cannot truncate daemons while daemon_logs holds lines: '
                    || 'truncate daemon_logs first';
        END IF;
        RETURN NULL;
    END $$
    """,
    "CREATE TRIGGER daemons_truncate_logs BEFORE TRUNCATE ON daemons "
    "FOR EACH STATEMENT EXECUTE FUNCTION daemons_truncate_logs()",
]

DOWNGRADE = [
    "DROP TRIGGER daemons_truncate_logs ON daemons",
    "DROP FUNCTION daemons_truncate_logs()",
    "DROP TRIGGER daemons_keep_log_ids ON daemons",
    "DROP FUNCTION daemons_keep_log_ids()",
    "DROP TRIGGER daemons_delete_logs ON daemons",
    "DROP FUNCTION daemons_delete_logs()",
    "DROP TRIGGER daemon_logs_daemon_exists_insert ON daemon_logs",
    "DROP TRIGGER daemon_logs_daemon_exists_update ON daemon_logs",
    "DROP FUNCTION daemon_logs_check_daemon()",
    f"ALTER TABLE daemon_logs ADD CONSTRAINT {FOREIGN_KEY} FOREIGN KEY (daemon_id) "
    "REFERENCES daemons (id) ON DELETE CASCADE",
]


def upgrade():
    if op.get_bind().dialect.name == "postgresql":
        for statement in UPGRADE:
            op.execute(statement)


def downgrade():
    if op.get_bind().dialect.name == "postgresql":
        for statement in DOWNGRADE:
            op.execute(statement)
