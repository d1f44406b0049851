"""Helpers shared by relay's test files (imported as ``helpers.cli``, ``helpers.tracking``).

``tests/`` is on ``sys.path`` (its ``conftest.py`` is the rootdir's), so a test module imports
these as ``from helpers.cli import one_line``. Fixtures built on them live in the conftest of
the folder that uses them (``tests/integration/conftest.py``).
"""
