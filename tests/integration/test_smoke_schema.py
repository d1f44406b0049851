"""The relay tables can be created on every supported database."""

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from relay._tables import audit, outbox


def test_datetimes_round_trip_as_aware_utc(engine: Engine) -> None:
    """A stored aware datetime comes back aware, in UTC, with microseconds, on every dialect."""
    now = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    with engine.begin() as conn:
        conn.execute(sa.insert(audit).values(at=now, actor="t", action="x", filter={}, count=0))
        (got,) = conn.execute(sa.select(audit.c.at)).one()
    assert got == now
    assert got.utcoffset() == dt.timedelta(0)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(outbox)).scalar_one() == 0
