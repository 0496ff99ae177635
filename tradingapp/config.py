"""Venue configuration: load a TOML file, validate every key, build immutable settings.

The file describes the symbols, the assets' scales, fees, accounts with their opening balances,
order-entry limits, stop settings, the TCP server and persistence. ``load_config(None)`` loads the
demo configuration embedded in the package (``tradingapp/default_config.toml``). The reference
for every key is ``docs/configuration.md``.

Rules that matter elsewhere:

* **Exact numbers.** Money, prices and sizes are TOML strings (``"0.01"``) or integers; a TOML
  float is refused because it cannot carry an exact decimal.
* **One scale per asset.** Each asset has one number of decimal places venue-wide, the maximum
  any symbol needs (base: the lot size's places; quote: the places of ``tick_size * lot_size``),
  optionally raised in ``[assets]``. Balances are integers in ``10**-places`` of the asset.
* **Fees cover rebates.** For every pair of accounts, the maker rate of one plus the taker rate
  of the other is at least zero, so a maker rebate is always paid out of the same trade's taker
  fee and the fee account never goes negative.
* **No silent typos.** An unknown key anywhere is an error.

Every error is a :class:`ConfigError` whose message names the source and the key, for example
``venue.toml: symbols[1].tick_size: must be greater than zero``.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from decimal import Decimal
from importlib import resources
from pathlib import Path
from typing import Any

import attrs

from tradingapp.engine.fees import FeeRates, rate_from_bps
from tradingapp.engine.numbers import (
    MAX_DECIMAL_CHARS,
    MAX_UNITS,
    NumberError,
    decimal_places,
    format_scaled,
    parse_scaled,
    to_decimal,
)
from tradingapp.engine.reasons import Reason
from tradingapp.engine.symbols import SymbolSpec

DEFAULT_CONFIG_RESOURCE = "default_config.toml"
DEFAULT_SOURCE = "<default config>"

DEFAULT_PRICE_BAND_PCT = "10"
DEFAULT_MARKET_BUFFER_PCT = "10"
DEFAULT_FEE_ACCOUNT = "fees"
MAX_FRAME_LIMIT = 16 * 1024 * 1024  # 16 MiB, the largest frame the protocol allows
MIN_FRAME = 1024
MIN_SEGMENT_BYTES = 1024
MAX_SEGMENT_BYTES = 2**31
#: Bounds of configured durations: a week at most; session timers at least 0.1 s.
MAX_SECONDS = 7 * 24 * 3600.0
MIN_TIMER_SECONDS = 0.1
MAX_ASSET_PLACES = 18
MAX_FEE_BPS = Decimal(10_000)  # 100 %
INT64_MAX = 2**63 - 1
FSYNC_MODES = ("always", "batch", "off")

PPM = 1_000_000  # parts per million; percentages are held as ppm (1 % == 10_000)

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@:/-]{0,63}$")
_ASSET_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.]{0,15}$")
_PATTERN_HELP = {
    _NAME_RE: "1-64 characters: letters, digits and _ . @ : / -, starting with a letter or digit",
    _ASSET_RE: "1-16 characters: letters, digits, _ and ., starting with a letter or digit",
}


class ConfigError(ValueError):
    """The configuration is unreadable or invalid; the message names the source and the key."""


# ---------------------------------------------------------------------------------------------
# Settings classes
# ---------------------------------------------------------------------------------------------


def _pct_to_ppm(pct: Decimal) -> int:
    return int(pct * 10_000)


@attrs.frozen
class PriceBand:
    """How far a limit price may be from the symbol's reference price, in percent (0 = off).

    ``ppm`` is the same bound in parts per million so that the check is integer arithmetic.
    """

    pct: Decimal
    ppm: int

    @classmethod
    def from_pct(cls, pct: Decimal | str) -> PriceBand:
        value = Decimal(pct)
        return cls(pct=value, ppm=_pct_to_ppm(value))

    @property
    def enabled(self) -> bool:
        return self.ppm > 0

    def allows(self, price_ticks: int, reference_ticks: int | None) -> bool:
        """True when ``price_ticks`` is within the band around ``reference_ticks``.

        No reference (no trade yet) or a disabled band allows every price. The bound is inclusive:
        ``|price - reference| * 1e6 <= reference * ppm``.
        """
        if reference_ticks is None or self.ppm <= 0:
            return True
        return abs(price_ticks - reference_ticks) * PPM <= reference_ticks * self.ppm

    def bounds(self, reference_ticks: int) -> tuple[int, int]:
        """Return the lowest and highest price in ticks the band allows around the reference."""
        if self.ppm <= 0:
            return 1, 2**63 - 1
        width = reference_ticks * self.ppm // PPM  # floor: the inclusive bound in whole ticks
        return max(1, reference_ticks - width), reference_ticks + width


@attrs.frozen
class AccountConfig:
    """One account: its login key, effective fee rates and opening balances.

    ``api_key`` is None only for the implicit fee account (it cannot log in). ``balances`` maps
    asset to integer units (``10**-asset_places[asset]``); an asset not listed starts at zero.
    """

    account: str
    api_key: str | None
    fees: FeeRates
    balances: dict[str, int] = attrs.field(factory=dict)


@attrs.frozen
class LimitsConfig:
    """Order-entry limits enforced by risk (per account)."""

    max_open_orders_per_account: int = 10_000
    max_orders_per_second: int | None = None  # None: no rate limit
    burst: int | None = None  # token-bucket size; equals max_orders_per_second unless set

    @property
    def rate_limited(self) -> bool:
        return self.max_orders_per_second is not None


@attrs.frozen
class ServerConfig:
    """The TCP server and session settings."""

    host: str = "127.0.0.1"
    port: int = 7001  # 0 lets the OS pick a free port (tests)
    max_frame: int = 65_536  # bytes, at most 16 MiB
    mailbox_size: int = 1024  # bound of each actor's mailbox (messages)
    subscriber_queue: int = 10_000  # outbound messages queued per connection before it is slow
    heartbeat_interval: float = 30.0  # seconds
    logon_timeout: float = 60.0  # seconds to log on after connecting (a person at nc reads first)
    max_auth_failures: int = 3  # failed logons before the connection is closed


@attrs.frozen
class PersistenceConfig:
    """Journal and snapshot settings."""

    data_dir: Path = Path("./data")
    fsync: str = "batch"  # "always" | "batch" | "off"
    snapshot_every_records: int = 100_000  # 0: no record-count trigger
    snapshot_every_seconds: float = 300.0  # 0: no time trigger
    segment_bytes: int = 64 * 1024 * 1024


@attrs.frozen
class StopsConfig:
    """Settings for stop and take-profit orders."""

    market_buffer_pct: Decimal = Decimal(DEFAULT_MARKET_BUFFER_PCT)
    market_buffer_ppm: int = _pct_to_ppm(Decimal(DEFAULT_MARKET_BUFFER_PCT))

    def buffered_notional(self, notional: int) -> int:
        """Return ``notional * (1 + buffer)`` rounded up (what a stop-market buy reserves, before fee)."""
        return notional + -(-notional * self.market_buffer_ppm // PPM)


@attrs.frozen
class VenueConfig:
    """The whole validated venue configuration (immutable; do not mutate the dicts)."""

    symbols: tuple[SymbolSpec, ...]
    fees: FeeRates  # default rates of accounts without an override
    fee_account: str
    accounts: tuple[AccountConfig, ...]  # includes the fee account (implicit one: api_key None)
    limits: LimitsConfig
    server: ServerConfig
    persistence: PersistenceConfig
    stops: StopsConfig
    asset_places: dict[str, int]
    price_bands: dict[str, PriceBand]  # per symbol
    source: str = DEFAULT_SOURCE
    _by_symbol: dict[str, SymbolSpec] = attrs.field(init=False, repr=False, eq=False)
    _by_account: dict[str, AccountConfig] = attrs.field(init=False, repr=False, eq=False)
    _by_key: dict[str, AccountConfig] = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_by_symbol", {s.symbol: s for s in self.symbols})
        object.__setattr__(self, "_by_account", {a.account: a for a in self.accounts})
        object.__setattr__(self, "_by_key", {a.api_key: a for a in self.accounts if a.api_key is not None})

    # -- look-ups --------------------------------------------------------------------------------

    def symbol(self, name: str) -> SymbolSpec | None:
        """Return the spec of symbol ``name`` or None."""
        return self._by_symbol.get(name)

    def account(self, name: str) -> AccountConfig | None:
        """Return the account ``name`` (including the fee account) or None."""
        return self._by_account.get(name)

    def account_for_api_key(self, api_key: str) -> AccountConfig | None:
        """Return the account whose api key is ``api_key`` or None (the fee account has none)."""
        return self._by_key.get(api_key)

    def price_band(self, symbol: str) -> PriceBand:
        """Return the price band of ``symbol`` (KeyError for an unknown symbol)."""
        return self.price_bands[symbol]

    @property
    def assets(self) -> tuple[str, ...]:
        """Every asset of the venue, in order of first appearance."""
        return tuple(self.asset_places)

    # -- asset amounts ---------------------------------------------------------------------------

    def format_asset(self, asset: str, units: int) -> str:
        """Return an amount of ``asset`` in integer units as a decimal string (KeyError if unknown)."""
        return format_scaled(units, self.asset_places[asset])

    def parse_asset(self, asset: str, value: object, field: str = "amount") -> int:
        """Return a decimal amount of ``asset`` as integer units, exactly.

        Raises :class:`NumberError` (reason ``invalid_field``) for an unknown asset, a float, a
        malformed value or more decimal places than the asset's scale. The sign is kept.
        """
        places = self.asset_places.get(asset)
        if places is None:
            raise NumberError(Reason.INVALID_FIELD, f"unknown asset {asset!r}")
        return parse_scaled(value, places, field, Reason.INVALID_FIELD)


# ---------------------------------------------------------------------------------------------
# Loading
# ---------------------------------------------------------------------------------------------


def load_config(path: str | Path | None = None) -> VenueConfig:
    """Load and validate a venue configuration; None loads the embedded demo configuration."""
    if path is None:
        text = resources.files("tradingapp").joinpath(DEFAULT_CONFIG_RESOURCE).read_text(encoding="utf-8")
        return parse_config(text, DEFAULT_SOURCE)
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{source}: cannot read configuration: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source}: not UTF-8 text: {exc}") from None
    return parse_config(text, source)


def parse_config(text: str, source: str = "<string>") -> VenueConfig:
    """Parse and validate configuration TOML text; ``source`` names it in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML: {exc}") from None
    return config_from_dict(data, source)


def config_from_dict(data: Mapping[str, Any], source: str = "<dict>") -> VenueConfig:
    """Validate an already parsed TOML document (a dict as tomllib returns it)."""
    return _Builder(source).build(data)


# ---------------------------------------------------------------------------------------------
# Validation
# ---------------------------------------------------------------------------------------------


def _type_name(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a float"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return "an array"
    return f"a {type(value).__name__}"


class _Table:
    """A TOML table being read: typed getters that name the key path in every error."""

    def __init__(self, builder: _Builder, data: Mapping[str, Any], path: str) -> None:
        self.b = builder
        self.data = data
        self.path = path

    def key(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def error(self, key: str | None, message: str) -> ConfigError:
        where = self.path if key is None else self.key(key)
        return self.b.error(where, message)

    def only(self, allowed: Iterable[str]) -> None:
        allowed_set = set(allowed)
        for key in self.data:
            if key not in allowed_set:
                hint = ", ".join(sorted(allowed_set))
                raise self.error(key, f"unknown key (allowed here: {hint})")

    def has(self, key: str) -> bool:
        return key in self.data

    def table(self, key: str) -> _Table:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise self.error(key, f"must be a table, not {_type_name(value)}")
        return _Table(self.b, value, self.key(key))

    def tables(self, key: str) -> list[_Table]:
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise self.error(key, f"must be an array of tables ([[{key}]]), not {_type_name(value)}")
        out = []
        for i, item in enumerate(value):
            where = f"{self.key(key)}[{i}]"
            if not isinstance(item, dict):
                raise self.b.error(where, f"must be a table, not {_type_name(item)}")
            out.append(_Table(self.b, item, where))
        return out

    def string(self, key: str, default: str | None = None, *, pattern: re.Pattern[str] | None = None) -> str:
        value = self.data.get(key, default)
        if value is None:
            raise self.error(key, "is required")
        if not isinstance(value, str):
            raise self.error(key, f"must be a string, not {_type_name(value)}")
        if not value:
            raise self.error(key, "must not be empty")
        if pattern is not None and not pattern.match(value):
            raise self.error(
                key, f"{value!r} is not a valid name ({_PATTERN_HELP.get(pattern, pattern.pattern)})"
            )
        return value

    def decimal(self, key: str, default: str | None = None) -> Decimal:
        """A money/price/size value: a decimal string or an integer, never a float."""
        if key not in self.data:
            if default is None:
                raise self.error(key, "is required")
            return Decimal(default)
        value = self.data[key]
        if isinstance(value, float):
            raise self.error(
                key,
                f'must be a decimal string such as "{value}", not a TOML float: '
                "a float cannot carry an exact decimal",
            )
        if isinstance(value, str) and len(value) > MAX_DECIMAL_CHARS:
            raise self.error(key, "is too long to be a number")
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise self.error(key, f"must be a decimal string or an integer, not {_type_name(value)}")
        try:
            dec = to_decimal(value, key, Reason.INVALID_FIELD)
        except NumberError:
            if isinstance(value, int):
                raise self.error(key, f"{value} is too large") from None
            raise self.error(
                key, f"{value!r} is not a decimal number (plain notation, no exponent)"
            ) from None
        return dec

    def optional_decimal(self, key: str) -> Decimal | None:
        return self.decimal(key) if key in self.data else None

    def integer(self, key: str, default: int | None, *, low: int, high: int | None = None) -> int:
        value = self.data.get(key, default)
        if value is None:
            raise self.error(key, "is required")
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(key, f"must be an integer, not {_type_name(value)}")
        if value < low or (high is not None and value > high):
            bound = f"at least {low}" if high is None else f"between {low} and {high}"
            raise self.error(key, f"must be {bound}, got {value}")
        return value

    def optional_integer(self, key: str, *, low: int, high: int | None = None) -> int | None:
        if key not in self.data:
            return None
        return self.integer(key, None, low=low, high=high)

    def seconds(self, key: str, default: float, *, allow_zero: bool = False, low: float = 0.0) -> float:
        """A duration in seconds: an integer or a float (not money, so a float is fine), at most
        :data:`MAX_SECONDS` (a timer far beyond that is a typo, and beyond the event loop's range)
        and, when ``low`` is given, at least that (a timer firing all the time is a typo too)."""
        value = self.data.get(key, default)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(key, f"must be a number of seconds, not {_type_name(value)}")
        seconds = float(value)
        if seconds != seconds or seconds in (float("inf"), float("-inf")):
            raise self.error(key, "must be finite")
        if seconds < 0 or (seconds == 0 and not allow_zero):
            raise self.error(key, f"must be {'at least' if allow_zero else 'greater than'} 0, got {value}")
        if seconds > MAX_SECONDS or (seconds < low and not (allow_zero and seconds == 0)):
            raise self.error(key, f"must be from {low:g} to {MAX_SECONDS:g} seconds, got {value}")
        return seconds


def _plain(value: Decimal) -> str:
    """Return a Decimal in plain notation (no exponent) for SymbolSpec.create."""
    return format(value, "f")


_SYMBOL_KEYS = (
    "symbol",
    "base",
    "quote",
    "tick_size",
    "lot_size",
    "min_quantity",
    "max_quantity",
    "min_notional",
    "price_band_pct",
)
_ACCOUNT_KEYS = ("account", "api_key", "maker_bps", "taker_bps", "balances")
_TOP_KEYS = ("symbols", "assets", "fees", "accounts", "limits", "stops", "server", "persistence")


class _Builder:
    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, where: str, message: str) -> ConfigError:
        return ConfigError(f"{self.source}: {where}: {message}" if where else f"{self.source}: {message}")

    # -- top level -----------------------------------------------------------------------------

    def build(self, data: Mapping[str, Any]) -> VenueConfig:
        root = _Table(self, data, "")
        root.only(_TOP_KEYS)
        symbol_tables = root.tables("symbols")
        if not symbol_tables:
            raise self.error("symbols", "at least one [[symbols]] entry is required")
        raw = [self._read_symbol(t) for t in symbol_tables]
        seen: set[str] = set()
        for t, fields in zip(symbol_tables, raw, strict=True):
            if fields["symbol"] in seen:
                raise t.error("symbol", f"duplicate symbol {fields['symbol']!r}")
            seen.add(fields["symbol"])
        asset_places = self._asset_places(raw, root.table("assets"))
        symbols = []
        bands = {}
        for t, fields in zip(symbol_tables, raw, strict=True):
            symbols.append(self._make_symbol(t, fields, asset_places))
            bands[fields["symbol"]] = fields["band"]
        fees_table = root.table("fees")
        fees_table.only(("maker_bps", "taker_bps", "fee_account"))
        default_fees = FeeRates(
            maker=self._bps(fees_table, "maker_bps", 0),
            taker=self._bps(fees_table, "taker_bps", 0),
        )
        fee_account = fees_table.string("fee_account", DEFAULT_FEE_ACCOUNT, pattern=_NAME_RE)
        accounts = self._accounts(root, default_fees, fee_account, asset_places)
        self._check_fee_pairs(fees_table, default_fees, accounts)
        self._check_totals(accounts, asset_places)
        return VenueConfig(
            symbols=tuple(symbols),
            fees=default_fees,
            fee_account=fee_account,
            accounts=tuple(accounts),
            limits=self._limits(root.table("limits")),
            server=self._server(root.table("server")),
            persistence=self._persistence(root.table("persistence")),
            stops=self._stops(root.table("stops")),
            asset_places=asset_places,
            price_bands=bands,
            source=self.source,
        )

    # -- symbols and asset scales --------------------------------------------------------------

    def _read_symbol(self, t: _Table) -> dict[str, Any]:
        t.only(_SYMBOL_KEYS)
        symbol = t.string("symbol", pattern=_NAME_RE)
        if symbol != symbol.upper():
            raise t.error(
                "symbol",
                f"{symbol!r} has lower-case letters, but the human form upper-cases symbols (so it "
                f"could not trade it); use {symbol.upper()!r}",
            )
        base = t.string("base", pattern=_ASSET_RE)
        quote = t.string("quote", pattern=_ASSET_RE)
        if base == quote:
            raise t.error("quote", f"must differ from base ({base!r})")
        tick = t.decimal("tick_size")
        lot = t.decimal("lot_size")
        for key, step in (("tick_size", tick), ("lot_size", lot)):
            if step <= 0:
                raise t.error(key, f"must be greater than zero, got {_plain(step)}")
        optional = {key: t.optional_decimal(key) for key in ("min_quantity", "max_quantity", "min_notional")}
        for key, dec in optional.items():
            if dec is not None and dec <= 0:
                raise t.error(key, f"must be greater than zero, got {_plain(dec)}")
        for key in ("min_quantity", "max_quantity"):
            dec = optional[key]
            if dec is None:
                continue
            lots, rest = divmod(dec, lot)
            if rest != 0:
                raise t.error(key, f"{_plain(dec)} is not a multiple of lot_size {_plain(lot)}")
            if lots > MAX_UNITS:
                raise t.error(key, f"{_plain(dec)} is too large (more than {MAX_UNITS} lots)")
        low, high = optional["min_quantity"], optional["max_quantity"]
        if low is not None and high is not None and high < low:
            raise t.error("max_quantity", f"{_plain(high)} is below min_quantity {_plain(low)}")
        band_pct = t.decimal("price_band_pct", DEFAULT_PRICE_BAND_PCT)
        self._check_pct(t, "price_band_pct", band_pct, high=Decimal(100))
        return {
            "symbol": symbol,
            "base": base,
            "quote": quote,
            "tick": tick,
            "lot": lot,
            **optional,
            "band": PriceBand.from_pct(band_pct),
        }

    @staticmethod
    def _check_pct(t: _Table, key: str, pct: Decimal, *, high: Decimal) -> None:
        if pct < 0 or pct > high:
            raise t.error(key, f"must be between 0 and {high}, got {_plain(pct)}")
        if pct != pct.quantize(Decimal("0.0001")):
            raise t.error(key, f"{_plain(pct)} is finer than 0.0001 percent")

    def _asset_places(self, raw: list[dict[str, Any]], assets: _Table) -> dict[str, int]:
        places: dict[str, int] = {}
        for fields in raw:
            need_base = decimal_places(fields["lot"])
            need_quote = decimal_places(fields["tick"] * fields["lot"])
            for asset, need in ((fields["base"], need_base), (fields["quote"], need_quote)):
                places[asset] = max(places.get(asset, 0), need)
        for asset, value in assets.data.items():
            where = assets.key(asset)
            if not _ASSET_RE.match(asset):
                raise self.error(where, "is not a valid asset name")
            if not isinstance(value, dict):
                raise self.error(where, f"must be a table such as {{ places = 8 }}, not {_type_name(value)}")
            entry = _Table(self, value, where)
            entry.only(("places",))
            need = places.get(asset, 0)
            wanted = entry.integer("places", need, low=0, high=MAX_ASSET_PLACES)
            if wanted < need:
                raise entry.error(
                    "places", f"{wanted} is fewer than the {need} places the symbols trading {asset} need"
                )
            places[asset] = wanted
        for asset, p in places.items():
            if p > MAX_ASSET_PLACES:
                raise self.error(
                    "symbols", f"asset {asset} would need {p} decimal places (at most {MAX_ASSET_PLACES})"
                )
        return places

    def _make_symbol(self, t: _Table, fields: dict[str, Any], asset_places: dict[str, int]) -> SymbolSpec:
        def opt(key: str) -> str | None:
            dec = fields[key]
            return None if dec is None else _plain(dec)

        try:
            return SymbolSpec.create(
                fields["symbol"],
                fields["base"],
                fields["quote"],
                _plain(fields["tick"]),
                _plain(fields["lot"]),
                min_quantity=opt("min_quantity"),
                max_quantity=opt("max_quantity"),
                min_notional=opt("min_notional"),
                base_places=asset_places[fields["base"]],
                quote_places=asset_places[fields["quote"]],
            )
        except ValueError as exc:  # includes NumberError; the checks above should leave none
            raise t.error(None, str(exc)) from None

    # -- fees and accounts -----------------------------------------------------------------------

    def _bps(self, t: _Table, key: str, default_rate: int) -> int:
        if not t.has(key):
            return default_rate
        bps = t.decimal(key)
        if abs(bps) > MAX_FEE_BPS:
            raise t.error(key, f"must be between -{MAX_FEE_BPS} and {MAX_FEE_BPS} bps, got {_plain(bps)}")
        try:
            return rate_from_bps(bps)
        except ValueError as exc:
            raise t.error(key, str(exc)) from None

    def _accounts(
        self, root: _Table, default_fees: FeeRates, fee_account: str, asset_places: dict[str, int]
    ) -> list[AccountConfig]:
        accounts: list[AccountConfig] = []
        names: set[str] = set()
        keys: dict[str, str] = {}
        for t in root.tables("accounts"):
            t.only(_ACCOUNT_KEYS)
            name = t.string("account", pattern=_NAME_RE)
            if name in names:
                raise t.error("account", f"duplicate account {name!r}")
            names.add(name)
            api_key = t.string("api_key")
            if api_key in keys:
                raise t.error("api_key", f"duplicate api_key (already used by account {keys[api_key]!r})")
            keys[api_key] = name
            fees = FeeRates(
                maker=self._bps(t, "maker_bps", default_fees.maker),
                taker=self._bps(t, "taker_bps", default_fees.taker),
            )
            balances: dict[str, int] = {}
            bal = t.table("balances")
            for asset in bal.data:
                places = asset_places.get(asset)
                if places is None:
                    known = ", ".join(asset_places)
                    raise bal.error(asset, f"unknown asset (no symbol trades it; known: {known})")
                dec = bal.decimal(asset)
                if dec < 0:
                    raise bal.error(asset, f"must not be negative, got {_plain(dec)}")
                scaled = dec.scaleb(places)
                if scaled != scaled.to_integral_value():
                    raise bal.error(
                        asset,
                        f"{_plain(dec)} is not exact at {asset}'s scale of {places} decimal places",
                    )
                units = int(scaled)
                if units > INT64_MAX:
                    raise bal.error(
                        asset,
                        f"{_plain(dec)} is too large: at {asset}'s scale of {places} decimal places at "
                        f"most {format_scaled(INT64_MAX, places)} fits a signed 64-bit integer of units",
                    )
                balances[asset] = units
            accounts.append(AccountConfig(account=name, api_key=api_key, fees=fees, balances=balances))
        if fee_account not in names:
            accounts.append(AccountConfig(account=fee_account, api_key=None, fees=default_fees, balances={}))
        return accounts

    def _check_fee_pairs(
        self, fees_table: _Table, default_fees: FeeRates, accounts: list[AccountConfig]
    ) -> None:
        if default_fees.maker + default_fees.taker < 0:
            raise fees_table.error(
                "maker_bps",
                "maker_bps + taker_bps must be at least 0 (a maker rebate must be covered by the taker fee)",
            )
        maker = min(accounts, key=lambda a: a.fees.maker)
        taker = min(accounts, key=lambda a: a.fees.taker)
        if maker.fees.maker + taker.fees.taker < 0:
            raise self.error(
                "accounts",
                f"account {maker.account!r} maker_bps {bps_text(maker.fees.maker)} plus account "
                f"{taker.account!r} taker_bps {bps_text(taker.fees.taker)} is negative: every maker "
                "rate plus every taker rate must be at least 0 so that a rebate is covered by the "
                "taker fee of the same trade",
            )

    def _check_totals(self, accounts: list[AccountConfig], asset_places: dict[str, int]) -> None:
        for asset in asset_places:
            total = sum(a.balances.get(asset, 0) for a in accounts)
            if total > INT64_MAX:
                raise self.error(
                    "accounts",
                    f"the total {asset} balance of all accounts does not fit a signed 64-bit integer "
                    f"of units (10**-{asset_places[asset]})",
                )

    # -- other sections ---------------------------------------------------------------------------

    def _limits(self, t: _Table) -> LimitsConfig:
        t.only(("max_open_orders_per_account", "max_orders_per_second", "burst"))
        max_open = t.integer("max_open_orders_per_account", 10_000, low=1)
        rate = t.optional_integer("max_orders_per_second", low=1)
        burst = t.optional_integer("burst", low=1)
        if burst is not None and rate is None:
            raise t.error("burst", "needs max_orders_per_second (the rate limit is off without it)")
        if rate is not None and burst is None:
            burst = rate
        return LimitsConfig(max_open_orders_per_account=max_open, max_orders_per_second=rate, burst=burst)

    def _server(self, t: _Table) -> ServerConfig:
        t.only(
            (
                "host",
                "port",
                "max_frame",
                "mailbox_size",
                "subscriber_queue",
                "heartbeat_interval",
                "logon_timeout",
                "max_auth_failures",
            )
        )
        d = ServerConfig()
        return ServerConfig(
            host=t.string("host", d.host),
            port=t.integer("port", d.port, low=0, high=65_535),
            max_frame=t.integer("max_frame", d.max_frame, low=MIN_FRAME, high=MAX_FRAME_LIMIT),
            mailbox_size=t.integer("mailbox_size", d.mailbox_size, low=1),
            subscriber_queue=t.integer("subscriber_queue", d.subscriber_queue, low=1),
            heartbeat_interval=t.seconds("heartbeat_interval", d.heartbeat_interval, low=MIN_TIMER_SECONDS),
            logon_timeout=t.seconds("logon_timeout", d.logon_timeout, low=MIN_TIMER_SECONDS),
            max_auth_failures=t.integer("max_auth_failures", d.max_auth_failures, low=1),
        )

    def _persistence(self, t: _Table) -> PersistenceConfig:
        t.only(("data_dir", "fsync", "snapshot_every_records", "snapshot_every_seconds", "segment_bytes"))
        d = PersistenceConfig()
        fsync = t.string("fsync", d.fsync)
        if fsync not in FSYNC_MODES:
            raise t.error("fsync", f"must be one of {', '.join(FSYNC_MODES)}, got {fsync!r}")
        return PersistenceConfig(
            data_dir=Path(t.string("data_dir", str(d.data_dir))),
            fsync=fsync,
            snapshot_every_records=t.integer("snapshot_every_records", d.snapshot_every_records, low=0),
            snapshot_every_seconds=t.seconds(
                "snapshot_every_seconds", d.snapshot_every_seconds, allow_zero=True
            ),
            segment_bytes=t.integer(
                "segment_bytes", d.segment_bytes, low=MIN_SEGMENT_BYTES, high=MAX_SEGMENT_BYTES
            ),
        )

    def _stops(self, t: _Table) -> StopsConfig:
        t.only(("market_buffer_pct",))
        pct = t.decimal("market_buffer_pct", DEFAULT_MARKET_BUFFER_PCT)
        self._check_pct(t, "market_buffer_pct", pct, high=Decimal(1000))
        return StopsConfig(market_buffer_pct=pct, market_buffer_ppm=_pct_to_ppm(pct))


def bps_text(rate: int) -> str:
    """Return a rate in millionths as basis points text (``150`` -> ``"1.5"``)."""
    return _plain((Decimal(rate) / 100).normalize())
