"""Monitoring shipped with relay, as package data (``relay.monitoring`` once installed).

- ``grafana/relay.json``: a Grafana dashboard of every metric ``relay run`` exports.
- ``prometheus/relay-alerts.yml``: Prometheus alerting rules (backlog age growing, dead
  letters rising, Mixpanel rejecting the credentials, a stale or absent relay, failing ticks,
  failing requests, lost leases); ``prometheus/relay-alerts.test.yml`` is their
  ``promtool test rules`` file.

Find them in an installed relay with
``python -c "import importlib.resources as r; print(r.files('relay.monitoring'))"``.
"""
