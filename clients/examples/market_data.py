"""Print a symbol's market data (BBO, depth, trades) for a few seconds.

tradingapp serve --data-dir /tmp/demo &
python -m clients.examples.market_data --port 7001 --seconds 10
(meanwhile: tradingapp loadgen --port 7001 --rate 50 --duration 10)
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from typing import Any

from clients.client import connect


def show(msg: dict[str, Any]) -> str:
    """One line describing a feed message."""
    kind, seq = msg["type"], msg["seq"]
    if kind == "bbo":
        bid = f"{msg['bid_quantity']} @ {msg['bid_price']}"
        return f"bbo   #{seq}: {bid} / {msg['ask_quantity']} @ {msg['ask_price']}"
    if kind == "trade":
        return f"trade #{seq}: {msg['quantity']} @ {msg['price']} ({msg['aggressor_side']} aggressor)"
    bids, asks = msg["bids"], msg["asks"]
    best_bid = bids[0] if bids else None
    best_ask = asks[0] if asks else None
    return f"depth #{seq}: {len(bids)} bids (best {best_bid}), {len(asks)} asks (best {best_ask})"


async def run(host: str, port: int, symbol: str, seconds: float, depth: int) -> None:
    client = await connect(host, port)  # market data needs no logon
    try:
        async with await client.subscribe(symbol, depth=depth) as feed:
            print(f"subscribed to {symbol}: {feed.reply['channels']}")
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    async for msg in feed:
                        print(show(msg))
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7001)
    parser.add_argument("--symbol", default="BTC-USDT")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to listen (default 5)")
    parser.add_argument("--depth", type=int, default=5, help="depth levels (default 5)")
    args = parser.parse_args()
    asyncio.run(run(args.host, args.port, args.symbol, args.seconds, args.depth))


if __name__ == "__main__":
    main()
