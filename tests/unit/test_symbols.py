"""SymbolSpec: grids, filters and the asset scales derived from tick and lot sizes."""



from __future__ import annotations

import pytest

from tradingapp.engine.symbols import SymbolSpec


def test_spec_derives_the_asset_scales_from_tick_and_lot(spec):
    assert ("BTC-USDT", "BTC", "USDT") == (spec.symbol, spec.base, spec.quote)
    assert (5, 7) == (spec.base_places, spec.quote_places)
    assert (1, 1) == (spec.base_per_lot, spec.quote_per_tick_lot)
    assert (1, None, 0) == (spec.min_quantity, spec.max_quantity, spec.min_notional_tick_lots)


def test_notional_is_price_times_quantity_in_quote_units(spec):
    price, quantity = spec.price.to_units("30000.00"), spec.quantity.to_units("0.5")

    assert 15_000 * 10**7 == spec.notional(price, quantity)


def test_wider_asset_places_scale_lots_and_tick_lots():
    spec = SymbolSpec.create("ETH-USD", "ETH", "USD", "0.05", "0.001", base_places=8, quote_places=6)

    assert (100_000, 50) == (spec.base_per_lot, spec.quote_per_tick_lot)
    assert 3 * 7 * 50 == spec.notional(3, 7)


def test_min_notional_is_rounded_up_to_whole_tick_lots():
    between = SymbolSpec.create("X-Y", "X", "Y", "0.1", "0.1", min_notional="1.055")
    exact = SymbolSpec.create("X-Y", "X", "Y", "0.1", "0.1", min_notional="1.05")

    assert 106 == between.min_notional_tick_lots  # 1.055 / 0.01 = 105.5 tick-lots
    assert 105 == exact.min_notional_tick_lots


def test_spec_formats_prices_and_quantities(spec):
    assert ("100.01", None, "0.00120") == (
        spec.format_price(10_001),
        spec.format_price(None),
        spec.format_quantity(120),
    )


def test_spec_refuses_max_quantity_below_min_quantity():
    with pytest.raises(ValueError):
        SymbolSpec.create("X-Y", "X", "Y", "0.01", "0.01", min_quantity="2", max_quantity="1")


def test_spec_refuses_asset_places_too_small_for_its_grid():
    with pytest.raises(ValueError):
        SymbolSpec.create("X-Y", "X", "Y", "0.01", "0.001", base_places=2)
