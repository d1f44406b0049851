"""`relay forget` waits for the person's rows a relay is sending before it files the deletion.

A `$set` in flight when the erasure starts must not land after Mixpanel's GDPR deletion (the
profile would exist again): the erasure fences the person's pending rows, waits until no relay
holds one, then files the deletion and erases. A relay that holds a row past its lease makes
it give up, lift the fence and erase nothing.
"""

from __future__ import annotations

import datetime as dt

import pytest
import sqlalchemy as sa
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

import relay
from relay._config import RelaySettings
from relay._tables import outbox
from relay.admin.forget import ErasureInFlightError, forget
from relay.testing.mixpanel_standin import MixpanelStandin

PERSON = "person-in-flight"
KEY = "in-flight-test-key"
#: The lease token of a relay sending the person's first row (32 characters, as a claim's).
RELAY_TOKEN = "r" * 32


def _settings(engine: Engine, standin: MixpanelStandin, **extra: object) -> RelaySettings:
    return RelaySettings(
        database_url=engine.url.render_as_string(hide_password=False),
        erasure_hash_key=SecretStr(KEY),
        mixpanel_app_api_url=standin.app_api_url,
        mixpanel_project_token=SecretStr(standin.project_token),
        mixpanel_gdpr_token=SecretStr(standin.oauth_token),
        **extra,  # type: ignore[arg-type]
    )


def _two_updates_one_in_flight(engine: Engine, *, lease_for: dt.timedelta) -> None:
    """Two `$set` of the person; a relay holds the first under a live lease (it is sending it)."""
    with Session(engine) as session:
        for plan in ("pro", "team"):
            relay.update_profile(
                session,
                distinct_id=PERSON,
                operation="$set",
                properties={"plan": plan},
                strict=True,
            )
        session.commit()
    with engine.begin() as conn:
        first = conn.execute(sa.select(sa.func.min(outbox.c.id))).scalar_one()
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.id == first)
            .values(
                lease_token=RELAY_TOKEN,
                lease_expires_at=dt.datetime.now(dt.UTC) + lease_for,
                attempts=1,
            )
        )


def _relay_acks(engine: Engine) -> None:
    """The relay's request returned 200: it marks its row delivered (a fenced ack)."""
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.lease_token == RELAY_TOKEN)
            .values(
                state="delivered",
                lease_token=None,
                lease_expires_at=None,
                finished_at=now,
                updated_at=now,
            )
        )


def _leases(engine: Engine) -> list[str | None]:
    with engine.connect() as conn:
        return list(conn.execute(sa.select(outbox.c.lease_token).order_by(outbox.c.id)).scalars())


def test_deletion_is_filed_only_after_the_row_in_flight_is_acked(
    engine: Engine, standin: MixpanelStandin
) -> None:
    """While a relay sends the person's `$set`, the erasure holds their other row (no relay may
    claim it) and files no deletion; once the relay acks, it files it and erases both rows."""
    _two_updates_one_in_flight(engine, lease_for=dt.timedelta(seconds=60))
    seen_while_waiting: list[tuple[int, list[str | None]]] = []

    def relay_finishes() -> None:
        seen_while_waiting.append((len(standin.gdpr_jobs()), _leases(engine)))
        _relay_acks(engine)

    result = forget(
        engine,
        _settings(engine, standin),
        distinct_id=PERSON,
        dry_run=False,
        mixpanel=True,
        pause=relay_finishes,
    )

    ((jobs, leases),) = seen_while_waiting  # one wait: the ack ended it
    assert jobs == 0
    assert leases[0] == RELAY_TOKEN
    assert leases[1] not in (None, RELAY_TOKEN)  # fenced by the erasure
    assert result.waited_for == 1
    assert result.deleted == 2
    (job,) = standin.gdpr_jobs()
    assert job.distinct_ids == (PERSON,)
    assert _leases(engine) == []


def test_a_relay_holding_a_row_past_its_lease_makes_the_erasure_give_up_erasing_nothing(
    engine: Engine, standin: MixpanelStandin
) -> None:
    """A row still held when the wait (the lease plus a margin) is over: ErasureInFlightError
    in one line, no deletion filed, the fence lifted, both rows still there."""
    _two_updates_one_in_flight(engine, lease_for=dt.timedelta(hours=1))
    start = dt.datetime.now(dt.UTC)
    ticks = iter(start + dt.timedelta(seconds=10 * n) for n in range(100))

    with pytest.raises(ErasureInFlightError) as refused:
        forget(
            engine,
            _settings(engine, standin, lease_seconds=5.0, request_deadline_seconds=2.0),
            distinct_id=PERSON,
            dry_run=False,
            mixpanel=True,
            clock=lambda: next(ticks),
            pause=lambda: None,
        )

    message = str(refused.value)
    assert "\n" not in message
    assert "1 row(s) of this person" in message
    assert PERSON not in message
    assert "run relay forget again" in message
    assert standin.gdpr_jobs() == []
    assert _leases(engine) == [RELAY_TOKEN, None]


def test_a_lease_that_ran_out_is_not_waited_for(engine: Engine, standin: MixpanelStandin) -> None:
    """A row whose relay's lease already ran out (the relay died) is fenced at once: no wait."""
    _two_updates_one_in_flight(engine, lease_for=dt.timedelta(seconds=-1))

    def never() -> None:
        raise AssertionError("the erasure waited for a lease that had run out")

    result = forget(
        engine,
        _settings(engine, standin),
        distinct_id=PERSON,
        dry_run=False,
        mixpanel=True,
        pause=never,
    )

    assert (result.waited_for, result.deleted) == (0, 2)
    assert len(standin.gdpr_jobs()) == 1
