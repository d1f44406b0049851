"""LibCST edits of ``relay events new``: one name added, every other byte of the host's kept."""

from __future__ import annotations

import libcst as cst
import pytest

from relay.plan import _edit, _imports


def _statement(code: str) -> cst.SimpleStatementLine:
    stmt = cst.parse_statement(code)
    assert isinstance(stmt, cst.SimpleStatementLine)
    return stmt


HOST = '''\
"""The host's module."""

from __future__ import annotations

import datetime as dt

import structlog
from relay import track

from pkg.constants import MixPanelEvent

logger = structlog.get_logger(__name__)
'''


@pytest.mark.parametrize(
    ("new", "after"),
    [
        # Third party, after relay's own "from" import.
        (
            "from relay.contrib.django import track\n",
            "from relay import track\nfrom relay.contrib.django import track\n",
        ),
        # First party, after the existing first-party import.
        (
            "from pkg.service.directory import fetch\n",
            "from pkg.constants import MixPanelEvent\nfrom pkg.service.directory import fetch\n",
        ),
        # First of the third-party section: it takes over the blank line before it.
        ("from anyio import sleep\n", "\nimport structlog\nfrom anyio import sleep\n"),
        # Standard library "from" import after the plain imports of its section.
        ("from uuid import uuid4\n", "import datetime as dt\nfrom uuid import uuid4\n\n"),
    ],
)
def test_a_new_import_goes_where_isort_puts_it(new: str, after: str) -> None:
    """The new statement lands in its isort section and order; the others do not move."""
    module = _imports.insert_import(cst.parse_module(HOST), _statement(new), package="pkg")
    assert after in module.code
    assert module.code.replace(new, "", 1) == HOST


def test_a_first_party_import_into_a_module_without_one_opens_its_section() -> None:
    """No first-party import yet: the new one follows the third-party block after a blank line."""
    host = "import structlog\nfrom relay import track\n\nlogger = structlog.get_logger()\n"
    module = _imports.insert_import(
        cst.parse_module(host), _statement("from pkg.schemas import S\n"), package="pkg"
    )
    assert module.code == (
        "import structlog\nfrom relay import track\n\nfrom pkg.schemas import S\n\n"
        "logger = structlog.get_logger()\n"
    )


def test_an_exploded_all_keeps_its_comments_and_takes_the_name_in_order() -> None:
    """A name added to a one-per-line __all__ leaves every comment with its own element."""
    host = '__all__ = [\n    # helpers\n    "AHelper",  # first\n    "CHelper",\n]\n'
    module = cst.parse_module(host)
    found = _edit.find_all_list(module)
    assert found is not None
    module = _edit.add_to_exploded_list(module, found[1], "BHelper")
    assert module.code == (
        '__all__ = [\n    # helpers\n    "AHelper",  # first\n    "BHelper",\n    "CHelper",\n]\n'
    )


def test_a_name_sorting_last_keeps_the_old_last_element_s_comment() -> None:
    """Appending after the last element moves no comment onto the new line."""
    host = '__all__ = [\n    "AHelper",  # the only one\n]\n'
    module = cst.parse_module(host)
    found = _edit.find_all_list(module)
    assert found is not None
    module = _edit.add_to_exploded_list(module, found[1], "ZHelper")
    assert module.code == '__all__ = [\n    "AHelper",  # the only one\n    "ZHelper",\n]\n'


def test_a_long_registry_entry_is_parenthesised_to_fit_the_line() -> None:
    """An entry longer than the line limit gets its value on a line of its own, as ruff keeps it."""
    host = "R = {\n    MixPanelEvent.A: MxpA,\n}\n"
    module = cst.parse_module(host)
    found = _edit.find_dict(module, "R")
    assert found is not None
    key, item = "MixPanelEvent.UPLOAD_ANALYSIS_COMPLETED_ERROR", "Mxp" + "X" * 60
    module = _edit.add_to_exploded_dict(module, found[1], key, item, line_length=100)
    assert module.code == (
        f"R = {{\n    MixPanelEvent.A: MxpA,\n    {key}: (\n        {item}\n    ),\n}}\n"
    )


def test_an_exploded_import_takes_the_name_in_isort_order() -> None:
    """Constants before classes before functions, as ruff's isort orders members."""
    host = "from relay import (\n    STRICT_MODEL_CONFIG,\n    register_event,\n)\n"
    module = cst.parse_module(host)
    stmt = _imports.find_import_from(module, "relay")
    assert stmt is not None
    module = _imports.add_to_exploded_import(module, stmt, "MixpanelSuperEventPropertiesSchema")
    assert module.code == (
        "from relay import (\n    STRICT_MODEL_CONFIG,\n"
        "    MixpanelSuperEventPropertiesSchema,\n    register_event,\n)\n"
    )


def test_a_module_that_does_not_parse_is_an_edit_error() -> None:
    """A syntax error in the host's file is refused with the file's name, not a traceback."""
    with pytest.raises(_edit.EditError, match=r"constants\.py does not parse"):
        _edit.parse("class MixPanelEvent(:\n", where="constants.py")


def test_two_helper_classes_in_one_module_are_ambiguous() -> None:
    """With two *TrackHelper classes the edit refuses to guess which one takes the method."""
    module = cst.parse_module("class ATrackHelper:\n    pass\n\n\nclass BTrackHelper:\n    pass\n")
    with pytest.raises(_edit.EditError, match="found 2"):
        _edit.find_class(module, suffix="TrackHelper")


def test_a_registry_entry_appended_after_a_commented_one_leaves_the_comment() -> None:
    """The old last entry's end-of-line comment stays on its line."""
    host = "R = {\n    MixPanelEvent.A: MxpA,  # the first\n}\n"
    module = cst.parse_module(host)
    found = _edit.find_dict(module, "R")
    assert found is not None
    module = _edit.add_to_exploded_dict(
        module, found[1], "MixPanelEvent.B", "MxpB", line_length=100
    )
    assert (
        module.code
        == "R = {\n    MixPanelEvent.A: MxpA,  # the first\n    MixPanelEvent.B: MxpB,\n}\n"
    )


def test_where_a_name_is_imported_from_is_read_through_aliases() -> None:
    """``from relay import track as t`` binds t from relay; unknown names have no origin."""
    module = cst.parse_module(
        "from relay import track as t\nfrom relay.contrib.django import track\n"
    )
    assert _imports.imported_from(module, "t") == "relay"
    assert _imports.imported_from(module, "track") == "relay.contrib.django"
    assert _imports.imported_from(module, "missing") is None
