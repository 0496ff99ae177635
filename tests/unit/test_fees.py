"""Fee rates in millionths and the rounding of every fee toward zero."""



from __future__ import annotations

from decimal import Decimal

import pytest

from tradingapp.engine.fees import BPS, NO_FEES, RATE_SCALE, FeeRates, fee_amount, rate_from_bps


@pytest.mark.parametrize(
    ("bps", "rate"),
    [("1", 100), ("0.5", 50), ("2.25", 225), (10, 1000), ("-1", -100), (Decimal("0.01"), 1), ("0", 0)],
)
def test_rate_from_bps_is_exact_millionths(bps, rate):
    assert rate == rate_from_bps(bps)


def test_rate_finer_than_a_hundredth_of_a_bps_is_refused():
    with pytest.raises(ValueError):
        rate_from_bps("0.001")


@pytest.mark.parametrize(
    ("notional", "rate", "fee"),
    [
        (1_000_000, 100, 100),
        (1_000_000, 1, 1),
        (999_999, 1, 0),  # 0.999999 rounds down
        (1_234_567, 333, 411),  # 411.110811
        (1_234_567, -150, -185),  # -185.18505: a rebate rounds toward zero too
        (999_999, -1, 0),
        (0, 5000, 0),
        (10**20, 2500, 25 * 10**16),
    ],
)
def test_fee_amount_rounds_toward_zero(notional, rate, fee):
    assert fee == fee_amount(notional, rate)


def test_fee_amount_never_exceeds_the_exact_amount_in_either_direction():
    for notional in range(0, 5000, 7):
        for rate in (-777, -1, 1, 333, 2500):
            exact = Decimal(notional * rate) / RATE_SCALE
            fee = fee_amount(notional, rate)
            assert abs(fee) <= abs(exact) < abs(fee) + 1
            assert fee == 0 or (fee > 0) == (rate > 0)


def test_fee_rates_default_to_zero():
    assert (0, 0) == (FeeRates().maker, FeeRates().taker)
    assert FeeRates(0, 0) == NO_FEES
    assert 100 == BPS
