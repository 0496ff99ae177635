"""Exact decimal <-> integer conversion.

Inside the engine every price is an integer number of ticks and every quantity an integer number
of lots; balances and fees are integers in an asset's smallest unit. Decimal strings exist only at
the edges. This module is the one place where the two meet, so it is strict: a value off the grid,
non-finite, negative, zero where zero makes no sense, or absurdly large is refused with a specific
reason, never rounded. Floats are refused outright because a binary float cannot carry most
decimal values exactly.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation, localcontext

from tradingapp.engine.reasons import Reason

#: Upper bound for any price in ticks or quantity in lots. Keeps every product of a price and a
#: quantity far inside what the journal and the wire can carry, and refuses "absurdly large".
MAX_UNITS = 10**15

#: Longest decimal string accepted; anything longer is not a price or a quantity anyone means.
MAX_DECIMAL_CHARS = 40

_DECIMAL_RE = re.compile(r"^[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)\Z")
# The common wire form: unsigned digits with an optional fraction (parsed without Decimal).
_PLAIN_RE = re.compile(r"([0-9]{1,18})(?:\.([0-9]{1,18}))?\Z")

#: Formatted strings kept per grid (prices and sizes repeat a great deal on a busy book).
FORMAT_CACHE_SIZE = 4096


class NumberError(ValueError):
    """A value that cannot become an exact engine integer; carries the reason and a text."""

    def __init__(self, reason: Reason, text: str) -> None:
        super().__init__(text)
        self.reason = reason
        self.text = text


def to_decimal(value: object, field: str, invalid: Reason) -> Decimal:
    """Return ``value`` as an exact Decimal, or raise NumberError with ``invalid``.

    Accepts ``str`` (plain decimal notation, no exponent), ``int`` and ``Decimal``. Refuses
    ``bool`` (a Python bool is an int, but ``True`` is never a quantity), ``float``, NaN and
    infinities.
    """
    if isinstance(value, bool):
        raise NumberError(invalid, f"{field} must be a decimal string, not a boolean")
    if isinstance(value, int):
        if abs(value) > MAX_UNITS * 10**6:
            raise NumberError(invalid, f"{field} is too large")
        return Decimal(value)
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise NumberError(invalid, f"{field} must be finite")
        return value
    if isinstance(value, str):
        if len(value) > MAX_DECIMAL_CHARS or not _DECIMAL_RE.match(value):
            raise NumberError(invalid, f"{field} {value[:MAX_DECIMAL_CHARS]!r} is not a decimal number")
        return Decimal(value)
    if isinstance(value, float):
        raise NumberError(invalid, f"{field} must be a decimal string; a float cannot carry an exact decimal")
    raise NumberError(invalid, f"{field} must be a decimal string, not {type(value).__name__}")


def decimal_places(step: Decimal) -> int:
    """Return how many fractional digits ``step`` needs (0 for whole numbers)."""
    exponent = step.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


class Grid:
    """A positive step (tick size, lot size) and exact conversion to and from step counts.

    ``units`` is the count of steps; a step is ``multiplier * 10**-places``, so formatting is pure
    integer and string work (no Decimal on the way out, which is the hot direction).
    """

    __slots__ = ("_formatted", "field", "invalid", "multiplier", "off_grid", "places", "step")

    def __init__(self, step: str | Decimal, field: str, off_grid: Reason, invalid: Reason) -> None:
        step_dec = Decimal(step)
        if not step_dec.is_finite() or step_dec <= 0:
            raise ValueError(f"{field} step must be a positive decimal, got {step!r}")
        self.step = step_dec
        self.places = decimal_places(step_dec)
        self.multiplier = int(step_dec.scaleb(self.places))
        self.field = field
        self.off_grid = off_grid
        self.invalid = invalid
        self._formatted: dict[int, str] = {}

    def to_units(self, value: object, *, allow_zero: bool = False, field: str | None = None) -> int:
        """Convert a decimal value to a whole number of steps, refusing anything inexact.

        ``field`` names the value in error texts when it is not the grid's own field (a
        ``stop_price`` is on the price grid).
        """
        if type(value) is str:
            plain = _PLAIN_RE.match(value)
            if plain is not None:
                exact = self._plain_units(plain.group(1), plain.group(2) or "")
                if exact is not None and (exact > 0 or allow_zero):
                    return exact
        name = field or self.field
        dec = to_decimal(value, name, self.invalid)
        if dec < 0 or (dec == 0 and not allow_zero):
            raise NumberError(self.invalid, f"{name} must be greater than zero")
        with localcontext() as ctx:
            ctx.prec = 60
            try:
                units, rest = divmod(dec, self.step)
            except InvalidOperation:
                raise NumberError(self.invalid, f"{name} is too large") from None
        if rest != 0:
            raise NumberError(self.off_grid, f"{name} {value} is not a multiple of {format(self.step, 'f')}")
        if units > MAX_UNITS:
            raise NumberError(self.invalid, f"{name} {value} is too large")
        return int(units)

    def _plain_units(self, whole: str, fraction: str) -> int | None:
        # Exact steps of a plain "digits[.digits]" string using integer arithmetic only; None
        # when it is off the grid or too large (the Decimal path then gives the precise error).
        places = self.places
        if len(fraction) > places:
            if fraction[places:].strip("0"):
                return None
            fraction = fraction[:places]
        scaled = int(whole + fraction.ljust(places, "0"))
        units, rest = divmod(scaled, self.multiplier)
        if rest or units > MAX_UNITS:
            return None
        return units

    def format(self, units: int) -> str:
        """Return ``units`` steps as a decimal string with the step's number of places."""
        cache = self._formatted
        text = cache.get(units)
        if text is None:
            if len(cache) >= FORMAT_CACHE_SIZE:
                cache.clear()
            text = cache[units] = format_scaled(units * self.multiplier, self.places)
        return text


def format_scaled(value: int, places: int) -> str:
    """Return the integer ``value`` read as ``value * 10**-places`` in plain decimal notation."""
    if places == 0:
        return str(value)
    sign = "-" if value < 0 else ""
    digits = str(-value if value < 0 else value).rjust(places + 1, "0")
    return f"{sign}{digits[:-places]}.{digits[-places:]}"


def parse_scaled(value: object, places: int, field: str, invalid: Reason) -> int:
    """Return a decimal value as an integer count of ``10**-places`` (exact, may be negative)."""
    dec = to_decimal(value, field, invalid)
    scaled = dec.scaleb(places)
    if scaled != scaled.to_integral_value():
        raise NumberError(invalid, f"{field} {value} has more than {places} decimal places")
    return int(scaled)
