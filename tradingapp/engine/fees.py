"""Maker and taker fee rates and the exact, documented rounding of every fee.

Rates are held in millionths (``1 bps == 100``) so that configured basis points such as ``"0.5"``
are exact integers. A fee is ``notional * rate // 1_000_000`` rounded toward zero, in the quote
asset's smallest unit: a positive fee never charges more than the exact amount, and a negative
(rebate) fee never pays more. Rounding never creates or destroys value because each fee is one
transfer between the account and the fee account of exactly the amount computed here.
"""

from __future__ import annotations

from decimal import Decimal

import attrs

RATE_SCALE = 1_000_000  # millionths of the notional
BPS = 100  # millionths per basis point


def rate_from_bps(bps: str | int | Decimal) -> int:
    """Return a basis-point rate as integer millionths, refusing finer rates than 0.01 bps."""
    scaled = Decimal(str(bps)) * BPS
    if scaled != scaled.to_integral_value():
        raise ValueError(f"fee rate {bps} bps is finer than 0.01 bps")
    return int(scaled)


def fee_amount(notional: int, rate: int) -> int:
    """Return the fee on ``notional`` at ``rate`` millionths, rounded toward zero."""
    if rate >= 0:
        return notional * rate // RATE_SCALE
    return -(notional * -rate // RATE_SCALE)


@attrs.frozen
class FeeRates:
    """An account's maker and taker rates in millionths; a negative maker rate is a rebate."""

    maker: int = 0
    taker: int = 0


NO_FEES = FeeRates(0, 0)
