"""``relay.contrib.django.track(independent=True)``: a failure event outlives its ``atomic()``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from django.db import transaction
from test_commands import manage

from relay._errors import StoreError
from relay._event.properties import MixpanelSuperEventPropertiesSchema
from relay._event.registry import is_event_registered, register_event
from relay._tables import outbox
from relay._tracking import strict_tracking
from relay.contrib.django import relay_engine, track, track_many
from relay.testing.mixpanel_standin import MixpanelStandin

pytestmark = pytest.mark.django_db(transaction=True, databases=["default", "postgresql", "mariadb"])

DONE = "svc.djtests.upload.analysis_completed"
FAILED = "svc.djtests.upload.analysis_completed.error"


class AnalysisSchema(MixpanelSuperEventPropertiesSchema):
    """Test event: an upload's analysis finished (or failed)."""

    upload_id: str


for _name in (DONE, FAILED):
    if not is_event_registered(_name):
        register_event(_name, AnalysisSchema)


class AnalysisFailedError(Exception):
    """The business operation failed: its ``atomic()`` block rolls back."""


def props() -> dict[str, Any]:
    return {
        "employee_id": "emp-1",
        "organization_id": "org-1",
        "organization_name": "Acme",
        "role": None,
        "impersonation": False,
        "upload_id": "up-1",
    }


@pytest.fixture
def standin() -> Iterator[MixpanelStandin]:
    with MixpanelStandin() as server:
        yield server


def _events(alias: str) -> list[str]:
    with relay_engine(alias).connect() as conn:
        return list(conn.execute(sa.select(outbox.c.event).order_by(outbox.c.id)).scalars())


def _analyse(alias: str) -> None:
    """The seed's shape: the operation fails, its ``.error`` is tracked, the block rolls back."""
    with transaction.atomic(using=alias):
        assert track(event=DONE, distinct_id="emp-1", properties=props(), using=alias)
        try:
            raise AnalysisFailedError
        except AnalysisFailedError:
            kept = track(
                event=FAILED, distinct_id="emp-1", properties=props(), using=alias, independent=True
            )
            assert kept is not None
            raise


@pytest.mark.parametrize("alias", ["postgresql", "mariadb"])
def test_independent_error_event_is_delivered_after_atomic_rolls_back(
    alias: str, standin: MixpanelStandin
) -> None:
    """The ``.error`` event tracked independent=True is delivered; the block's own event is not."""
    with strict_tracking(), contextlib.suppress(AnalysisFailedError):
        _analyse(alias)
    assert _events(alias) == [FAILED]
    done = manage("drain", "--json", default=alias, **standin.settings_env())
    assert done.returncode == 0, done.stderr
    assert [e.event["event"] for e in standin.ingested()] == [FAILED]


@pytest.mark.parametrize("alias", ["postgresql", "mariadb"])
def test_independent_track_many_keeps_its_rows_after_the_rollback(alias: str) -> None:
    """``track_many(independent=True)`` commits on its own; the block's rollback leaves the rows."""
    items = [{"event": FAILED, "distinct_id": f"emp-{i}", "properties": props()} for i in range(2)]
    with (
        strict_tracking(),
        contextlib.suppress(AnalysisFailedError),
        transaction.atomic(using=alias),
    ):
        assert None not in track_many(items, using=alias, independent=True)
        raise AnalysisFailedError
    assert _events(alias) == [FAILED, FAILED]


def test_independent_in_an_sqlite_atomic_block_is_refused_at_once() -> None:
    """SQLite has one writer: inside ``atomic()`` it is refused (logged, or raised when strict)."""
    with transaction.atomic(using="default"):
        assert (
            track(
                event=FAILED,
                distinct_id="emp-1",
                properties=props(),
                using="default",
                independent=True,
                strict=False,
            )
            is None
        )
        with strict_tracking(), pytest.raises(StoreError, match="SQLite"):
            track(
                event=FAILED,
                distinct_id="emp-1",
                properties=props(),
                using="default",
                independent=True,
            )
    assert _events("default") == []
