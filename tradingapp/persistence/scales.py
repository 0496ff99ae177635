"""The venue's scales, recorded in the data dir so that a changed configuration cannot misread it.

Journals and snapshots hold integers: prices in ticks, quantities in lots, balances in an asset's
smallest unit (``10**-places``). What those integers mean comes from the configuration, so
restarting with another tick or lot size, or with a symbol added that gives an asset more places
(a finer ``tick_size x lot_size`` on a quote asset), would read every stored amount on the new
scale: a balance ten times smaller, an order at another price, and nothing would say so. The
first engine to use a data dir therefore writes ``scales.json`` there (each asset's places, each
symbol's base, quote, tick and lot size), and every later start, and every tool that reads the
data dir, compares the configuration with it and refuses a difference with a
:class:`~tradingapp.config.ConfigError` naming it. Symbols and assets that are new in the
configuration change no stored amount: they are accepted and added to the file (by the engine;
the read-only tools write nothing).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from tradingapp.config import ConfigError, VenueConfig
from tradingapp.storage import FileOps
from tradingapp.storage.fileops import write_file_atomically

SCALES_FILE = "scales.json"
SCALES_FORMAT = 1
_SYMBOL_FIELDS = ("base", "quote", "tick_size", "lot_size")


def venue_scales(config: VenueConfig) -> dict[str, Any]:
    """What the stored integers of ``config``'s venue mean, as plain JSON data."""
    return {
        "format": SCALES_FORMAT,
        "assets": dict(config.asset_places),
        "symbols": {
            spec.symbol: {
                "base": spec.base,
                "quote": spec.quote,
                "tick_size": format(spec.price.step.normalize(), "f"),
                "lot_size": format(spec.quantity.step.normalize(), "f"),
            }
            for spec in config.symbols
        },
    }


def check_scales(config: VenueConfig, data_dir: Path, fs: FileOps) -> None:
    """Refuse ``config`` if ``data_dir`` was written with other scales; record new ones.

    Raises ConfigError (one line: the configuration file, what differs, what to do). A data dir
    without the file (new, or written before the file existed) takes the configuration's scales.
    A read-only ``fs`` only checks.
    """
    path = Path(data_dir) / SCALES_FILE
    current = venue_scales(config)
    try:
        stored = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        stored = None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read the venue's recorded scales: {exc}") from None
    if stored is not None:
        problem = _difference(stored, current)
        if problem is not None:
            raise ConfigError(
                f"{config.source}: {problem}; amounts in {data_dir} are stored as integers of those "
                "steps and would be misread: keep the configuration the data was written with, or "
                "start the changed venue with a new data dir"
            )
        merged = {
            "format": SCALES_FORMAT,
            "assets": {**stored["assets"], **current["assets"]},
            "symbols": {**stored["symbols"], **current["symbols"]},
        }
        if merged == stored:
            return
        current = merged
    if not fs.read_only:
        write_file_atomically(fs, path, json.dumps(current, indent=1, sort_keys=True).encode() + b"\n")


def _difference(stored: dict[str, Any], current: dict[str, Any]) -> str | None:
    """The first way ``current`` would misread data written with ``stored``, or None."""
    if stored.get("format") != SCALES_FORMAT:
        found = stored.get("format")
        return f"the data dir's {SCALES_FILE} has format {found!r} (this build reads {SCALES_FORMAT})"
    for symbol, was in stored["symbols"].items():
        now = current["symbols"].get(symbol)
        if now is None:
            return f"symbol {symbol} is in the data but not in the configuration"
        for field in _SYMBOL_FIELDS:
            if _differs(was[field], now[field]):
                return f"symbol {symbol} has {field} {now[field]}, but the data was written with {was[field]}"
    for asset, places in stored["assets"].items():
        now_places = current["assets"].get(asset)
        if now_places is None:
            return f"asset {asset} is in the data but not in the configuration"
        if now_places != places:
            return f"asset {asset} has {now_places} decimal places, but the data was written with {places}"
    return None


def _differs(was: str, now: str) -> bool:
    if was == now:
        return False
    try:
        return Decimal(was) != Decimal(now)
    except ArithmeticError:
        return True
