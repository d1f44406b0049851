"""Building and checking operator filters without a database: durations, instants, fields."""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects import sqlite

from relay._errors import RelayError
from relay._store.selection import where
from relay._tables import OutboxState
from relay.admin import EventFilter, FilterError, build_filter, parse_duration, parse_instant

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("30m", dt.timedelta(minutes=30)),
        ("12h", dt.timedelta(hours=12)),
        ("7d", dt.timedelta(days=7)),
        ("2w", dt.timedelta(weeks=2)),
        ("1d12h", dt.timedelta(days=1, hours=12)),
        ("0s", dt.timedelta()),
        (" 7D ", dt.timedelta(days=7)),
    ],
)
def test_durations_are_numbers_with_units_chained(text: str, expected: dt.timedelta) -> None:
    """7d, 12h, 30m and chains such as 1d12h parse to their timedelta."""
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["7", "7 days", "d7", "-1d", "1.5h", ""])
def test_malformed_durations_are_refused_naming_the_value(text: str) -> None:
    """A duration without a known unit raises FilterError quoting the value."""
    with pytest.raises(FilterError, match="malformed duration") as caught:
        parse_duration(text, field="--dead-older-than")
    assert repr(text) in str(caught.value)
    assert "--dead-older-than" in str(caught.value)


def test_filter_errors_are_relay_errors() -> None:
    """FilterError is caught by ``except RelayError`` like every relay error."""
    assert issubclass(FilterError, RelayError)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-03-01T00:00:00Z", dt.datetime(2026, 3, 1, tzinfo=dt.UTC)),
        ("2026-03-01T09:00+09:00", dt.datetime(2026, 3, 1, tzinfo=dt.UTC)),
        ("2026-02-28T23:30:00.5-00:30", dt.datetime(2026, 3, 1, 0, 0, 0, 500_000, tzinfo=dt.UTC)),
        ("12h", NOW - dt.timedelta(hours=12)),
    ],
)
def test_instants_are_iso_8601_with_an_offset_or_a_duration_ago(
    text: str, expected: dt.datetime
) -> None:
    """An ISO 8601 instant with an offset, or a duration before now, becomes aware UTC."""
    value = parse_instant(text, now=NOW)

    assert value == expected
    assert value.tzinfo == dt.UTC


@pytest.mark.parametrize("text", ["2026-03-01", "2026-03-01T00:00:00"])
def test_instants_without_an_offset_are_refused_not_guessed(text: str) -> None:
    """A date or time without a UTC offset raises FilterError saying the offset is missing."""
    with pytest.raises(FilterError, match="no UTC offset"):
        parse_instant(text, now=NOW, field="created_after")


@pytest.mark.parametrize("text", ["2026-13-01T00:00Z", "yesterday", "03/01/2026"])
def test_malformed_instants_are_refused_naming_the_value(text: str) -> None:
    """A value that is neither ISO 8601 nor a duration raises FilterError quoting it."""
    with pytest.raises(FilterError, match="malformed date") as caught:
        parse_instant(text, now=NOW, field="created_after")
    assert repr(text) in str(caught.value)


def test_unknown_state_is_refused_listing_the_known_ones() -> None:
    """A state that does not exist raises FilterError naming it and the valid states."""
    with pytest.raises(FilterError, match=r"unknown state 'sent'.*pending, delivered, dead"):
        build_filter(now=NOW, states=["sent"])


def test_state_strings_become_states() -> None:
    """States given as text are stored as OutboxState members, once each."""
    f = EventFilter(states=("dead", OutboxState.DEAD, "pending"))  # type: ignore[arg-type]

    assert f.states == (OutboxState.DEAD, OutboxState.PENDING)


def test_naive_datetimes_are_refused_in_a_filter() -> None:
    """A typed filter refuses a naive datetime, as the outbox's columns do."""
    with pytest.raises(FilterError, match="created_before must be timezone-aware"):
        EventFilter(created_before=dt.datetime(2026, 3, 1))  # noqa: DTZ001 - the point


def test_empty_ranges_are_refused() -> None:
    """A range whose start is not before its end selects nothing and is refused."""
    with pytest.raises(FilterError, match="empty range"):
        build_filter(now=NOW, event_time_after="1h", event_time_before="2h")


def test_emptiness_counts_every_field() -> None:
    """Only a filter with no field set is empty."""
    assert EventFilter().is_empty()
    assert not EventFilter(ids=(1,)).is_empty()
    assert not EventFilter(error_contains="x").is_empty()


def test_restricting_states_refuses_other_states() -> None:
    """Dead-letter operations may narrow to dead rows but never reach delivered ones."""
    assert EventFilter(events=("a.b.c",)).with_states([OutboxState.DEAD]).states == (
        OutboxState.DEAD,
    )
    with pytest.raises(FilterError, match="delivered"):
        EventFilter(states=(OutboxState.DELIVERED,)).with_states([OutboxState.DEAD])


def test_filter_json_carries_only_given_fields_in_iso_form() -> None:
    """The audit's JSON of a filter lists the set fields, datetimes in ISO 8601."""
    f = build_filter(now=NOW, events=["a.b.c"], states=["dead"], created_after="1h", ids=[3, 3])

    assert f.to_json() == {
        "events": ["a.b.c"],
        "created_after": "2026-03-01T11:00:00+00:00",
        "states": ["dead"],
        "ids": [3],
    }


def test_build_filter_takes_organizations_and_refuses_a_blank_or_overlong_one() -> None:
    """Organizations are kept once each, in order; a blank id or one over 255 characters is a
    FilterError naming the field, never a filter selecting nothing."""
    f = build_filter(now=NOW, organizations=["org-2", "org-1", "org-2"])
    assert f.organizations == ("org-2", "org-1")
    assert f.to_json() == {"organizations": ["org-2", "org-1"]}
    with pytest.raises(FilterError, match="organizations must not be empty"):
        build_filter(now=NOW, organizations=["org-1", "  "])
    with pytest.raises(FilterError, match="longer than 255"):
        build_filter(now=NOW, organizations=["o" * 256])


def test_where_clause_joins_every_field_with_and() -> None:
    """The WHERE clause ANDs the fields, inlines states, and escapes a substring's wildcards."""
    f = EventFilter(
        events=("a.b.c",),
        states=(OutboxState.DEAD,),
        event_time_after=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        error_contains="50%_off",
    )

    sql = str(
        sa.select(sa.literal(1))
        .where(where(f))
        .compile(dialect=sqlite.dialect(), compile_kwargs={"literal_binds": True})
    )

    assert "relay_outbox.event IN ('a.b.c')" in sql
    assert "relay_outbox.state = 'dead'" in sql
    assert "relay_outbox.time_ms >= 1767225600000" in sql
    assert "50/%/_off" in sql
    assert sql.count(" AND ") == 3
