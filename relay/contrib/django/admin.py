"""The Django admin for relay's operators: the outbox, dead letters by reason, the audit trail.

Everything is read-only through the ORM. The three actions (replay, requeue, discard) go
through :mod:`relay.admin`, the functions behind the ``relay`` CLI: each is audited (actor
``django:<username>``), runs in batches on relay's own connection and takes a confirmation
page first, showing what would change. Only superusers and users with the
``relay.operate_outbox`` permission see the actions.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from django.contrib import admin, messages
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils.functional import cached_property

from relay import admin as relay_admin
from relay._errors import RelayError
from relay._event.registry import registered_event_names
from relay.contrib.django._settings import relay_engine
from relay.contrib.django.models import AuditEntry, DeadLetter, OutboxEvent

OPERATE_PERMISSION = "relay.operate_outbox"
#: Reasons offered as filter links (the largest groups of dead letters); any other reason
#: filters by URL (``?last_error=``). Django's own filter listed every distinct reason: 3,000
#: links a page.
REASON_FILTER_LIMIT = 20
#: Dead-letter groups shown above the list, largest first.
DEAD_LETTER_GROUPS_SHOWN = 50
#: The groups, the reason links and the event links are read from this many of the most
#: recently dead rows, not from every dead row: grouping 300,000 dead rows took most of the
#: page's 3.7 s at 1,000,000 rows, and would grow with the table; this many cost the same at
#: any size (read newest first through the (state, finished_at) index). An older reason
#: still filters by URL (``?last_error=``), through its own index (revision 0007).
DEAD_LETTER_SAMPLE = 5_000


#: A list page counts its rows up to this many (then says "more than"): an exact COUNT(*) of a
#: million rows took most of a second on every page.
COUNT_LIMIT = 10_000


class BoundedCountPaginator(Paginator):
    """Django's paginator, counting at most :data:`COUNT_LIMIT` + 1 rows.

    ``count`` is exact up to the limit; above it, ``COUNT_LIMIT + 1`` (the admin shows the
    pages up to there; "select all" acts on the whole filter all the same).
    """

    @cached_property
    def count(self) -> int:
        return int(self.object_list[: COUNT_LIMIT + 1].count())


def _dead_letter_groups(request: HttpRequest) -> list[Any]:
    """relay's dead-letter groups among the :data:`DEAD_LETTER_SAMPLE` most recently dead rows
    (largest first), read once per request."""
    cached = getattr(request, "_relay_dead_letter_groups", None)
    if cached is None:
        cached = relay_admin.dead_letters(relay_engine(), latest=DEAD_LETTER_SAMPLE)
        request._relay_dead_letter_groups = cached
    return list(cached)


class ReasonFilter(admin.SimpleListFilter):
    """Filter by reason (``last_error``): the largest dead-letter groups, not every reason.

    The links are the largest groups among the :data:`DEAD_LETTER_SAMPLE` most recently dead
    rows, so the page costs the same with 3,000 distinct reasons, or a million dead rows, as
    with three; a reason that is not offered still filters when given in the URL
    (``?last_error=...``), as the group table's links do, through the index on ``last_error``
    among dead rows (revision 0007).
    """

    title = "reason"
    parameter_name = "last_error"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        try:
            groups = _dead_letter_groups(request)
        except RelayError:
            return []
        named = [g for g in groups if g.reason]  # a dead row without a reason has no link
        return [(g.reason, g.reason) for g in named[:REASON_FILTER_LIMIT]]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset
        return queryset.filter(last_error=value)


class EventNameFilter(admin.SimpleListFilter):
    """Filter by event name: the registered events and those of the dead letters.

    Django's own filter ran ``SELECT DISTINCT event`` over the whole table on every page
    (0.7-0.9 s with 1,000,000 rows); these names cost nothing to list. An event in neither
    still filters when given in the URL (``?event=...``).
    """

    title = "event"
    parameter_name = "event"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        names = set(registered_event_names())
        with contextlib.suppress(RelayError):
            for group in _dead_letter_groups(request)[:DEAD_LETTER_GROUPS_SHOWN]:
                names.update(group.events)
        return [(name, name) for name in sorted(names)]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset if value is None else queryset.filter(event=value)


class DestinationFilter(admin.SimpleListFilter):
    """Filter by destination (the Mixpanel project a row goes to): the configured names.

    Listed from the settings, never by ``SELECT DISTINCT`` over the table; a name not
    configured still filters when given in the URL (``?destination=...``).
    """

    title = "destination"
    parameter_name = "destination"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        from relay.contrib.django._settings import relay_settings  # noqa: PLC0415

        try:
            names = relay_settings().destination_names()
        except Exception:  # noqa: BLE001 - a bad setting is manage.py check's to report
            return []
        return [(name, name) for name in names] if len(names) > 1 else []

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset if value is None else queryset.filter(destination=value)


def _actor(request: HttpRequest) -> str:
    return f"django:{request.user.get_username()}"


def _filter(queryset: QuerySet[Any]) -> relay_admin.EventFilter:
    return relay_admin.EventFilter(ids=tuple(queryset.values_list("id", flat=True)))


class _ReadOnly(admin.ModelAdmin):
    """No add, change or delete through the ORM: rows change only through relay.admin."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_operate_permission(self, request: HttpRequest) -> bool:
        """Whether ``request.user`` may replay, requeue or discard (relay.operate_outbox)."""
        return bool(request.user.has_perm(OPERATE_PERMISSION))


class _OutboxAdminBase(_ReadOnly):
    list_display = (
        "id",
        "event",
        "distinct_id",
        "state",
        "destination",
        "attempts",
        "last_error",
        "created_at",
        "finished_at",
    )
    list_filter = ("state", EventNameFilter, ReasonFilter, DestinationFilter)
    search_fields = ("=insert_id", "=distinct_id")
    search_help_text = "exact $insert_id or distinct_id"
    readonly_fields = tuple(f.name for f in OutboxEvent._meta.fields)
    list_per_page = 100
    # One bounded COUNT per page, not two exact ones over a million rows.
    show_full_result_count = False
    paginator = BoundedCountPaginator

    def _confirm(
        self,
        request: HttpRequest,
        queryset: QuerySet[Any],
        *,
        action: str,
        title: str,
        preview: Any,
        needs_reason: bool = False,
    ) -> HttpResponse:
        # "Select all N" is confirmed as the filter it was (the page's query string and
        # select_across), never as N ids posted back: Django refuses a form of over 1,000
        # fields, so a confirmation of 1,500 rows answered 400 and changed nothing.
        across = request.POST.get("select_across") == "1"
        ids = list(
            queryset.values_list("id", flat=True)[:1]
            if across
            else queryset.values_list("id", flat=True)
        )
        return TemplateResponse(
            request,
            "relay/confirm_action.html",
            {
                **self.admin_site.each_context(request),
                "title": title,
                "action": action,
                "opts": self.model._meta,
                "ids": ids,
                "select_across": across,
                "preview": preview,
                "needs_reason": needs_reason,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )

    def _done(self, request: HttpRequest, verb: str, result: Any) -> None:
        self.message_user(
            request,
            f"{verb} {result.changed} event(s) (audit entry {result.audit_id}"
            + (f"; {result.skipped} skipped, leased or changed meanwhile" if result.skipped else "")
            + ").",
            messages.SUCCESS,
        )

    def _run(self, request: HttpRequest, call: Any) -> Any:
        try:
            return call()
        except RelayError as exc:
            self.message_user(request, f"nothing changed: {exc}", messages.ERROR)
            return None


@admin.register(OutboxEvent)
class OutboxEventAdmin(_OutboxAdminBase):
    """The whole outbox: filter by state, event and reason; replay a selection."""

    actions = ("replay_events",)

    @admin.action(description="Replay selected events (send again)", permissions=["operate"])
    def replay_events(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        """Requeue the selected rows for the relay (relay replay), after confirmation."""
        now = dt.datetime.now(dt.UTC)
        engine = relay_engine()
        f = _filter(queryset)
        if request.POST.get("confirm") != "yes":
            preview = self._run(request, lambda: relay_admin.preview(engine, f, now=now))
            if preview is None:
                return None
            return self._confirm(
                request, queryset, action="replay_events", title="Replay events", preview=preview
            )
        result = self._run(
            request, lambda: relay_admin.replay(engine, f, now=now, actor=_actor(request))
        )
        if result is not None:
            self._done(request, "Replayed", result)
        return None


@admin.register(DeadLetter)
class DeadLetterAdmin(_OutboxAdminBase):
    """Dead rows, with their reasons grouped above the list; requeue or discard them."""

    actions = ("requeue_dead_letters", "discard_dead_letters")
    change_list_template = "relay/dead_letter_change_list.html"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).filter(state="dead")

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        try:
            groups = _dead_letter_groups(request)
        except RelayError as exc:
            groups = []
            self.message_user(request, f"dead letters unavailable: {exc}", messages.ERROR)
        shown = groups[:DEAD_LETTER_GROUPS_SHOWN]
        return super().changelist_view(
            request,
            {
                **(extra_context or {}),
                "dead_letter_groups": shown,
                "dead_letter_groups_hidden": len(groups) - len(shown),
                # The groups cover every dead row unless the sample was full.
                "dead_letter_sample": (
                    DEAD_LETTER_SAMPLE
                    if sum(g.count for g in groups) >= DEAD_LETTER_SAMPLE
                    else None
                ),
            },
        )

    @admin.action(description="Requeue selected dead letters", permissions=["operate"])
    def requeue_dead_letters(
        self, request: HttpRequest, queryset: QuerySet[Any]
    ) -> HttpResponse | None:
        """Send the selected dead rows again (relay dead-letters requeue), after confirmation."""
        now = dt.datetime.now(dt.UTC)
        engine = relay_engine()
        f = _filter(queryset)
        if request.POST.get("confirm") != "yes":
            preview = self._run(
                request, lambda: relay_admin.preview_dead_letters(engine, f, now=now)
            )
            if preview is None:
                return None
            return self._confirm(
                request,
                queryset,
                action="requeue_dead_letters",
                title="Requeue dead letters",
                preview=preview,
            )
        result = self._run(
            request,
            lambda: relay_admin.requeue_dead_letters(engine, f, now=now, actor=_actor(request)),
        )
        if result is not None:
            self._done(request, "Requeued", result)
        return None

    @admin.action(description="Discard selected dead letters", permissions=["operate"])
    def discard_dead_letters(
        self, request: HttpRequest, queryset: QuerySet[Any]
    ) -> HttpResponse | None:
        """Delete the selected dead rows for good, with a reason (audited), after confirmation."""
        now = dt.datetime.now(dt.UTC)
        engine = relay_engine()
        f = _filter(queryset)
        reason = str(request.POST.get("reason", "")).strip()
        if request.POST.get("confirm") != "yes" or not reason:
            if request.POST.get("confirm") == "yes":
                self.message_user(request, "a reason is required to discard", messages.ERROR)
            preview = self._run(
                request, lambda: relay_admin.preview_dead_letters(engine, f, now=now)
            )
            if preview is None:
                return None
            return self._confirm(
                request,
                queryset,
                action="discard_dead_letters",
                title="Discard dead letters",
                preview=preview,
                needs_reason=True,
            )
        result = self._run(
            request,
            lambda: relay_admin.discard_dead_letters(
                engine, f, reason=reason, now=now, actor=_actor(request)
            ),
        )
        if result is not None:
            self._done(request, "Discarded", result)
        return None


@admin.register(AuditEntry)
class AuditEntryAdmin(_ReadOnly):
    """The audit trail of operator actions (CLI and admin alike), newest first."""

    list_display = ("id", "at", "actor", "action", "count", "detail")
    list_filter = ("action", "actor")
    readonly_fields = tuple(f.name for f in AuditEntry._meta.fields)
