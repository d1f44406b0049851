"""The long-running relay (``relay run``): the scheduler that calls the drainer, and its metrics.

``daemon`` owns the APScheduler jobs, retention and shutdown; ``watcher`` the PostgreSQL
wake-ups; ``pacing`` what the daemon makes of each drain pass (the delay before the next, and
the only writes of tick health); ``metrics`` exposes it on ``/metrics`` and ``/healthz``;
``unconfigured`` says at start-up (of ``relay run`` and ``relay drain``) which rows wait for a
destination that is not configured.
The drainer knows none of them: it emits to an observer (``pacing.MetricsFeed``). Private.
"""
