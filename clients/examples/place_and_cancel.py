"""Place a resting limit order, amend it, look it up, cancel it.

tradingapp serve --data-dir /tmp/demo &
python -m clients.examples.place_and_cancel --port 7001
"""

from __future__ import annotations

import argparse
import asyncio
from decimal import Decimal

from clients.client import connect


async def run(host: str, port: int, account: str, symbol: str) -> None:
    client = await connect(host, port)
    try:
        await client.logon(account, f"{account}-key")
        # a passive bid 2% under the best bid (the venue refuses prices far from the last trade)
        book = await client.book(symbol, depth=1)
        best = Decimal(book["bids"][0][0]) if book["bids"] else Decimal(30000)
        price = (best * Decimal("0.98")).quantize(Decimal("0.01"))
        order = await client.submit_order(symbol, "buy", "limit", "0.01", price)  # waits for the ack
        print("ack:     ", order.status, "order_id", order.order_id)
        if order.rejected:
            print("rejected:", order.reports[0]["reject_reason"], order.reports[0]["text"])
            return
        assert order.order_id is not None
        replaced = await client.replace(symbol, order.order_id, price=price + 1)
        print("replaced:", replaced["price"], replaced["leaves_qty"])
        status = await client.order_status(symbol, order_id=order.order_id)
        print("status:  ", status["order_status"], "open orders:", len(await client.open_orders(symbol)))
        canceled = await client.cancel(symbol, order_id=order.order_id)
        print("canceled:", canceled["reason"], "-> final", (await order.done())["order_status"])
        usdt = (await client.balances())["USDT"]
        print(f"USDT:     total {usdt['total']:f} reserved {usdt['reserved']:f}")
        await client.logout()
    finally:
        await client.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=7001)
    parser.add_argument("--account", default="alice", help="demo account (its key is ACCOUNT-key)")
    parser.add_argument("--symbol", default="BTC-USDT")
    args = parser.parse_args()
    asyncio.run(run(args.host, args.port, args.account, args.symbol))


if __name__ == "__main__":
    main()
