"""``MixpanelStandin``: the server's life cycle, its queries, and the routing of each request.

The jobs are elsewhere: Mixpanel's per-record rules in ``_rules``, ``/import``'s answers in
``_ingest``, bodies and credentials in ``_wire``, faults in ``_faults``, what was accepted in
``_ledger``, Lexicon schemas in ``_lexicon``, the control plane in ``_control`` and the HTTP
server in ``_http``. This class owns the state and wires them together.
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from email.message import Message
from types import TracebackType
from typing import ClassVar, Self
from urllib.parse import parse_qs, urlsplit

from relay.testing.mixpanel_standin import _gdpr, _ingest, _lexicon, _profiles
from relay.testing.mixpanel_standin._control import PREFIX, control_reply
from relay.testing.mixpanel_standin._faults import TIMEOUT, FaultInjection, FaultPlan
from relay.testing.mixpanel_standin._http import Server
from relay.testing.mixpanel_standin._ledger import (
    NO_ANSWER,
    Ledger,
    RequestRecord,
    Stored,
)
from relay.testing.mixpanel_standin._ratecap import DEFAULT_RATE_WINDOW_SECONDS, RateCap
from relay.testing.mixpanel_standin._views import StandinViews
from relay.testing.mixpanel_standin._wire import (
    ERROR_RATE_LIMITED,
    ERROR_UNAUTHORIZED,
    Body,
    Reply,
    basic_credentials,
    content_type_of,
    inflate,
    json_reply,
    mixpanel_error,
    not_found,
    parse_records,
    phrase,
)

DEFAULT_MAX_EVENTS = 2000
#: Mixpanel's data residencies: US (``api``), EU (``api-eu``) and India (``api-in``).
REGIONS = ("us", "eu", "in")
DEFAULT_MAX_BYTES = 2 * 1024 * 1024
_JOIN_SECONDS = 5.0


@dataclass(frozen=True, slots=True)
class _Incoming:
    path: str
    arrived: float
    content_encoding: str | None
    body: Body


class MixpanelStandin(StandinViews, FaultInjection):
    """An HTTP server on loopback that behaves like Mixpanel's ingestion API.

    Thread-safe: the server answers each connection on its own thread, and every query and
    fault-injection method may be called from any thread while it runs. ``/engage`` and
    ``/groups`` answer the spec's ``Received`` as text (``1``/``0``) unless asked ``verbose=1``;
    ``verbose_answers=True`` gives the verbose JSON variant to every request, and
    ``profile_per_record_errors=False`` ignores ``strict=1`` (no per-record answer, only ``0``
    or ``1``). ``retain_events=False``
    keeps only counters and dedup keys (for long benchmarks); ``accepted_events`` and
    ``unique_events`` then raise. It also serves the Lexicon Schemas API under
    ``/api/app/projects/{projectId}/schemas`` (see ``lexicon_entries``).

    ``latency_ms`` holds every ingestion answer that long (a real ``/import`` of 2,000 events
    takes hundreds of milliseconds; requests wait side by side, each on its own thread).
    ``rate_limit`` caps the project at that many events per second over a rolling
    ``rate_window_seconds`` (Mixpanel's is a minute); a request beyond it is answered 429 with
    Mixpanel's documented body and stores nothing (see ``_ratecap``).

    ``region`` is the residency whose servers it plays (``"us"``, ``"eu"``, ``"in"``) and
    ``project_region`` where its project lives (default: the same). Run one per destination
    to prove routing (each keeps what it received); ``destination_table()`` and
    ``destination_secrets()`` (or :func:`write_destinations_file` for several) configure a
    relay's destination with it. While the project lives elsewhere (``move_project``), the
    app API answers 404 for it and ``/import``, ``/engage`` and ``/groups`` 401 (Mixpanel's
    401 page lists a wrong regional host as a cause). ``refuse_credentials()`` answers 401 to
    every request's credentials until ``refuse_credentials(False)``, as a revoked secret does.

    Subclasses may serve more ingestion paths (``INGESTION_PATHS``, ``_answer``) and body
    formats (``_decode_inflated``): the benchmarks' ``mixpanel``-package baseline does.
    """

    #: Paths answered by ``_answer`` after faults and outages had their say.
    INGESTION_PATHS: ClassVar[frozenset[str]] = frozenset({"/import"})

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        project_id: str = "standin-project",
        username: str = "standin-user",
        secret: str = "standin-secret",  # noqa: S107 - a fake credential for the fake server
        project_token: str = "standin-token",  # noqa: S107 - likewise
        oauth_token: str = "standin-oauth-token",  # noqa: S107 - likewise, for the GDPR API
        max_events: int = DEFAULT_MAX_EVENTS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        now: Callable[[], float] = time.time,
        retain_events: bool = True,
        verbose_answers: bool = False,
        profile_per_record_errors: bool = True,
        latency_ms: float = 0.0,
        rate_limit: float | None = None,
        rate_window_seconds: float = DEFAULT_RATE_WINDOW_SECONDS,
        region: str = "us",
        project_region: str | None = None,
    ) -> None:
        if latency_ms < 0:
            raise ValueError("latency_ms must not be negative")
        for given in (region, project_region or region):
            if given not in REGIONS:
                raise ValueError(f"region must be one of {', '.join(REGIONS)}")
        self.region = region
        self._project_region = project_region or region
        self._refusing_credentials = False
        self.host = host
        self.port = port
        self.project_id = project_id
        self.username = username
        self.secret = secret
        self.project_token = project_token
        self.oauth_token = oauth_token
        self.max_events = max_events
        self.max_bytes = max_bytes
        self.retain_events = retain_events
        self.latency_ms = latency_ms
        self._now = now
        self._rate_cap = RateCap(rate_limit, window_seconds=rate_window_seconds)
        self._server: Server | None = None
        self._serve_thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)  # stop and outage changes wake holders
        self._stopping = False
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._faults = FaultPlan(self._changed, lambda: self._stopping)
        self._ledger = Ledger(self._lock, retain_events=retain_events)
        self._lexicon = _lexicon.LexiconStore(self._lock)
        self._profiles = _profiles.ProfileStore(
            self._lock,
            token=project_token,
            max_bytes=max_bytes,
            verbose_answers=verbose_answers,
            per_record_errors=profile_per_record_errors,
        )
        self._gdpr = _gdpr.GdprJobs(
            self._lock, project_id=project_id, project_token=project_token, oauth_token=oauth_token
        )

    # --- life cycle ---------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Base URL, such as ``http://127.0.0.1:40123``; available once started."""
        if self._server is None:
            raise RuntimeError("the stand-in is not running: call start() first")
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        """Bind and serve on a background thread."""
        if self._server is not None:
            raise RuntimeError("the stand-in is already running")
        self._stopping = False
        self._server = Server((self.host, self.port), self)
        self._serve_thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="mixpanel-standin",
            daemon=True,
        )
        self._serve_thread.start()

    def stop(self) -> None:
        """Stop serving, cut open connections and wait for their threads; held requests drop."""
        server, thread = self._server, self._serve_thread
        if server is None or thread is None:
            return
        with self._changed:
            self._stopping = True
            self._changed.notify_all()
        server.shutdown()
        thread.join()
        server.server_close()
        with self._lock:
            connections = dict(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):  # already closed by its handler
                sock.shutdown(socket.SHUT_RDWR)
        for handler_thread in connections.values():
            handler_thread.join(_JOIN_SECONDS)
        self._server = None
        self._serve_thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def settings_env(self) -> dict[str, str]:
        """``RELAY_*`` variables that point a relay subprocess at this stand-in."""
        return {
            "RELAY_MIXPANEL_API_URL": self.url,
            "RELAY_MIXPANEL_PROJECT_ID": self.project_id,
            "RELAY_MIXPANEL_SERVICE_ACCOUNT_USERNAME": self.username,
            "RELAY_MIXPANEL_SERVICE_ACCOUNT_SECRET": self.secret,
        }

    @property
    def app_api_url(self) -> str:
        """Base URL of the application API (Lexicon Schemas), ``{url}/api/app``."""
        return f"{self.url}{_lexicon.APP_API_PATH}"

    @property
    def project_region(self) -> str:
        """Where the project lives (``move_project``); the stand-in plays ``region``'s servers."""
        return self._project_region

    def move_project(self, region: str) -> None:
        """Make the project live in ``region``: unless it is ``self.region``, the app API
        answers 404 for the project and ingestion answers 401 (a wrong regional host)."""
        if region not in REGIONS:
            raise ValueError(f"region must be one of {', '.join(REGIONS)}")
        with self._lock:
            self._project_region = region

    def refuse_credentials(self, refuse: bool = True) -> None:
        """Answer 401 to every request's credentials (``/import``, ``/engage``, ``/groups``, the
        Lexicon and GDPR APIs) while ``refuse`` holds, as Mixpanel does to a revoked secret;
        ``refuse_credentials(False)`` accepts them again. ``reset()`` also ends it."""
        with self._lock:
            self._refusing_credentials = refuse

    @property
    def refusing_credentials(self) -> bool:
        """Whether ``refuse_credentials`` is on."""
        return self._refusing_credentials

    def _refusal(self, *, app_api: bool) -> Reply | None:
        """The answer while credentials are refused or the project lives in another region."""
        with self._lock:
            refusing, foreign = self._refusing_credentials, self._project_region != self.region
        if refusing:
            if app_api:
                return json_reply(401, {"error": ERROR_UNAUTHORIZED, "status": "error"})
            return mixpanel_error(401, ERROR_UNAUTHORIZED)
        if foreign:
            return not_found() if app_api else mixpanel_error(401, ERROR_UNAUTHORIZED)
        return None

    def destination_table(self) -> dict[str, str]:
        """This stand-in as a ``[destinations.<name>]`` table: no secret (those are
        ``destination_secrets``)."""
        return {
            "region": self.region,
            "api_url": self.url,
            "app_api_url": self.app_api_url,
            "project_id": self.project_id,
            "service_account_username": self.username,
        }

    def destination_secrets(self, name: str) -> dict[str, str]:
        """The ``RELAY_DESTINATION_<NAME>_*`` variables holding this stand-in's secrets."""
        prefix = f"RELAY_DESTINATION_{name.upper().replace('-', '_')}_"
        return {
            f"{prefix}SERVICE_ACCOUNT_SECRET": self.secret,
            f"{prefix}PROJECT_TOKEN": self.project_token,
            f"{prefix}GDPR_TOKEN": self.oauth_token,
        }

    def destination_settings(self) -> dict[str, str]:
        """This stand-in as a destination for ``load_settings(destinations={name: ...})``:
        the table and the secrets."""
        return {
            **self.destination_table(),
            "service_account_secret": self.secret,
            "project_token": self.project_token,
            "gdpr_token": self.oauth_token,
        }

    def refuse_profile_updates(self, identities: Iterable[str]) -> None:
        """Refuse every ``/engage`` / ``/groups`` update of these distinct or group ids.

        Under ``strict=1`` the refusal is per record (``failed_records``); otherwise, or with
        ``profile_per_record_errors=False``, a request holding only refused updates answers ``0``.
        """
        self._profiles.refuse(list(identities))

    def reset(self) -> None:
        """Forget records, counters, logs, Lexicon, profiles and jobs; clear every fault."""
        with self._changed:
            self._ledger.clear()
            self._lexicon.clear()
            self._profiles.clear()
            self._gdpr.clear()
            self._faults.clear()
            self._rate_cap.clear()
            self._refusing_credentials = False
            self._changed.notify_all()

    def _register_connection(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections[sock] = threading.current_thread()

    def _forget_connection(self, sock: socket.socket) -> None:
        with self._lock:
            self._connections.pop(sock, None)

    # --- request handling --------------------------------------------------------------------

    def _handle(  # noqa: PLR0911 -- one return per route
        self, method: str, target: str, headers: Message, body: bytes
    ) -> Reply | None:
        """The answer to one request, or ``None`` to drop the connection without one."""
        parts = urlsplit(target)
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        path = parts.path.rstrip("/") or "/"
        if path in self.INGESTION_PATHS:
            if method != "POST":
                return mixpanel_error(405, "method not allowed")
            return self._serve_ingestion(path, query, headers, body)
        if path in _profiles.PATHS:
            if method != "POST":
                return mixpanel_error(405, "method not allowed")
            return self._refusal(app_api=False) or self._serve_profiles(path, query, headers, body)
        if path.startswith(_gdpr.PREFIXES):
            refusal = self._refusal(app_api=True)
            return refusal or self._gdpr.handle(method, path, query, headers, body)
        if path.startswith(_lexicon.PREFIX):
            refusal = self._refusal(app_api=True)
            if refusal is not None:
                return self._lexicon.refused(method, path, query, refusal)
            return self._lexicon.handle(
                method, path, query, body, authorized=self._lexicon_authorized(headers)
            )
        if path.startswith(PREFIX):
            return control_reply(self, method, path, body)
        return not_found()

    def _serve_profiles(
        self, path: str, query: dict[str, str], headers: Message, body: bytes
    ) -> Reply | None:
        """``/engage`` and ``/groups``, after any queued fault (``fail_next``, ``delay_next``).

        A fault with a status answers instead of the endpoint (nothing applied); a delay holds
        the request, then applies it as usual (or, with ``drop``, drops it unapplied).
        """
        fault = self._faults.next_fault()
        if fault is not None and fault.status is not None:
            if fault.body is not None:
                return Reply(fault.status, fault.body)
            return mixpanel_error(fault.status, fault.error or f"injected HTTP {fault.status}")
        if fault is not None:
            stopping = self._faults.hold(fault.seconds)
            if fault.drop or stopping:
                return None
        return self._profiles.handle(path, query, headers, body)

    def _serve_ingestion(
        self, path: str, query: dict[str, str], headers: Message, body: bytes
    ) -> Reply | None:
        incoming = _Incoming(
            path=path,
            arrived=time.monotonic(),
            content_encoding=headers.get("Content-Encoding"),
            body=self._decode(headers, body, query),
        )
        decoded = incoming.body
        fault = self._faults.next_fault()
        reply: Reply | None
        stored: list[Stored] = []
        if fault is None:
            answer, outage_status = self._faults.wait_out_outage()
            if not answer:
                return self._finish(incoming, [], None)
            if outage_status is not None:
                # After the round trip, as every answer: Mixpanel's 429 crosses the network
                # too (an instant refusal taught the relay a round trip of a millisecond).
                reply = self._fault_reply(outage_status, None, decoded)
                return self._round_trip(self._finish(incoming, [], reply))
        elif fault.status is not None:
            reply = (
                self._fault_reply(fault.status, fault.error, decoded)
                if fault.body is None
                else Reply(fault.status, fault.body)
            )
            return self._round_trip(self._finish(incoming, [], reply))
        else:
            stopping = self._faults.hold(fault.seconds)
            if fault.drop or stopping:
                return self._finish(incoming, [], None)
        if not self._rate_cap.admit(len(decoded.records or [])):
            reply = mixpanel_error(429, ERROR_RATE_LIMITED)
            return self._round_trip(self._finish(incoming, [], reply))
        reply, stored = self._answer(path, query, headers, decoded)
        return self._round_trip(self._finish(incoming, stored, reply))

    def _round_trip(self, reply: Reply | None) -> Reply | None:
        """``reply`` after ``latency_ms`` (the connection's own thread waits, burning no CPU).

        The records are already stored: a client that gives up meanwhile re-sends duplicates,
        as with Mixpanel. Stopping cuts the wait short and drops the answer.
        """
        if self.latency_ms and self._faults.hold(self.latency_ms / 1000.0):
            return None
        return reply

    def _answer(
        self, path: str, query: dict[str, str], headers: Message, decoded: Body
    ) -> tuple[Reply, list[Stored]]:
        """The answer to an ingestion request no fault took, and the records to store."""
        refusal = _ingest.import_refusal(
            query,
            decoded,
            authorized=self._import_authorized(headers, query),
            max_events=self.max_events,
        )
        if refusal is not None:
            return refusal, []
        stored, failures = self._validate(decoded, track=False)
        return _ingest.import_answer(query, decoded, stored, failures), stored

    def _validate(self, decoded: Body, *, track: bool) -> tuple[list[Stored], _ingest.Failures]:
        """``_ingest.validate`` with this stand-in's clock, token and refused ids."""
        return _ingest.validate(
            decoded,
            track=track,
            now_ms=int(self._now() * 1000),
            token=self.project_token,
            refused=self._faults.refused_ids(),
        )

    def _fault_reply(self, status: int, error: str | None, decoded: Body) -> Reply:
        """The Mixpanel-shaped answer of an injected fault or outage with ``status``."""
        if status == 413:
            return mixpanel_error(413, error or self._too_large_error())
        if status == 401:
            return mixpanel_error(401, error or ERROR_UNAUTHORIZED)
        if status == 429:
            return mixpanel_error(429, error or ERROR_RATE_LIMITED)
        return mixpanel_error(status, error or phrase(status))

    def _too_large_error(self) -> str:
        return f"request exceeds max limit of {self.max_bytes} bytes"

    def _finish(
        self, incoming: _Incoming, stored: list[Stored], reply: Reply | None
    ) -> Reply | None:
        """Store accepted records and log the request, atomically."""
        decoded = incoming.body
        records = decoded.records or []
        entry = RequestRecord(
            at=incoming.arrived,
            status=NO_ANSWER if reply is None else reply.status,
            events=len(records),
            insert_ids=_ingest.insert_ids(records) if self.retain_events else (),
            path=incoming.path,
            content_encoding=incoming.content_encoding,
            body_bytes=decoded.size,
        )
        self._ledger.record(entry, stored, rejected=decoded.rejected, notes=decoded.notes)
        return reply

    # --- bodies and credentials --------------------------------------------------------------

    def _decode(self, headers: Message, body: bytes, query: dict[str, str]) -> Body:
        inflated = inflate(headers, body, self.max_bytes)
        if isinstance(inflated, Reply):
            return Body(error=inflated)
        if len(inflated) > self.max_bytes:
            return Body(error=mixpanel_error(413, self._too_large_error()), size=len(inflated))
        return self._decode_inflated(content_type_of(headers), inflated, query)

    def _decode_inflated(self, content_type: str, inflated: bytes, query: dict[str, str]) -> Body:
        """The records of an uncompressed body within ``max_bytes``: JSON array or NDJSON."""
        parsed = parse_records(content_type, inflated)
        if isinstance(parsed, Reply):
            return Body(error=parsed, size=len(inflated))
        records, strict = parsed
        return Body(
            records=records,
            size=len(inflated),
            strict_utf8=strict,
            request_ip_used=query.get("ip") == "1",
        )

    def _import_authorized(self, headers: Message, query: dict[str, str]) -> bool:
        """Service account with the project's ``project_id``, or the project token alone."""
        credentials = basic_credentials(headers)
        if credentials is None or self._refusal(app_api=False) is not None:
            return False
        user, given_secret = credentials
        project_id = query.get("project_id")
        if user == self.username and given_secret == self.secret:
            return project_id == self.project_id
        if user == self.project_token and not given_secret:
            return project_id in (None, self.project_id)
        return False

    def _lexicon_authorized(self, headers: Message) -> _lexicon.Access:
        """Who is calling the Lexicon Schemas API: the service account, or nobody known."""
        credentials = basic_credentials(headers)
        if credentials == (self.username, self.secret):
            return _lexicon.Access(project_id=self.project_id)
        return _lexicon.Access(project_id=None)


def write_destinations_file(path: str, standins: Mapping[str, MixpanelStandin]) -> dict[str, str]:
    """Write a ``RELAY_DESTINATIONS_FILE`` naming one destination per stand-in; its variables.

    ``standins`` maps destination names (``{"us": us, "eu": eu}``; ``default`` too, if the
    file should define it) to running stand-ins. Returns the environment a relay subprocess
    needs: ``RELAY_DESTINATIONS_FILE`` and each destination's ``RELAY_DESTINATION_<NAME>_*``
    secrets (the file holds none).
    """
    lines: list[str] = []
    env = {"RELAY_DESTINATIONS_FILE": str(path)}
    for name, standin in standins.items():
        lines.append(f"[destinations.{name}]")
        lines.extend(
            f"{key} = {json.dumps(value)}" for key, value in standin.destination_table().items()
        )
        lines.append("")
        env.update(standin.destination_secrets(name))
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines))
    return env


__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_EVENTS",
    "NO_ANSWER",
    "REGIONS",
    "TIMEOUT",
    "MixpanelStandin",
    "write_destinations_file",
]
