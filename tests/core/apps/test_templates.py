"""Query templates' parameters (``zida.core.apps.templates``): a value given for a parameter as its type."""

from __future__ import annotations

import pytest

from zida.core.apps.templates import QueryParameter, coerce
from zida.core.errors import InvalidArgument
from zida.core.records.values import number_value

NUMBER = QueryParameter("amount", "NUMBER")


@pytest.mark.parametrize("text", ["12", " 12.5 ", "9007199254740993", "9007199254740993.0", "5e-324", "-0"])
def test_a_number_given_as_text_is_the_number_a_record_stores_for_it(text: str) -> None:
    """As ``values.number_value`` reads it: a template's search compares with exactly what a record holds."""
    assert coerce(NUMBER, text) == number_value(text)
    assert type(coerce(NUMBER, text)) is type(number_value(text))


@pytest.mark.parametrize("text", ["1e400", "1e-400", "NaN", "１２", "12abc", "true"])
def test_what_no_record_could_hold_is_refused(text: str) -> None:
    with pytest.raises(InvalidArgument, match="is not a value of that type"):
        coerce(NUMBER, text)
