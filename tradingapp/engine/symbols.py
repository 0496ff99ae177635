"""Per-symbol trading rules: grids, filters and the asset scales that tie ticks and lots to money.

A symbol trades ``base`` against ``quote``. Prices are counted in ticks and quantities in lots.
Balances are counted per asset in that asset's smallest unit (``10**-places``). For each symbol the
spec records how many base units one lot is (``base_per_lot``) and how many quote units one
tick times one lot is (``quote_per_tick_lot``), so the notional of a fill is the exact integer
``price_ticks * qty_lots * quote_per_tick_lot``.
"""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal

import attrs

from tradingapp.engine.numbers import Grid, decimal_places
from tradingapp.engine.reasons import Reason


@attrs.frozen
class SymbolSpec:
    """Immutable rules for one symbol; build with :meth:`create`."""

    symbol: str
    base: str
    quote: str
    price: Grid
    quantity: Grid
    min_quantity: int  # lots; 1 means "one lot" (no extra minimum)
    max_quantity: int | None  # lots
    min_notional_tick_lots: int  # price_ticks * qty_lots must be at least this
    base_places: int
    quote_places: int
    base_per_lot: int
    quote_per_tick_lot: int

    @classmethod
    def create(
        cls,
        symbol: str,
        base: str,
        quote: str,
        tick_size: str,
        lot_size: str,
        *,
        min_quantity: str | None = None,
        max_quantity: str | None = None,
        min_notional: str | None = None,
        base_places: int | None = None,
        quote_places: int | None = None,
    ) -> SymbolSpec:
        """Build a spec from decimal strings, deriving the asset scales.

        ``base_places``/``quote_places`` default to the fewest decimal places that represent every
        lot and every tick-times-lot notional exactly; a venue passes the maximum over all its
        symbols so that one asset has one scale everywhere.
        """
        price = Grid(tick_size, "price", Reason.PRICE_OFF_TICK, Reason.INVALID_PRICE)
        qty = Grid(lot_size, "quantity", Reason.QUANTITY_OFF_LOT, Reason.INVALID_QUANTITY)
        need_base = qty.places
        need_quote = decimal_places(price.step * qty.step)
        bp = need_base if base_places is None else base_places
        qp = need_quote if quote_places is None else quote_places
        if bp < need_base or qp < need_quote:
            raise ValueError(f"{symbol}: asset places too small for its tick and lot sizes")
        min_lots = qty.to_units(min_quantity) if min_quantity is not None else 1
        max_lots = qty.to_units(max_quantity) if max_quantity is not None else None
        if max_lots is not None and max_lots < min_lots:
            raise ValueError(f"{symbol}: max_quantity is below min_quantity")
        min_notional_units = 0
        if min_notional is not None:
            ratio = Decimal(min_notional) / (price.step * qty.step)
            min_notional_units = int(ratio.to_integral_value(rounding=ROUND_CEILING))
        return cls(
            symbol=symbol,
            base=base,
            quote=quote,
            price=price,
            quantity=qty,
            min_quantity=min_lots,
            max_quantity=max_lots,
            min_notional_tick_lots=min_notional_units,
            base_places=bp,
            quote_places=qp,
            base_per_lot=int(qty.step.scaleb(bp)),
            quote_per_tick_lot=int((price.step * qty.step).scaleb(qp)),
        )

    def notional(self, price_ticks: int, qty_lots: int) -> int:
        """Return the quote-unit notional of ``qty_lots`` at ``price_ticks`` (exact)."""
        return price_ticks * qty_lots * self.quote_per_tick_lot

    def format_price(self, ticks: int | None) -> str | None:
        """Return a price as a decimal string (None stays None)."""
        return None if ticks is None else self.price.format(ticks)

    def format_quantity(self, lots: int) -> str:
        """Return a quantity as a decimal string."""
        return self.quantity.format(lots)
