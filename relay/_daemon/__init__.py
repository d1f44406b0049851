"""The long-running relay (``relay run``): the scheduler that calls the drainer, and its metrics.

``daemon`` owns the APScheduler jobs, LISTEN/NOTIFY wake-ups, retention and shutdown;
``metrics`` exposes what the daemon observed on ``/metrics`` and ``/healthz``. Private.
"""
