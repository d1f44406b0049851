"""``relay events push`` per destination: the data dictionary to each destination's project.

Data residency keeps one Mixpanel project per region, and each project has its own Lexicon:
the registry is pushed to every destination acted on (see
:func:`relay._mixpanel.destinations.acted_on`), or to the one named, each with its own client
built from ``RelaySettings.for_destination(name)`` (its region's app API host, service account
and project id) and its own pacing (Lexicon's limits are per project). One destination's
problem (no service account, refused credentials, Lexicon down) is that destination's
:class:`DestinationPush`; the others are still pushed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from relay import _exit
from relay._config import RelaySettings
from relay._errors import ConfigurationError, RelayError
from relay._mixpanel.destinations import acted_on, setting_name
from relay._mixpanel.lexicon import LexiconClient
from relay.plan.lexicon import LexiconDiff, diff

#: :attr:`DestinationPush.outcome` values.
IN_SYNC = "in sync"
UPLOADED = "uploaded"
DIFFERS = "differs"
NO_SERVICE_ACCOUNT = "no service account"
MISCONFIGURED = "misconfigured"
REFUSED = "refused"
FAILED = "failed"
SKIPPED = "skipped"


@dataclass(frozen=True, slots=True)
class DestinationPush:
    """What a push did at one destination (``diff`` is ``None`` when Lexicon was not read)."""

    destination: str
    outcome: str
    project_id: str | None = None
    diff: LexiconDiff | None = None
    uploaded: int = 0
    truncated: bool = False
    deleted: int = 0
    problem: str | None = None

    @property
    def exit_code(self) -> int:
        """0 in sync, uploaded or skipped; 1 differences left or Lexicon failing; 3 the
        destination's configuration (no service account, refused credentials)."""
        if self.outcome in (NO_SERVICE_ACCOUNT, MISCONFIGURED, REFUSED):
            return _exit.CONFIGURATION
        if self.outcome in (DIFFERS, FAILED):
            return _exit.FAILURE
        return _exit.OK

    def as_dict(self) -> dict[str, Any]:
        """The JSON form ``--json`` prints for one destination."""
        found = self.diff.as_dict() if self.diff is not None else {}
        return {
            "destination": self.destination,
            "outcome": self.outcome,
            "project_id": self.project_id,
            **found,
            "uploaded": self.uploaded,
            "truncated": self.truncated,
            "deleted": self.deleted,
            "problem": self.problem,
        }


def targets(settings: RelaySettings, only: str | None) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """``(destinations to push to, destinations skipped)``: ``only`` alone when given (a name
    not configured is ``ConfigurationError``), else every destination acted on."""
    if only is not None:
        settings.for_destination(only)  # refuses a name that is not configured
        return (only,), ()
    return acted_on(settings)


def push_destination(
    settings: RelaySettings,
    destination: str,
    entries: Mapping[str, dict[str, Any]],
    *,
    yes: bool,
    truncate: bool,
) -> DestinationPush:
    """Diff the registry's ``entries`` with ``destination``'s Lexicon and, with ``yes``,
    upload what differs (everything, replacing the dictionary, with ``truncate``)."""
    mine = settings.for_destination(destination)
    missing = _missing_service_account(mine, destination)
    if missing is not None:
        outcome, problem = missing
        return DestinationPush(destination, outcome, problem=problem)
    try:
        with LexiconClient(mine, destination=destination) as client:
            held = client.event_schemas()
            result = diff(entries, held)
            uploads = list(entries.values()) if truncate else result.uploads()
            act = yes and not result.in_sync and bool(uploads or truncate)
            counts = client.upload(uploads, truncate=truncate, held=len(held)) if act else {}
    except ConfigurationError as exc:
        return DestinationPush(destination, REFUSED, project_id=client_id(mine), problem=str(exc))
    except RelayError as exc:
        return DestinationPush(destination, FAILED, project_id=client_id(mine), problem=str(exc))
    if result.in_sync:
        outcome = IN_SYNC
    elif act:
        outcome = UPLOADED
    else:
        outcome = DIFFERS
    return DestinationPush(
        destination,
        outcome,
        project_id=client.project_id,
        diff=result,
        uploaded=len(uploads) if act else 0,
        truncated=act and truncate,
        deleted=counts.get("deleted", 0),
    )


def client_id(settings: RelaySettings) -> str | None:
    """The destination's project id as configured (for reports), ``None`` without one."""
    return settings.mixpanel_project_id


def _missing_service_account(settings: RelaySettings, destination: str) -> tuple[str, str] | None:
    """``(outcome, problem)`` naming the destination's unset service-account settings (or
    its project id that is not an integer), ``None`` when Lexicon can be called."""
    try:
        settings.require_service_account()
    except ConfigurationError:
        secret = settings.mixpanel_service_account_secret
        if (
            settings.mixpanel_project_id
            and settings.mixpanel_service_account_username
            and secret is not None
            and secret.get_secret_value()
        ):
            # All given, but the project id is not Lexicon's integer id.
            return MISCONFIGURED, (
                f"{setting_name(destination, 'PROJECT_ID')} must be an integer project id"
            )
        username, secret_name, project = (
            setting_name(destination, field)
            for field in ("SERVICE_ACCOUNT_USERNAME", "SERVICE_ACCOUNT_SECRET", "PROJECT_ID")
        )
        return NO_SERVICE_ACCOUNT, (
            f"set {username}, {secret_name} and {project} (Lexicon takes a service account only)"
        )
    return None
