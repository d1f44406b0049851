"""Escaping text relay did not write itself (stored rows, remote answers) for a terminal.

Such text is escaped before it reaches a terminal or a log line, so a newline cannot forge a
line and an escape sequence cannot colour, move or clear the terminal. Escaped characters are
written as Python would write them (``\\n``, ``\\x1b``, ``\\u202e``), so nothing is hidden.
"""

from __future__ import annotations

import re
import unicodedata

#: Categories that are never printed as themselves: control (C0, DEL, C1), format (bidi
#: overrides, zero-width), unassigned and private use, line and paragraph separators.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cn", "Co", "Cs", "Zl", "Zp"})
#: What JSON leaves raw but a terminal acts on: DEL, C1 controls (U+009B is a one-byte CSI),
#: bidi and line/paragraph separators. orjson already escapes U+0000 to U+001F.
_JSON_UNSAFE = re.compile("[\u007f-\u009f\u2028\u2029\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def _escape(char: str) -> str:
    code = ord(char)
    if char == "\n":
        return "\\n"
    if char == "\r":
        return "\\r"
    if char == "\t":
        return "\\t"
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def safe_text(text: object) -> str:
    """``text`` (as ``str``) with every control, format or separator character escaped.

    Backslashes are doubled first, so an escaped form can never be confused with the text
    ``\\n`` that was stored literally.
    """
    value = str(text)
    if value.isprintable() and "\\" not in value:
        return value
    return "".join(
        "\\\\" if c == "\\" else _escape(c) if unicodedata.category(c) in _UNSAFE_CATEGORIES else c
        for c in value
    )


def safe_json(data: bytes | str) -> str:
    """JSON text with the characters a terminal acts on (that JSON allows raw) as ``\\uXXXX``.

    The result parses to the same value.
    """
    text = data.decode() if isinstance(data, bytes) else data
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def clip(text: str, limit: int, *, marker: str = "…") -> str:
    """``text`` cut to at most ``limit`` characters, ending in ``marker`` when it was cut.

    Cut raw text, then escape it: an escape sequence is never cut in half.
    """
    if len(text) <= limit:
        return text
    return text[: max(0, limit - len(marker))] + marker
