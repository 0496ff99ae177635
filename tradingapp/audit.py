"""Read-only views of a data dir: the journal as JSON lines, and every account's balances.

Both read the files without changing them (a running engine may own the directory).

The journal holds what changed state (commands, risk's decisions, when each book and settle step
ran), not the book's outputs, which are a pure function of it. So the audit trail replays the
journal as recovery does and prints, with every book step, the execution reports that step
produced, exactly as the engine built them (same timestamps), each with its account: the life
of every order, fills and fees included, can be followed from the output alone.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import IO, Any

from tradingapp.config import VenueConfig, bps_text, load_config
from tradingapp.engine.events import BboChanged, CancelRejected, DepthChanged, Event, Trade
from tradingapp.engine.symbols import SymbolSpec
from tradingapp.engine.types import Side
from tradingapp.engine.venue import Venue
from tradingapp.persistence import records as rec
from tradingapp.persistence.replay import Replayer, ReplayError
from tradingapp.persistence.scales import check_scales
from tradingapp.persistence.snapshot import decode_snapshot
from tradingapp.persistence.store import replay_journal
from tradingapp.protocol.schema import format_timestamp
from tradingapp.reports import cancel_reject, execution_report, fill_reports
from tradingapp.storage import (
    READ_ONLY_FILEOPS,
    JournalCorruptError,
    Snapshot,
    list_segments,
    list_snapshots,
    read_snapshot,
    scan_journal,
)

_PRICE_FIELDS = ("price", "stop_price")


def print_journal(data_dir: Path, config_path: str | None, out: IO[str], err: IO[str] | None = None) -> int:
    """Write every journal record as one JSON object per line, each book step with the execution
    reports it produced (``reports``); notes go to ``err`` (default: standard error). Return an
    exit status: 1 when the journal ends with damage (every record before it is printed)."""
    err = sys.stderr if err is None else err
    config = load_config(config_path)
    check_scales(config, data_dir, READ_ONLY_FILEOPS)
    segments = list_segments(data_dir / "journal")  # older segments may have been pruned
    first = segments[0][0] if segments else 1
    start = _replay_start(config, data_dir, first)
    if start is None:
        err.write("tradingapp journal: no snapshot the journal continues from; records only, no reports\n")
        replayer, after = None, 0
    else:
        venue, after = start
        replayer = Replayer(venue)
        if after:
            err.write(f"tradingapp journal: reports from seq {after + 1} (the oldest usable snapshot)\n")
    try:
        _print_records(config, data_dir, first, replayer, after, out, err)
    except JournalCorruptError as damage:  # every record before the damage was printed
        err.write(f"tradingapp journal: {damage}\n")
        return 1
    return 0


def _print_records(
    config: VenueConfig,
    data_dir: Path,
    first: int,
    replayer: Replayer | None,
    after: int,
    out: IO[str],
    err: IO[str],
) -> None:
    # Every record from ``first`` (the journal's first seq), with reports for those after ``after``.
    for record in scan_journal(data_dir / "journal", first - 1):
        fields = rec.unpack(record.payload)
        row = rec.describe(fields)
        spec = config.symbol(row.get("symbol") or "")
        if spec is not None:
            _decimals(config, spec, row, replayer)
        line = {"seq": record.seq, "timestamp": format_timestamp(record.ts_ns), **row}
        if replayer is not None and record.seq > after:
            try:
                events = replayer.apply(record.ts_ns, fields)
            except ReplayError as problem:  # a journal written with another configuration
                err.write(f"tradingapp journal: seq {record.seq}: {problem}; no reports from here\n")
                replayer = None
                events = None
            if events is not None and spec is not None:
                line["reports"] = step_reports(spec, events, record.ts_ns)
        out.write(json.dumps(line) + "\n")


def _decimals(config: VenueConfig, spec: SymbolSpec, row: dict[str, Any], replayer: Replayer | None) -> None:
    # Integers (ticks, lots, asset units, fee rates) become decimal strings, as at every edge.
    for name in _PRICE_FIELDS:
        if row.get(name) is not None:
            row[name] = spec.format_price(row[name])
    if row.get("quantity") is not None:
        row["quantity"] = spec.format_quantity(row["quantity"])
    if row.get("budget") is not None:
        row["budget"] = config.format_asset(spec.quote, row["budget"])
    rates = row.get("fee_rates")
    if rates is not None:
        row["fee_rates"] = {"maker_bps": bps_text(rates[0]), "taker_bps": bps_text(rates[1])}
    expected = row.get("expected")
    if expected is not None:
        quantity, price, stop = expected
        row["expected"] = {
            "quantity": spec.format_quantity(quantity),
            "price": None if price is None else spec.format_price(price),
            "stop_price": None if stop is None else spec.format_price(stop),
        }
    if "held" in row:  # an admission: what it reserved, in the asset a buy or a sell holds
        asset = spec.quote if row["side"] == Side.BUY.value else spec.base
        row["held"], row["held_asset"] = config.format_asset(asset, row["held"]), asset
    if "extra_held" in row and replayer is not None:  # a replace: the asset its order holds
        hold = replayer.venue.risk.hold(row["account"], row["order_id"])
        if hold is not None:
            row["extra_held"] = config.format_asset(hold.asset, row["extra_held"])
            row["held_asset"] = hold.asset


def step_reports(spec: SymbolSpec, events: list[Event], ts_ns: int) -> list[dict[str, Any]]:
    """The execution reports (and cancel rejects) one book step produced, each with ``account``."""
    reports: list[dict[str, Any]] = []
    for event in events:
        kind = type(event)
        if kind is BboChanged or kind is DepthChanged:
            continue
        if kind is Trade:
            assert isinstance(event, Trade)
            maker, taker = fill_reports(spec, event, ts_ns)
            reports.append({"account": str(event.maker.account), **maker})
            reports.append({"account": str(event.taker.account), **taker})
        elif kind is CancelRejected:
            assert isinstance(event, CancelRejected)
            reports.append({"account": str(event.account), **cancel_reject(spec, event)})
        else:
            report = execution_report(spec, event, ts_ns)
            reports.append({"account": str(event.order.account), **report})  # type: ignore[union-attr]
    return reports


def _replay_start(config: VenueConfig, data_dir: Path, first: int) -> tuple[Venue, int] | None:
    # The earliest state every journal record from seq ``first`` on can be replayed from, and its
    # seq: the configured opening state when the journal starts at seq 1 (never pruned), else the
    # oldest valid snapshot the journal continues from. None when there is neither.
    if first == 1:
        return Venue(config), 0
    for seq, path in list_snapshots(data_dir / "snapshots"):
        if seq < first - 1:
            continue
        snapshot = read_snapshot(path, seq)
        if isinstance(snapshot, Snapshot):
            venue = Venue(config)
            decode_snapshot(snapshot.payload, venue)
            return venue, seq
    return None


def print_accounts(data_dir: Path, config_path: str | None, out: IO[str], err: IO[str] | None = None) -> int:
    """Write each account's balances (total, available, reserved) as JSON lines; notes (what
    recovery logs about the files it found) go to ``err`` (default: standard error)."""
    err = sys.stderr if err is None else err
    config = load_config(config_path)
    try:
        # The CLI configures no logging, and structlog's default prints to standard output,
        # which is the JSON output here.
        with contextlib.redirect_stdout(err):
            venue, replayer, _, _ = replay_journal(config, data_dir, fs=READ_ONLY_FILEOPS)
    except JournalCorruptError as damage:  # damage the engine would refuse to start with too
        err.write(f"tradingapp accounts: {damage}\n")
        return 1
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
