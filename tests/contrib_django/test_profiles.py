"""``relay.contrib.django.update_profile`` / ``update_group``: in Django's own transaction."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from conftest import ALIASES, rolled_back
from django.db import transaction

from relay._errors import ProfileUpdateError
from relay._tracking import strict_tracking
from relay.contrib.django import relay_engine, update_group, update_profile

pytestmark = pytest.mark.django_db(transaction=True, databases=list(ALIASES))


def committed(alias: str) -> list[tuple[str, str]]:
    """(insert id, kind) of the committed outbox rows, read on relay's own connection."""
    with relay_engine(alias).connect() as conn:
        rows = conn.execute(sa.text("SELECT insert_id, kind FROM relay_outbox ORDER BY id"))
        return [(str(i), str(k)) for i, k in rows]


def test_profile_and_group_updates_commit_with_the_block(alias: str) -> None:
    """Both updates are written in the block and committed with it, as ``user`` and ``group``."""
    with transaction.atomic(using=alias):
        user = update_profile(
            distinct_id="emp-1", operation="$set", properties={"plan": "pro"}, using=alias
        )
        group = update_group(
            group_key="organization_id",
            group_id="org-1",
            operation="$set",
            properties={"seats": 12},
            using=alias,
        )
    assert committed(alias) == [(user, "user"), (group, "group")]


def test_a_rolled_back_block_takes_the_update_along(alias: str) -> None:
    """An update in a block that rolls back is never written."""
    with rolled_back(alias):
        assert update_profile(
            distinct_id="emp-1", operation="$unset", properties=["plan"], using=alias
        )
    assert committed(alias) == []


def test_a_refused_update_raises_in_strict_mode_and_leaves_the_block_usable(alias: str) -> None:
    """``$add`` is refused before any SQL (strict raises, default logs); the block commits."""
    with transaction.atomic(using=alias):
        with strict_tracking(), pytest.raises(ProfileUpdateError):
            update_profile(distinct_id="emp-1", operation="$add", properties={"n": 1}, using=alias)
        refused = update_profile(
            distinct_id="emp-1", operation="$add", properties={"n": 1}, using=alias, strict=False
        )
        kept = update_profile(
            distinct_id="emp-1", operation="$set", properties={"n": 1}, using=alias
        )
    assert refused is None
    assert committed(alias) == [(kept, "user")]
