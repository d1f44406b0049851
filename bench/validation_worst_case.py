"""The worst validation cost per event we can construct, new rules against old (issue 21, item 7).

Validation must cost what the event's size allows, no more: counts and sizes are checked (in C)
before any string is scanned, and every pattern of the PII guard is linear. The cases:

* ``issue: 1 list of 254 crafted strings``: ``"[" + 253 blanks``, the string that made the
  spelled-``@`` search quadratic; refused for size (8 KB per list property);
* ``issue: 20 such lists``: the issue's 15.9 s ``track()``; refused for size;
* ``max accepted: 240 strings``: 240 top-level string properties, each the slowest 254-character
  string the guard still accepts (picked at start-up from crafted candidates);
* ``max accepted: 1 MB of lists``: 120 list properties of 31 such strings each, every list just
  under 8 KB and the event just under 1 MB: the most scanning an accepted event can ask for;
  once more with the string the *old* guard is slowest on (the slowest differ), and with
  plain words (the floor: what walking 3,720 strings costs without any crafted shape);
* ``10,000 unknown properties``: refused by count (``prepare_event`` only).

``old`` is ``relay/_event/{pii,limits}.py`` at ``--old-rev`` (default ``fa9badf``) loaded from
``git show`` into modules of their own, measured on ``check_properties`` (the guard's whole
work); ``new`` is the working tree, measured on the same call and on ``prepare_event`` end to
end. Old and new alternate run by run; milliseconds per event, medians. The old rules on the
issue's 20 lists take seconds per run: ``--old-runs`` (default 1) bounds them.

    .venv/bin/python bench/validation_worst_case.py [--runs 7] [--old-runs 1] [--old-rev fa9badf]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import types
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _stats import median, print_header, print_table
from pydantic import create_model

import relay._event.limits as new_limits
from relay._errors import EventValidationError
from relay._event import pii as new_pii
from relay._event.properties import STRICT_MODEL_CONFIG, MixpanelSuperEventPropertiesSchema
from relay._event.registry import register_event
from relay._tracking import prepare_event

REPO = Path(__file__).resolve().parent.parent
EVENT = "svc.bench.worst_case"
FIELDS = 240
BASE = {
    "employee_id": "e-1",
    "organization_id": "o-1",
    "organization_name": "Acme",
    "role": None,
    "impersonation": False,
}
CRAFTED = "[" + " " * 253
#: Shapes that drive the guard's searches far: brackets, spelled separators, +digits, tel:.
PIECES = [" ", "\t", "@", ".", "[", "(", "<", "AT", "+", "-", "1", "a", ":", "x", "#", "_"]
PIECES += [" AT ", " DOT ", "[at]", "tel:", "+1", "1.", "a@", "a.", "@ ", "a @ ", "[ ", ": AT "]


def _git(*arguments: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *arguments], capture_output=True, text=True, check=True
    ).stdout


def old_modules(rev: str) -> types.ModuleType:
    """``relay/_event/limits.py`` at ``rev`` with the ``pii.py`` of ``rev`` under it."""
    pii = types.ModuleType("relay_pii_old")
    exec(compile(_git("show", f"{rev}:relay/_event/pii.py"), "old pii", "exec"), pii.__dict__)  # noqa: S102
    saved = sys.modules["relay._event.pii"]
    sys.modules["relay._event.pii"] = pii
    try:
        limits = types.ModuleType("relay_limits_old")
        source = _git("show", f"{rev}:relay/_event/limits.py")
        exec(compile(source, "old limits", "exec"), limits.__dict__)  # noqa: S102
    finally:
        sys.modules["relay._event.pii"] = saved
    return limits


def slowest_accepted(value_refusal: Callable[[str], str | None] = new_pii.value_refusal) -> str:
    """The 254-character string ``value_refusal`` (the new guard's by default) accepts and
    takes longest over."""
    best, worst = 0.0, "a" * 254
    for a in PIECES:
        for b in PIECES:
            for text in ((a + b) * 254)[:254], (a + b * 254)[:254], (a * 127 + b * 127)[:254]:
                # As JSON (the form the 8 KB list limit counts): a tab is two bytes there.
                too_long = len(json.dumps(text, ensure_ascii=False)) - 2 > 254
                if too_long or value_refusal(text) is not None:
                    continue
                if new_pii.value_refusal(text) is not None:
                    continue  # accepted by both, or it is not a case of "accepted"
                started = time.perf_counter()
                for _ in range(5):
                    value_refusal(text)
                took = time.perf_counter() - started
                if took > best:
                    best, worst = took, text
    return worst


def _unique(text: str, n: int) -> str:
    """``text`` made distinct (the guard caches verdicts) without changing its shape much."""
    tag = f"{n:x}"
    return text[: 254 - len(tag)] + tag


def _lists(worst: str) -> dict[str, Any]:
    return {f"p{i}": [_unique(worst, i * 100 + j) for j in range(31)] for i in range(120)}


def cases(worst: str, old_worst: str) -> dict[str, dict[str, Any]]:
    lists = _lists(worst)
    return {
        "issue: 1 list of 254 crafted strings": {"p0": [_unique(CRAFTED, j) for j in range(254)]},
        "issue: 20 such lists": {
            f"p{i}": [_unique(CRAFTED, i * 254 + j) for j in range(254)] for i in range(20)
        },
        "max accepted: 240 strings": {f"p{i}": _unique(worst, i) for i in range(FIELDS)},
        "max accepted: 1 MB of lists": lists,
        "max accepted: 1 MB of lists, old's slowest string": _lists(old_worst),
        "floor: 1 MB of lists of plain words": _lists(("lorem ipsum " * 22)[:254]),
    }


def timed(call: Callable[[], Any]) -> tuple[float, str]:
    """Milliseconds of one call, and whether it was accepted or refused."""
    new_limits._string_problem.cache_clear()
    started = time.perf_counter()
    try:
        call()
        outcome = "accepted"
    except EventValidationError:
        outcome = "refused"
    return (time.perf_counter() - started) * 1000, outcome


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--old-runs", type=int, default=1)
    parser.add_argument("--old-rev", default="fa9badf")
    args = parser.parse_args()
    fields: dict[str, Any] = {f"p{i}": (Any, None) for i in range(FIELDS)}
    schema = create_model(  # type: ignore[call-overload]
        "WorstCaseSchema", __base__=MixpanelSuperEventPropertiesSchema, **fields
    )
    schema.model_config = STRICT_MODEL_CONFIG
    register_event(EVENT, schema)
    old = old_modules(args.old_rev)
    worst = slowest_accepted()
    old_worst = slowest_accepted(old.value_refusal)
    print_header()
    print(f"old: relay/_event/{{pii,limits}}.py at {args.old_rev}; new: working tree")
    print(f"slowest accepted string: {worst[:40]!r}... (old's: {old_worst[:40]!r}...)")
    rows = []
    for name, props in cases(worst, old_worst).items():
        full = {**BASE, **props}
        olds, news, prepares = [], [], []
        outcomes = set()
        for run in range(args.runs):
            if run < args.old_runs:
                old.check_properties.__globals__["_string_problem"].cache_clear()
                olds.append(timed(lambda full=full: old.check_properties(EVENT, full))[0])
            took, outcome = timed(lambda full=full: new_limits.check_properties(EVENT, full))
            news.append(took)
            took, outcome = timed(
                lambda full=full: prepare_event(event=EVENT, distinct_id="u-1", properties=full)
            )
            prepares.append(took)
            outcomes.add(outcome)
        rows.append(
            [
                name,
                "/".join(sorted(outcomes)),
                f"{median(olds):.1f}" if olds else "-",
                f"{median(news):.1f}",
                f"{median(prepares):.1f}",
            ]
        )
    unknown = {**BASE, **{f"unknown_{i}": i for i in range(10_000)}}
    took = [
        timed(lambda: prepare_event(event=EVENT, distinct_id="u-1", properties=unknown))[0]
        for _ in range(args.runs)
    ]
    rows.append(["10,000 unknown properties", "refused", "-", "-", f"{median(took):.1f}"])
    print_table(
        ["case", "new outcome", "old guard ms", "new guard ms", "new prepare_event ms"], rows
    )


if __name__ == "__main__":
    sys.exit(main())
