"""Exact decimal <-> tick and lot conversion at the edges (SymbolSpec grids)."""



from __future__ import annotations

from decimal import Decimal

import pytest

from tradingapp.engine.numbers import MAX_UNITS, Grid, NumberError, format_scaled, parse_scaled
from tradingapp.engine.reasons import Reason


@pytest.mark.parametrize(
    ("text", "ticks"),
    [
        ("100.01", 10_001),
        ("100", 10_000),
        ("100.0", 10_000),
        ("100.00000", 10_000),
        ("0.01", 1),
        (".05", 5),
        ("+3", 300),
        ("30000.00", 3_000_000),
    ],
)
def test_price_on_the_tick_grid_converts_exactly(spec, text, ticks):
    assert ticks == spec.price.to_units(text)


def test_quantity_on_the_lot_grid_converts_exactly(spec):
    assert (1, 100_000, 123_450) == (
        spec.quantity.to_units("0.00001"),
        spec.quantity.to_units("1"),
        spec.quantity.to_units("1.2345"),
    )


def test_int_and_decimal_values_are_accepted(spec):
    assert (500, 12_345) == (spec.price.to_units(5), spec.price.to_units(Decimal("123.45")))


def test_price_off_the_tick_grid_is_refused_with_price_off_tick(spec):
    with pytest.raises(NumberError) as caught:
        spec.price.to_units("100.005")

    assert Reason.PRICE_OFF_TICK is caught.value.reason
    assert caught.value.text


def test_quantity_off_the_lot_grid_is_refused_with_quantity_off_lot(spec):
    with pytest.raises(NumberError) as caught:
        spec.quantity.to_units("0.000015")

    assert Reason.QUANTITY_OFF_LOT is caught.value.reason


@pytest.mark.parametrize(
    "value",
    [
        "NaN",
        "nan",
        "Infinity",
        "-Infinity",
        "inf",
        "1e5",
        "1E5",
        "1e-2",
        "",
        " ",
        " 1",
        "1 ",
        "1,5",
        "abc",
        "0x10",
        "1_000",
        "--1",
        "1.2.3",
        "-1",
        "-0.01",
        "0",
        "0.00",
        "-0",
        "1" * 41,
        "9" * 18,
        1.5,
        100.0,
        float("nan"),
        True,
        False,
        None,
        [1],
        -1,
        0,
        10**30,
        Decimal("NaN"),
        Decimal("Infinity"),
        Decimal("-1"),
        Decimal("1E+100"),
    ],
)
def test_values_that_are_not_a_positive_exact_decimal_are_refused_as_invalid(spec, value):
    with pytest.raises(NumberError) as caught:
        spec.price.to_units(value)

    assert Reason.INVALID_PRICE is caught.value.reason


@pytest.mark.parametrize("value", ["\u0661\u0662", "\uff11\uff10\uff10", "1\u0660"])
def test_digits_other_than_ascii_are_refused(spec, value):
    # Arabic-Indic and full-width digits are digits to str.isdigit() and to Decimal(), but no
    # client means them as a price; the wire format is plain ASCII decimal notation
    with pytest.raises(NumberError) as caught:
        spec.price.to_units(value)

    assert Reason.INVALID_PRICE is caught.value.reason


@pytest.mark.parametrize("value", ["abc", 2.5, True, "1e3", "0", "-5", "1" * 41])
def test_invalid_quantities_are_refused_with_invalid_quantity(spec, value):
    with pytest.raises(NumberError) as caught:
        spec.quantity.to_units(value)

    assert Reason.INVALID_QUANTITY is caught.value.reason


def test_huge_values_are_refused_and_the_largest_allowed_is_accepted(spec):
    largest = spec.quantity.format(MAX_UNITS)

    assert MAX_UNITS == spec.quantity.to_units(largest)
    with pytest.raises(NumberError) as caught:
        spec.quantity.to_units(spec.quantity.format(MAX_UNITS + 1))
    assert Reason.INVALID_QUANTITY is caught.value.reason


def test_zero_is_accepted_only_when_allowed(spec):
    assert 0 == spec.price.to_units("0", allow_zero=True)
    with pytest.raises(NumberError):
        spec.price.to_units("-0.01", allow_zero=True)


@pytest.mark.parametrize(
    ("step", "units", "text"),
    [
        ("0.01", 10_001, "100.01"),
        ("0.01", 1, "0.01"),
        ("0.01", 0, "0.00"),
        ("0.00001", 123_450, "1.23450"),
        ("0.5", 3, "1.5"),
        ("0.25", 3, "0.75"),
        ("5", 3, "15"),
        ("10", 7, "70"),
        ("1", MAX_UNITS, str(MAX_UNITS)),
    ],
)
def test_grid_format_writes_the_steps_places_and_round_trips(step, units, text):
    grid = Grid(step, "price", Reason.PRICE_OFF_TICK, Reason.INVALID_PRICE)

    assert text == grid.format(units)
    assert units == grid.to_units(text, allow_zero=True)


def test_grid_with_a_coarse_step_refuses_values_between_steps():
    grid = Grid("5", "price", Reason.PRICE_OFF_TICK, Reason.INVALID_PRICE)

    with pytest.raises(NumberError) as caught:
        grid.to_units("12")

    assert Reason.PRICE_OFF_TICK is caught.value.reason


@pytest.mark.parametrize("step", ["0", "-0.01", "NaN", "Infinity"])
def test_grid_needs_a_positive_finite_step(step):
    with pytest.raises(ValueError):
        Grid(step, "price", Reason.PRICE_OFF_TICK, Reason.INVALID_PRICE)


def test_format_scaled_and_parse_scaled_are_inverse():
    assert ("-0.05", "12.345", "7") == (format_scaled(-5, 2), format_scaled(12_345, 3), format_scaled(7, 0))
    assert (-5, 12_345) == (
        parse_scaled("-0.05", 2, "fee", Reason.INVALID_FIELD),
        parse_scaled("12.345", 3, "fee", Reason.INVALID_FIELD),
    )
    with pytest.raises(NumberError) as caught:
        parse_scaled("0.001", 2, "fee", Reason.INVALID_FIELD)
    assert Reason.INVALID_FIELD is caught.value.reason
