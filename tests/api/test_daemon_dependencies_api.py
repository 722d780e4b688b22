"""``depends_on`` through the API: set, checked (unknown, itself, cycles), shown, guarding
deletes, and stops that cascade or refuse, on a real worker."""

from __future__ import annotations

import pytest

from stashhog.extensions import db
from stashhog.models import Daemon
from tests.api.conftest import UNKNOWN, error_of
from tests.support.dependencies import make_chain


@pytest.fixture
def chain(make_daemon):
    """dep-a ← dep-b ← dep-c (fast TEST_TICKERs)."""
    return make_chain(make_daemon, "dep")


def put(client, daemon, depends_on):
    return client.put(f"/api/daemons/{daemon.id}", json={"depends_on": depends_on})


def stored(daemon) -> list:
    db.session.expire_all()
    return db.session.get(Daemon, daemon.id).depends_on


def test_depends_on_is_a_setting_set_shown_and_in_the_etag(client, make_daemon):
    a, b = make_daemon("dep-a"), make_daemon("dep-b")
    before = client.get(f"/api/daemons/{b.id}").get_json()
    assert before["depends_on"] == [] and before["waiting_for"] == []
    response = client.put(f"/api/daemons/{b.id}", json={"depends_on": [str(a.id)]},
                          headers={"If-Match": before["etag"]})  # fmt: skip
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["updated"] == ["depends_on"] and body["daemon"]["depends_on"] == [str(a.id)]
    assert body["daemon"]["etag"] != before["etag"]
    assert stored(b) == [str(a.id)]
    # A name is taken for its id; the same list again changes nothing.
    again = put(client, b, ["dep-a"]).get_json()
    assert again["updated"] == [] and stored(b) == [str(a.id)]
    assert put(client, b, []).get_json()["daemon"]["depends_on"] == []


def test_an_unknown_daemon_itself_and_a_cycle_are_refused_naming_them(
    client, make_daemon, unchanged
):
    a = make_daemon("dep-a")
    b = make_daemon("dep-b", depends_on=[str(a.id)])
    c = make_daemon("dep-c", depends_on=[str(b.id)])
    with unchanged():
        error = error_of(put(client, a, [UNKNOWN]), 422, "invalid")
        assert error["key"] == "depends_on" and UNKNOWN in error["message"]
        error = error_of(put(client, a, [str(a.id)]), 422)
        assert "dep-a" in error["message"] and "itself" in error["message"]
        error = error_of(put(client, a, [str(c.id)]), 422)
        assert "dep-a → dep-c → dep-b → dep-a" in error["message"]
        assert error["cycle"] == ["dep-a", "dep-c", "dep-b", "dep-a"]
        error = error_of(put(client, a, [str(b.id)]), 422)
        assert "dep-a → dep-b → dep-a" in error["message"]
        assert error_of(put(client, a, "dep-b"), 422)["key"] == "depends_on"


def test_create_checks_depends_on_too(client, make_daemon):
    a = make_daemon("dep-a")
    body = {"name": "dep-new", "type": "TEST_DAEMON", "depends_on": [UNKNOWN]}
    assert error_of(client.post("/api/daemons", json=body), 422)["key"] == "depends_on"
    assert client.get("/api/daemons").get_json()["daemons"][-1]["name"] != "dep-new"
    created = client.post("/api/daemons", json={**body, "depends_on": [str(a.id)]})
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["depends_on"] == [str(a.id)]


def test_a_daemon_others_need_cannot_be_deleted(client, chain, unchanged):
    a, b, c = chain
    with unchanged():
        error = error_of(client.delete(f"/api/daemons/{a.id}"), 409, "conflict")
    assert "dep-b" in error["message"] and error["needed_by"] == ["dep-b"]
    assert client.delete(f"/api/daemons/{c.id}").status_code == 204  # nothing needs C
    put(client, b, [])
    assert client.delete(f"/api/daemons/{a.id}").status_code == 204


def test_the_graph_lists_every_daemon_in_start_order(client, chain):
    a, b, c = chain
    graph = client.get("/api/daemons/dependencies").get_json()
    mine = [d for d in graph["daemons"] if d["name"].startswith("dep-")]
    assert [d["name"] for d in mine] == ["dep-a", "dep-b", "dep-c"]
    assert [d["depth"] for d in mine] == [0, 1, 2]
    assert mine[1]["needs"] == [{"id": str(a.id), "name": "dep-a"}]
    assert mine[1]["needed_by"] == [{"id": str(c.id), "name": "dep-c"}]
    assert graph["edges"] == 2


@pytest.mark.usefixtures("daemons_worker", "stop_everything")
def test_a_stop_cascades_to_the_dependents_or_refuses_with_cascade_false(client, chain):
    a, b, c = chain
    started = client.post(f"/api/daemons/{c.id}/start?wait=20").get_json()
    assert started["dependencies_started"] == ["dep-a", "dep-b"]
    assert started["daemon"]["status"] == "RUNNING"
    refused = client.post(f"/api/daemons/{a.id}/stop?cascade=false")
    error = error_of(refused, 409, "conflict")
    assert error["dependents"] == ["dep-c", "dep-b"] and "dep-c, dep-b" in error["message"]
    assert client.get(f"/api/daemons/{a.id}").get_json()["status"] == "RUNNING"
    stopped = client.post(f"/api/daemons/{a.id}/stop?wait=10").get_json()
    assert stopped["dependents_stopped"] == ["dep-c", "dep-b"]
    assert stopped["daemon"]["status"] == "STOPPED"
    assert "after dep-c, dep-b" in stopped["message"]
    db.session.expire_all()
    rows = {d.name: db.session.get(Daemon, d.id) for d in chain}
    assert all(row.status == "STOPPED" for row in rows.values())
    assert rows["dep-c"].stopped_at < rows["dep-b"].stopped_at < rows["dep-a"].stopped_at
