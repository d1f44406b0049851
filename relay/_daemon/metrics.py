"""Prometheus metrics and the ``/healthz`` + ``/metrics`` endpoint of the relay daemon.

Metrics live in a :class:`RelayMetrics`'s own ``CollectorRegistry``, never the process-global
one, so several relays (or tests) in one process do not collide. ``/healthz`` answers 200 when
every destination's latest drain tick succeeded, recently, and its Mixpanel project accepts the
credentials, else 503: a load balancer or an orchestrator can act on it without parsing
metrics. Its ``destinations`` detail says which destination fails and why.

What one destination (one Mixpanel project, data residency) does carries the label
``destination``: rows delivered, retried, dead, released, throttled, the requests and their
durations, the credentials, the limiter and the throttle. The backlog gauges, the pauses and
the tick errors describe the whole outbox and carry none.

The server is bounded so that idle or slow clients cannot starve ``/healthz``: at most
:data:`MAX_CONNECTIONS` connections are served at once (more are answered 503 and closed at
once, holding no thread), every socket read or write times out after
:data:`CONNECTION_TIMEOUT_SECONDS`, and a connection still open after
:data:`CONNECTION_DEADLINE_SECONDS` (a client trickling bytes) is shut down.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Callable, Sequence
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import orjson
import structlog
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

from relay._tables import DEFAULT_DESTINATION

if TYPE_CHECKING:
    from relay._delivery.results import DrainResult
    from relay._mixpanel.answers import RequestStat
    from relay._store.maintenance import Gauges

logger = structlog.get_logger("relay.metrics")

#: Connections served at once; one more is answered 503 and closed (a scrape takes one).
MAX_CONNECTIONS = 16
#: A socket read or write that waits longer than this ends its connection.
CONNECTION_TIMEOUT_SECONDS = 5.0
#: No connection lives longer than this, however it trickles its bytes.
CONNECTION_DEADLINE_SECONDS = 15.0
#: How often the server looks for connections past their deadline.
_POLL_SECONDS = 0.5
_BUSY_REPLY = (
    b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 5\r\nConnection: close\r\n\r\nbusy\n"
)

#: A drain tick that last succeeded longer ago than this makes ``/healthz`` answer 503.
HEALTH_STALE_SECONDS = 120.0
#: Per-request latency buckets, from a loopback round trip to a read timeout.
SEND_SECONDS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _Health:
    """One destination's health: its last successful tick, last failure, credentials."""

    __slots__ = ("auth_error", "last_failure", "last_success")

    def __init__(self) -> None:
        self.last_success: float | None = None
        self.last_failure: str | None = None
        self.auth_error: str | None = None


class RelayMetrics:
    """The relay's metrics and health state; safe to update from any thread.

    ``destinations`` are the destinations this relay delivers to: each must be healthy for
    ``/healthz`` to answer 200. Every per-destination method takes ``destination``
    (``default`` when omitted).
    """

    def __init__(
        self,
        *,
        stale_after_seconds: float = HEALTH_STALE_SECONDS,
        monotonic: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        destinations: Sequence[str] = (DEFAULT_DESTINATION,),
    ) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._stale_after = stale_after_seconds
        self._monotonic = monotonic
        self._wall_clock = wall_clock
        self._lock = threading.Lock()
        self._health: dict[str, _Health] = {name: _Health() for name in destinations}
        self._paused_all = False
        self._paused_events: list[str] = []
        self._paused_destinations: list[str] = []

        r = self.registry
        self.pending = Gauge("relay_pending_events", "Rows waiting for delivery.", registry=r)
        self.due = Gauge("relay_due_events", "Pending rows due for a send now.", registry=r)
        self.oldest_pending_age = Gauge(
            "relay_oldest_pending_age_seconds",
            "Age of the oldest pending row (0 when none).",
            registry=r,
        )
        self.dead = Gauge(
            "relay_dead_events", "Rows Mixpanel refused or out of attempts.", registry=r
        )
        self.inflight = Gauge(
            "relay_inflight_events", "Pending rows under a live lease.", registry=r
        )
        d = ["destination"]
        self.delivered_total = Counter(
            "relay_delivered_total", "Rows Mixpanel accepted.", d, registry=r
        )
        self.retried_total = Counter(
            "relay_retried_total", "Rows scheduled for another attempt.", d, registry=r
        )
        self.dead_total = Counter(
            "relay_dead_total",
            "Rows given up on, by reason: rejected (Mixpanel 400) or max_attempts.",
            ["reason", "destination"],
            registry=r,
        )
        self.released_total = Counter(
            "relay_released_total", "Claimed rows handed back unsent.", d, registry=r
        )
        self.lease_lost_total = Counter(
            "relay_lease_lost_total",
            "Rows re-claimed elsewhere before this relay's ack.",
            d,
            registry=r,
        )
        self.tick_errors_total = Counter(
            "relay_drain_errors_total", "Drain ticks that failed with an error.", registry=r
        )
        self.send_seconds = Histogram(
            "relay_send_seconds",
            "Duration of each HTTP request to Mixpanel, by HTTP status ('error' if none).",
            ["status", "destination"],
            buckets=SEND_SECONDS_BUCKETS,
            registry=r,
        )
        self.last_success = Gauge(
            "relay_last_success_timestamp_seconds",
            "Unix time of the last drain tick that completed without error.",
            registry=r,
        )
        self.auth_failing = Gauge(
            "relay_auth_failing", "1 while Mixpanel answers 401 to this relay.", d, registry=r
        )
        self.paused = Gauge(
            "relay_paused",
            "1 while all delivery is paused (relay pause), else 0.",
            registry=r,
        )
        self.paused_events = Gauge(
            "relay_paused_events",
            "How many event names are paused one by one (relay pause --event).",
            registry=r,
        )
        self.throttled_requests_total = Counter(
            "relay_throttled_requests_total",
            "Requests Mixpanel answered 429 (the project's rate limit).",
            d,
            registry=r,
        )
        self.throttled_total = Counter(
            "relay_throttled_total",
            "Rows handed back pending after a 429, their attempt returned.",
            d,
            registry=r,
        )
        self.requests_in_flight = Gauge(
            "relay_requests_in_flight",
            "/import requests this relay has in flight (0 when RELAY_MAX_IN_FLIGHT=0).",
            d,
            registry=r,
        )
        self.concurrency_limit = Gauge(
            "relay_concurrency_limit",
            "The adaptive limit on requests in flight (0 when RELAY_MAX_IN_FLIGHT=0).",
            d,
            registry=r,
        )
        self.accepted_rate = Gauge(
            "relay_accepted_events_per_second",
            "Events per second Mixpanel accepted from this relay over the last seconds.",
            d,
            registry=r,
        )
        self.throttle_level = Gauge(
            "relay_throttle_level",
            "Backoff level of the rate-limit throttle the relays share (0: not throttled).",
            d,
            registry=r,
        )
        for name in destinations:
            # Every series exists from the start (at 0), so rate() and alerts see the first rows.
            for reason in ("rejected", "max_attempts"):
                self.dead_total.labels(reason=reason, destination=name)
            for counter in (
                self.delivered_total,
                self.retried_total,
                self.released_total,
                self.lease_lost_total,
                self.throttled_requests_total,
                self.throttled_total,
            ):
                counter.labels(destination=name)
            self.auth_failing.labels(destination=name).set(0)

    # --- updates -----------------------------------------------------------------------

    def watch_delivery(
        self,
        *,
        in_flight: Callable[[], float],
        limit: Callable[[], float],
        accepted_rate: Callable[[], float],
        throttle_level: Callable[[], float],
        destination: str = DEFAULT_DESTINATION,
    ) -> None:
        """Read ``destination``'s drainer's live numbers at each scrape (cheap callables)."""
        self.requests_in_flight.labels(destination=destination).set_function(in_flight)
        self.concurrency_limit.labels(destination=destination).set_function(limit)
        self.accepted_rate.labels(destination=destination).set_function(accepted_rate)
        self.throttle_level.labels(destination=destination).set_function(throttle_level)

    def observe_requests(
        self, requests: Sequence[RequestStat], *, destination: str = DEFAULT_DESTINATION
    ) -> None:
        """Record the duration of each HTTP request of one send to ``destination``."""
        for request in requests:
            status = str(request.status) if request.status is not None else "error"
            self.send_seconds.labels(status=status, destination=destination).observe(
                request.seconds
            )
            if request.status == 429:
                self.throttled_requests_total.labels(destination=destination).inc()

    def observe_drain(self, result: DrainResult, *, destination: str = DEFAULT_DESTINATION) -> None:
        """Count what one drain tick of ``destination`` did to its rows."""
        d = destination
        self.delivered_total.labels(destination=d).inc(result.delivered)
        self.retried_total.labels(destination=d).inc(result.retried)
        self.dead_total.labels(reason="rejected", destination=d).inc(result.rejected)
        self.dead_total.labels(reason="max_attempts", destination=d).inc(
            result.dead_after_max_attempts
        )
        self.released_total.labels(destination=d).inc(result.released)
        self.lease_lost_total.labels(destination=d).inc(result.lease_lost)
        self.throttled_total.labels(destination=d).inc(result.throttled)

    def set_gauges(self, gauges: Gauges) -> None:
        """Publish a fresh reading of the outbox gauges."""
        self.pending.set(gauges.pending)
        self.due.set(gauges.due)
        self.inflight.set(gauges.inflight)
        self.dead.set(gauges.dead)
        self.oldest_pending_age.set(gauges.oldest_pending_age_seconds)

    def set_pauses(
        self, *, everything: bool, events: Sequence[str], destinations: Sequence[str] = ()
    ) -> None:
        """Publish the pauses in force: of all delivery, of these event names and of these
        destinations (``relay pause --destination``)."""
        with self._lock:
            self._paused_all = everything
            self._paused_events = sorted(events)
            self._paused_destinations = sorted(destinations)
        self.paused.set(1 if everything else 0)
        self.paused_events.set(len(events))

    def _of(self, destination: str) -> _Health:
        """``destination``'s health (call with the lock held); a new one on first mention."""
        return self._health.setdefault(destination, _Health())

    def tick_succeeded(self, *, destination: str = DEFAULT_DESTINATION) -> None:
        """A drain tick of ``destination`` ran to its end (whatever Mixpanel answered, but a
        401)."""
        with self._lock:
            health = self._of(destination)
            health.last_success = self._monotonic()
            health.last_failure = None
        self.last_success.set(self._wall_clock())

    def tick_failed(self, error: BaseException, *, destination: str = DEFAULT_DESTINATION) -> None:
        """A drain tick of ``destination`` raised ``error``; only its type is kept, never its
        text."""
        with self._lock:
            self._of(destination).last_failure = type(error).__name__
        self.tick_errors_total.inc()

    def set_auth_error(
        self, message: str | None, *, destination: str = DEFAULT_DESTINATION
    ) -> None:
        """``destination``'s project refused the credentials with ``message`` (or its check
        failed), or ``None`` once it accepts them."""
        with self._lock:
            self._of(destination).auth_error = message
        self.auth_failing.labels(destination=destination).set(1 if message is not None else 0)

    # --- reading -----------------------------------------------------------------------

    def health(self) -> tuple[bool, dict[str, Any]]:
        """Whether the relay is healthy, and a JSON-able explanation.

        Healthy when every destination is: its last tick succeeded within the stale limit and
        its project accepts the credentials. ``destinations`` details each one; the top-level
        fields sum them up (the oldest success, the first error found). A pause does not make
        the relay unhealthy (it is running and doing what it was told): ``paused`` and
        ``paused_events`` report it (and each destination's ``paused``), as of the latest gauge
        reading.
        """
        now = self._monotonic()
        with self._lock:
            states = {
                name: (h.last_success, h.last_failure, h.auth_error)
                for name, h in self._health.items()
            }
            paused_all = self._paused_all
            paused_events = list(self._paused_events)
            paused_destinations = set(self._paused_destinations)
        detail: dict[str, dict[str, Any]] = {}
        ages: list[float | None] = []
        for name, (last_success, last_failure, auth_error) in states.items():
            age = None if last_success is None else now - last_success
            ages.append(age)
            recent = age is not None and age <= self._stale_after
            ok = recent and last_failure is None and auth_error is None
            detail[name] = {
                "status": "ok" if ok else "failing",
                "last_success_age_seconds": None if age is None else round(age, 3),
                "last_error": last_failure,
                "auth_error": auth_error,
                "paused": paused_all or name in paused_destinations,
            }
        healthy = bool(detail) and all(d["status"] == "ok" for d in detail.values())
        oldest = None if not ages or None in ages else max(a for a in ages if a is not None)
        return healthy, {
            "status": "ok" if healthy else "failing",
            "last_success_age_seconds": None if oldest is None else round(oldest, 3),
            "last_error": next((d["last_error"] for d in detail.values() if d["last_error"]), None),
            "auth_error": next((d["auth_error"] for d in detail.values() if d["auth_error"]), None),
            "paused": paused_all,
            "paused_events": paused_events,
            "destinations": detail,
        }

    def exposition(self) -> bytes:
        """The registry in Prometheus' text format."""
        return generate_latest(self.registry)


class _BoundedHTTPServer(ThreadingHTTPServer):
    """A thread per connection, at most ``max_connections`` of them, each with a deadline."""

    daemon_threads = True
    # Connections the kernel completes before the server accepts them. socketserver's 5 made a
    # burst of connects (a flood of idle clients) overflow the queue: the kernel dropped the
    # handshakes beyond it, and a probe among them waited a second or more for its retry.
    # Accepting is cheap, over the cap too (503 at once), so the queue is emptied quickly.
    request_queue_size = 128

    def __init__(
        self,
        address: tuple[str, int],
        handler: type[BaseHTTPRequestHandler],
        *,
        max_connections: int,
        deadline_seconds: float,
    ) -> None:
        self._slots = threading.BoundedSemaphore(max_connections)
        self._deadline_seconds = deadline_seconds
        self._open: dict[socket.socket, float] = {}
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._slots.acquire(blocking=False):
            # Refuse without a thread: a flood of idle clients costs one descriptor each only
            # for as long as it takes to write 503 into an empty send buffer.
            with contextlib.suppress(OSError):
                request.setblocking(False)
                request.send(_BUSY_REPLY)
            self.shutdown_request(request)
            return
        with self._open_lock:
            self._open[request] = time.monotonic() + self._deadline_seconds
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._forget(request)
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._forget(request)

    def _forget(self, request: socket.socket) -> None:
        with self._open_lock:
            if self._open.pop(request, None) is None:
                return
        self._slots.release()

    def service_actions(self) -> None:
        """Shut down connections past their deadline (runs between polls of serve_forever)."""
        now = time.monotonic()
        with self._open_lock:
            late = [sock for sock, deadline in self._open.items() if deadline <= now]
        for sock in late:
            # Wakes the handler's blocked read, which then ends and frees the slot; a socket
            # closed meanwhile raises OSError (its descriptor is never touched again).
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


class MetricsServer:
    """A tiny threaded HTTP server for ``/healthz`` and ``/metrics``, bounded (module docs)."""

    def __init__(
        self,
        metrics: RelayMetrics,
        *,
        host: str,
        port: int,
        max_connections: int = MAX_CONNECTIONS,
        timeout_seconds: float = CONNECTION_TIMEOUT_SECONDS,
        deadline_seconds: float = CONNECTION_DEADLINE_SECONDS,
    ) -> None:
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        handler = _handler_for(metrics, timeout_seconds=timeout_seconds)
        self._server = _BoundedHTTPServer(
            (host, port),
            handler,
            max_connections=max_connections,
            deadline_seconds=deadline_seconds,
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": _POLL_SECONDS},
            name="relay-metrics",
            daemon=True,
        )

    @property
    def port(self) -> int:
        """The port actually bound (useful when 0 asked for any free one)."""
        return int(self._server.server_address[1])

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread.start()
        logger.info("metrics_server_started", port=self.port)

    def close(self) -> None:
        """Stop serving and free the port."""
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join()
        self._server.server_close()


def _handler_for(metrics: RelayMetrics, *, timeout_seconds: float) -> type[BaseHTTPRequestHandler]:
    class _Handler(BaseHTTPRequestHandler):
        # StreamRequestHandler applies it to the socket: every read and write is bounded.
        timeout = timeout_seconds

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/healthz":
                healthy, body = metrics.health()
                status = HTTPStatus.OK if healthy else HTTPStatus.SERVICE_UNAVAILABLE
                self._reply(status, "application/json", orjson.dumps(body))
            elif path == "/metrics":
                self._reply(HTTPStatus.OK, CONTENT_TYPE_LATEST, metrics.exposition())
            else:
                self._reply(HTTPStatus.NOT_FOUND, "text/plain", b"not found\n")

        def _reply(self, status: HTTPStatus, content_type: str, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            # Scrapes every few seconds would drown the log; errors still reach log_error.
            return

    return _Handler
