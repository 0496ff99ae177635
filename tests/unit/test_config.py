"""Venue configuration: loading, defaults, asset scales and every validation error."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from tradingapp.config import (
    ConfigError,
    PriceBand,
    StopsConfig,
    VenueConfig,
    config_from_dict,
    load_config,
    parse_config,
)
from tradingapp.engine.fees import FeeRates
from tradingapp.engine.numbers import NumberError

ISSUE_TOML = """
[[symbols]]
symbol = "BTC-USDT"
base = "BTC"
quote = "USDT"
tick_size = "0.01"
lot_size = "0.00001"

[fees]
maker_bps = "1"
taker_bps = "2"

[[accounts]]
account = "alice"
api_key = "alice-key"
[accounts.balances]
BTC = "10"
USDT = "100000"

[limits]
"""

SYMBOL = """
[[symbols]]
symbol = "BTC-USDT"
base = "BTC"
quote = "USDT"
tick_size = "0.01"
lot_size = "0.00001"
"""


def cfg(text: str) -> VenueConfig:
    return parse_config(text, "test.toml")


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        cfg(text)
    return str(info.value)


# -- loading ------------------------------------------------------------------------------------


def test_default_config_loads() -> None:
    c = load_config(None)
    assert [s.symbol for s in c.symbols] == ["BTC-USDT", "ETH-USDT", "SOL-USDT"]
    assert c.asset_places == {"BTC": 5, "USDT": 7, "ETH": 4, "SOL": 2}
    assert c.fees == FeeRates(maker=100, taker=200)
    names = [a.account for a in c.accounts]
    for name in ["alice", "bob", "carol", "mm", *(f"load{i}" for i in range(1, 9))]:
        account = c.account(name)
        assert account is not None
        assert account.api_key == f"{name}-key"
        assert c.account_for_api_key(f"{name}-key") is account
        assert account.balances["USDT"] > 0
    assert c.account("mm") is not None and c.account("mm").fees == FeeRates(maker=-50, taker=200)  # type: ignore[union-attr]
    assert "fees" in names and c.fee_account == "fees"
    assert c.server.port == 7001 and c.persistence.fsync == "batch"
    assert c.source == "<default config>"


def test_issue_example_loads_with_defaults() -> None:
    c = cfg(ISSUE_TOML)
    btc = c.symbol("BTC-USDT")
    assert btc is not None and c.symbol("ETH-USDT") is None
    assert btc.base_places == 5 and btc.quote_places == 7
    assert btc.base_per_lot == 1 and btc.quote_per_tick_lot == 1
    alice = c.account("alice")
    assert alice is not None
    assert alice.balances == {"BTC": 10 * 10**5, "USDT": 100_000 * 10**7}
    assert alice.fees == FeeRates(maker=100, taker=200)
    # the fee account exists implicitly, with zero balances and no login
    fees = c.account("fees")
    assert fees is not None and fees.api_key is None and fees.balances == {}
    assert c.account_for_api_key("alice-key") is alice
    assert c.account_for_api_key("nope") is None
    # defaults
    assert c.limits.max_open_orders_per_account == 10_000
    assert c.limits.max_orders_per_second is None and c.limits.burst is None
    assert not c.limits.rate_limited
    assert c.price_band("BTC-USDT") == PriceBand(Decimal(10), 100_000)
    assert c.stops.market_buffer_pct == Decimal(10)
    s = c.server
    assert (s.host, s.port, s.max_frame, s.heartbeat_interval, s.logon_timeout, s.max_auth_failures) == (
        "127.0.0.1",
        7001,
        65536,
        30.0,
        60.0,  # a person at nc has time to read `help` before logging on
        3,
    )
    p = c.persistence
    assert p.data_dir == Path("./data") and p.fsync == "batch"
    assert p.segment_bytes == 64 * 1024 * 1024


def test_load_from_file_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "venue.toml"
    path.write_text(ISSUE_TOML, encoding="utf-8")
    assert load_config(path).source == str(path)
    assert load_config(str(path)).symbol("BTC-USDT") is not None
    with pytest.raises(ConfigError, match=r"missing\.toml"):
        load_config(tmp_path / "missing.toml")


def test_invalid_toml_names_source() -> None:
    with pytest.raises(ConfigError, match=r"^test\.toml: invalid TOML"):
        cfg("[[symbols]\n")


def test_all_sections_and_optional_keys() -> None:
    c = cfg(
        SYMBOL
        + """
min_quantity = "0.0001"
max_quantity = "100"
min_notional = "5"
price_band_pct = "2.5"

[fees]
maker_bps = "-0.5"
taker_bps = "2"
fee_account = "house"

[[accounts]]
account = "mm"
api_key = "mm-key"
maker_bps = "-1"
taker_bps = 3
[accounts.balances]
BTC = 1

[[accounts]]
account = "house"
api_key = "house-key"

[limits]
max_open_orders_per_account = 50
max_orders_per_second = 100

[stops]
market_buffer_pct = "5"

[server]
host = "0.0.0.0"
port = 0
max_frame = 16777216
mailbox_size = 8
subscriber_queue = 20
heartbeat_interval = 0.5
logon_timeout = 2
max_auth_failures = 1

[persistence]
data_dir = "/tmp/x"
fsync = "always"
snapshot_every_records = 0
snapshot_every_seconds = 0
segment_bytes = 4096
"""
    )
    btc = c.symbol("BTC-USDT")
    assert btc is not None
    assert btc.min_quantity == 10 and btc.max_quantity == 100 * 10**5
    assert btc.min_notional_tick_lots == 5 * 10**7
    assert c.price_band("BTC-USDT").ppm == 25_000
    assert c.fees == FeeRates(-50, 200)
    assert c.fee_account == "house"
    house = c.account("house")
    assert house is not None and house.api_key == "house-key"  # listed: no implicit duplicate
    assert [a.account for a in c.accounts] == ["mm", "house"]
    assert c.account("mm").fees == FeeRates(-100, 300)  # type: ignore[union-attr]
    assert c.account("mm").balances == {"BTC": 10**5}  # type: ignore[union-attr]
    assert c.limits.max_orders_per_second == 100 and c.limits.burst == 100 and c.limits.rate_limited
    assert c.stops.market_buffer_ppm == 50_000
    assert c.server.port == 0 and c.server.heartbeat_interval == 0.5 and c.server.max_frame == 16 * 2**20
    assert c.persistence.fsync == "always" and c.persistence.data_dir == Path("/tmp/x")


def test_burst_override() -> None:
    c = cfg(SYMBOL + "[limits]\nmax_orders_per_second = 10\nburst = 50\n")
    assert c.limits.burst == 50


def test_config_from_dict() -> None:
    c = config_from_dict(
        {"symbols": [{"symbol": "X-Y", "base": "X", "quote": "Y", "tick_size": "1", "lot_size": 1}]}
    )
    assert c.asset_places == {"X": 0, "Y": 0}


# -- asset scales -------------------------------------------------------------------------------


def test_asset_places_are_the_max_over_symbols() -> None:
    c = cfg(
        """
[[symbols]]
symbol = "BTC-USDT"
base = "BTC"
quote = "USDT"
tick_size = "0.1"
lot_size = "0.001"

[[symbols]]
symbol = "ETH-BTC"
base = "ETH"
quote = "BTC"
tick_size = "0.00001"
lot_size = "0.01"

[[symbols]]
symbol = "SOL-USDT"
base = "SOL"
quote = "USDT"
tick_size = "0.0001"
lot_size = "0.1"
"""
    )
    # BTC: base lot 3 places, quote of ETH-BTC 0.00001*0.01 -> 7 places; USDT: max(4, 5) = 5
    assert c.asset_places == {"BTC": 7, "USDT": 5, "ETH": 2, "SOL": 1}
    btc_usdt = c.symbol("BTC-USDT")
    sol = c.symbol("SOL-USDT")
    assert btc_usdt is not None and sol is not None
    assert btc_usdt.base_places == 7 and btc_usdt.base_per_lot == 10**4
    assert btc_usdt.quote_places == 5 and btc_usdt.quote_per_tick_lot == 10
    assert sol.quote_places == 5 and sol.quote_per_tick_lot == 1


def test_assets_section_raises_scale() -> None:
    c = cfg(SYMBOL + "[assets.BTC]\nplaces = 8\n[assets.EUR]\nplaces = 2\n")
    assert c.asset_places["BTC"] == 8 and c.asset_places["EUR"] == 2
    btc = c.symbol("BTC-USDT")
    assert btc is not None and btc.base_per_lot == 1000
    assert "fewer than the 5 places" in error_of(SYMBOL + "[assets.BTC]\nplaces = 4\n")
    assert "assets.BTC.scale: unknown key" in error_of(SYMBOL + "[assets.BTC]\nscale = 8\n")


def test_format_and_parse_asset() -> None:
    c = cfg(ISSUE_TOML)
    assert c.format_asset("BTC", 123) == "0.00123"
    assert c.format_asset("USDT", 10**7) == "1.0000000"
    assert c.parse_asset("BTC", "1.5") == 150_000
    assert c.parse_asset("USDT", 2) == 2 * 10**7
    assert c.parse_asset("USDT", "-0.5") == -5 * 10**6
    with pytest.raises(NumberError):
        c.parse_asset("BTC", "0.000001")
    with pytest.raises(NumberError):
        c.parse_asset("BTC", 1.5)
    with pytest.raises(NumberError):
        c.parse_asset("DOGE", "1")
    with pytest.raises(KeyError):
        c.format_asset("DOGE", 1)


def test_price_band_and_stop_buffer_math() -> None:
    band = PriceBand.from_pct("10")
    assert band.allows(110, 100) and band.allows(90, 100)
    assert not band.allows(111, 100) and not band.allows(89, 100)
    assert band.allows(10**9, None)
    assert band.bounds(1005) == (905, 1105)
    off = PriceBand.from_pct("0")
    assert not off.enabled and off.allows(10**9, 1)
    stops = StopsConfig(Decimal(10), 100_000)
    assert stops.buffered_notional(1000) == 1100
    assert stops.buffered_notional(1001) == 1102  # 1101.1 rounds up


# -- validation errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # exact decimals
        (SYMBOL.replace('"0.01"', "0.01"), "symbols[0].tick_size: must be a decimal string"),
        (
            ISSUE_TOML.replace('BTC = "10"', "BTC = 10.5"),
            "accounts[0].balances.BTC: must be a decimal string",
        ),
        (
            ISSUE_TOML.replace('maker_bps = "1"', "maker_bps = 1.0"),
            "fees.maker_bps: must be a decimal string",
        ),
        (SYMBOL.replace('"0.01"', '"1e-2"'), "symbols[0].tick_size: '1e-2' is not a decimal number"),
        (SYMBOL.replace('"0.01"', "true"), "symbols[0].tick_size: must be a decimal string or an integer"),
        # symbols
        ("[fees]\n", "symbols: at least one"),
        (SYMBOL + SYMBOL, "symbols[1].symbol: duplicate symbol 'BTC-USDT'"),
        (SYMBOL.replace('"0.01"', '"0"'), "symbols[0].tick_size: must be greater than zero"),
        (SYMBOL.replace('"0.00001"', '"-1"'), "symbols[0].lot_size: must be greater than zero"),
        (SYMBOL.replace('quote = "USDT"', 'quote = "BTC"'), "symbols[0].quote: must differ from base"),
        (SYMBOL.replace('symbol = "BTC-USDT"\n', ""), "symbols[0].symbol: is required"),
        (SYMBOL.replace('"BTC-USDT"', '"BTC USDT"'), "symbols[0].symbol: 'BTC USDT' is not a valid name"),
        # the human form upper-cases symbols: a lower-case name could not be traded there
        (
            SYMBOL.replace('"BTC-USDT"', '"USDC.e-USDT"'),
            "symbols[0].symbol: 'USDC.e-USDT' has lower-case letters, but the human form upper-cases "
            "symbols (so it could not trade it); use 'USDC.E-USDT'",
        ),
        (SYMBOL + 'min_quantity = "0.000015"\n', "symbols[0].min_quantity: 0.000015 is not a multiple"),
        (SYMBOL + 'max_quantity = "0.000015"\n', "symbols[0].max_quantity: 0.000015 is not a multiple"),
        (SYMBOL + 'min_quantity = "2"\nmax_quantity = "1"\n', "symbols[0].max_quantity: 1 is below"),
        (SYMBOL + 'min_notional = "0"\n', "symbols[0].min_notional: must be greater than zero"),
        (SYMBOL + 'price_band_pct = "-1"\n', "symbols[0].price_band_pct: must be between 0 and 100"),
        (SYMBOL + 'price_band_pct = "0.00001"\n', "symbols[0].price_band_pct: 0.00001 is finer"),
        (SYMBOL + 'tick = "0.01"\n', "symbols[0].tick: unknown key"),
        ('symbols = "BTC-USDT"\n', "symbols: must be an array of tables"),
        # accounts
        (ISSUE_TOML + '[[accounts]]\naccount = "alice"\napi_key = "k2"\n', "accounts[1].account: duplicate"),
        (
            ISSUE_TOML + '[[accounts]]\naccount = "bob"\napi_key = "alice-key"\n',
            "accounts[1].api_key: duplicate",
        ),
        (ISSUE_TOML + '[[accounts]]\naccount = "bob"\n', "accounts[1].api_key: is required"),
        (ISSUE_TOML.replace('BTC = "10"', 'BTC = "-1"'), "accounts[0].balances.BTC: must not be negative"),
        (
            ISSUE_TOML.replace('BTC = "10"', 'BTC = "0.000001"'),
            "accounts[0].balances.BTC: 0.000001 is not exact at BTC's scale of 5 decimal places",
        ),
        (ISSUE_TOML.replace('BTC = "10"', 'DOGE = "10"'), "accounts[0].balances.DOGE: unknown asset"),
        (
            ISSUE_TOML.replace('BTC = "10"', 'BTC = "100000000000000"'),
            "accounts[0].balances.BTC: 100000000000000 is too large: at BTC's scale of 5 decimal places "
            "at most 92233720368547.75807 fits a signed 64-bit integer of units",
        ),
        (ISSUE_TOML.replace('api_key = "alice-key"', 'apikey = "x"'), "accounts[0].apikey: unknown key"),
        # fees
        (ISSUE_TOML.replace('maker_bps = "1"', 'maker_bps = "0.001"'), "fees.maker_bps: fee rate 0.001 bps"),
        (ISSUE_TOML.replace('maker_bps = "1"', 'maker_bps = "-3"'), "fees.maker_bps: maker_bps + taker_bps"),
        (ISSUE_TOML.replace('taker_bps = "2"', 'taker_bps = "20000"'), "fees.taker_bps: must be between"),
        (
            ISSUE_TOML.replace('api_key = "alice-key"', 'api_key = "alice-key"\nmaker_bps = "-2.5"'),
            "accounts: account 'alice' maker_bps -2.5 plus account 'alice' taker_bps 2 is negative",
        ),
        (
            ISSUE_TOML
            + '[[accounts]]\naccount = "mm"\napi_key = "mm-key"\nmaker_bps = "-1"\ntaker_bps = "5"\n'
            + '[[accounts]]\naccount = "cheap"\napi_key = "c-key"\ntaker_bps = "0.5"\n',
            "account 'mm' maker_bps -1 plus account 'cheap' taker_bps 0.5 is negative",
        ),
        (ISSUE_TOML.replace("[fees]", '[fees]\nfee_account = ""'), "fees.fee_account: must not be empty"),
        # limits
        (
            ISSUE_TOML + "max_open_orders_per_account = 0\n",
            "limits.max_open_orders_per_account: must be at least 1",
        ),
        (ISSUE_TOML + 'max_orders_per_second = "10"\n', "limits.max_orders_per_second: must be an integer"),
        (ISSUE_TOML + "burst = 10\n", "limits.burst: needs max_orders_per_second"),
        (ISSUE_TOML + "max_open_order_per_account = 5\n", "limits.max_open_order_per_account: unknown key"),
        # server
        (SYMBOL + "[server]\nport = 70000\n", "server.port: must be between 0 and 65535"),
        (SYMBOL + "[server]\nport = -1\n", "server.port: must be between 0 and 65535"),
        (SYMBOL + "[server]\nmax_frame = 16777217\n", "server.max_frame: must be between 1024 and 16777216"),
        (SYMBOL + "[server]\nmax_frame = 100\n", "server.max_frame: must be between"),
        (SYMBOL + "[server]\nheartbeat_interval = 0\n", "server.heartbeat_interval: must be greater than 0"),
        (SYMBOL + '[server]\nlogon_timeout = "10"\n', "server.logon_timeout: must be a number of seconds"),
        (SYMBOL + "[server]\nlogon_timeout = 1e300\n", "server.logon_timeout: must be from 0.1 to 604800"),
        (SYMBOL + "[server]\nheartbeat_interval = 1e-9\n", "server.heartbeat_interval: must be from 0.1"),
        (SYMBOL + "[server]\nmailbox_size = 0\n", "server.mailbox_size: must be at least 1"),
        (SYMBOL + "[server]\nmax_auth_failures = 0\n", "server.max_auth_failures: must be at least 1"),
        (SYMBOL + "[server]\nhostname = 'x'\n", "server.hostname: unknown key"),
        # persistence
        (
            SYMBOL + '[persistence]\nfsync = "sometimes"\n',
            "persistence.fsync: must be one of always, batch, off",
        ),
        (SYMBOL + "[persistence]\nsegment_bytes = 10\n", "persistence.segment_bytes: must be between"),
        (SYMBOL + "[persistence]\nsnapshot_every_seconds = -1\n", "persistence.snapshot_every_seconds"),
        (
            SYMBOL + "[persistence]\nsnapshot_every_seconds = 604801\n",
            "persistence.snapshot_every_seconds: must be from 0 to 604800",
        ),
        # stops
        (SYMBOL + '[stops]\nmarket_buffer_pct = "-1"\n', "stops.market_buffer_pct: must be between 0"),
        (SYMBOL + "[stops]\nmarket_buffer_pct = 10.0\n", "stops.market_buffer_pct: must be a decimal string"),
        # top level
        (SYMBOL + "[fee]\nmaker_bps = '1'\n", "fee: unknown key"),
        ("server = 5\n" + SYMBOL, "server: must be a table"),
    ],
)
def test_validation_errors(text: str, expected: str) -> None:
    message = error_of(text)
    assert message.startswith("test.toml: ")
    assert expected in message


def test_unknown_key_rejected() -> None:
    message = error_of(SYMBOL + 'tick_sise = "0.01"\n')
    assert message.startswith("test.toml: symbols[0].tick_sise: unknown key")
    assert "tick_size" in message  # lists the allowed keys


def test_float_rejected_names_key() -> None:
    message = error_of(SYMBOL.replace('lot_size = "0.00001"', "lot_size = 0.00001"))
    assert "symbols[0].lot_size" in message
    assert "float cannot carry an exact decimal" in message


def test_integer_decimals_accepted() -> None:
    c = cfg(
        SYMBOL.replace('"0.01"', "1").replace('"0.00001"', "1") + "[fees]\nmaker_bps = 0\ntaker_bps = 1\n"
    )
    assert c.asset_places == {"BTC": 0, "USDT": 0}
    assert c.fees == FeeRates(0, 100)


def test_total_balance_must_fit_int64() -> None:
    big = '[[accounts]]\naccount = "{0}"\napi_key = "{0}-key"\n[accounts.balances]\nBTC = "50000000000000"\n'
    message = error_of(SYMBOL + big.format("a") + big.format("b"))
    assert "accounts: the total BTC balance" in message


def test_documented_example_loads() -> None:
    doc = (Path(__file__).parents[2] / "docs" / "configuration.md").read_text(encoding="utf-8")
    example = doc.split("## Example", 1)[1].split("```toml", 1)[1].split("```", 1)[0]
    c = parse_config(example, "configuration.md")
    assert c.asset_places["BTC"] == 8
    assert c.limits.burst == 400
