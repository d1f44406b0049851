"""Steps 3-5 of the flow: claim rows from the outbox, send them to ``/import``, ack the answer.

``drain`` runs one claim -> send -> ack pass (the SQL is in :mod:`relay._store`; ``cursor``
says where the next claim starts);
``encoding`` turns rows into ``/import`` bytes and batches; ``mixpanel_client`` sends them and
``answers`` reads Mixpanel's answer into per-row outcomes; ``http_deadline`` bounds every
request; ``backoff`` spaces retries. Nothing here imports the daemon: the drainer reports to a
``DrainObserver``. Private.
"""
