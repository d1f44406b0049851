"""Steps 3-5 of the flow: claim rows from the outbox, send them to ``/import``, ack the answer.

``drain`` runs one claim -> send -> ack pass (the SQL is in :mod:`relay._store`);
``mixpanel_client`` encodes a batch and reads Mixpanel's answer into per-row outcomes;
``http_deadline`` bounds every request; ``backoff`` spaces retries. Private.
"""
