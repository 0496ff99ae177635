"""The standard workload: where it is, how to read it, what it must produce.

The file (``wl_200k_s42.jsonl.gz``, described in ``../shared/bench/README.md``) holds one JSON
object per operation: ``op`` (limit, ioc, market, fok, cancel), ``id``, ``side``, ``price``
(ticks), ``qty`` (lots) and ``acct``. ``wl_200k_s42.expected.json`` next to it holds what strict
price-time priority must produce. Every engine's run is reduced to an :class:`Outcome` and checked
against those values (and against the other engines of the same run).

When the shared file is absent (a fresh CI checkout), :func:`synthetic_workload` builds a small
stand-in in the same format, so the harness still runs end to end.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
import random
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.minimal_book import MinimalBook

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_WORKLOAD = REPO_ROOT.parent / "shared" / "bench" / "wl_200k_s42.jsonl.gz"
WORKLOAD_ENV = "TRADINGAPP_WORKLOAD"

Op = dict[str, Any]
Fill = tuple[int, int, int, int]  # (taker_id, maker_id, price ticks, qty lots)


def workload_path(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return the workload file: ``explicit``, else ``$TRADINGAPP_WORKLOAD``, else the shared file."""
    if explicit:
        return Path(explicit)
    env = os.environ.get(WORKLOAD_ENV)
    return Path(env) if env else DEFAULT_WORKLOAD


def expected_path(workload: Path) -> Path:
    """Return where the expected results of ``workload`` live (``X.jsonl.gz`` -> ``X.expected.json``)."""
    name = workload.name
    for suffix in (".jsonl.gz", ".jsonl"):
        if name.endswith(suffix):
            return workload.with_name(name[: -len(suffix)] + ".expected.json")
    return workload.with_name(name + ".expected.json")


def load_ops(path: Path, limit: int | None = None) -> list[Op]:
    """Read up to ``limit`` operations (all when None) from a ``.jsonl`` or ``.jsonl.gz`` file."""
    opener = gzip.open if path.suffix == ".gz" else open
    ops: list[Op] = []
    with opener(path, "rt") as f:  # type: ignore[operator]
        for line in f:
            if limit is not None and len(ops) >= limit:
                break
            if line.strip():
                ops.append(json.loads(line))
    return ops


def load_expected(workload: Path) -> dict[str, Any] | None:
    """Return the expected results for the whole of ``workload``, or None when there are none."""
    path = expected_path(workload)
    if not path.exists():
        return None
    with open(path) as f:
        data: dict[str, Any] = json.load(f)
    return data


def fill_digest(fills: list[Fill]) -> str:
    """Return the order-sensitive blake2b digest of the fills, exactly as the workload README says."""
    h = hashlib.blake2b(digest_size=16)
    pack = struct.Struct("<qqqq").pack
    for taker_id, maker_id, price, qty in fills:
        h.update(pack(taker_id, maker_id, price, qty))
    return h.hexdigest()


@dataclass
class Outcome:
    """What one replay produced, reduced to what the expected file records."""

    fills: int
    volume: int
    resting_at_end: int
    best_bid: int | None
    best_ask: int | None
    digest: str

    @classmethod
    def build(cls, fills: list[Fill], resting: int, best_bid: int | None, best_ask: int | None) -> Outcome:
        """Reduce a fill list and the final book state to an outcome."""
        return cls(
            fills=len(fills),
            volume=sum(f[3] for f in fills),
            resting_at_end=resting,
            best_bid=best_bid,
            best_ask=best_ask,
            digest=fill_digest(fills),
        )

    def differences(self, expected: dict[str, Any]) -> list[str]:
        """Return one line per field that differs from ``expected`` (empty when all agree)."""
        problems = []
        for key in ("fills", "volume", "resting_at_end", "best_bid", "best_ask", "digest"):
            if key in expected and getattr(self, key) != expected[key]:
                problems.append(f"{key}: got {getattr(self, key)!r}, expected {expected[key]!r}")
        return problems

    def as_dict(self) -> dict[str, Any]:
        """Return the outcome as plain data (the expected file's keys)."""
        return {
            "fills": self.fills,
            "volume": self.volume,
            "resting_at_end": self.resting_at_end,
            "best_bid": self.best_bid,
            "best_ask": self.best_ask,
            "digest": self.digest,
        }


def op_counts(ops: list[Op]) -> dict[str, int]:
    """Return how many operations of each kind ``ops`` holds."""
    counts: dict[str, int] = {}
    for op in ops:
        counts[op["op"]] = counts.get(op["op"], 0) + 1
    return counts


def synthetic_workload(n_ops: int, seed: int = 42, mid: int = 100_000) -> list[Op]:
    """Return ``n_ops`` operations in the standard format, for when the shared file is absent.

    The mix resembles the standard file (about 55% limit, 25% cancel, 10% IOC, 10% market); a
    :class:`MinimalBook` tracks the book so that every cancel targets a resting order and no
    market order asks for more than the opposite side's best level holds.
    """
    rng = random.Random(seed)
    book = MinimalBook()
    live: list[int] = []  # ids that may still rest (pruned lazily)
    ops: list[Op] = []
    next_id = 1
    while len(ops) < n_ops:
        r = rng.random()
        acct = rng.randint(1, 1000)
        if r < 0.25:
            while live and live[-1] not in book.orders:
                live.pop()
            if not live:
                continue
            i = rng.randrange(len(live))
            oid = live[i]
            if oid not in book.orders:
                live[i] = live[-1]
                live.pop()
                continue
            is_buy = book.orders[oid][3]
            book.cancel(oid)
            ops.append(
                {
                    "op": "cancel",
                    "id": oid,
                    "side": "buy" if is_buy else "sell",
                    "price": 0,
                    "qty": 0,
                    "acct": acct,
                }
            )
            continue
        is_buy = rng.random() < 0.5
        side = "buy" if is_buy else "sell"
        oid = next_id
        if r < 0.35:
            opposite = book.asks if is_buy else book.bids
            if not opposite:
                continue
            available = sum(order[1] for order in opposite.peekitem(0)[1])
            qty = rng.randint(1, available)
            book.submit(oid, is_buy, None, qty, rests=False)
            ops.append({"op": "market", "id": oid, "side": side, "price": 0, "qty": qty, "acct": acct})
        elif r < 0.45:
            price = mid + (rng.randint(-3, 10) if is_buy else -rng.randint(-3, 10))
            qty = rng.randint(1, 60)
            book.submit(oid, is_buy, price, qty, rests=False)
            ops.append({"op": "ioc", "id": oid, "side": side, "price": price, "qty": qty, "acct": acct})
        else:
            price = mid + (-rng.randint(-2, 30) if is_buy else rng.randint(-2, 30))
            qty = rng.randint(1, 50)
            book.submit(oid, is_buy, price, qty, rests=True)
            live.append(oid)
            ops.append({"op": "limit", "id": oid, "side": side, "price": price, "qty": qty, "acct": acct})
        next_id += 1
    return ops


def load_workload(
    path: str | os.PathLike[str] | None = None, limit: int | None = None, synthetic_ops: int = 5_000
) -> tuple[list[Op], dict[str, Any] | None, str]:
    """Return ``(ops, expected, label)``: the workload file, or a synthetic one when it is absent.

    ``expected`` is None for a partial read (``limit`` below the file's length) or a synthetic
    workload; then only the engines' agreement with each other is checked.
    """
    wl = workload_path(path)
    if not wl.exists():
        if path or os.environ.get(WORKLOAD_ENV):
            raise FileNotFoundError(f"workload file not found: {wl}")
        n = limit if limit is not None else synthetic_ops
        return synthetic_workload(n), None, f"synthetic ({n} ops, seed 42; {wl} not found)"
    ops = load_ops(wl, limit)
    expected = load_expected(wl)
    if expected is not None and expected.get("ops", len(ops)) != len(ops):
        expected = None
    label = wl.name if limit is None else f"{wl.name} (first {len(ops)} ops)"
    return ops, expected, label
