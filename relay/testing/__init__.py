"""Test support for host applications and for relay's own tests."""
