"""relay's pytest plugin: strict tracking in every test, and ``relay_outbox`` to assert on."""

pytest_plugins = ["relay.testing.plugin"]
