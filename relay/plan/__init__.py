"""The tracking plan as code: checks the catalog convention (:mod:`relay.plan.lint`)."""
