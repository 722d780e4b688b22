"""Fixtures for the media library: an empty ``media_files`` table (and no cached thumbnails
left behind), and a library folder for the test's generated media."""

from __future__ import annotations

import pytest

from stashhog.extensions import db
from tests.media.support import forget_media

# The browser fixtures of the panel's tests: a live server of the session's app, Chromium.
from tests.web.conftest import (  # noqa: E402,F401
    browser,
    live_server,
    page,
    page_as,
    signed_in_states,
)


@pytest.fixture
def media_db(clean_db, app):
    forget_media(app)
    yield db
    forget_media(app)


@pytest.fixture
def library(tmp_path):
    folder = tmp_path / "library"
    folder.mkdir()
    return folder
