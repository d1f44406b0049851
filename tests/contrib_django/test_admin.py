"""The Django admin for operators, through Django's test client, on SQLite and PostgreSQL.

The actions must go through relay.admin (audited, actor ``django:<user>``) and only after a
confirmation page; nothing can be added, edited or deleted through the ORM.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import SURVEY_DELIVERED, survey_properties
from django.contrib.auth.models import Permission, User
from django.test import Client

from relay._store.outbox import pending_row
from relay._tables import outbox
from relay._tracking.prepare import prepare_event
from relay.contrib.django import admin as relay_django_admin
from relay.contrib.django import relay_engine, track
from relay.contrib.django.admin import DEAD_LETTER_GROUPS_SHOWN, REASON_FILTER_LIMIT

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


# --- PostgreSQL's json column, and the admin at scale (issue 21, item 9) ------------------------

AUDIT = "/admin/relay/auditentry/"


def _many_dead(
    count: int, *, reasons: int, reason: str = "400: reason", at: dt.datetime | None = None
) -> None:
    """``count`` dead rows in one statement, their reasons cycling through ``reasons`` texts."""
    now = at or dt.datetime.now(dt.UTC)
    prepared = prepare_event(
        event=SURVEY_DELIVERED, distinct_id="bulk", properties=survey_properties()
    )
    rows = []
    for n in range(count):
        row = pending_row(
            insert_id=f"bulk-{reason[:1]}{now.timestamp():.0f}-{n:08d}",
            event=SURVEY_DELIVERED,
            distinct_id=f"bulk-{n}",
            time_ms=prepared.time_ms,
            properties_json=prepared.properties_json,
            now=now,
        )
        row.update(state="dead", last_error=f"{reason} {n % reasons:05d}", finished_at=now)
        rows.append(row)
    with relay_engine().begin() as conn:
        conn.execute(sa.insert(outbox), rows)


def _count_dead() -> int:
    with relay_engine().connect() as conn:
        return int(
            conn.execute(sa.text("SELECT count(*) FROM relay_outbox WHERE state = 'dead'")).scalar()
        )


def test_the_audit_pages_open_once_an_entry_exists(operator: Client) -> None:
    """The audit list and an entry's page answer 200 (PostgreSQL's json column was a 500)."""
    ids = _rows(1, dead_reason="500 forever")
    form = {"action": "requeue_dead_letters", "_selected_action": [_pk(ids[0])], "confirm": "yes"}
    operator.post(DEAD, form, follow=True)
    listing = operator.get(AUDIT)
    assert listing.status_code == 200
    assert b"requeue" in listing.content
    (entry,) = listing.context["cl"].result_list
    assert isinstance(entry.filter, dict)
    detail = operator.get(f"{AUDIT}{entry.pk}/change/")
    assert detail.status_code == 200


def test_select_all_1500_then_confirm_requeues_the_whole_filter(operator: Client) -> None:
    """ "Select all 1,500" is confirmed as the filter, not 1,500 posted ids: all are requeued."""
    _many_dead(1500, reasons=3)
    first = operator.get(DEAD).context["cl"].result_list[0].pk
    form = {
        "action": "requeue_dead_letters",
        "_selected_action": [first],
        "select_across": "1",
        "index": "0",
    }
    confirm = operator.post(DEAD, form)
    assert confirm.status_code == 200
    assert b"Requeue dead letters: 1500 events" in confirm.content
    assert confirm.content.count(b"<input") < 20  # a few fields, never one per row
    assert _count_dead() == 1500
    posted = {"action": "requeue_dead_letters", "_selected_action": [first], "confirm": "yes"}
    done = operator.post(DEAD, {**posted, "select_across": "1"}, follow=True)
    assert done.status_code == 200
    assert _count_dead() == 0
    assert _audit() == [("requeue", "django:olive", 1500)]


def test_select_all_on_a_filtered_page_acts_on_that_filter_only(operator: Client) -> None:
    """Select-all under ``?last_error=`` requeues that reason's rows and leaves the others."""
    _many_dead(30, reasons=3)
    reason = "400: reason 00001"
    page = operator.get(DEAD, {"last_error": reason})
    first = page.context["cl"].result_list[0].pk
    form = {"action": "requeue_dead_letters", "_selected_action": [first], "select_across": "1"}
    url = f"{DEAD}?last_error={reason.replace(' ', '+')}"
    assert b"10 events" in operator.post(url, {**form, "index": "0"}).content
    operator.post(url, {**form, "confirm": "yes"}, follow=True)
    assert _count_dead() == 20


def test_thousands_of_reasons_give_a_capped_filter_and_a_bounded_number_of_queries(
    operator: Client, django_assert_max_num_queries: Any
) -> None:
    """3,000 distinct reasons: at most 20 reason links, 50 groups shown, few queries per page,
    none of them a ``SELECT DISTINCT`` over the table (Django's own filters ran two)."""
    _many_dead(3000, reasons=3000)
    with django_assert_max_num_queries(12) as captured:
        page = operator.get(DEAD)
    assert page.status_code == 200
    assert not [q["sql"] for q in captured.captured_queries if "DISTINCT" in q["sql"]]
    sidebar = page.content.split(b'id="changelist-filter"', 1)[1]
    assert sidebar.count(b"?last_error=") <= REASON_FILTER_LIMIT
    assert len(page.context["dead_letter_groups"]) == DEAD_LETTER_GROUPS_SHOWN
    assert page.context["dead_letter_groups_hidden"] == 3000 - DEAD_LETTER_GROUPS_SHOWN
    with django_assert_max_num_queries(12) as captured:
        outbox_page = operator.get(OUTBOX)
    assert not [q["sql"] for q in captured.captured_queries if "DISTINCT" in q["sql"]]
    assert f"?event={SURVEY_DELIVERED}".encode() in outbox_page.content
    outbox_sidebar = outbox_page.content.split(b'id="changelist-filter"', 1)[1]
    assert outbox_sidebar.count(b"?last_error=") <= REASON_FILTER_LIMIT
    unlisted = operator.get(DEAD, {"last_error": "400: reason 02999"})
    assert unlisted.context["cl"].result_count == 1  # a reason not offered still filters


def test_list_pages_count_at_most_the_limit_and_select_all_still_takes_every_row(
    operator: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Over COUNT_LIMIT rows the page count stops at the limit + 1; select-all requeues all."""
    monkeypatch.setattr(relay_django_admin, "COUNT_LIMIT", 5)
    _many_dead(8, reasons=1)
    page = operator.get(DEAD)
    assert page.context["cl"].result_count == 6
    first = page.context["cl"].result_list[0].pk
    form = {"action": "requeue_dead_letters", "_selected_action": [first], "select_across": "1"}
    assert b"Requeue dead letters: 8 events" in operator.post(DEAD, {**form, "index": "0"}).content
    operator.post(DEAD, {**form, "confirm": "yes"}, follow=True)
    assert _count_dead() == 0


def test_the_groups_and_links_come_from_the_latest_dead_letters_only(
    operator: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With more dead rows than the sample, the groups, the reason links and the event names
    come from the most recently dead ones (the page says so); relay's grouping query is bounded
    by a LIMIT of the sample; an older reason still filters by URL, every row of it."""
    monkeypatch.setattr(relay_django_admin, "DEAD_LETTER_SAMPLE", 5)
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=3)
    _many_dead(3, reasons=1, reason="500: old", at=old)
    _many_dead(6, reasons=2, reason="400: new")
    statements: list[str] = []

    def seen(_c: Any, _cur: Any, statement: str, *_a: Any) -> None:
        statements.append(statement)

    sa.event.listen(relay_engine(), "before_cursor_execute", seen)
    try:
        page = operator.get(DEAD)
    finally:
        sa.event.remove(relay_engine(), "before_cursor_execute", seen)

    groups = {g.reason: g.count for g in page.context["dead_letter_groups"]}
    assert set(groups) == {"400: new 00000", "400: new 00001"}
    assert sum(groups.values()) == 5
    assert page.context["dead_letter_sample"] == 5
    assert b'id="dead-letter-sample"' in page.content
    sidebar = page.content.split(b'id="changelist-filter"', 1)[1]
    assert sidebar.count(b"?last_error=") == 2
    assert b"500: old" not in sidebar
    grouping = [s for s in statements if "GROUP BY" in s.upper()]
    assert len(grouping) == 1
    assert "LIMIT" in grouping[0].upper()
    assert operator.get(DEAD, {"last_error": "500: old 00000"}).context["cl"].result_count == 3


def test_below_the_sample_the_groups_cover_every_dead_letter(operator: Client) -> None:
    """Fewer dead rows than the sample: the groups are exact and the page says nothing of a
    sample."""
    _many_dead(7, reasons=2)
    page = operator.get(DEAD)
    assert {g.reason: g.count for g in page.context["dead_letter_groups"]} == {
        "400: reason 00000": 4,
        "400: reason 00001": 3,
    }
    assert page.context["dead_letter_sample"] is None
    assert b'id="dead-letter-sample"' not in page.content
