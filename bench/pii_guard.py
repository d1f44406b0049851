"""What the PII guard costs on ``track()``'s path, old rules against new, in one process.

The old checks are the ``relay/_event/limits.py`` of a git revision (default: where this branch left
``main``), loaded from ``git show`` into a module of their own; the new ones are the working
tree's. For each event shape, two measurements, old and new alternated run by run so both see
the same machine:

* ``guard``: ``check_distinct_id`` and ``check_properties`` on the dumped properties, which is
  all of the guard's work per event (keys and values, normalisation, JSON encoding);
* ``prepare``: ``prepare_event`` end to end (registry lookup, pydantic validation, dump, time
  and id checks, guard) with ``relay._tracking.prepare``'s two
  guard functions swapped for the old ones.

Shapes: the catalog's ``svc.surveys.survey_delivered`` as a helper sends it (ASCII); the same
with non-ASCII text (the slow path of normalisation); and a free-form object of 20 keys, whose
keys the old guard did not check. Prints microseconds per event, median over runs.

    .venv/bin/python bench/pii_guard.py [--events 5000] [--runs 7] [--old-rev REV]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
import types
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import _survey_event  # noqa: F401 - registers the benchmarked event
from _loaders import survey_properties
from _stats import machine, median, print_table

import relay._event.limits
from relay._tracking import prepare as prepare_module
from relay._tracking import prepare_event

EVENT = "svc.surveys.survey_delivered"
REPO = Path(__file__).resolve().parent.parent


def _git(*arguments: str) -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), *arguments], capture_output=True, text=True, check=True
    ).stdout.strip()


def old_limits(rev: str) -> types.ModuleType:
    """``relay/_event/limits.py`` as it was at ``rev``, as a module of its own."""
    source = _git("show", f"{rev}:relay/_event/limits.py")
    module = types.ModuleType("relay_limits_old")
    exec(compile(source, f"{rev}:relay/_event/limits.py", "exec"), module.__dict__)  # noqa: S102
    return module


def free_form(n: int) -> dict[str, Any]:
    """A dumped event with a 20-key object of answers (keys the old guard never checked)."""
    answers = {f"question_{i}_score": (n + i) % 5 for i in range(10)}
    answers |= {f"question_{i}_label": f"option-{(n + i) % 7}" for i in range(10, 20)}
    return {**survey_properties(n), "answers": answers}


def time_guard(limits: Any, events: list[Mapping[str, Any]]) -> float:
    """Microseconds per event of the guard's two calls."""
    started = time.perf_counter_ns()
    for props in events:
        limits.check_distinct_id(EVENT, props["employee_id"])
        limits.check_properties(EVENT, props)
    return (time.perf_counter_ns() - started) / len(events) / 1000


def time_prepare(limits: Any, events: list[Mapping[str, Any]]) -> float:
    """Microseconds per event of ``prepare_event`` with ``limits``' guard functions."""
    saved = prepare_module.check_properties, prepare_module.check_distinct_id
    prepare_module.check_properties = limits.check_properties
    prepare_module.check_distinct_id = limits.check_distinct_id
    try:
        started = time.perf_counter_ns()
        for props in events:
            prepare_event(event=EVENT, distinct_id=props["employee_id"], properties=props)
        return (time.perf_counter_ns() - started) / len(events) / 1000
    finally:
        prepare_module.check_properties, prepare_module.check_distinct_id = saved


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=5000, help="events per run")
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument(
        "--old-rev",
        default=None,
        help="git revision of the old checks (default: the merge base of HEAD and main)",
    )
    args = parser.parse_args()
    rev = _git("rev-parse", "--short", args.old_rev or _git("merge-base", "HEAD", "main"))
    old, new = old_limits(rev), relay._event.limits
    shapes: dict[str, tuple[list[dict[str, Any]], bool]] = {
        "survey_delivered (ASCII)": ([survey_properties(n) for n in range(args.events)], True),
        "survey_delivered (non-ASCII text)": (
            [
                survey_properties(
                    n, organization_name="Société Générale — Z\u00fcrich \uff33\uff21"
                )
                for n in range(args.events)
            ],
            True,
        ),
        "free-form object, 20 keys": ([free_form(n) for n in range(args.events)], False),
    }
    print(f"machine: {machine()}")
    print(
        f"old: relay/_event/limits.py at {rev}; new: working tree; "
        f"{args.events} events x {args.runs}"
    )
    rows = []
    for name, (events, via_prepare) in shapes.items():
        measures: list[tuple[str, Callable[[Any, list[Mapping[str, Any]]], float]]] = [
            ("guard", time_guard)
        ]
        if via_prepare:
            measures.append(("prepare_event", time_prepare))
        for label, measure in measures:
            measure(old, events[:200])  # warm caches and the lru_cache of field names
            measure(new, events[:200])
            olds, news = [], []
            for _ in range(args.runs):
                olds.append(measure(old, events))
                news.append(measure(new, events))
            o, n = median(olds), median(news)
            rows.append([name, label, f"{o:.1f}", f"{n:.1f}", f"{n - o:+.1f}", f"{n / o:.2f}x"])
    print_table(["event", "measured", "old µs", "new µs", "added µs", "ratio"], rows)


if __name__ == "__main__":
    sys.exit(main())
