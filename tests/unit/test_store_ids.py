"""The id list relay binds on PostgreSQL: integers only, whatever it is handed."""

from __future__ import annotations

import pytest
from sqlalchemy.dialects import postgresql

from relay._store._base import IdArray


def test_an_id_list_binds_as_the_text_of_a_bigint_array() -> None:
    """Ids become ``{1,2,3}``, an empty list ``{}``, any iterable of ints the same."""
    bind = IdArray().process_bind_param
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    assert bind([1, 2, 2**53 + 1], dialect) == "{1,2,9007199254740993}"
    assert bind([], dialect) == "{}"
    assert bind((n for n in (3, 4)), dialect) == "{3,4}"  # type: ignore[arg-type]
    assert bind(None, dialect) is None


@pytest.mark.parametrize("crafted", ["1}; DROP TABLE relay_outbox; --", "1,2", 1.5, None, "NaN"])
def test_an_id_list_refuses_anything_that_is_not_an_integer(crafted: object) -> None:
    """A crafted element never reaches the array text: ``operator.index`` refuses it first (a
    float too, rather than truncate it into another row's id)."""
    bind = IdArray().process_bind_param
    with pytest.raises((TypeError, ValueError)):
        bind([1, crafted], postgresql.dialect())  # type: ignore[list-item, no-untyped-call]
