"""The page routes, without a browser: what each URL answers."""

from __future__ import annotations

import uuid

import pytest

from stashhog.extensions import db
from stashhog.services import daemon_queries, job_service


def test_index_redirects_to_the_daemons_list(client):
    response = client.get("/")
    assert response.status_code == 302
    assert response.headers["Location"].endswith("/daemons")


@pytest.mark.parametrize("path", ["/daemons", "/jobs"])
def test_list_pages_render(client, path):
    response = client.get(path)
    assert response.status_code == 200
    assert b'id="live-pill"' in response.data


def test_daemon_page_carries_the_daemon_as_json(client, app_ctx):
    daemon = daemon_queries.get_daemon("Test Daemon")
    response = client.get(f"/daemons/{daemon['id']}")
    assert response.status_code == 200
    assert b'id="daemon-boot"' in response.data
    assert daemon["id"].encode() in response.data


def test_job_page_renders(client, app_ctx, clean_db):
    job = job_service.create_job("TEST", {"steps": 1, "step_seconds": 0})
    response = client.get(f"/jobs/{job.id}")
    assert response.status_code == 200
    assert str(job.id).encode() in response.data


@pytest.mark.parametrize("path", ["/daemons/{id}", "/jobs/{id}"])
def test_unknown_ids_get_a_not_found_page(client, path):
    response = client.get(path.format(id=uuid.uuid4()))
    assert response.status_code == 404
    assert b"There is no" in response.data


def test_a_name_with_markup_is_escaped_in_the_page(client, app_ctx, make_daemon):
    daemon = make_daemon(name="<script>alert(1)</script>")
    response = client.get(f"/daemons/{daemon.id}")
    db.session.delete(daemon)
    db.session.commit()
    assert b"<script>alert(1)</script>" not in response.data
    assert b"\\u003cscript\\u003e" in response.data  # in the JSON boot data
