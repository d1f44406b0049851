"""A Mixpanel client given its own network backend still has the request deadline (follow-up 8).

The backend here is the socket edge: a connection that accepts every write and never answers
(each read waits out its timeout). httpx's read timeout alone would wait 30 s per read; the
client must still give up within ``request_deadline_seconds``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import httpcore

from relay._config import RelaySettings
from relay._mixpanel.client import MixpanelImportClient
from relay._tables import OutboxEvent


class _SilentStream(httpcore.NetworkStream):
    """Takes every byte written, answers nothing: each read sleeps its timeout and times out."""

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        time.sleep(min(timeout or 1.0, 1.0))
        raise httpcore.ReadTimeout("silent")

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        return None

    def close(self) -> None:
        return None

    def get_extra_info(self, info: str) -> Any:
        return None


class _SilentBackend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self.connects = 0

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore.NetworkStream:
        self.connects += 1
        return _SilentStream()


def test_a_client_with_its_own_backend_ends_each_request_by_the_deadline() -> None:
    """The request to a silent peer ends by the 1 s deadline, not the 30 s read timeout."""
    settings = RelaySettings(
        database_url="sqlite://",
        mixpanel_project_token="token",
        mixpanel_api_url="http://mixpanel.invalid",
        request_deadline_seconds=1.0,
        read_timeout_seconds=30.0,
    )
    backend = _SilentBackend()
    event = OutboxEvent(
        id=1,
        event="svc.a.b",
        distinct_id="u1",
        insert_id="i1",
        time_ms=1_795_694_400_000,
        properties_json="{}",
        attempts=1,
    )
    with MixpanelImportClient(settings, network_backend=backend) as client:
        outcome = client.send([event])
    assert backend.connects == 1
    assert outcome.retry == {1: "timeout: no complete answer within 1 s"}
    assert outcome.delivered == []
    assert outcome.unsent == []
