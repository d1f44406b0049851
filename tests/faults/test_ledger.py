"""The ledger itself: each kind of fault it must catch is caught, and nothing else is flagged."""

from __future__ import annotations

from typing import Any

from ledger import Ledger, ProfileLedger, resends_within

from relay.testing.mixpanel_standin import RequestRecord

EVENT = "svc.surveys.survey_delivered"


def _record(insert_id: str, *, time: int = 1_700_000_000_000, run: str = "run-1") -> dict[str, Any]:
    return {
        "event": EVENT,
        "properties": {
            "time": time,
            "distinct_id": "user-1",
            "$insert_id": insert_id,
            "survey_run_id": run,
        },
    }


def _ledger(*insert_ids: str) -> Ledger:
    ledger = Ledger("self-test")
    for insert_id in insert_ids:
        ledger.record_committed(
            insert_id, event=EVENT, distinct_id="user-1", time_ms=1_700_000_000_000
        )
    return ledger


def test_same_key_resends_are_counted_but_keep_the_ledger_clean() -> None:
    """A committed event accepted three times under its own key is delivered, with 2 re-sends."""
    report = _ledger("a").reconcile([_record("a")] * 3)
    assert report.clean
    assert (report.delivered, report.same_key_resends) == (1, 2)


def test_a_committed_event_never_accepted_is_lost() -> None:
    """Committed but absent from the stand-in: lost."""
    report = _ledger("a", "b").reconcile([_record("a")])
    assert report.lost == ("b",)
    assert not report.clean


def test_an_accepted_event_nobody_committed_is_a_phantom() -> None:
    """Accepted with an unknown $insert_id and unknown content: phantom."""
    report = _ledger("a").reconcile([_record("a"), _record("x", run="run-9")])
    assert report.phantom == ("x",)
    assert report.different_key_duplicates == ()


def test_a_restamped_resend_is_a_duplicate_under_another_key() -> None:
    """The committed $insert_id accepted again with another time: counted twice by Mixpanel."""
    report = _ledger("a").reconcile([_record("a"), _record("a", time=1_700_000_000_001)])
    assert len(report.different_key_duplicates) == 1
    assert not report.clean


def test_a_rekeyed_resend_is_a_duplicate_under_another_key_not_a_phantom() -> None:
    """Same business content under a new $insert_id: a different-key duplicate."""
    report = _ledger("a").reconcile([_record("a"), _record("z")])
    assert report.phantom == ()
    assert len(report.different_key_duplicates) == 1


def test_an_event_refused_on_purpose_is_neither_lost_nor_allowed_through() -> None:
    """Refused on purpose: fine when absent, flagged when accepted anyway."""
    ledger = _ledger("a", "b")
    ledger.expect_refused(["b"])
    assert ledger.reconcile([_record("a")]).clean
    assert ledger.reconcile([_record("a"), _record("b", run="run-2")]).refused_but_accepted == (
        "b",
    )


def test_a_resend_inside_the_lease_is_reported() -> None:
    """Two sends of one $insert_id 1 s apart violate a 3 s lease; 4 s apart do not."""
    log = [
        RequestRecord(at=10.0, status=200, events=1, insert_ids=("a",)),
        RequestRecord(at=11.0, status=200, events=1, insert_ids=("a",)),
        RequestRecord(at=20.0, status=200, events=1, insert_ids=("b",)),
        RequestRecord(at=24.0, status=200, events=1, insert_ids=("b",)),
    ]
    assert resends_within(log, 3.0) == ["a re-sent after 1.00 s"]


def test_profile_ledger_catches_lost_phantom_and_out_of_order_updates() -> None:
    """A committed token missing, a rolled-back token applied, a profile left at an older step
    and a profile no committed transaction wrote are each flagged; a balanced run is clean."""
    ledger = ProfileLedger("self-test")
    ledger.record_committed("u-1", step=1, token="a")
    ledger.record_committed("u-1", step=2, token="b")
    ledger.record_committed("u-2", step=1, token="c")
    ledger.record_rolled_back("x")
    balanced = {
        ("user", "", "u-1"): {"seen": ["a", "b"], "step": 2},
        ("user", "", "u-2"): {"seen": ["c"], "step": 1},
    }
    assert ledger.reconcile(balanced).clean
    broken = {
        ("user", "", "u-1"): {"seen": ["a", "x"], "step": 1},
        ("user", "", "u-2"): {"seen": ["c"], "step": 1},
        ("user", "", "u-9"): {"seen": ["y"], "step": 1},
    }
    report = ledger.reconcile(broken)
    assert report.lost == ("b",)
    assert report.phantom == ("x", "u-9")
    assert report.out_of_order == ("u-1",)
    assert not report.clean
