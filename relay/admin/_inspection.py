"""One event in full, and events in bulk, exactly as the relay would send them to ``/import``.

Both go through :func:`relay._mixpanel.encoding.encode_event`, the relay's own encoder, over
the stored properties text: what ``inspect`` shows and what ``export`` writes are byte for
byte the event objects of an ``/import`` request body.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import IO, Any

import orjson
from sqlalchemy.engine import Engine

from relay._errors import EventValidationError, FilterError
from relay._mixpanel.encoding import encode_event
from relay._store import selection, transaction
from relay._store.selection import EventFilter, StoredRow
from relay.admin._filters import MAX_ID, check_filter

#: Rows read per query by :func:`export_events`.
EXPORT_PAGE_SIZE = 1000


@dataclass(frozen=True, slots=True)
class EventDetail:
    """A row in full, its stored properties, and the ``/import`` JSON the relay would send.

    ``import_json`` is ``None`` when the row cannot be encoded (then the relay would refuse it
    too), and ``encode_error`` says why.
    """

    row: StoredRow
    properties: Any
    import_json: str | None
    encode_error: str | None

    def to_json(self) -> dict[str, Any]:
        """The row's values, its ``properties``, and the ``/import`` event twice: parsed
        (``import_event``) and as the exact text the relay sends (``import_json``)."""
        return {
            **self.row.to_json(),
            "properties": self.properties,
            "import_event": None if self.import_json is None else orjson.loads(self.import_json),
            "import_json": self.import_json,
            "encode_error": self.encode_error,
        }


def _key(key: str) -> dict[str, Any]:
    """``id:N`` and ``insert_id:X`` name one side; a bare key may be either."""
    kind, sep, value = key.partition(":")
    if sep and kind == "id":
        if not _is_id(value):
            raise FilterError(
                f"malformed outbox id {value!r}: expected digits, at most {MAX_ID}", field="key"
            )
        return {"row_id": int(value)}
    if sep and kind == "insert_id":
        return {"insert_id": value}
    # A bare number past 63 bits cannot be an id (the driver would fail on it): $insert_id only.
    return {"row_id": int(key) if _is_id(key) else None, "insert_id": key}


def _is_id(text: str) -> bool:
    return text.isascii() and text.isdigit() and len(text) <= 19 and int(text) <= MAX_ID


def inspect_event(engine: Engine, key: str) -> EventDetail:
    """The event whose outbox id or ``$insert_id`` is ``key``.

    ``id:123`` or ``insert_id:abc`` pick one side when a numeric ``$insert_id`` could also be an
    id. Raises :class:`FilterError` when nothing matches or a bare key matches two rows.
    """
    with transaction(engine) as conn:
        found = selection.find(conn, **_key(key))
    if not found:
        raise FilterError(f"no outbox event with id or $insert_id {key!r}", field="key")
    if len(found) > 1:
        raise FilterError(
            f"{key!r} is the id of event {found[0].event.id} and the $insert_id of event "
            f"{found[1].event.id}: write id:{key} or insert_id:{key}",
            field="key",
        )
    row = found[0]
    encoded: str | None = None
    if row.event.event.startswith("$"):
        # A profile update (kind user/group: its event column holds the operation, which
        # no event name can be): not an /import event.
        error: str | None = (
            f"a profile update ({row.event.event}): sent to /engage or /groups as stored, "
            "with $token and $ip 0 added"
        )
    else:
        try:
            encoded = encode_event(row.event).decode()
            error = None
        except (EventValidationError, ValueError, TypeError) as exc:
            encoded, error = None, str(exc)
    try:
        properties = orjson.loads(row.event.properties_json)
    except orjson.JSONDecodeError:
        properties = row.event.properties_json
    return EventDetail(row=row, properties=properties, import_json=encoded, encode_error=error)


def export_events(
    engine: Engine,
    f: EventFilter,
    out: IO[bytes],
    *,
    allow_all: bool = False,
    page_size: int = EXPORT_PAGE_SIZE,
) -> int:
    """Write the rows ``f`` selects to ``out`` as ``/import``-shaped JSON Lines; returns the count.

    Streams: ``page_size`` rows per query, by keyset (``id > last``), one short read
    transaction per page, so memory does not grow with the selection and no transaction stays
    open while ``out`` is written. Raises :class:`FilterError` for a bad or (without
    ``allow_all``) empty filter, and :class:`relay._errors.EventValidationError` for a row whose
    stored properties are not a JSON object (the relay could not send it either).
    """
    if page_size < 1:
        raise ValueError("page_size must be at least 1")
    with transaction(engine) as conn:
        check_filter(conn, f, allow_all=allow_all)
    written = 0
    after = 0
    while True:
        with transaction(engine) as conn:
            page = selection.events_page(conn, f, after_id=after, limit=page_size)
        if not page:
            break
        out.write(b"".join(encode_event(event) + b"\n" for event in page))
        written += len(page)
        after = page[-1].id
        if len(page) < page_size:
            break
    return written
