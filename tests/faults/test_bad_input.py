"""Bad input: hostile ``track()`` calls never raise in default mode, and never store a bad row.

Hand-picked hostile calls and hypothesis-generated ones (huge strings, invalid UTF-8 and lone
surrogates, NUL, nesting and collections past Mixpanel's limits, email- and phone-shaped
values, banned ``distinct_id``\\ s, odd ``$insert_id``\\ s, times out of range, wrong types) go
through ``track()`` in default mode, each in its own committed transaction. None may raise
into the caller. Then a relay drains every stored row to the stand-in, which applies
Mixpanel's published rules on its own: it must refuse none of them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from ledger import Ledger, LedgerReport
from pydantic import Field
from rig import RelayLauncher, pending_count, state_counts, wait_until
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from structlog.testing import capture_logs

from relay._config import RelaySettings
from relay._delivery.drain import Drainer
from relay._event.properties import MixpanelSuperEventPropertiesSchema
from relay._event.registry import register_event
from relay._mixpanel.client import MixpanelImportClient
from relay._tables import OutboxState, outbox
from relay._tracking import track
from relay.testing.mixpanel_standin import MixpanelStandin

EVENT = "svc.faults.hostile_input_received"


class HostileInputSchema(MixpanelSuperEventPropertiesSchema):
    """Test event with a field of every shape a host application might fill carelessly."""

    label: str
    count: int = 0
    ratio: float = 0.0
    tags: list[Any] = Field(default_factory=list)
    payload: dict[str, Any] = Field(default_factory=dict)
    comment: str | None = None


register_event(EVENT, HostileInputSchema)

NOW = dt.datetime.now(dt.UTC)
UUID = "6f1c7a0e-1b2c-4d5e-8f90-123456789abc"
BASE: dict[str, Any] = {
    "employee_id": UUID,
    "organization_id": "0b6a8a4e-8f55-4f8e-9a53-3f1f4f1c2d10",
    "organization_name": "Acme",
    "role": "employee",
    "impersonation": False,
    "label": "ok",
}
INVALID_UTF8 = b"caf\xc3 \xff\xfe"
SURROGATE = INVALID_UTF8.decode("utf-8", "surrogateescape")
BANNED = ["undefined", "NULL", " null ", "Anonymous", "0", "-1", "[]", "{}", "<nil>", "n/a"]
BANNED += ["00000000-0000-0000-0000-000000000000", "None", "false", "", "   "]


def _nested(depth: int) -> Any:
    value: Any = "leaf"
    for _ in range(depth):
        value = {"k": [value]}
    return value


#: Each is a full set of track() arguments besides the session, or a change to a valid call.
HAND_PICKED: list[dict[str, Any]] = [
    {"properties": {**BASE, "label": "x" * 256}},
    {"properties": {**BASE, "label": "y" * 1_100_000}},
    {"properties": {**BASE, "label": SURROGATE}},
    {"properties": {**BASE, "label": INVALID_UTF8}},
    {"properties": {**BASE, "payload": {"raw": INVALID_UTF8}}},
    {"properties": {**BASE, "label": "nul\x00byte"}},
    {"properties": {**BASE, "payload": {"nul\x00key": 1}}},
    {"properties": {**BASE, "payload": _nested(2)}},
    {"properties": {**BASE, "payload": _nested(5)}},
    {"properties": {**BASE, "tags": list(range(255))}},
    {"properties": {**BASE, "tags": list(range(254))}},
    {"properties": {**BASE, "payload": {f"k{i}": i for i in range(255)}}},
    {"properties": {**BASE, "payload": {"k" * 256: 1}}},
    {"properties": {**BASE, "comment": "write to jane.doe@example.com"}},
    {"properties": {**BASE, "comment": "+44 20 7946 0958"}},
    {"properties": {**BASE, "tags": ["(555) 123-4567"]}},
    {"properties": {**BASE, "count": 2**63}},
    {"properties": {**BASE, "ratio": float("nan")}},
    {"properties": {**BASE, "ratio": 1.7976931348623157e308}},
    {"properties": {**BASE, "ratio": 5e-324}},
    {"properties": {**BASE, "payload": {"time": 1, "distinct_id": "x", "$insert_id": "y"}}},
    {"properties": {**BASE, "comment": '"time": 5, "distinct_id": "spoof"'}},
    {"properties": {**BASE, "unknown_field": 1}},
    {"properties": ["not", "a", "mapping"]},
    {"properties": None},
    {"event": "svc.faults.never_registered"},
    {"event": None},
    {"event": ["unhashable"]},
    *({"distinct_id": banned} for banned in BANNED),
    {"distinct_id": "jane.doe@example.com"},
    {"distinct_id": "d" * 256},
    {"distinct_id": None},
    {"distinct_id": 12345},
    {"distinct_id": "anon\n"},
    {"insert_id": ""},
    {"insert_id": "a" * 37},
    {"insert_id": "a" * 36},
    {"insert_id": "has space"},
    {"insert_id": "under_score"},
    {"insert_id": "NULL"},
    {"insert_id": "\u0663\u0663\u0663"},  # Arabic-Indic digits: not [0-9]
    {"insert_id": "trailing-newline\n"},
    {"insert_id": 42},
    {"occurred_at": dt.datetime(1970, 1, 1, tzinfo=dt.UTC)},
    {"occurred_at": dt.datetime(1971, 1, 1, tzinfo=dt.UTC)},
    {"occurred_at": dt.datetime(1972, 6, 1, tzinfo=dt.UTC)},
    {"occurred_at": dt.datetime(1973, 3, 3, 9, 46, 40, tzinfo=dt.UTC)},
    {"occurred_at": NOW + dt.timedelta(minutes=59)},
    {"occurred_at": NOW + dt.timedelta(minutes=61)},
    {"occurred_at": dt.datetime(9999, 12, 31, tzinfo=dt.UTC)},
    {"occurred_at": dt.datetime(1, 1, 1, tzinfo=dt.UTC)},
    {"occurred_at": NOW.replace(tzinfo=None)},
    {"occurred_at": "2024-01-01T00:00:00Z"},
]

# --- hypothesis strategies ---------------------------------------------------------------------

lone_surrogates = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
any_text = st.text(st.characters(codec=None) | lone_surrogates, max_size=40)
long_text = st.builds(lambda ch, n: ch * n, st.characters(), st.integers(250, 3000))
emails = st.emails()
phones = st.from_regex(r"\+?\d{1,3}[ .-]?\(?\d{3}\)?[ .-]?\d{3}[ .-]?\d{4}", fullmatch=True)
hostile_text = any_text | long_text | emails | phones | st.sampled_from(BANNED)
hostile_scalars = (
    st.none() | st.booleans() | st.integers() | st.floats() | hostile_text | st.binary(max_size=20)
)
hostile_json = st.recursive(
    hostile_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(hostile_text, children, max_size=4)
    ),
    max_leaves=12,
)
wide_collections = st.integers(250, 300).flatmap(
    lambda n: st.sampled_from([list(range(n)), {f"k{i}": i for i in range(n)}])
)
deep_values = st.integers(1, 6).map(_nested)
odd_ids = st.from_regex(r"[A-Za-z0-9-]{1,38}\n?", fullmatch=True) | any_text
offsets = st.timedeltas(min_value=-dt.timedelta(hours=23), max_value=dt.timedelta(hours=23))
any_times = (
    st.datetimes(timezones=st.builds(dt.timezone, offsets))
    | st.datetimes()
    # Hypothesis takes naive bounds; timezones= makes the drawn values aware.
    | st.datetimes(dt.datetime(1970, 6, 1), dt.datetime(2026, 1, 1), timezones=st.just(dt.UTC))  # noqa: DTZ001
)
near_limits = st.sampled_from(
    [
        dt.datetime(1970, 12, 31, 23, 59, 59, tzinfo=dt.UTC),
        dt.datetime(1971, 1, 1, tzinfo=dt.UTC),
        dt.datetime(1973, 3, 3, 9, 46, 39, tzinfo=dt.UTC),
        dt.datetime(1973, 3, 3, 9, 46, 41, tzinfo=dt.UTC),
    ]
) | st.integers(-7200, 7200).map(lambda s: NOW + dt.timedelta(seconds=s))


#: Values at the edge of what is allowed; mixed in so that many hostile calls are stored.
edgy_text = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=255)
edgy_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | edgy_text,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(edgy_text, children, max_size=4)
    ),
    max_leaves=12,
)


def _sometimes(
    draw: st.DrawFn, edgy: st.SearchStrategy[Any], hostile: st.SearchStrategy[Any]
) -> Any:
    """An edgy value mostly, a hostile one a quarter of the time."""
    return draw(hostile) if draw(st.integers(0, 3)) == 0 else draw(edgy)


@st.composite
def hostile_calls(draw: st.DrawFn) -> dict[str, Any]:
    """A change to a valid track() call: some arguments edgy, some hostile."""
    call: dict[str, Any] = {}
    properties = dict(BASE)
    if draw(st.booleans()):
        properties["label"] = _sometimes(draw, edgy_text, hostile_text | st.binary(max_size=20))
    if draw(st.booleans()):
        properties["count"] = _sometimes(draw, st.integers(-(2**63), 2**63 - 1), st.integers())
    if draw(st.booleans()):
        properties["ratio"] = draw(st.floats() | st.integers(-(2**63), 2**63 - 1))
    if draw(st.booleans()):
        properties["tags"] = _sometimes(
            draw,
            st.lists(edgy_json, max_size=6),
            st.lists(hostile_json, max_size=6) | wide_collections,
        )
    if draw(st.booleans()):
        properties["payload"] = _sometimes(
            draw,
            st.dictionaries(edgy_text, edgy_json, max_size=6),
            st.dictionaries(hostile_text, hostile_json, max_size=6)
            | wide_collections
            | deep_values,
        )
    if draw(st.booleans()):
        properties["comment"] = _sometimes(draw, st.none() | edgy_text, hostile_text)
    call["properties"] = properties
    if draw(st.booleans()):
        call["distinct_id"] = _sometimes(draw, edgy_text | st.uuids().map(str), hostile_text)
    if draw(st.booleans()):
        call["insert_id"] = draw(odd_ids)
    if draw(st.booleans()):
        call["occurred_at"] = draw(any_times | near_limits)
    return call


# --- the scenario --------------------------------------------------------------------------------


def _tracker(engine: Engine, ledger: Ledger, inputs: dict[str, str]) -> Callable[..., None]:
    """Run one hostile call in its own business transaction; record what was stored."""

    def track_one(change: dict[str, Any]) -> None:
        arguments = {"event": EVENT, "distinct_id": UUID, "properties": BASE, **change}
        with Session(engine) as session:
            insert_id = track(session, **arguments, strict=False)
            session.commit()  # the business transaction is never poisoned
        if insert_id is None:
            return
        with engine.connect() as conn:
            stored = conn.execute(
                sa.select(outbox.c.event, outbox.c.distinct_id, outbox.c.time_ms).where(
                    outbox.c.insert_id == insert_id
                )
            ).one()
        assert (stored.event, stored.distinct_id) == (arguments["event"], arguments["distinct_id"])
        ledger.record_committed(
            insert_id, event=stored.event, distinct_id=stored.distinct_id, time_ms=stored.time_ms
        )
        inputs[insert_id] = repr(change)[:300]

    return track_one


def run_bad_input_scenario(
    engine: Engine, standin: MixpanelStandin, relays: RelayLauncher, *, examples: int
) -> LedgerReport:
    """Track hand-picked and ``examples`` generated hostile calls, drain them; return the ledger."""
    ledger = Ledger(f"bad input: {len(HAND_PICKED)} hand-picked + {examples} generated calls")
    inputs: dict[str, str] = {}
    track_one = _tracker(engine, ledger, inputs)

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(change=hostile_calls())
    def track_generated(change: dict[str, Any]) -> None:
        track_one(change)

    with capture_logs() as logged:
        for change in HAND_PICKED:
            track_one(change)
        track_generated()
    calls = len(HAND_PICKED) + examples
    swallowed = sum(e["event"] == "mixpanel_event_tracking_failed" for e in logged)

    relay = relays.start()
    wait_until(
        lambda: pending_count(engine) == 0 or not relay.alive,
        timeout=120,
        what="every stored row to be sent",
        context=relays.diagnosis,
    )
    exit_code = relay.stop()
    with engine.connect() as conn:
        dead = conn.execute(
            sa.select(outbox.c.insert_id, outbox.c.last_error).where(
                outbox.c.state == OutboxState.DEAD.value
            )
        ).all()
    report = ledger.reconcile(
        standin.accepted_events(),
        notes={
            "calls / stored / refused": f"{calls} / {len(ledger)} / {swallowed}",
            "records refused by the stand-in": standin.stats().rejected,
            "outbox states": state_counts(engine),
        },
    )
    print(f"\n{report}")
    refused_rows = "\n".join(
        f"  {row.insert_id!r}: {row.last_error} <- track({inputs.get(row.insert_id)})"
        for row in dead
    )
    context = f"\n{report}\nstored rows Mixpanel refused:\n{refused_rows}"
    assert dead == [], context
    assert standin.stats().rejected == 0, context
    report.assert_clean()
    assert exit_code == 0, context
    return report


def test_hostile_track_calls_never_raise_and_store_no_row_mixpanel_would_refuse(
    pg_engine: Engine, standin: MixpanelStandin, relays: RelayLauncher
) -> None:
    """Hostile track() calls never raise in default mode; the stand-in accepts every stored row."""
    run_bad_input_scenario(pg_engine, standin, relays, examples=settings().max_examples)


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_thousands_of_hostile_track_calls_store_no_row_mixpanel_would_refuse(
    pg_engine: Engine, standin: MixpanelStandin, relays: RelayLauncher
) -> None:
    """3,000 generated hostile calls: none raises, none stores a row Mixpanel would refuse."""
    run_bad_input_scenario(pg_engine, standin, relays, examples=3_000)


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"insert_id": "abc-123\n"}, id="insert-id-ending-in-newline"),
        pytest.param({"occurred_at": dt.datetime(1972, 6, 1, tzinfo=dt.UTC)}, id="time-in-1972"),
    ],
)
def test_track_refuses_a_value_that_mixpanel_would_refuse(
    pg_engine: Engine, standin: MixpanelStandin, change: dict[str, Any]
) -> None:
    """A value track() stores is one Mixpanel accepts: either track() refuses it, or it lands."""
    # Minimal reproductions of what the hypothesis scenario found, drained in-process (the
    # real Drainer and client) to keep them fast and focused.
    with Session(pg_engine) as session, session.begin():
        insert_id = track(
            session, event=EVENT, distinct_id=UUID, properties=BASE, strict=False, **change
        )
    if insert_id is None:
        return  # refused at track time, as it should be
    settings = RelaySettings(
        database_url=pg_engine.url.render_as_string(hide_password=False),
        mixpanel_api_url=standin.url,
        mixpanel_project_id=standin.project_id,
        mixpanel_service_account_username=standin.username,
        mixpanel_service_account_secret=standin.secret,
    )
    with MixpanelImportClient(settings) as client:
        result = Drainer(pg_engine, client, settings).drain_until_idle()
    with pg_engine.connect() as conn:
        row = conn.execute(sa.select(outbox).where(outbox.c.insert_id == insert_id)).one()
    assert (result.delivered, result.rejected) == (1, 0), (
        f"track({change!r}) stored a row Mixpanel refuses: {row.state}, {row.last_error}"
    )
