"""relay's pytest plugin for the whole project."""

pytest_plugins = ["relay.testing.plugin"]
