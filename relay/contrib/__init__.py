"""Integrations with host frameworks: :mod:`relay.contrib.django`, ..."""
