"""relay's Alembic environment and revisions (installed as ``relay.migrations``)."""
