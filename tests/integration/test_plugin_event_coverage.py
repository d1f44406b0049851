"""The plugin's event coverage: a session fails when a registered event was never tracked.

Each case is a host project run by a pytest of its own (``pytester``, in a subprocess, so
each run starts from an empty event registry).
"""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]

HOST_PLAN = '''
from relay._event.registry import register_event
from relay._event.properties import MixpanelSuperEventPropertiesSchema


class MxpShopOrderPlacedEventSchema(MixpanelSuperEventPropertiesSchema):
    """Tracked when an order is placed."""

    order_id: str


register_event("svc.shop.order_placed", MxpShopOrderPlacedEventSchema)
register_event("svc.shop.order_refunded", MxpShopOrderPlacedEventSchema)
register_event("svc.shop.order_shipped", MxpShopOrderPlacedEventSchema)
'''

CONFTEST = """
import pytest
from sqlalchemy.orm import Session

import hostplan  # noqa: F401 -- registers the host's events
from relay._database import create_engine
from relay._tables import metadata
from relay._tracking import track

pytest_plugins = ["relay.testing.plugin"]


@pytest.fixture
def track_event(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'host.db'}")
    metadata.create_all(engine)

    def _track(event, *, commit=True):
        with Session(engine) as session, session.begin():
            track(
                session,
                event=event,
                distinct_id="5d1c7a3e-0000-4000-8000-000000000001",
                properties={
                    "employee_id": "5d1c7a3e-0000-4000-8000-000000000001",
                    "organization_id": "5d1c7a3e-0000-4000-8000-000000000002",
                    "organization_name": "Acme",
                    "role": "manager",
                    "impersonation": False,
                    "order_id": "o-1",
                },
            )
            if not commit:
                session.rollback()

    yield _track
    engine.dispose()
"""

TESTS_TRACKING = {
    "placed": 'def test_placed(track_event):\n    track_event("svc.shop.order_placed")\n',
    "refunded": (
        "def test_refunded(track_event):\n"
        '    track_event("svc.shop.order_refunded", commit=False)\n'
    ),
    "shipped": 'def test_shipped(track_event):\n    track_event("svc.shop.order_shipped")\n',
}


def _project(pytester: pytest.Pytester, *tracked: str, ini: str = "") -> None:
    pytester.makepyfile(hostplan=HOST_PLAN, conftest=CONFTEST)
    pytester.makepyfile(**{f"test_{name}": TESTS_TRACKING[name] for name in tracked})
    if ini:
        pytester.makeini(f"[pytest]\n{ini}\n")
    pytester.syspathinsert()


def test_off_by_default_an_untracked_event_does_not_fail(pytester: pytest.Pytester) -> None:
    """Without the option, a session tracking one of three events passes, no coverage report."""
    _project(pytester, "placed")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert result.ret == 0
    assert "relay event coverage" not in result.stdout.str()


def test_option_passes_when_every_registered_event_was_tracked(
    pytester: pytest.Pytester,
) -> None:
    """With the option, tracking all three (one in a rolled-back transaction) passes."""
    _project(pytester, "placed", "refunded", "shipped")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--relay-require-event-coverage"
    )
    result.assert_outcomes(passed=3)
    assert result.ret == 0
    assert "never tracked" not in result.stdout.str()


def test_option_fails_the_session_listing_the_untracked_events(
    pytester: pytest.Pytester,
) -> None:
    """With the option, passing tests that leave two events untracked fail the run, naming them."""
    _project(pytester, "placed")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--relay-require-event-coverage"
    )
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "*relay event coverage*",
            "2 registered events never tracked by any test:",
            "  svc.shop.order_refunded",
            "  svc.shop.order_shipped",
        ]
    )
    assert "  svc.shop.order_placed" not in result.stdout.str()


def test_ini_switch_enables_it_too(pytester: pytest.Pytester) -> None:
    """``relay_require_event_coverage = true`` in the ini file is the same as the option."""
    _project(pytester, "placed", "shipped", ini="relay_require_event_coverage = true")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["1 registered event never tracked by any test:"])
    result.stdout.fnmatch_lines(["  svc.shop.order_refunded"])


def test_ini_false_stays_off(pytester: pytest.Pytester) -> None:
    """``relay_require_event_coverage = false`` keeps the check off."""
    _project(pytester, "placed", ini="relay_require_event_coverage = false")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == 0


def test_catalog_setting_limits_the_required_events(pytester: pytest.Pytester) -> None:
    """``relay_event_catalog`` requires only the events whose schemas those modules define."""
    pytester.makepyfile(
        otherplan=(
            "from relay._event.registry import register_event\n"
            "from hostplan import MxpShopOrderPlacedEventSchema\n"
            "from relay._event.properties import MixpanelSuperEventPropertiesSchema\n\n\n"
            "class MxpOtherThingDoneEventSchema(MixpanelSuperEventPropertiesSchema):\n"
            '    """Tracked when another thing is done."""\n\n\n'
            'register_event("svc.other.thing_done", MxpOtherThingDoneEventSchema)\n'
        )
    )
    _project(
        pytester,
        "placed",
        "refunded",
        "shipped",
        ini="relay_require_event_coverage = true\nrelay_event_catalog = hostplan",
    )
    pytester.makeconftest(CONFTEST.replace("import hostplan", "import otherplan, hostplan"))
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == 0, result.stdout.str()


def test_a_failing_test_still_lists_untracked_events(pytester: pytest.Pytester) -> None:
    """When a test fails too, the run fails and the untracked events are still listed."""
    _project(pytester, "placed")
    pytester.makepyfile(test_broken="def test_broken():\n    assert False\n")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--relay-require-event-coverage"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["2 registered events never tracked by any test:"])


def test_ini_values_with_an_inline_comment_are_read_without_it(pytester: pytest.Pytester) -> None:
    """``relay_event_catalog = hostplan  # ...`` and a commented ``true`` work as written
    (pytest keeps inline comments in ini values): no traceback, the check runs."""
    _project(
        pytester,
        "placed",
        ini=(
            "relay_require_event_coverage = true  # fail on untracked events\n"
            "relay_event_catalog = hostplan  # the host's plan"
        ),
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")

    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["2 registered events never tracked by any test:"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()


def test_a_catalog_module_that_does_not_exist_is_one_usage_error(
    pytester: pytest.Pytester,
) -> None:
    """A misspelt ``relay_event_catalog`` module fails the session with pytest's usage status
    and one line naming it, not a traceback."""
    _project(
        pytester,
        "placed",
        ini="relay_require_event_coverage = true\nrelay_event_catalog = hostplam",
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")

    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stdout.fnmatch_lines(["relay_event_catalog: cannot import 'hostplam'*"])
    assert "Traceback" not in result.stdout.str() + result.stderr.str()
