"""Benchmarks for TradingApp; run them with ``python -m bench`` (see ``docs/benchmarks.md``).

Modules
    ``workload``      the standard order-flow file: locating, loading, a synthetic stand-in, the
                      fill digest and the check against the expected results
    ``harness``       timing rounds (fresh engine per run, warm-up, gc on and off), statistics
    ``core``          the in-process core suite: our ``OrderBook`` side by side with the peers,
                      plus per-operation latency
    ``peers``         the engines we compare with: the minimal book and ``lightmatchingengine``
    ``minimal_book``  the ~80-line pure-Python price-time book that is the reference floor
    ``memory``        bytes per resting order and the time to add a million of them

Nothing here is imported by ``tradingapp``; the benchmarks only drive its public book API.
"""
