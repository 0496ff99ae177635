"""Read-only views of a data dir: the journal as JSON lines, and every account's balances.

Both read the files without changing them (a running engine may own the directory).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import IO

from tradingapp.config import load_config
from tradingapp.persistence import records as rec
from tradingapp.persistence.store import replay_journal
from tradingapp.protocol.schema import format_timestamp
from tradingapp.storage import scan_journal

_PRICE_FIELDS = ("price", "stop_price")


def print_journal(data_dir: Path, config_path: str | None, out: IO[str]) -> int:
    """Write every journal record as one JSON object per line; return an exit status."""
    config = load_config(config_path)
    for record in scan_journal(data_dir / "journal", 0):
        row = rec.describe(rec.unpack(record.payload))
        spec = config.symbol(row.get("symbol") or "")
        if spec is not None:
            for name in _PRICE_FIELDS:
                if row.get(name) is not None:
                    row[name] = spec.format_price(row[name])
            if row.get("quantity") is not None:
                row["quantity"] = spec.format_quantity(row["quantity"])
        out.write(json.dumps({"seq": record.seq, "timestamp": format_timestamp(record.ts_ns), **row}) + "\n")
    return 0


def print_accounts(data_dir: Path, config_path: str | None, out: IO[str]) -> int:
    """Write each account's balances (total, available, reserved) as JSON lines."""
    config = load_config(config_path)
    venue, replayer, _, _ = replay_journal(config, data_dir)
    for kind, symbol in replayer.pending_steps():
        replayer.apply(0, [kind, symbol])
    fmt = config.format_asset
    for name in sorted(venue.risk.accounts):
        balances = {
            asset: {"total": fmt(asset, t), "available": fmt(asset, a), "reserved": fmt(asset, r)}
            for asset, (t, a, r) in venue.risk.balances(name).items()
        }
        out.write(json.dumps({"account": name, "balances": balances}) + "\n")
    return 0
