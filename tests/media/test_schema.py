"""The hand-written migration 0004 creates exactly the ``media_files`` table the model
describes (columns, types, indexes), so neither can drift from the other."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from stashhog.extensions import db


@pytest.mark.usefixtures("app_ctx")
def test_migrated_media_files_matches_the_model():
    with db.engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        diff = compare_metadata(context, db.metadata)
    media = [change for change in diff if "media_files" in repr(change)]
    assert media == []
