"""Pydantic's validation errors, told without the input: a location and an error type.

Pydantic's messages may quote the input: a discriminated union names the tag it was given
(``Input tag 'jane.doe@example.com' found using 'kind' ...``), and a host's validator may say
anything. The contract names fields and never values (``EventContractError``), and tracking
failures are logged with their message, so relay renders only the error's location and its
*type*, with a fixed text for the common types: nothing the caller passed reaches the text.
"""

from __future__ import annotations

from pydantic import ValidationError
from pydantic_core import ErrorDetails

#: Fixed texts for common error types (none quotes the input; most name no bound either).
_TEXTS = {
    "missing": "required, and missing",
    "extra_forbidden": "not a property of this event's schema",
    "string_type": "must be a string",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be a boolean",
    "bool_parsing": "must be a boolean",
    "list_type": "must be a list",
    "dict_type": "must be an object",
    "model_type": "must be an object of the schema's model",
    "enum": "must be one of the schema's values",
    "literal_error": "must be one of the schema's values",
    "union_tag_invalid": "names no variant of the union (unknown tag)",
    "union_tag_not_found": "lacks the field that picks the union's variant",
    "value_error": "refused by the schema's validator",
    "assertion_error": "refused by the schema's validator",
    "too_long": "has too many items",
    "too_short": "has too few items",
    "string_too_long": "is too long",
    "string_too_short": "is too short",
    "string_pattern_mismatch": "does not match the schema's pattern",
    "greater_than": "is below the schema's bound",
    "greater_than_equal": "is below the schema's bound",
    "less_than": "is above the schema's bound",
    "less_than_equal": "is above the schema's bound",
    "frozen_instance": "cannot be changed",
}


def error_text(error: ErrorDetails) -> str:
    """What is wrong, from the error's type only (``must be an integer (int_parsing)``)."""
    kind = error["type"]
    text = _TEXTS.get(kind, "failed validation")
    return f"{text} ({kind})"


def first_error(exc: ValidationError) -> tuple[tuple[str | int, ...], str]:
    """The first error's location and value-free text, ``(and N more)`` appended if any."""
    errors = exc.errors(include_url=False, include_input=False, include_context=False)
    first = errors[0]
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return tuple(first["loc"]), error_text(first) + more
