"""The engines our core is measured against, side by side on the same workload in the same run.

``minimal``
    :class:`bench.minimal_book.MinimalBook`, the ~80-line pure-Python price-time book: the
    reference floor. Our engine does much more per operation (validation, events, STP, fees,
    stops, publication); the issue's target is to be at least as fast anyway.

``lightmatchingengine``
    The PyPI package (``pip install lightmatchingengine``, 2019.1.4, pure Python). Its API has
    ``add_order(instmt, price, qty, side)`` (price 0 means market) returning ``(order, trades)``
    and ``cancel_order(order_id, instmt)``, and it assigns order ids itself, 1, 2, 3, ... - the
    same ids as the workload, whose new orders are numbered that way (checked while preparing).
    How its output maps to our fills:

    - For each price level an aggressor crosses, it emits one trade for the aggressor (its id,
      the level's price, the quantity taken at that level) followed by one trade per resting
      order hit, oldest first (maker id, price, quantity). Each maker trade is one fill
      ``(aggressor id, maker id, price, qty)``; the aggressor's aggregate trades are skipped.
    - It has no IOC or market semantics for the remainder (everything unfilled rests): an IOC or
      market order whose remainder is left resting is cancelled right away, inside the timed
      loop. Market orders are sent with price 0. FOK is emulated by a fillability walk first.
    - Filled makers stay in its id map, so the resting count is taken from the levels.

    Its cost structure differs: the best price is ``min``/``max`` over all level keys on every
    match step (O(levels)), and cancel scans the level's list for the id (O(orders at level)).

``matching-engine`` (PyPI) requires Python >= 3.12 and cannot be installed on this machine's
Python 3.11, so it is not part of the run.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
from typing import Any

from bench import harness
from bench.harness import Engine
from bench.minimal_book import MinimalBook
from bench.workload import Fill, Op, Outcome

# -- minimal book -------------------------------------------------------------------------------

_M_CANCEL, _M_LIMIT, _M_IOC, _M_MARKET, _M_FOK = range(5)
_M_KIND = {"limit": _M_LIMIT, "ioc": _M_IOC, "market": _M_MARKET, "fok": _M_FOK}


def _minimal_prepare(ops: list[Op]) -> list[tuple[int, int, bool, int | None, int]]:
    prepared = []
    for op in ops:
        if op["op"] == "cancel":
            prepared.append((_M_CANCEL, op["id"], False, None, 0))
        else:
            kind = _M_KIND[op["op"]]
            price = None if kind == _M_MARKET else op["price"]
            prepared.append((kind, op["id"], op["side"] == "buy", price, op["qty"]))
    return prepared


def _minimal_replay(prepared: list[tuple[int, int, bool, int | None, int]]) -> tuple[float, Outcome]:
    book = MinimalBook()
    submit = book.submit
    cancel = book.cancel
    fillable = book.fillable
    clock = harness.timer()
    t0 = clock()
    for kind, oid, is_buy, price, qty in prepared:
        if kind == _M_CANCEL:
            cancel(oid)
        elif kind == _M_LIMIT:
            submit(oid, is_buy, price, qty, True)
        elif kind != _M_FOK or fillable(is_buy, price, qty):
            submit(oid, is_buy, price, qty, False)
    seconds = clock() - t0
    return seconds, Outcome.build(book.fills, len(book), book.best_bid(), book.best_ask())


MINIMAL = Engine(
    name="minimal book (bench/)",
    prepare=_minimal_prepare,
    replay=_minimal_replay,
    note="~80-line SortedDict + deque book, fills only",
    role="floor",
)

# -- lightmatchingengine ------------------------------------------------------------------------

_INSTMT = "X"


def lightmatchingengine_version() -> str | None:
    """Return the installed version of ``lightmatchingengine``, None when it cannot be imported."""
    try:
        import lightmatchingengine.lightmatchingengine  # noqa: F401
    except Exception:
        return None
    try:
        return importlib.metadata.version("lightmatchingengine")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def _lme_prepare(ops: list[Op]) -> list[tuple[int, int, int, int, int]]:
    from lightmatchingengine.lightmatchingengine import Side

    prepared = []
    expected_id = 1
    for op in ops:
        if op["op"] == "cancel":
            prepared.append((_M_CANCEL, op["id"], 0, 0, 0))
            continue
        if op["id"] != expected_id:
            raise ValueError("lightmatchingengine numbers orders itself; workload ids must be 1, 2, 3, ...")
        expected_id += 1
        kind = _M_KIND[op["op"]]
        price = 0 if kind == _M_MARKET else op["price"]
        side = Side.BUY if op["side"] == "buy" else Side.SELL
        prepared.append((kind, op["id"], price, op["qty"], side))
    return prepared


def _lme_fillable(book: Any, side: int, price: int, qty: int) -> bool:
    # FOK emulation: can the resting opposite side fill ``qty`` at ``price`` or better?
    from lightmatchingengine.lightmatchingengine import Side

    if side == Side.BUY:
        keys = sorted(p for p in book.asks if p <= price)
        levels = book.asks
    else:
        keys = sorted((p for p in book.bids if p >= price), reverse=True)
        levels = book.bids
    for key in keys:
        for order in levels[key]:
            qty -= order.leaves_qty
            if qty <= 0:
                return True
    return False


def _lme_replay(prepared: list[tuple[int, int, int, int, int]]) -> tuple[float, Outcome]:
    from lightmatchingengine.lightmatchingengine import LightMatchingEngine, OrderBook

    engine = LightMatchingEngine()
    book = engine.order_books[_INSTMT] = OrderBook()
    add_order = engine.add_order
    cancel_order = engine.cancel_order
    fills: list[Fill] = []
    append = fills.append
    clock = harness.timer()
    t0 = clock()
    for kind, oid, price, qty, side in prepared:
        if kind == _M_CANCEL:
            cancel_order(oid, _INSTMT)
            continue
        if kind == _M_FOK and not _lme_fillable(book, side, price, qty):
            engine.curr_order_id += 1  # the order id is used up all the same
            continue
        order, trades = add_order(_INSTMT, price, qty, side)
        for trade in trades:
            if trade.order_id != oid:
                append((oid, trade.order_id, trade.trade_price, trade.trade_qty))
        if order.leaves_qty and kind != _M_LIMIT:
            cancel_order(oid, _INSTMT)  # IOC / market / FOK remainder: it must not rest
    seconds = clock() - t0
    resting = sum(len(q) for q in book.bids.values()) + sum(len(q) for q in book.asks.values())
    best_bid = max(book.bids) if book.bids else None
    best_ask = min(book.asks) if book.asks else None
    return seconds, Outcome.build(fills, resting, best_bid, best_ask)


LIGHTMATCHINGENGINE = Engine(
    name="lightmatchingengine (PyPI)",
    prepare=_lme_prepare,
    replay=_lme_replay,
    note="add_order/cancel_order; IOC and market remainders cancelled",
)


def peer_engines() -> tuple[list[Engine], list[str]]:
    """Return the peers that can run here, and one note per peer that cannot."""
    engines = [MINIMAL]
    notes = []
    version = lightmatchingengine_version()
    if version is None:
        notes.append("lightmatchingengine: not importable (pip install lightmatchingengine)")
    else:
        engines.append(
            dataclasses.replace(LIGHTMATCHINGENGINE, note=f"{version}; {LIGHTMATCHINGENGINE.note}")
        )
    notes.append("matching-engine (PyPI): requires Python >= 3.12, not installable on this Python 3.11")
    return engines, notes
