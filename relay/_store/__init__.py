"""All relay-side SQL on the outbox, one function per statement, dialect differences inside.

A package so that each part has one owner: ``outbox`` holds the insert behind ``track()``, the
claim, the fenced acks and the shared :func:`~relay._store.outbox.transaction` /
:func:`~relay._store.outbox.translate_errors` helpers; ``maintenance`` holds retention and the
cheap gauges; the other modules serve the admin commands. Nothing outside this package builds
SQL, and driver errors leave it only as :class:`relay._errors.StoreError`.
"""
