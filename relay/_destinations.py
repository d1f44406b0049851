"""Destinations from a file and the environment: ``RELAY_DESTINATIONS_FILE`` and its secrets.

The structured part of each destination (region or base URLs, project id, service-account
user name) is a TOML table ``[destinations.<name>]`` in the file ``RELAY_DESTINATIONS_FILE``
names; its secrets never are: they come from ``RELAY_DESTINATION_<NAME>_SERVICE_ACCOUNT_SECRET``,
``..._PROJECT_TOKEN`` and ``..._GDPR_TOKEN`` (``<NAME>`` upper-cased, ``-`` written ``_``), or
from a file whose path one of those names with ``_FILE`` appended holds (Docker and Kubernetes
secrets). A secret in the file, a key the file may not hold, a ``RELAY_DESTINATION_*`` variable
naming a destination the file does not define (a typo) and a destination with no usable
credentials are refused with one line naming the destination and the setting, never a value.

Read by ``RelaySettings`` when it is built (the entry point); nothing else reads it.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from typing import Any

from relay._errors import ConfigurationError
from relay._tables import DESTINATION_NAME_MAX_LENGTH, DESTINATION_NAME_PATTERN

FILE_VARIABLE = "RELAY_DESTINATIONS_FILE"
#: The environment variables of one destination start with this, then ``<NAME>_<SECRET>``.
SECRET_PREFIX = "RELAY_DESTINATION_"  # noqa: S105 - a variable name, not a secret
#: A secret variable with this appended holds the path of a file holding the secret.
FILE_SUFFIX = "_FILE"
#: What a destination's table may hold.
TABLE_KEYS = ("region", "api_url", "app_api_url", "project_id", "service_account_username")
#: What only the environment (or a secret file) may give.
SECRET_KEYS = ("service_account_secret", "project_token", "gdpr_token")
#: What each secret variable means (the settings reference lists them).
SECRET_DESCRIPTIONS = {
    "service_account_secret": "Secret of the destination's service account (HTTP Basic).",
    "project_token": "Project token: the alternative to a service account for /import; "
    "required for profile updates.",
    "gdpr_token": "OAuth token (Bearer) for the destination's GDPR API.",
}
NAME_PATTERN = re.compile(DESTINATION_NAME_PATTERN)
#: A secret file longer than this is not a secret (a path to the wrong file).
MAX_SECRET_FILE_BYTES = 64 * 1024


def env_name(name: str) -> str:
    """``name`` as it appears in a variable: upper-cased, ``-`` written ``_``."""
    return name.upper().replace("-", "_")


def secret_variable(name: str, key: str) -> str:
    """The variable giving destination ``name``'s secret ``key``."""
    return f"{SECRET_PREFIX}{env_name(name)}_{key.upper()}"


def setting_label(name: str, key: str) -> str:
    """Where a person sets destination ``name``'s ``key`` (a field of :data:`TABLE_KEYS` or
    :data:`SECRET_KEYS`), for messages: a secret's variable
    (``RELAY_DESTINATION_EU_PROJECT_TOKEN``), else the key of its table
    (``project_id of [destinations.eu]``): no variable sets those."""
    if key in SECRET_KEYS:
        return secret_variable(name, key)
    return f"{key} of [destinations.{name}]"


def check_name(name: object, *, where: str) -> str:
    """``name`` if it is a destination name, else a ``ConfigurationError`` (clipped)."""
    if not isinstance(name, str) or NAME_PATTERN.fullmatch(name) is None:
        shown = repr(name[:DESTINATION_NAME_MAX_LENGTH]) if isinstance(name, str) else "a name"
        raise ConfigurationError(
            f"{where}: destination {shown} is not a destination name: names match "
            f"{DESTINATION_NAME_PATTERN}"
        )
    return name


def read_file(path: str) -> dict[str, dict[str, Any]]:
    """The destinations' tables of the TOML file at ``path``, each checked, no secrets."""
    where = f"{FILE_VARIABLE} {path}"
    try:
        with open(path, "rb") as handle:
            document = tomllib.load(handle)
    except OSError as exc:
        raise ConfigurationError(
            f"{where}: cannot read it ({exc.strerror or type(exc).__name__})"
        ) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        # tomllib's messages name a line and column, never the text found there.
        raise ConfigurationError(f"{where}: not valid TOML ({exc})") from None
    unknown = sorted(set(document) - {"destinations"})
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown top-level key {unknown[0]!r}: the file holds "
            "[destinations.<name>] tables only"
        )
    tables = document.get("destinations", {})
    if not isinstance(tables, dict) or not tables:
        raise ConfigurationError(f"{where}: no [destinations.<name>] table")
    env_names: dict[str, str] = {}
    read: dict[str, dict[str, Any]] = {}
    for name, table in tables.items():
        check_name(name, where=where)
        if not isinstance(table, dict):
            raise ConfigurationError(f"{where}: destinations.{name} must be a table")
        twin = env_names.setdefault(env_name(name), name)
        if twin != name:
            raise ConfigurationError(
                f"{where}: destinations {twin!r} and {name!r} share the variables "
                f"{SECRET_PREFIX}{env_name(name)}_*: rename one"
            )
        read[name] = _table(name, table, where=where)
    return read


def _table(name: str, table: dict[str, Any], *, where: str) -> dict[str, Any]:
    """One destination's table: known keys only, no secret, values of the right type."""
    values: dict[str, Any] = {}
    for key, value in table.items():
        secret_key = key.removesuffix("_file") if isinstance(key, str) else key
        if secret_key in SECRET_KEYS:
            raise ConfigurationError(
                f"{where}: destination {name!r} sets {key!r}: secrets never go in the file; "
                f"set {secret_variable(name, secret_key)} (or {secret_variable(name, secret_key)}"
                f"{FILE_SUFFIX}, a secret file's path) instead"
            )
        if key not in TABLE_KEYS:
            raise ConfigurationError(
                f"{where}: destination {name!r} has unknown key {key!r}: a table holds "
                f"{', '.join(TABLE_KEYS)}"
            )
        if key == "project_id" and isinstance(value, int) and not isinstance(value, bool):
            value = str(value)  # noqa: PLW2901 - Mixpanel's ids are integers; TOML may say so
        if not isinstance(value, str):
            raise ConfigurationError(f"{where}: destination {name!r}: {key} must be a string")
        values[key] = value
    return values


def secrets_from(environ: Mapping[str, str], names: list[str]) -> dict[str, dict[str, str]]:
    """Each destination's secrets from ``environ``: ``{name: {key: secret}}``.

    Refuses a ``RELAY_DESTINATION_*`` variable that names no destination of ``names`` or no
    secret, a secret given both directly and as a file, and an empty or unreadable secret.
    """
    by_env = {env_name(name): name for name in names}
    found: dict[str, dict[str, str]] = {}
    given: dict[tuple[str, str], str] = {}
    for variable in sorted(environ):
        upper = variable.upper()
        if not upper.startswith(SECRET_PREFIX):
            continue
        rest = upper.removeprefix(SECRET_PREFIX)
        from_file = rest.endswith(FILE_SUFFIX)
        rest = rest.removesuffix(FILE_SUFFIX) if from_file else rest
        key = next((k for k in SECRET_KEYS if rest.endswith("_" + k.upper())), None)
        if key is None:
            raise ConfigurationError(
                f"{variable} is not a relay setting: the environment gives a destination only "
                f"{SECRET_PREFIX}<NAME>_SERVICE_ACCOUNT_SECRET, _PROJECT_TOKEN or _GDPR_TOKEN "
                f"(or the same with {FILE_SUFFIX}); the rest goes in {FILE_VARIABLE}"
            )
        target = rest.removesuffix("_" + key.upper())
        name = by_env.get(target)
        if name is None:
            defined = ", ".join(names) if names else f"none: {FILE_VARIABLE} is not set"
            raise ConfigurationError(
                f"{variable} names destination {target.lower()!r}, which {FILE_VARIABLE} does "
                f"not define (defined: {defined})"
            )
        twin = given.setdefault((name, key), variable)
        if twin != variable:
            raise ConfigurationError(
                f"destination {name!r}: {key} is given twice ({twin} and {variable}): keep one"
            )
        value = environ[variable]
        secret = _read_secret_file(value, variable=variable) if from_file else value
        if not secret.strip():
            raise ConfigurationError(f"destination {name!r}: {variable} is empty")
        found.setdefault(name, {})[key] = secret
    return found


def _read_secret_file(path: str, *, variable: str) -> str:
    """The secret in the file at ``path``: its text without the trailing line break."""
    if not path.strip():
        raise ConfigurationError(f"{variable} is empty: set it to a secret file's path")
    try:
        with open(path, "rb") as handle:
            raw = handle.read(MAX_SECRET_FILE_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(
            f"{variable}: cannot read {path} ({exc.strerror or type(exc).__name__})"
        ) from None
    if len(raw) > MAX_SECRET_FILE_BYTES:
        raise ConfigurationError(
            f"{variable}: {path} is over {MAX_SECRET_FILE_BYTES} bytes: not a secret file"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigurationError(f"{variable}: {path} is not UTF-8 text") from None
    # Files written by `echo` or an editor end in a line break that is no part of the secret.
    return text.removesuffix("\n").removesuffix("\r")


def credentials_problem(name: str, values: Mapping[str, Any]) -> str | None:
    """Why destination ``name``'s settings cannot authenticate to /import, or ``None``.

    A service account needs its user name, its secret and the project id together; a project
    token alone is enough for /import (not for the application APIs).
    """
    username = values.get("service_account_username")
    secret = values.get("service_account_secret")
    secret_var = secret_variable(name, "service_account_secret")
    if username and not secret:
        return f"service_account_username is set without its secret: set {secret_var}"
    if secret and not username:
        return f"{secret_var} is set without service_account_username in its table"
    if username and not values.get("project_id"):
        return "project_id is required with a service account"
    if not username and not values.get("project_token"):
        return (
            "no credentials: set service_account_username and project_id in its table and "
            f"{secret_var}, or {secret_variable(name, 'project_token')}"
        )
    return None
