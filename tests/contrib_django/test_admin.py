"""The Django admin for operators, through Django's test client, on SQLite and PostgreSQL.

The actions must go through relay.admin (audited, actor ``django:<user>``) and only after a
confirmation page; nothing can be added, edited or deleted through the ORM.
"""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa
from conftest import SURVEY_DELIVERED, survey_properties
from django.contrib.auth.models import Permission, User
from django.test import Client

from relay.contrib.django import relay_engine, track

pytestmark = pytest.mark.django_db(transaction=True)

OUTBOX = "/admin/relay/outboxevent/"
DEAD = "/admin/relay/deadletter/"


@pytest.fixture
def operator(client: Client) -> Client:
    User.objects.create_superuser("olive", "olive@example.invalid", "pw")
    client.login(username="olive", password="pw")
    return client


def _rows(count: int, *, dead_reason: str | None = None, prefix: str = "emp") -> list[str]:
    ids = []
    for n in range(count):
        insert_id = track(
            event=SURVEY_DELIVERED,
            distinct_id=f"{prefix}-{n}",
            properties=survey_properties(survey_id=f"s-{n}"),
        )
        assert insert_id is not None
        ids.append(insert_id)
    if dead_reason is not None:
        with relay_engine().begin() as conn:
            conn.execute(
                sa.text(
                    "UPDATE relay_outbox SET state = 'dead', last_error = :reason,"
                    " finished_at = CURRENT_TIMESTAMP WHERE insert_id IN :ids"
                ).bindparams(sa.bindparam("ids", expanding=True)),
                {"reason": dead_reason, "ids": ids},
            )
    return ids


def _state(insert_id: str) -> tuple[str, int] | None:
    with relay_engine().connect() as conn:
        row = conn.execute(
            sa.text("SELECT state, attempts FROM relay_outbox WHERE insert_id = :i"),
            {"i": insert_id},
        ).one_or_none()
    return None if row is None else (row[0], row[1])


def _pk(insert_id: str) -> int:
    with relay_engine().connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT id FROM relay_outbox WHERE insert_id = :i"), {"i": insert_id}
            ).scalar_one()
        )


def _audit() -> list[tuple[Any, ...]]:
    with relay_engine().connect() as conn:
        return [
            tuple(row)
            for row in conn.execute(
                sa.text("SELECT action, actor, count FROM relay_audit ORDER BY id")
            )
        ]


def test_outbox_list_filters_and_searches(operator: Client) -> None:
    """Filter by state, event and reason; search by exact $insert_id or distinct_id."""
    _rows(2, prefix="alice")
    dead = _rows(1, dead_reason="400: bad property", prefix="bob")
    page = operator.get(OUTBOX)
    assert page.status_code == 200
    assert operator.get(OUTBOX, {"state": "dead"}).context["cl"].result_count == 1
    assert operator.get(OUTBOX, {"event": SURVEY_DELIVERED}).context["cl"].result_count == 3
    by_reason = operator.get(OUTBOX, {"last_error": "400: bad property"})
    assert by_reason.context["cl"].result_count == 1
    assert operator.get(OUTBOX, {"q": dead[0]}).context["cl"].result_count == 1
    assert operator.get(OUTBOX, {"q": "alice-1"}).context["cl"].result_count == 1
    assert operator.get(OUTBOX, {"q": "alice"}).context["cl"].result_count == 0  # exact only
    detail = operator.get(f"{OUTBOX}{_pk(dead[0])}/change/")
    assert detail.status_code == 200
    assert dead[0].encode() in detail.content


def test_nothing_can_be_added_edited_or_deleted(operator: Client) -> None:
    """Read-only: no add page, the change page saves nothing, no delete."""
    (insert_id,) = _rows(1)
    pk = _pk(insert_id)
    assert operator.get(f"{OUTBOX}add/").status_code == 403
    operator.post(f"{OUTBOX}{pk}/change/", {"state": "dead", "attempts": 9})
    assert _state(insert_id) == ("pending", 0)
    assert operator.post(f"{OUTBOX}{pk}/delete/", {"post": "yes"}).status_code == 403
    assert _state(insert_id) == ("pending", 0)
    assert operator.get("/admin/relay/auditentry/add/").status_code == 403


def test_dead_letters_grouped_by_reason(operator: Client) -> None:
    """The dead-letter page lists each reason with its count, and only dead rows."""
    _rows(2, dead_reason="400: bad property")
    _rows(1, dead_reason="413: too large", prefix="big")
    _rows(1)
    page = operator.get(DEAD)
    assert page.status_code == 200
    groups = {g.reason: g.count for g in page.context["dead_letter_groups"]}
    assert groups == {"400: bad property": 2, "413: too large": 1}
    assert page.context["cl"].result_count == 3
    assert b"413: too large" in page.content


def test_requeue_asks_for_confirmation_then_goes_through_relay_admin(operator: Client) -> None:
    """The first POST shows what would change and changes nothing; the confirmed one requeues."""
    ids = _rows(2, dead_reason="500 forever")
    pks = [_pk(i) for i in ids]
    form = {"action": "requeue_dead_letters", "_selected_action": pks}
    confirm = operator.post(DEAD, form)
    assert confirm.status_code == 200
    assert b"Requeue dead letters: 2 events" in confirm.content
    assert [_state(i) for i in ids] == [("dead", 0), ("dead", 0)]
    assert _audit() == []
    done = operator.post(DEAD, {**form, "confirm": "yes"}, follow=True)
    assert done.status_code == 200
    assert [_state(i)[0] for i in ids] == ["pending", "pending"]  # type: ignore[index]
    assert _audit() == [("requeue", "django:olive", 2)]


def test_discard_needs_a_reason(operator: Client) -> None:
    """Discarding without a reason changes nothing; with one it deletes, audited."""
    ids = _rows(1, dead_reason="400: bad property")
    form = {"action": "discard_dead_letters", "_selected_action": [_pk(ids[0])], "confirm": "yes"}
    again = operator.post(DEAD, form)
    assert again.status_code == 200  # the confirmation page, with the error
    assert _state(ids[0]) == ("dead", 0)
    operator.post(DEAD, {**form, "reason": "schema fixed upstream"}, follow=True)
    assert _state(ids[0]) is None
    assert _audit() == [("discard", "django:olive", 1)]


def test_replay_delivered_event(operator: Client) -> None:
    """Replay requeues a delivered row, due now, audited as the CLI's replay is."""
    (insert_id,) = _rows(1)
    with relay_engine().begin() as conn:
        conn.execute(
            sa.text("UPDATE relay_outbox SET state = 'delivered', finished_at = CURRENT_TIMESTAMP")
        )
    form = {"action": "replay_events", "_selected_action": [_pk(insert_id)]}
    assert b"Replay events: 1 event" in operator.post(OUTBOX, form).content
    operator.post(OUTBOX, {**form, "confirm": "yes"}, follow=True)
    assert _state(insert_id) == ("pending", 0)
    assert _audit() == [("replay", "django:olive", 1)]


def test_viewers_without_the_permission_get_no_actions(client: Client) -> None:
    """Staff who may only view the outbox see it, but cannot requeue, discard or replay."""
    viewer = User.objects.create_user("val", password="pw", is_staff=True)
    viewer.user_permissions.add(
        Permission.objects.get(codename="view_outboxevent"),
        Permission.objects.get(codename="view_deadletter"),
    )
    client.login(username="val", password="pw")
    ids = _rows(1, dead_reason="400: bad property")
    page = client.get(DEAD)
    assert page.status_code == 200
    assert b"requeue_dead_letters" not in page.content
    client.post(
        DEAD,
        {"action": "requeue_dead_letters", "_selected_action": [_pk(ids[0])], "confirm": "yes"},
    )
    assert _state(ids[0]) == ("dead", 0)
    assert _audit() == []
