"""Runnable demonstrations (``relay demo``): the whole flow on an embedded database."""
