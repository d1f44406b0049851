"""Steps 3-5 of the flow: claim rows from the outbox, send them to Mixpanel, ack the answer.

``drain`` runs one claim -> send -> ack pass (the SQL is in :mod:`relay._store`; ``cursor``
says where the next claim starts); sending and reading Mixpanel's answers belong to
:mod:`relay._mixpanel`; ``backoff`` spaces retries. Nothing here imports the daemon: the
drainer reports to a ``DrainObserver``. Private.
"""
