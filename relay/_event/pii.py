"""The PII guard's rules: what personal data looks like in a string value and in a field name.

One owner for the rules that :mod:`relay._event.limits` applies to every string value and every
property name at track time, and :mod:`relay._event.properties` to every field name at registration.

**Values** are normalised before they are judged (:func:`normalise`): NFKC, then format
characters (Unicode category Cf: zero-width spaces and joiners, soft hyphens, bidi controls,
tag characters), stray combining marks and other invisible characters removed, look-alikes
of ``@``, ``.``, ``+`` and ``-`` mapped to ASCII, and every decimal digit mapped to ``0-9``.
An email is found anywhere in a value, also written with spaces around ``@`` and ``.`` or as
``jane [at] example [dot] com`` (brackets of any kind, any case; bare ``at``/``dot`` only in
capitals, since lowercase ``at`` is an ordinary word). A phone number is a value that is
phone-shaped as a whole (``+44 20 7946 0958``, ``(555) 123-4567``, ``tel:02079460958``), or a
``+``-prefixed international number or ``tel:``/``callto:`` URI inside text. Dates, IPv4
addresses, version strings, decimals and grouped amounts are not phone-shaped.

**Field names** are split into words (camelCase, PascalCase, snake_case, kebab-case, digits)
and every run of consecutive words is looked up, glued, in :data:`_FIELD_VOCABULARY`, so
``date_of_birth``, ``dateOfBirth`` and ``dateofbirth`` are one entry. ``*_name`` names a
person only after a person word (``first_name``, ``manager_name``) or alone (``name``): the
seed forbids personal names, not the names of things (``survey_name``, ``file_name``).
"""

from __future__ import annotations

import functools
import re
import unicodedata
from itertools import product


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


# --- normalisation --------------------------------------------------------------------------

#: Look-alikes NFKC leaves alone (or maps to another look-alike), mapped to the ASCII original.
_LOOKALIKES = {
    **dict.fromkeys("\uff20\ufe6b", "@"),  # fullwidth and small commercial at
    # ideographic and halfwidth ideographic full stops, middle dots, bullet operator, raised dot
    **dict.fromkeys("\u3002\uff61\ufe12\u00b7\u2219\u30fb\uff65\u2e33\u2022\u2027", "."),
    **dict.fromkeys("\u2795\u02d6", "+"),  # heavy plus sign, modifier letter plus
    # hyphen, non-breaking hyphen, figure/en/em dash, horizontal bar, minus sign, hyphen
    # bullet, modifier minus, heavy minus, two- and three-em dashes
    **dict.fromkeys(
        "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u2043\u02d7\u2796\u2e3a\u2e3b", "-"
    ),
}
#: Invisible characters outside category Cf: combining grapheme joiner, Hangul fillers,
#: Khmer inherent vowels, variation selectors, braille blank.
_INVISIBLE = frozenset(
    "\u034f\u115f\u1160\u3164\uffa0\u17b4\u17b5\u2800" + "".join(map(chr, range(0xFE00, 0xFE10)))
)
_KEPT_CONTROLS = frozenset("\t\n\r\x0b\x0c")
#: Format characters, other controls, and combining marks NFKC could not compose (a stray
#: mark inside a domain would otherwise split it).
_DROPPED_CATEGORIES = frozenset({"Cf", "Cc", "Mn"})


def _guard_character(ch: str) -> str:
    """What one character (after NFKC) reads as: itself, its ASCII original, or nothing."""
    if " " <= ch <= "~" or ch in _KEPT_CONTROLS:
        return ch
    mapped = _LOOKALIKES.get(ch)
    if mapped is not None:
        return mapped
    if ch in _INVISIBLE or unicodedata.category(ch) in _DROPPED_CATEGORIES:
        return ""
    digit = unicodedata.decimal(ch, None)
    return ch if digit is None else str(digit)


class _GuardTable(dict[int, str]):
    """A ``str.translate`` table filled on first sight of each code point.

    Translating through a dict runs at C speed once a character has been seen; a table of
    the whole of Unicode would take a second to build at import.
    """

    def __missing__(self, code: int) -> str:
        result = _guard_character(chr(code))
        if len(self) < _GUARD_TABLE_MAX:  # bounded: hostile input cannot grow it forever
            self[code] = result
        return result


_GUARD_TABLE_MAX = 65_536
_GUARD_TABLE = _GuardTable()


def normalise(value: str) -> str:
    """``value`` as the guard reads it: NFKC, invisibles removed, look-alikes mapped to ASCII.

    Printable ASCII is returned unchanged (the fast path of nearly every analytics value).
    The result is only ever judged, never stored: what is stored is what the caller passed.
    """
    if value.isascii() and value.isprintable():
        return value
    return unicodedata.normalize("NFKC", value).translate(_GUARD_TABLE)


# --- emails ---------------------------------------------------------------------------------

_EMAIL = re.compile(
    r"[\w!#$%&'*+/=?^`{|}~-]\s*@\s*(?:[\w-]+\s*\.\s*)+(?:[^\W\d_]{2,}|xn--[a-z0-9-]+)",
    re.IGNORECASE,
)
# Each starts with a literal (never with ``\s*``): a pattern that opens with whitespace is
# retried from every position of a run of blanks, quadratic in the run. The blanks around a
# spelled ``@`` or ``.`` are left in place; ``_EMAIL`` allows them.
_SPELLED_DOT = re.compile(r"[\[({<]\s*dot\s*[\])}>]", re.IGNORECASE)
_SPELLED_DOT_CAPS = re.compile(r"(?<=\s)DOT(?=\s)")
_SPELLED_AT = re.compile(r"[\[({<]\s*at\s*[\])}>]", re.IGNORECASE)
_SPELLED_AT_CAPS = re.compile(r"(?<=\s)AT(?=\s)")
_OPENING_BRACKETS = "[({<"
#: The ASCII blanks other than the space that ``\s`` matches (normalise() drops the others).
_OTHER_ASCII_BLANKS = "\t\n\r\x0b\x0c\x1c\x1d\x1e\x1f"


def _despelled(text: str, *, at: bool) -> str:
    """``text`` with spelled ``[at]``/``[dot]`` (any case) then ``AT``/``DOT`` (capitals,
    between blanks) written as ``@`` and ``.`` (only the dots when ``at`` is false).

    Each pattern runs only when its word is in the text (C-level ``in`` tests on a lowercase
    copy), and replaces by a literal: no Python call per match, which an event of strings
    dense with spelled words (``"[  AT [  AT ..."``) once paid about 40 times per string.
    """
    lowered = text.lower()
    has_at = at and "at" in lowered
    has_dot = "dot" in lowered
    if not (has_at or has_dot):
        return text
    if any(bracket in text for bracket in _OPENING_BRACKETS):
        if has_at:
            text = _SPELLED_AT.sub("@", text)
        if has_dot:
            text = _SPELLED_DOT.sub(".", text)
    spaces_only = text.isascii() and not any(blank in text for blank in _OTHER_ASCII_BLANKS)
    for word, mark, pattern, wanted in (
        ("AT", "@", _SPELLED_AT_CAPS, has_at),
        ("DOT", ".", _SPELLED_DOT_CAPS, has_dot),
    ):
        if not (wanted and word in text):
            continue
        if spaces_only:
            # The same replacement at C speed: twice, since " AT AT " shares a blank and
            # the first pass takes every other one.
            spelled, written = f" {word} ", f" {mark} "
            text = text.replace(spelled, written).replace(spelled, written)
        else:
            text = pattern.sub(mark, text)
    return text


#: Asset names such as ``icon@2x.png`` end in a file extension, never a top-level domain.
_FILE_EXTENSIONS = frozenset(
    _words("png jpg jpeg gif svg webp bmp ico tif tiff heic pdf csv txt json js css html htm")
)


def looks_like_email(value: str) -> bool:
    """Whether a string contains an email address, after normalisation and de-obfuscation."""
    return _has_email(normalise(value))


def _has_email(text: str) -> bool:
    if "@" not in text:
        if not ("[" in text or "(" in text or "{" in text or "<" in text or "AT" in text):
            return False
        # An address needs a dot after its @: without "." or a spelled dot anywhere, no
        # spelling can make one (decided before any pattern runs).
        if "." not in text and "dot" not in text.lower():
            return False
        text = _despelled(text, at=True)
        if "@" not in text:
            return False
    elif "[" in text or "(" in text or "{" in text or "<" in text or "DOT" in text:
        text = _despelled(text, at=False)
    if "." not in text:  # every address has a dot after the @: no search without one
        return False
    return any(
        match.group().rsplit(".", 1)[-1].strip().lower() not in _FILE_EXTENSIONS
        for match in _EMAIL.finditer(text)
    )


# --- phone numbers --------------------------------------------------------------------------

_URI_PREFIX = re.compile(r"(?:tel|callto|sms|phone|fax)\s*:\s*", re.IGNORECASE)
_URI_PARAMETERS = re.compile(r";.*$")  # RFC 3966: tel:+1-201-555-0123;ext=1234
_EXTENSION = re.compile(r"\s*(?:ext\.?|x|#)\s*\d{1,6}$", re.IGNORECASE)
_PHONE_CHARS = re.compile(r"\+?[\d\s().-]+")
_SEPARATED = re.compile(r"\d[\s().-]+\d")
_MIN_PHONE_DIGITS = 7
_ASCII_DIGITS = "0123456789"
_WITHOUT_DIGITS = str.maketrans("", "", _ASCII_DIGITS)
_NUMBER_TAIL = r"\s?\d(?:[\s().-]{0,2}\d){6,14}(?!\w|\.\d)"
#: A ``+`` number inside text (the ``+`` not after a word character or another ``+``). It
#: opens with the literal ``+`` (the look-behind comes after it), so the search skips from
#: ``+`` to ``+`` at C speed instead of trying every position.
_EMBEDDED_PLUS = re.compile(r"\+(?<![\w+]\+)" + _NUMBER_TAIL)
#: A ``tel:``/``callto:``/``sms:`` URI inside text; searched only when one of the three words
#: is followed by ``:`` somewhere (a C-level test on a lowercase copy).
_EMBEDDED_URI = re.compile(r"\b(?:tel|callto|sms):\s*\+?" + _NUMBER_TAIL, re.IGNORECASE)
_URI_SCHEMES = ("tel:", "callto:", "sms:")
#: ASCII text as ``_EMBEDDED_PLUS`` reads it: digits as ``0``, its separators dropped, ``+``
#: kept, anything else a bar. A ``+`` number leaves ``+0000000`` behind: without it (one
#: C-level translation and search) the pattern cannot match, whatever the text holds.
_PLUS_SKELETON = str.maketrans(
    {
        **{chr(code): "|" for code in range(128)},
        **dict.fromkeys(_ASCII_DIGITS, "0"),
        **dict.fromkeys(" \t\n\r\x0b\x0c\x1c\x1d\x1e\x1f().-"),
        "+": "+",
    }
)
_PLUS_NUMBER_SKELETON = "+" + "0" * _MIN_PHONE_DIGITS
#: Digit strings that are not phone numbers, though made of digits and separators.
_NOT_PHONES = (
    re.compile(r"-?\d+(?:\.\d+)?"),  # integers and decimals ("+" plus digits is E.164)
    re.compile(r"[+-]?\d+\.\d+"),  # signed decimals
    re.compile(r"\d{4}[-./]\d{1,2}[-./]\d{1,2}(?:[\sT].*)?"),  # ISO and Y/M/D dates (+ time)
    re.compile(r"(?:[0-2]?\d|3[01])[-./](?:[0-2]?\d|3[01])[-./](?:\d{4}|\d{2})"),  # D/M/Y
    re.compile(r"\d{4}\s*-\s*\d{2,4}"),  # year ranges: "2024-2025", "2024 - 25"
    re.compile(r"\d{4}-\d{2}-\d{2}\s*-\s*\d{4}-\d{2}-\d{2}"),  # date ranges
    re.compile(r"\d{1,3}(?:\.\d{1,3}){3}"),  # IPv4 addresses
    re.compile(r"\d{1,3}(?:\.\d{3})+"),  # dot-grouped amounts: "12.345.678"
    re.compile(r"[+-]?\d{1,3}(?:[ ]\d{3})+[.,]\d+"),  # space-grouped amounts with decimals
    re.compile(r"(?:[+-]?\d+\.\d+\s+)+[+-]?\d+\.\d+"),  # decimals side by side (coordinates)
)
_DOTTED = re.compile(r"\d+(?:\.\d+)+")
_MAX_PHONE_DIGITS = 15
_MIN_DOTTED_PHONE_DIGITS = 10


def _digit_count(text: str) -> int:
    """How many ASCII digits ``text`` holds: one C-level translation for ASCII text."""
    if text.isascii():
        return len(text) - len(text.translate(_WITHOUT_DIGITS))
    return sum(map(text.count, _ASCII_DIGITS))


def _phone_shaped(text: str, *, uri: bool) -> bool:
    digits = _digit_count(text) if text.isascii() else sum(ch.isdigit() for ch in text)
    if not _MIN_PHONE_DIGITS <= digits <= _MAX_PHONE_DIGITS:
        return False
    if uri:  # tel:02079460958 is a phone number even without separators
        return True
    if any(shape.fullmatch(text) for shape in _NOT_PHONES):
        return False
    if _DOTTED.fullmatch(text):
        # Dots alone separate a full national number in groups of 2-4 ("415.555.0123",
        # "01.23.45.67.89"); shorter numbers, or a group of one or of five and more, are
        # versions and build numbers ("10.12.1234", "10.0.19041.1052").
        return digits >= _MIN_DOTTED_PHONE_DIGITS and all(
            2 <= len(group) <= 4 for group in text.split(".")
        )
    return text.startswith("+") or _SEPARATED.search(text) is not None


def looks_like_phone(value: str) -> bool:
    """Whether a string is a phone number, after normalisation.

    The whole value is phone-shaped (``+44 20 7946 0958``, ``(555) 123-4567``, ``tel:...``), or
    it contains an international (``+``) number or a ``tel:`` URI. Plain digit strings,
    decimals, dates, year ranges, IPv4 addresses, version strings and grouped amounts are not
    phone-shaped: ids, counts and dates are far more common in analytics than phone numbers.
    """
    return _has_phone(normalise(value))


def _has_phone(text: str) -> bool:
    # Cheapest tests first: nearly every value is an id, a word or a number, and is decided
    # by one C-level scan; the regular expressions run only on what could still be a phone.
    text = text.strip()
    # Every phone shape below has at least seven digits: counting them rules most text out
    # before any search runs (normalise() wrote every decimal digit as 0-9).
    if _digit_count(text) < _MIN_PHONE_DIGITS:
        return False
    if _PHONE_CHARS.fullmatch(text):
        return _phone_shaped(text, uri=False)
    if ":" in text and (uri := _URI_PREFIX.match(text)) is not None:
        number = _EXTENSION.sub("", _URI_PARAMETERS.sub("", text[uri.end() :]).strip())
        if _PHONE_CHARS.fullmatch(number):
            return _phone_shaped(number, uri=True)
    if text[-1:].isdigit() and ("x" in text or "X" in text or "#" in text):
        number = _EXTENSION.sub("", text)
        if number != text and _PHONE_CHARS.fullmatch(number):
            return _phone_shaped(number, uri=False)
    return _has_embedded_phone(text)


def _has_embedded_phone(text: str) -> bool:
    """Whether ``text`` holds a ``+`` number or a ``tel:`` URI (each pattern only where the
    C-level tests leave it a chance)."""
    if (
        "+" in text
        and (not text.isascii() or _PLUS_NUMBER_SKELETON in text.translate(_PLUS_SKELETON))
        and any(
            _phone_shaped(match.group().strip(), uri=False)
            for match in _EMBEDDED_PLUS.finditer(text)
        )
    ):
        return True
    if ":" not in text:
        return False
    lowered = text.lower()
    if not any(scheme in lowered for scheme in _URI_SCHEMES):
        return False
    return any(
        _phone_shaped(match.group().split(":")[-1].strip(), uri=True)
        for match in _EMBEDDED_URI.finditer(text)
    )


def value_refusal(value: str) -> str | None:
    """What personal data a string value looks like (``"an email address"``), or ``None``."""
    text = normalise(value)
    if _has_email(text):
        return "an email address"
    if _has_phone(text):
        return "a phone number"
    return None


# --- field names ----------------------------------------------------------------------------


#: Words for a person (or a person's role): ``<word>_name`` is that person's name.
_PERSON_WORDS = _words(
    """first last given family full display middle maiden user nick real legal preferred birth
    screen fore sur employee manager person contact customer client member owner author
    recipient sender candidate applicant patient student teacher parent guardian spouse
    partner child father mother reviewer approver assignee reporter requester creator
    invitee inviter attendee participant respondent admin agent buyer seller driver
    passenger guest holder cardholder account_holder emergency_contact"""
)
_CATEGORIES = {
    "an email address": "email emails mail mails emailaddress emailaddr mailaddress",
    "a phone number": (
        "phone phones phonenumber phoneno telephone tel telno telnumber fax faxnumber msisdn "
        "cellphone cellnumber cellno mobilephone mobilenumber mobileno"
    ),
    "a postal address": (
        "address addresses addr street streetaddress streetname addressline postcode postcodes "
        "postal postalcode zip zipcode housenumber homeaddress"
    ),
    "a birth date": "dob birth birthday birthdate dateofbirth",
    "a national or passport id": (
        "ssn socialsecurity socialsecuritynumber socialsecurityno nationalid nationalidnumber "
        "nationalidentitynumber nino nationalinsurance nationalinsurancenumber passport "
        "passportnumber passportno taxid taxidnumber taxpayerid driverslicense driverslicence "
        "driverlicense drivinglicence drivinglicense idcardnumber"
    ),
    "a bank or card number": (
        "iban bic swiftcode swiftbic accountnumber accountno bankaccount bankaccountnumber "
        "sortcode routingnumber creditcard creditcardnumber debitcard cardnumber cardno "
        "cardholder cvv cvc cvv2 cardsecuritycode"
    ),
    "an IP address": "ip ipaddress ipaddr ipv4 ipv6 ipv4address ipv6address",
    "a device's hardware (MAC) address": "macaddress macaddr",
    "a person's name": " ".join(
        f"{person.replace('_', '')}{name}"
        for person, name in product(_PERSON_WORDS, ("name", "names"))
    )
    + " namefirst namelast namegiven namefamily namefull surname surnames forename forenames",
}
#: Glued word runs that name personal data, wherever they appear in a field name.
_FIELD_VOCABULARY = {
    entry: category for category, entries in _CATEGORIES.items() for entry in entries.split()
}
#: Words that name personal data only as the whole field name: ``card_id``, ``is_mobile``,
#: ``pan_offset`` and ``cell_count`` are common analytics fields that are not.
_WHOLE_NAME_ONLY = {
    "name": "a person's name",
    "names": "a person's name",
    "pan": "a bank or card number",
    "card": "a bank or card number",
    "swift": "a bank or card number",
    "mobile": "a phone number",
    "cell": "a phone number",
}
#: ``<word>_address`` that is not a person's: machines, memory, smart contracts, web pages.
_NON_PERSONAL_ADDRESS = frozenset(
    _words("server host memory bind listen proxy gateway contract web broker node")
)
#: ``zip`` as an archive format, not a postcode.
_NON_POSTAL_ZIP = frozenset({"file", "files", "archive", "archives", "format", "compression"})
#: Unambiguous entries also found inside a longer glued word (``useremailaddress``).
_GLUED = tuple(
    (entry, _FIELD_VOCABULARY[entry])
    for entry in _words(
        """email phonenumber mobilenumber telephone cellphone msisdn firstname lastname surname
        givenname familyname fullname displayname middlename maidenname username nickname
        birthdate birthday dateofbirth passport socialsecurity creditcard cardnumber ipaddress
        macaddress postcode zipcode postalcode streetaddress"""
    )
)
_WORD = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
_NOT_WORD = re.compile(r"[^A-Za-z0-9]+")
_MAX_RUN = 5  # no entry spans more words ("IPv4Address" splits into four: i, pv, 4, address)
#: Personal-looking fields the business approved for analytics (the seed's one exception).
PII_ALLOWED_FIELDS = frozenset({"organization_name"})


def field_name_words(name: str) -> list[str]:
    """The lowercase words of a field name: ``userEmail2`` -> ``["user", "email", "2"]``."""
    folded = unicodedata.normalize("NFKD", normalise(name))
    ascii_only = "".join(ch for ch in folded if not unicodedata.combining(ch))
    return [word.lower() for chunk in _NOT_WORD.split(ascii_only) for word in _WORD.findall(chunk)]


def _excused(entry: str, words: list[str], start: int, end: int) -> bool:
    before = words[start - 1] if start > 0 else None
    after = words[end] if end < len(words) else None
    if entry in ("address", "addresses", "addr"):
        return before in _NON_PERSONAL_ADDRESS
    if entry == "zip":
        return after in _NON_POSTAL_ZIP
    return False


@functools.lru_cache(maxsize=4096)
def field_name_refusal(name: str) -> str | None:
    """What personal data a field or property name names (``"a phone number"``), or ``None``.

    The longest matching run of words decides, so ``ip_address`` is an IP address,
    ``email_address`` an email address and ``home_address`` a postal address. Cached: the
    same few property names are checked on every event.
    """
    if name.lstrip("$") in PII_ALLOWED_FIELDS:
        return None
    words = field_name_words(name)
    if not words:
        return None
    whole = _WHOLE_NAME_ONLY.get("".join(words))
    if whole is not None:
        return whole
    for length in range(min(_MAX_RUN, len(words)), 0, -1):
        for start in range(len(words) - length + 1):
            entry = "".join(words[start : start + length])
            category = _FIELD_VOCABULARY.get(entry)
            if category is not None and not _excused(entry, words, start, start + length):
                return category
    for word in words:
        for entry, category in _GLUED:
            if entry in word:
                return category
    return None


@functools.lru_cache(maxsize=4096)
def name_refusal(name: str) -> str | None:
    """What personal data a property name is or names, or ``None``.

    The name itself may be an email or a phone number (a dict keyed by address), or it may
    name personal data (``userEmail``, ``date_of_birth``: :func:`field_name_refusal`).
    Cached, like :func:`field_name_refusal`.
    """
    return value_refusal(name) or field_name_refusal(name)
