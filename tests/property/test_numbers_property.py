"""Properties of the exact conversions: grid round trips and fee rounding."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.strategies import grid_steps
from tradingapp.engine.fees import RATE_SCALE, fee_amount
from tradingapp.engine.numbers import MAX_UNITS, Grid, NumberError
from tradingapp.engine.reasons import Reason


def make_grid(step: str) -> Grid:
    return Grid(step, "price", Reason.PRICE_OFF_TICK, Reason.INVALID_PRICE)


@settings(max_examples=300)
@given(step=grid_steps, units=st.integers(1, MAX_UNITS))
def test_format_then_to_units_is_the_identity(step, units):
    grid = make_grid(step)

    text = grid.format(units)

    assert units == grid.to_units(text)
    assert Decimal(text) == units * Decimal(step)


@settings(max_examples=300)
@given(step=grid_steps, units=st.integers(1, 10**9), digit=st.integers(1, 9))
def test_a_value_between_two_grid_points_is_off_the_grid(step, units, digit):
    grid = make_grid(step)
    text = grid.format(units)
    off = text + str(digit) if "." in text else f"{text}.{digit}"

    with pytest.raises(NumberError) as caught:
        grid.to_units(off)

    assert Reason.PRICE_OFF_TICK is caught.value.reason


@settings(max_examples=300)
@given(notional=st.integers(0, 10**24), rate=st.integers(-RATE_SCALE, RATE_SCALE))
def test_fee_is_the_exact_amount_rounded_toward_zero(notional, rate):
    fee = fee_amount(notional, rate)

    exact = Fraction(notional * rate, RATE_SCALE)
    assert abs(fee) <= abs(exact) < abs(fee) + 1
    assert fee == 0 or (fee > 0) == (rate > 0)
