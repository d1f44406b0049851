"""``relay.contrib.django.track()`` against a plain Django ORM insert, one per transaction.

Two transactions, alternated one for one so that both see the same machine, each an
``atomic()`` block on Django's own connection:

* ``track``: one ``relay.contrib.django.track()`` call (validation against the registered
  schema, then the outbox INSERT (no NOTIFY) on Django's connection, through
  the borrowed SQLAlchemy dialect; one round trip on psycopg 3), commit;
* ``orm``: one ``Model.objects.create()`` of a row holding the same properties in a
  ``JSONField`` (what a team would write by hand without relay), commit.

Per database (PostgreSQL through psycopg 3, and a SQLite file), the median per-transaction
time of each over ``--transactions`` is printed per run, with the ratio; the final table
shows the medians over runs. The target is a ratio of at most 1.3.

    .venv/bin/python bench/django_track.py [--transactions 2000] [--runs 3] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import time
from typing import Any

import django
import sqlalchemy as sa
from _db import DEFAULT_ADMIN_URL, scratch_postgres, scratch_sqlite
from _loaders import survey_properties
from _stats import median, print_header, print_table
from django.conf import settings

TARGET_RATIO = 1.3
EVENT = "svc.surveys.survey_delivered"


def _django_database(url: str) -> dict[str, Any]:
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": parsed.database}
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parsed.database,
        "USER": parsed.username or "",
        "PASSWORD": parsed.password or "",
        "HOST": parsed.host or "",
        "PORT": str(parsed.port or ""),
    }


def one_run(alias: str, model: Any, transactions: int) -> dict[str, float]:
    """Median ms per transaction of ``track`` and ``orm``, alternated one for one."""
    from django.db import transaction  # noqa: PLC0415

    from relay.contrib.django import track  # noqa: PLC0415

    timings: dict[str, list[float]] = {"track": [], "orm": []}
    clock = time.perf_counter
    for n in range(transactions):
        properties = survey_properties(n)
        start = clock()
        with transaction.atomic(using=alias):
            if (
                track(
                    event=EVENT,
                    distinct_id=properties["employee_id"],
                    properties=properties,
                    using=alias,
                )
                is None
            ):
                raise SystemExit("track() failed: see the log above")
        timings["track"].append(clock() - start)
        start = clock()
        with transaction.atomic(using=alias):
            model.objects.using(alias).create(
                distinct_id=properties["employee_id"],
                properties={**properties, "is_cron_job": False},
            )
        timings["orm"].append(clock() - start)
    return {kind: median(values) * 1000 for kind, values in timings.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=2000, help="of each kind, per run")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="300 transactions, 1 run")
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args()
    if args.quick:
        args.transactions, args.runs = 300, 1

    print_header()
    print(f"Django {django.get_version()}")
    with contextlib.ExitStack() as stack:
        urls = {
            "postgresql": stack.enter_context(scratch_postgres(args.admin_url)),
            "sqlite": stack.enter_context(scratch_sqlite()),
        }
        settings.configure(
            DATABASES={
                "default": _django_database(urls["sqlite"]),
                **{alias: _django_database(url) for alias, url in urls.items()},
            },
            INSTALLED_APPS=["relay.contrib.django"],
            USE_TZ=True,
            RELAY={"STRICT_TRACKING": False},
        )
        django.setup()
        import _survey_event  # noqa: F401, PLC0415 - registers the benchmarked event
        from django.db import connections, models  # noqa: PLC0415

        class PlainEvent(models.Model):
            distinct_id = models.CharField(max_length=255)
            properties = models.JSONField()
            created_at = models.DateTimeField(auto_now_add=True)

            class Meta:
                app_label = "relay"
                db_table = "bench_plain_event"

        results: dict[str, list[dict[str, float]]] = {alias: [] for alias in urls}
        for alias in urls:
            with connections[alias].schema_editor() as editor:
                editor.create_model(PlainEvent)
            one_run(alias, PlainEvent, 100)  # warm-up: connections, the dialect, caches
            for run in range(1, args.runs + 1):
                r = one_run(alias, PlainEvent, args.transactions)
                results[alias].append(r)
                print(
                    f"{alias} run {run}: track {r['track']:.3f} ms, orm {r['orm']:.3f} ms, "
                    f"ratio {r['track'] / r['orm']:.2f}",
                    flush=True,
                )
            connections[alias].close()
    print()
    rows = []
    for alias, runs in results.items():
        track_ms = median([r["track"] for r in runs])
        orm_ms = median([r["orm"] for r in runs])
        rows.append([alias, f"{track_ms:.3f}", f"{orm_ms:.3f}", f"{track_ms / orm_ms:.2f}"])
    print_table(
        [
            f"median of {args.runs} runs x {args.transactions}",
            "track() ms",
            "ORM insert ms",
            "ratio",
        ],
        rows,
    )
    worst = max(float(row[3]) for row in rows)
    print(
        f"\ntarget ratio <= {TARGET_RATIO}: worst {worst:.2f} "
        f"({'met' if worst <= TARGET_RATIO else 'missed'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
