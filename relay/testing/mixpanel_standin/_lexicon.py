"""Lexicon Schemas API: ``/api/app/projects/{projectId}/schemas[/{entityType}[/{name}]]``.

Served by ``mixpanel-lexicon-schemas.openapi.yaml``: ``GET`` lists schemas (all, one entity
type, optionally ``?entity_name=``, or one by name), ``POST /schemas`` creates or replaces
many (``{"entries": [...], "truncate": false}``; ``truncate: true`` first deletes the whole
dictionary), ``POST /schemas/{entityType}/{name}`` creates or replaces one, ``DELETE`` removes
all, one type's, or one. Requests must carry the service account (HTTP Basic): 401 without it,
403 for another project; the path's ``projectId`` must be an integer (400); bodies are checked
by ``_lexicon_rules`` (400 naming the first problem). What was uploaded is kept, viewable with
``MixpanelStandin.lexicon_entries()`` or ``GET /_standin/lexicon``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

import orjson

from relay.testing.mixpanel_standin import _lexicon_rules as rules
from relay.testing.mixpanel_standin._wire import Reply, json_reply

APP_API_PATH = "/api/app"
PREFIX = f"{APP_API_PATH}/projects/"

Name = tuple[str, str]  # (entityType, name)


@dataclass(frozen=True, slots=True)
class Access:
    """The project the caller's credentials open, or ``None`` for unknown credentials."""

    project_id: str | None


@dataclass(frozen=True, slots=True)
class LexiconRequest:
    """One Lexicon Schemas API request: method, path, query, JSON body (or ``None``), status."""

    method: str
    path: str
    query: dict[str, str]
    body: Any
    status: int


def _error(status: int, error: str) -> Reply:
    return json_reply(status, {"error": error, "status": "error"})


class LexiconStore:
    """The schemas a project's Lexicon holds, and the requests that changed or read them."""

    def __init__(self, lock: threading.Lock) -> None:
        self._lock = lock
        self.clear()

    def clear(self) -> None:
        """Forget every schema and request; the caller holds the lock (or owns the store)."""
        self._schemas: dict[Name, dict[str, Any]] = {}
        self._requests: list[LexiconRequest] = []

    def entries(self) -> list[dict[str, Any]]:
        """Every schema as a ``SchemaEntry``, sorted by entity type and name."""
        with self._lock:
            return _entries(self._schemas, lambda _: True)

    def requests(self) -> list[LexiconRequest]:
        """Every request answered so far."""
        with self._lock:
            return list(self._requests)

    def refused(self, method: str, path: str, query: dict[str, str], reply: Reply) -> Reply:
        """Log a request answered before the store saw it (credentials refused); ``reply``."""
        with self._lock:
            self._requests.append(LexiconRequest(method, path, query, None, reply.status))
        return reply

    def handle(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        body: bytes,
        *,
        authorized: Access,
    ) -> Reply:
        """The answer to one request under ``PREFIX``; logged with its parsed body."""
        try:
            parsed: Any = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            parsed = None
            reply = _error(400, "request body is not JSON")
        else:
            reply = self._answer(method, path, query, parsed, authorized)
        with self._lock:
            self._requests.append(LexiconRequest(method, path, query, parsed, reply.status))
        return reply

    def _answer(  # noqa: PLR0911 -- the spec's refusals in order, then one return per route
        self, method: str, path: str, query: dict[str, str], body: Any, access: Access
    ) -> Reply:
        parts = [unquote(part) for part in path.removeprefix(PREFIX).split("/")]
        if len(parts) < 2 or parts[1] != "schemas" or len(parts) > 4:
            return _error(404, "not found")
        if access.project_id is None:
            return _error(401, "Invalid credentials")
        project_id, rest = parts[0], parts[2:]
        if not project_id.isdigit():
            return _error(400, "projectId must be an integer")
        if project_id != access.project_id:
            return _error(403, "the service account has no access to this project")
        if rest and rest[0] not in rules.ENTITY_TYPES:
            return _error(400, f"entityType must be one of {', '.join(rules.ENTITY_TYPES)}")
        if len(rest) == 2:
            return self._one(method, (rest[0], rest[1]), body)
        entity_type = rest[0] if rest else None
        name = query.get("entity_name") if rest else None
        if method == "GET":
            return self._list(entity_type, name)
        if method == "DELETE":
            return self._delete(entity_type, name)
        if method == "POST" and not rest:
            return self._upload(body)
        return _error(405, "method not allowed")

    def _list(self, entity_type: str | None, name: str | None) -> Reply:
        with self._lock:
            results = _entries(self._schemas, lambda key: _matches(key, entity_type, name))
        return json_reply(200, {"results": results, "status": "ok"})

    def _delete(self, entity_type: str | None, name: str | None) -> Reply:
        with self._lock:
            doomed = [key for key in self._schemas if _matches(key, entity_type, name)]
            for key in doomed:
                del self._schemas[key]
        return json_reply(200, {"results": {"delete_count": len(doomed)}, "status": "ok"})

    def _upload(self, body: Any) -> Reply:
        problem = rules.batch_problem(body)
        if problem is not None:
            return _error(400, problem)
        with self._lock:
            deleted = 0
            if body.get("truncate", False):
                deleted = len(self._schemas)
                self._schemas.clear()
            for entry in body["entries"]:
                self._schemas[(entry["entityType"], entry["name"])] = entry["schemaJson"]
        added = len(body["entries"])
        return json_reply(200, {"results": {"added": added, "deleted": deleted}, "status": "ok"})

    def _one(self, method: str, key: Name, body: Any) -> Reply:
        if method == "GET":
            with self._lock:
                schema = self._schemas.get(key)
            if schema is None:
                return _error(404, f"no schema for {key[0]} {key[1]!r}")
            return json_reply(200, schema)
        if method == "DELETE":
            with self._lock:
                found = self._schemas.pop(key, None) is not None
            return json_reply(200, {"results": {"delete_count": int(found)}, "status": "ok"})
        if method == "POST":
            problem = rules.schema_problem(body, "body")
            if problem is not None:
                return _error(400, problem)
            with self._lock:
                self._schemas[key] = body
            return json_reply(200, {"status": "ok"})
        return _error(405, "method not allowed")


def _matches(key: Name, entity_type: str | None, name: str | None) -> bool:
    return (entity_type is None or key[0] == entity_type) and (name is None or key[1] == name)


def _entries(schemas: dict[Name, dict[str, Any]], keep: Any) -> list[dict[str, Any]]:
    return [
        {"entityType": entity_type, "name": name, "schemaJson": schema}
        for (entity_type, name), schema in sorted(schemas.items())
        if keep((entity_type, name))
    ]
