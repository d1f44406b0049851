"""The GDPR API (``mixpanel-gdpr.openapi.yaml``): data deletions and retrievals, v3.0.

Under ``/api/app``: ``POST /data-deletions/v3.0`` and ``POST /data-retrievals/v3.0`` create a
job (201 ``{"status": "ok", "results": {"task_id": ...}}``), ``GET .../{tracking_id}`` reports
it, ``DELETE /data-deletions/v3.0/{tracking_id}`` cancels a deletion still pending (204). Every
request needs ``Authorization: Bearer <OAuth token>`` (401) and ``?token=`` the project token
(400 missing, 403 another project's). Jobs stay ``PENDING`` until the stand-in runs them
(``complete_gdpr_jobs()`` or ``POST /_standin/gdpr/complete``): a deletion then removes the
user profiles of its distinct ids. The spec leaves both timing and effect on events open; the
stand-in deletes profiles only.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from email.message import Message
from typing import Any

import orjson

from relay.testing.mixpanel_standin._wire import Reply, json_reply

PREFIXES = ("/api/app/data-deletions/v3.0", "/api/app/data-retrievals/v3.0")
COMPLIANCE_TYPES = ("GDPR", "CCPA")
DISCLOSURE_TYPES = ("Data", "Categories", "Sources")


@dataclass(frozen=True, slots=True)
class GdprJob:
    """One deletion or retrieval job."""

    task_id: str
    kind: str  # "deletion" or "retrieval"
    status: str  # PENDING, SUCCESS, REVOKED
    distinct_ids: tuple[str, ...]
    compliance_type: str
    disclosure_type: str | None
    date_requested: str

    def to_json(self) -> dict[str, Any]:
        """The job as ``GET /_standin/gdpr`` lists it."""
        return {**asdict(self), "distinct_ids": list(self.distinct_ids)}


def _error(status: int, error: str) -> Reply:
    return json_reply(status, {"error": error, "status": "error"})


def create_problem(kind: str, body: Any) -> str | None:
    """What is wrong with a job-creating body, or ``None`` (pure)."""
    if not isinstance(body, dict):
        return "body: must be a JSON object"
    ids = body.get("distinct_ids")
    if not isinstance(ids, list) or not ids or not all(isinstance(i, str) and i for i in ids):
        return "distinct_ids: must be a non-empty array of strings"
    if body.get("compliance_type", "GDPR") not in COMPLIANCE_TYPES:
        return "compliance_type: must be GDPR or CCPA"
    if kind == "retrieval" and body.get("disclosure_type", "Data") not in DISCLOSURE_TYPES:
        return "disclosure_type: must be Data, Categories or Sources"
    return None


class GdprJobs:
    """The jobs created so far; ``run_pending`` completes them with the given deleter."""

    def __init__(
        self, lock: threading.Lock, *, project_id: str, project_token: str, oauth_token: str
    ) -> None:
        self._lock = lock
        self._project_id = project_id
        self._project_token = project_token
        self._oauth_token = oauth_token
        self.clear()

    def clear(self) -> None:
        """Forget every job; the caller holds the lock (or owns the store)."""
        self._jobs: dict[str, GdprJob] = {}

    def jobs(self) -> list[GdprJob]:
        """Every job, in creation order."""
        with self._lock:
            return list(self._jobs.values())

    def run_pending(self, delete_users: Callable[[list[str]], int]) -> list[GdprJob]:
        """Complete every pending job (deletions call ``delete_users``); the jobs completed."""
        with self._lock:
            pending = [job for job in self._jobs.values() if job.status == "PENDING"]
        for job in pending:
            if job.kind == "deletion":
                delete_users(list(job.distinct_ids))
            with self._lock:
                self._jobs[job.task_id] = replace(job, status="SUCCESS")
        return pending

    def handle(  # noqa: PLR0911 -- the spec's refusals in order, then the routes
        self, method: str, path: str, query: dict[str, str], headers: Message, body: bytes
    ) -> Reply:
        """The answer to one GDPR API request."""
        scheme, _, given = (headers.get("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or given.strip() != self._oauth_token:
            return _error(401, "Invalid OAuth token")
        if "token" not in query:
            return _error(400, "query parameter 'token' is required")
        if query["token"] != self._project_token:
            return _error(403, "the token is not this project's")
        kind = "deletion" if path.startswith(PREFIXES[0]) else "retrieval"
        prefix = PREFIXES[0] if kind == "deletion" else PREFIXES[1]
        rest = path.removeprefix(prefix).strip("/")
        if not rest:
            if method != "POST":
                return _error(405, "method not allowed")
            return self._create(kind, body)
        if "/" in rest:
            return _error(404, "not found")
        return self._one(method, kind, rest)

    def _create(self, kind: str, body: bytes) -> Reply:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _error(400, "request body is not JSON")
        problem = create_problem(kind, parsed)
        if problem is not None:
            return _error(400, problem)
        with self._lock:
            task_id = f"standin-{kind}-{len(self._jobs) + 1}"
            self._jobs[task_id] = GdprJob(
                task_id=task_id,
                kind=kind,
                status="PENDING",
                distinct_ids=tuple(parsed["distinct_ids"]),
                compliance_type=parsed.get("compliance_type", "GDPR"),
                disclosure_type=parsed.get("disclosure_type", "Data")
                if kind == "retrieval"
                else None,
                date_requested=dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
            )
        return json_reply(201, {"status": "ok", "results": {"task_id": task_id}})

    def _one(self, method: str, kind: str, task_id: str) -> Reply:
        with self._lock:
            job = self._jobs.get(task_id)
        if job is None or job.kind != kind:
            return _error(404, f"no {kind} job {task_id!r}")
        if method == "GET":
            return json_reply(200, {"status": "ok", "results": self._report(job)})
        if method == "DELETE" and kind == "deletion":
            if job.status != "PENDING":
                return _error(400, f"only a pending deletion can be cancelled; it is {job.status}")
            with self._lock:
                self._jobs[task_id] = replace(job, status="REVOKED")
            return Reply(204, b"")
        return _error(405, "method not allowed")

    def _report(self, job: GdprJob) -> dict[str, Any]:
        if job.kind == "retrieval":
            link = f"standin://exports/{job.task_id}" if job.status == "SUCCESS" else ""
            return {"status": job.status, "results": link, "distinct_ids": list(job.distinct_ids)}
        return {
            "tracking_id": job.task_id,
            "status": job.status,
            "requesting_user": "standin-oauth-user",
            "compliance_type": job.compliance_type,
            "project_id": int(self._project_id) if self._project_id.isdigit() else 0,
            "date_requested": job.date_requested,
            "distinct_ids": list(job.distinct_ids),
        }
