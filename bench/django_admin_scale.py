"""The Django admin's list pages with a million outbox rows and thousands of reasons (issue 21).

One scratch PostgreSQL database migrated to head, ``--rows`` rows bulk-loaded (``--dead`` of
them dead with ``--reasons`` distinct reasons, the rest delivered), one audit entry; Django
configured in this process with the admin and relay's app on it. Each page is fetched through
Django's test client as a logged-in superuser, ``--runs`` times; printed per page: the median
time, the number of SQL queries Django ran, and the number of reason links (``?last_error=``)
in the filter sidebar.

Two baselines, from the same invocation: the admin of issue 21's report (the same model admin
but with Django's own ``last_error`` list filter, every distinct reason a link, and the full
result count, on a proxy model beside relay's); and, measured last, the admin as it was before
revision 0007 (every dead row grouped on each page, no index on ``last_error``: the index is
dropped for it).

    .venv/bin/python bench/django_admin_scale.py [--rows 1000000] [--dead 300000]
        [--reasons 3000] [--runs 5]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from typing import Any

import django
import sqlalchemy as sa
from _db import DEFAULT_ADMIN_URL, scratch_postgres
from _loaders import load_rows, new_tag
from _stats import print_header, print_table
from django.conf import settings

urlpatterns: list[Any] = []


def _django_database(url: str) -> dict[str, Any]:
    parsed = sa.make_url(url)
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": parsed.database,
        "USER": parsed.username or "",
        "PASSWORD": parsed.password or "",
        "HOST": parsed.host or "",
        "PORT": str(parsed.port or ""),
    }


def _load(url: str, *, rows: int, dead: int, reasons: int) -> None:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    tag = new_tag()
    load_rows(engine, count=rows - dead, state="delivered", tag=tag)
    load_rows(engine, count=dead, state="dead", tag=tag, first=rows - dead + 1)
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE relay_outbox SET last_error = '400: reason ' || (id % :r)::text "
                "WHERE state = 'dead'"
            ),
            {"r": reasons},
        )
        conn.execute(
            sa.text(
                "INSERT INTO relay_audit (at, actor, action, filter, count, detail) VALUES "
                "(now(), 'bench', 'requeue', CAST('{\"states\": [\"dead\"]}' AS json), 1, NULL)"
            )
        )
        conn.execute(sa.text("ANALYZE relay_outbox"))
    engine.dispose()


def _as_before_0007(url: str) -> None:
    """Group every dead row on each page (``dead_letters()`` without ``latest``) and drop the
    index on ``last_error``: the admin's reads as they were before this change."""
    from relay import admin as relay_admin  # noqa: PLC0415
    from relay.contrib.django import admin as django_admin  # noqa: PLC0415
    from relay.contrib.django._settings import relay_engine  # noqa: PLC0415

    def every_group(request: Any) -> list[Any]:
        cached = getattr(request, "_relay_all_groups", None)
        if cached is None:
            cached = relay_admin.dead_letters(relay_engine())
            request._relay_all_groups = cached
        return list(cached)

    django_admin._dead_letter_groups = every_group  # type: ignore[assignment]
    django_admin.DEAD_LETTER_SAMPLE = 10**12  # the page's "sample was full" test never holds
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(sa.text("DROP INDEX ix_relay_outbox_dead_reason"))
    engine.dispose()


def _measure(client: Any, path: str, runs: int) -> tuple[float, int, int]:
    from django.db import connection  # noqa: PLC0415
    from django.test.utils import CaptureQueriesContext  # noqa: PLC0415

    times = []
    queries = links = 0
    for _ in range(runs):
        with CaptureQueriesContext(connection) as captured:
            started = time.perf_counter()
            page = client.get(path)
            times.append((time.perf_counter() - started) * 1000)
        if page.status_code != 200:
            raise SystemExit(f"{path}: HTTP {page.status_code}")
        queries = len(captured)
        slowest = max(captured.captured_queries, key=lambda q: float(q["time"]), default=None)
        sidebar = page.content.split(b'id="changelist-filter"', 1)
        links = sidebar[1].count(b"?last_error=") if len(sidebar) == 2 else 0
    if slowest is not None:
        print(
            f"  slowest Django query {float(slowest['time']) * 1000:.0f} ms: {slowest['sql'][:160]}"
        )
    return statistics.median(times), queries, links


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--dead", type=int, default=300_000)
    parser.add_argument("--reasons", type=int, default=3000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--admin-url", default=DEFAULT_ADMIN_URL)
    args = parser.parse_args()
    print_header()
    with scratch_postgres(args.admin_url) as url:
        started = time.perf_counter()
        _load(url, rows=args.rows, dead=args.dead, reasons=args.reasons)
        print(
            f"loaded {args.rows:,} rows ({args.dead:,} dead, {args.reasons:,} reasons) in "
            f"{time.perf_counter() - started:.0f} s"
        )
        settings.configure(
            DATABASES={"default": _django_database(url)},
            INSTALLED_APPS=[
                "django.contrib.admin",
                "django.contrib.auth",
                "django.contrib.contenttypes",
                "django.contrib.sessions",
                "django.contrib.messages",
                "relay.contrib.django",
            ],
            MIDDLEWARE=[
                "django.contrib.sessions.middleware.SessionMiddleware",
                "django.contrib.auth.middleware.AuthenticationMiddleware",
                "django.contrib.messages.middleware.MessageMiddleware",
            ],
            TEMPLATES=[
                {
                    "BACKEND": "django.template.backends.django.DjangoTemplates",
                    "APP_DIRS": True,
                    "OPTIONS": {
                        "context_processors": [
                            "django.template.context_processors.request",
                            "django.contrib.auth.context_processors.auth",
                            "django.contrib.messages.context_processors.messages",
                        ]
                    },
                }
            ],
            ROOT_URLCONF=__name__,
            SECRET_KEY="bench-not-a-secret",  # noqa: S106 - a throwaway in-process site
            ALLOWED_HOSTS=["*"],
            USE_TZ=True,
            DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
            RELAY={"STRICT_TRACKING": False},
        )
        django.setup()
        from django.contrib import admin  # noqa: PLC0415
        from django.contrib.auth.models import User  # noqa: PLC0415
        from django.core.management import call_command  # noqa: PLC0415
        from django.db import connection  # noqa: PLC0415
        from django.test import Client  # noqa: PLC0415
        from django.urls import path  # noqa: PLC0415

        from relay.contrib.django.admin import DeadLetterAdmin  # noqa: PLC0415
        from relay.contrib.django.models import DeadLetter  # noqa: PLC0415

        class BaselineDeadLetter(DeadLetter):
            class Meta:
                proxy = True
                app_label = "relay"

        class BaselineAdmin(DeadLetterAdmin):
            list_filter = ("state", "event", "last_error")
            show_full_result_count = True

        admin.site.register(BaselineDeadLetter, BaselineAdmin)
        urlpatterns.append(path("admin/", admin.site.urls))
        call_command("migrate", verbosity=0)
        user = User.objects.create_superuser("bench", "bench@example.invalid", "pw")
        client = Client()
        client.force_login(user)
        pages = {
            "dead letters": "/admin/relay/deadletter/",
            "dead letters, one reason": "/admin/relay/deadletter/?last_error=400%3A+reason+7",
            "outbox events": "/admin/relay/outboxevent/",
            "audit trail": "/admin/relay/auditentry/",
            "baseline: dead letters as before": "/admin/relay/baselinedeadletter/",
        }
        rows = []
        for name, page in pages.items():
            _measure(client, page, 1)  # warm-up: templates, caches, the dialect
            took, queries, links = _measure(client, page, args.runs)
            rows.append([name, f"{took:.0f}", str(queries), str(links)])
            print(f"{name}: {took:.0f} ms", flush=True)
        # The admin as on main before revision 0007: every dead row grouped on each page, and
        # no index on last_error (dropped here, at the end, in the same database).
        _as_before_0007(url)
        for name in ("dead letters", "dead letters, one reason"):
            page = pages[name]
            _measure(client, page, 1)
            took, queries, links = _measure(client, page, args.runs)
            label = f"as before 0007: {name}"
            rows.append([label, f"{took:.0f}", str(queries), str(links)])
            print(f"{label}: {took:.0f} ms", flush=True)
        connection.close()
    print()
    print_table(["page", "median ms", "Django queries", "reason links"], rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
