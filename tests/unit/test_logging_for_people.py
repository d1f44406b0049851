"""Logs for people and machines: the format follows the terminal, a summary counts what was
delivered, and libraries' start-up chatter stays out."""

from __future__ import annotations

import io
import logging

import pytest

from relay._config import RelaySettings
from relay._daemon.summary import DeliverySummary, SummaryCounter
from relay._delivery.results import DrainResult
from relay._logging import configure_logging, log_format

pytestmark = pytest.mark.usefixtures("restored_logging")


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_auto_is_console_on_a_terminal_and_json_in_a_pipe() -> None:
    """``RELAY_LOG_FORMAT=auto`` (the default) renders for people on a terminal, JSON lines on
    anything else; ``json`` and ``console`` are taken as given."""
    auto = RelaySettings()

    assert auto.log_format == "auto"
    assert log_format(auto, stream=_Terminal()) == "console"
    assert log_format(auto, stream=io.StringIO()) == "json"
    assert log_format(RelaySettings(log_format="json"), stream=_Terminal()) == "json"
    assert log_format(RelaySettings(log_format="console"), stream=io.StringIO()) == "console"


def test_alembic_plugin_chatter_is_held_below_info() -> None:
    """After configure_logging at INFO, Alembic's "setup plugin ..." logger logs nothing."""
    configure_logging(RelaySettings(log_level="INFO"))

    assert not logging.getLogger("alembic.runtime.plugins").isEnabledFor(logging.INFO)
    assert logging.getLogger("alembic.runtime.migration").isEnabledFor(logging.INFO)


def test_the_summary_counts_every_pass_since_the_last_and_starts_again() -> None:
    """Delivered, dead (refused plus out of attempts) and retried are summed over passes, and
    taking the summary resets them."""
    counter = SummaryCounter()
    counter.add(DrainResult(claimed=5, delivered=3, rejected=1, retried=1))
    counter.add(DrainResult(claimed=2, delivered=1, dead_after_max_attempts=1))

    assert counter.take() == DeliverySummary(delivered=4, dead=2, retried=1)
    assert counter.take() == DeliverySummary()
