"""relay's track-time limits against the stand-in's independent reading of Mixpanel's rules.

Whatever ``check_properties`` accepts, encoded as the relay sends it, must be ingested by the
stand-in's rules whole: not refused, and no string truncated. The two rule sets are written
apart on purpose (the stand-in does not import ``relay._event.limits``), so a gap in either
shows here.
"""

from __future__ import annotations

from typing import Any

import orjson
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from relay._errors import EventValidationError
from relay._event.limits import check_properties
from relay._mixpanel.encoding import encode_event
from relay._tables import OutboxEvent
from relay.testing.mixpanel_standin._rules import Accepted, judge, truncated_strings

NOW_MS = 1_795_694_400_000
EV = "svc.a.b"

_keys = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12)
_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=200)
)
_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=40) | st.dictionaries(_keys, children, max_size=8),
    max_leaves=40,
)


def _accepted_properties(properties: dict[str, Any]) -> bytes:
    try:
        return check_properties(EV, properties)
    except EventValidationError:
        assume(False)
        raise


@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.dictionaries(_keys, _values, max_size=10))
def test_what_check_properties_accepts_the_standin_ingests_whole(
    properties: dict[str, Any],
) -> None:
    """An event relay accepts is neither refused nor truncated by the stand-in's rules."""
    encoded = _accepted_properties(properties)
    row = OutboxEvent(1, "ins-1", EV, "user-1", NOW_MS - 1000, encoded.decode(), 0)
    record = orjson.loads(encode_event(row))

    verdict = judge(record, now_ms=NOW_MS)

    assert isinstance(verdict, Accepted), verdict
    assert truncated_strings(record) == ()
