"""Tests of the package's analytics events."""
