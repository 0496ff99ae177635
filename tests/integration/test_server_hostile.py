"""Hostile input (reliability plan C5): each input gets a specific reject or a clean close, while a
"canary" session keeps trading and its resting orders stay untouched."""

from __future__ import annotations

import asyncio
import json
import random
import struct
import time
from collections.abc import AsyncIterator
from typing import Any

import msgpack
import pytest

from tests.integration.conftest import Client, EngineHarness, check_shape, eventually

SYM = "BTC-USDT"
MAX_FRAME = 65536


class Canary:
    """bob, with two resting orders, placing and canceling an order every few ms in the background."""

    def __init__(self, client: Client) -> None:
        self.c = client
        self.resting: list[dict[str, Any]] = []
        self.latencies: list[float] = []
        self.stop = asyncio.Event()
        self.task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self.resting = [
            await self.c.order(SYM, "sell", "limit", "0.1", "31000"),
            await self.c.order(SYM, "buy", "limit", "0.1", "29000"),
        ]
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while not self.stop.is_set():
            t0 = time.monotonic()
            new = await self.c.order(SYM, "buy", "limit", "0.01", "29500")
            assert new["exec_type"] == "new", new
            await self.c.send({"type": "cancel", "order_id": new["order_id"]})
            await self.c.recv("execution_report", order_id=new["order_id"], exec_type="canceled")
            self.latencies.append(time.monotonic() - t0)
            await asyncio.sleep(0.005)

    async def check(self) -> None:
        """The canary kept trading throughout and its resting orders are as they were."""
        self.stop.set()
        assert self.task is not None
        await asyncio.wait_for(self.task, 10)  # re-raises whatever went wrong in the loop
        assert len(self.latencies) >= 1, "the canary never completed a round trip"
        assert max(self.latencies) < 2.0, f"canary round trip up to {max(self.latencies):.3f}s"
        orders = await self.c.open_orders()
        assert [(o["order_id"], o["leaves_qty"], o["order_status"]) for o in orders] == [
            (r["order_id"], r["leaves_qty"], "new") for r in self.resting
        ]
        # and it still gets new acks
        assert (await self.c.order(SYM, "buy", "limit", "0.01", "29400"))["exec_type"] == "new"


@pytest.fixture
async def canary(venue: EngineHarness) -> AsyncIterator[Canary]:
    c = Canary(await venue.logged_on("bob"))
    await c.start()
    yield c
    await c.check()


def frame(body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + body


def pack(obj: Any) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


async def expect_fatal(c: Client, reason: str) -> dict[str, Any]:
    """One reject with ``reason``, then the server closes the connection."""
    rej = await c.recv("reject")
    assert rej["reason"] == reason, rej
    await c.wait_closed()
    assert [m["type"] for m in c.received] == ["reject"], c.received
    return rej


# -- binary framing --------------------------------------------------------------------------------


async def test_length_zero_is_fatal(venue: EngineHarness, canary: Canary) -> None:
    c = await venue.client()
    await c.send_raw(b"\x00\x00\x00\x00")
    await expect_fatal(c, "malformed_message")


@pytest.mark.parametrize("length", [MAX_FRAME + 1, 2**24, 2**31, 2**32 - 1])
async def test_length_over_max_is_fatal_before_the_body(
    venue: EngineHarness, canary: Canary, length: int
) -> None:
    c = await venue.client()
    # a first frame makes the connection binary (a first byte other than 0x00 would mean JSON-lines)
    await c.send({"type": "test_request", "test_request_id": "first"})
    await c.recv("heartbeat")
    await c.send_raw(struct.pack(">I", length))  # header only: the server must not wait for the body
    rej = await c.recv("reject")
    assert rej["reason"] == "frame_too_large", rej
    assert str(length) in rej["text"]
    await c.wait_closed()


async def test_oversized_length_as_first_bytes(harness: EngineHarness) -> None:
    """0xFFFFFFFF as the very first bytes is not binary (first byte not 0x00): JSON-lines mode,
    refused at once as invalid UTF-8, and as no logon follows, the logon timeout closes the
    connection (never a 4 GiB read)."""
    from tests.integration.conftest import with_server
    from tradingapp.config import load_config

    await harness.start(with_server(load_config(), logon_timeout=0.5))
    for header in (struct.pack(">I", 2**32 - 1), struct.pack(">I", 2**31)):
        c = await harness.client()
        await c.send_raw(header)
        t0 = time.monotonic()
        await c.wait_closed(timeout=5)
        assert time.monotonic() - t0 < 3
        for m in c.received:
            check_shape(m)
            assert m["type"] == "reject"


async def test_length_at_max_is_read(venue: EngineHarness, canary: Canary) -> None:
    """A frame of exactly max_frame bytes is read (then refused by validation, not framing)."""
    c = await venue.logged_on("alice")
    base = len(pack({"type": "help", "request_id": "big", "pad": ""}))
    body = pack({"type": "help", "request_id": "big", "pad": "p" * (MAX_FRAME - base - 2)})  # str16 header
    assert len(body) == MAX_FRAME
    await c.send_raw(frame(body))
    rej = await c.recv("reject", request_id="big")
    assert rej["reason"] == "invalid_field" and rej["field"] == "pad"
    await c.sync()


@pytest.mark.parametrize(
    "body,what",
    [
        (b"\xc0", "nil"),
        (pack(7), "int"),
        (pack([1, 2, 3]), "list"),
        (pack("type"), "str"),
        (pack({1: "x"}), "non-string key"),
        (b"\x81\xa4type\xa3\xff\xfe\xfd", "invalid utf-8"),
        (pack({"type": "heartbeat"}) + pack({"type": "heartbeat"}), "two objects"),
        (b"\x81\xa4type\xd4\x05\x01", "ext type"),
        (b"\xc1", "reserved byte"),
        (b"\x91" * 1000 + b"\xc0", "1000-deep nesting"),
        (b"\xdd\xff\xff\xff\xff", "array of 2^32-1 items"),
        (pack({f"k{i}": i for i in range(33)}), "33 keys"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
async def test_bad_msgpack_bodies_are_fatal(
    venue: EngineHarness, canary: Canary, body: bytes, what: str
) -> None:
    c = await venue.logged_on("alice")
    await c.send_raw(frame(body))
    rej = await c.recv("reject")
    assert rej["reason"] == "malformed_message", (what, rej)
    await c.wait_closed()


async def test_length_one_frames(venue: EngineHarness, canary: Canary) -> None:
    # 1-byte body: an empty map is a well-formed map without a type (not fatal)
    c = await venue.client()
    await c.send_raw(frame(b"\x80"))
    rej = await c.recv("reject")
    assert (rej["reason"], rej.get("field")) == ("missing_field", "type")
    await c.sync()
    # 1-byte body that is not a map: fatal
    d = await venue.client()
    await d.send_raw(frame(b"\x01"))
    await expect_fatal(d, "malformed_message")


@pytest.mark.parametrize("cut", ["one header byte", "header only", "half the body"])
async def test_truncated_frame_then_eof_applies_nothing(
    venue: EngineHarness, canary: Canary, cut: str
) -> None:
    c = await venue.logged_on("carol")
    data = frame(
        pack(
            {
                "type": "new_order",
                "client_order_id": "half",
                "symbol": SYM,
                "side": "buy",
                "order_type": "limit",
                "quantity": "0.1",
                "price": "30000",
            }
        )
    )
    part = {"one header byte": data[:1], "header only": data[:4], "half the body": data[: len(data) // 2]}[
        cut
    ]
    await c.send_raw(part)
    c.writer.write_eof()
    # the server closes its side too (clean close, no reply needed)
    await c.wait_closed(timeout=10)
    assert all(m["type"] != "execution_report" for m in c.received)
    other = await venue.logged_on("carol")
    assert await other.open_orders() == []
    assert venue.engine is not None
    engine = venue.engine
    await eventually(lambda: all(s.account != "carol" or not s.closed for s in engine.sessions))


async def test_random_bytes(venue: EngineHarness, canary: Canary) -> None:
    """Random garbage after a binary first byte: only well-formed rejects, then a close (or the
    server waits for more of a frame, which we cut)."""
    rng = random.Random(1234)
    for i in range(30):
        c = await venue.client()
        junk = b"\x00" + bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 300)))
        if i % 3 == 0:  # a plausible length with a garbage body
            body = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 100)))
            junk = frame(body)
        await c.send_raw(junk)
        await c.send_raw(b"\x00\x00\x00\x00")  # make sure something fatal follows if nothing was
        await c.wait_closed(timeout=5)
        for m in c.received:
            check_shape(m)
            assert m["type"] == "reject" and m["reason"] in (
                "malformed_message",
                "frame_too_large",
                "missing_field",
                "invalid_field",
                "unknown_message_type",
            ), m
        await c.close()


async def test_random_bytes_json_mode(venue: EngineHarness, canary: Canary) -> None:
    rng = random.Random(99)
    c = await venue.client("json")
    for _ in range(50):
        line = bytes(rng.choice(b'{}[]":,abc 0123\xff\xfe\\') for _ in range(rng.randint(1, 80))).replace(
            b"\n", b""
        )
        await c.send_raw(b"x" + line + b"\n")  # never starts with 0x00
    await c.send({"type": "test_request", "test_request_id": "alive"})
    await c.recv("heartbeat", test_request_id="alive", timeout=5)
    for m in c.received:
        check_shape(m)
    assert {m["type"] for m in c.received} <= {"reject", "heartbeat", "help"}


# -- schema and business rejects (connection stays open) -------------------------------------------


BAD_QUANTITIES_BINARY = [
    (True, "bool"),
    (False, "bool false"),
    ([1], "list"),
    ({"v": 1}, "map"),
    (1.5, "float"),
    (float("nan"), "float nan"),
    (float("inf"), "float inf"),
    (None, "nil"),
    ("NaN", "NaN string"),
    ("Infinity", "Infinity string"),
    ("-Infinity", "-Infinity string"),
    ("inf", "inf string"),
    ("1e5", "exponent"),
    ("0x10", "hex"),
    ("", "empty"),
    (" 1", "space"),
    ("1" * 41, "41 digits"),
    (2**64 - 1, "2^64-1"),
    (2**63, "2^63"),
    (-(2**63), "-2^63"),
    ("18446744073709551616", "2^64 string"),
    ("0.000000000000000000000000000001", "tiny"),
    (0, "zero"),
    (-1, "negative"),
]


@pytest.mark.parametrize("qty,what", BAD_QUANTITIES_BINARY, ids=[w for _, w in BAD_QUANTITIES_BINARY])
async def test_bad_quantity_binary(venue: EngineHarness, canary: Canary, qty: Any, what: str) -> None:
    c = await venue.logged_on("alice")
    await c.send(
        {
            "type": "new_order",
            "client_order_id": "q",
            "symbol": SYM,
            "side": "buy",
            "order_type": "limit",
            "quantity": qty,
            "price": "30000",
            "request_id": "bad",
        }
    )
    reply = await c.recv(request_id="bad")
    if reply["type"] == "reject":
        assert reply["reason"] in ("invalid_field", "missing_field"), reply
        assert reply["field"] == "quantity", reply
    else:
        assert reply["type"] == "execution_report" and reply["exec_type"] == "rejected", reply
        assert reply["reject_reason"] in ("invalid_quantity", "quantity_off_lot", "quantity_above_maximum"), (
            reply
        )
    assert await c.open_orders() == []
    await c.sync()  # still open


BAD_QUANTITIES_JSON = [
    ("true", "bool"),
    ("[1]", "list"),
    ('{"v": 1}', "map"),
    ("null", "null"),
    ("NaN", "bare NaN"),
    ("Infinity", "bare Infinity"),
    ("-Infinity", "bare -Infinity"),
    ('"NaN"', "NaN string"),
    ('"Infinity"', "Infinity string"),
    ("18446744073709551616", "2^64"),
    ("1" * 41, "41 digits"),
    ("1e50", "1e50"),
    ("1e-50", "1e-50"),
    ("5e-324", "5e-324"),
    ("1e308", "1e308"),
    ("-0.0", "-0.0"),
]


@pytest.mark.parametrize("qty,what", BAD_QUANTITIES_JSON, ids=[w for _, w in BAD_QUANTITIES_JSON])
async def test_bad_quantity_json(venue: EngineHarness, canary: Canary, qty: str, what: str) -> None:
    c = await venue.logged_on("alice", "json")
    await c.send_line(
        '{"type": "new_order", "client_order_id": "q", "symbol": "BTC-USDT", "side": "buy",'
        f' "order_type": "limit", "quantity": {qty}, "price": "30000", "request_id": "bad"}}'
    )
    reply = await c.recv(pred=lambda m: m["type"] in ("reject", "execution_report"))
    if reply["type"] == "reject":
        assert reply["reason"] in ("invalid_field", "missing_field", "malformed_message"), reply
        if reply["reason"] != "malformed_message":
            assert reply["field"] == "quantity", reply
    else:
        assert reply["exec_type"] == "rejected", reply
        assert reply["reject_reason"] in ("invalid_quantity", "quantity_off_lot", "quantity_above_maximum"), (
            reply
        )
    assert await c.open_orders() == []


async def test_wrong_types_in_other_fields(venue: EngineHarness, canary: Canary, mode: str) -> None:
    c = await venue.logged_on("alice", mode)
    base = {
        "type": "new_order",
        "client_order_id": "w",
        "symbol": SYM,
        "side": "buy",
        "order_type": "limit",
        "quantity": "0.1",
        "price": "30000",
    }
    cases = [
        ({"side": "up"}, "invalid_side", "side"),
        ({"side": 1}, "invalid_side", "side"),
        ({"order_type": "gtd"}, "invalid_order_type", "order_type"),
        ({"price": True}, "invalid_field", "price"),
        ({"price": [30000]}, "invalid_field", "price"),
        ({"post_only": "yes"}, "invalid_field", "post_only"),
        ({"post_only": 1}, "invalid_field", "post_only"),
        ({"client_order_id": ""}, "invalid_client_order_id", "client_order_id"),
        ({"client_order_id": "x" * 65}, "invalid_client_order_id", "client_order_id"),
        ({"client_order_id": "has space"}, "invalid_client_order_id", "client_order_id"),
        ({"client_order_id": "caf\u00e9"}, "invalid_client_order_id", "client_order_id"),
        ({"client_order_id": "x" * 10240}, "invalid_client_order_id", "client_order_id"),
        ({"symbol": 5}, "invalid_field", "symbol"),
        ({"request_id": [1]}, "invalid_field", "request_id"),
        ({"request_id": 2**64 - 1}, "invalid_field", "request_id"),
        ({"post_onyl": True}, "invalid_field", "post_onyl"),
        ({"self_trade_prevention": "never"}, "invalid_field", "self_trade_prevention"),
    ]
    for i, (change, reason, field) in enumerate(cases):
        rid = f"w{i}"
        msg = {**base, "request_id": rid, **change}
        await c.send(msg)
        reply = await c.recv(
            "reject",
            pred=lambda m, rid=rid, field=field: m.get("request_id") == rid or m.get("field") == field,
        )
        assert (reply["reason"], reply.get("field")) == (reason, field), (change, reply)
        assert reply["ref_type"] == "new_order", reply
    assert await c.open_orders() == []


async def test_missing_fields_and_unknown_things(venue: EngineHarness, canary: Canary, mode: str) -> None:
    c = await venue.logged_on("alice", mode)
    full = {
        "type": "new_order",
        "client_order_id": "m",
        "symbol": SYM,
        "side": "buy",
        "order_type": "limit",
        "quantity": "0.1",
        "price": "30000",
    }
    for i, field in enumerate(("client_order_id", "symbol", "side", "order_type", "quantity")):
        msg = {k: v for k, v in full.items() if k != field}
        await c.send({**msg, "request_id": i})
        rej = await c.recv("reject", request_id=i)
        assert (rej["reason"], rej["field"]) == ("missing_field", field), rej
    await c.send({**full, "price": None, "request_id": "np"})
    assert (await c.recv("reject", request_id="np"))["reason"] == "missing_price"
    await c.send({**full, "order_type": "stop_loss", "price": None, "request_id": "ns"})
    assert (await c.recv("reject", request_id="ns"))["reason"] == "missing_stop_price"
    await c.send({"type": "cancel", "request_id": "nc"})
    assert (await c.recv("reject", request_id="nc"))["reason"] == "missing_field"
    await c.send({"type": "order_status", "order_id": 1, "request_id": "os"})
    rej = await c.recv("reject", request_id="os")
    assert (rej["reason"], rej["field"]) == ("missing_field", "symbol")
    await c.send({**full, "symbol": "DOGE-USDT", "request_id": "us"})
    rep = await c.recv("execution_report", request_id="us")
    assert rep["exec_type"] == "rejected" and rep["reject_reason"] == "unknown_symbol"
    await c.send({"type": "order_status", "symbol": "DOGE-USDT", "order_id": 1, "request_id": "us2"})
    assert (await c.recv(request_id="us2")).get("reason") == "unknown_symbol"
    await c.send({"type": "cancel", "symbol": "DOGE-USDT", "order_id": 1, "request_id": "us3"})
    assert (await c.recv(request_id="us3", check=False)).get("reason") == "unknown_symbol"
    await c.send({"type": "transfer", "amount": "1000000", "request_id": "ut"})
    assert (await c.recv("reject", request_id="ut"))["reason"] == "unknown_message_type"
    await c.send({"type": 5, "request_id": "ut2"})
    assert (await c.recv("reject", request_id="ut2"))["reason"] in ("unknown_message_type", "invalid_field")
    await c.send({"type": "cancel", "order_id": 2**64 - 1, "request_id": "big"})
    rej = await c.recv("reject", request_id="big")
    assert (rej["reason"], rej["field"]) == ("invalid_field", "order_id")
    await c.send({"type": "cancel", "order_id": -1, "request_id": "neg"})
    assert (await c.recv("reject", request_id="neg"))["field"] == "order_id"
    assert await c.open_orders() == []


# -- JSON-lines framing ------------------------------------------------------------------------------


async def test_invalid_json_line_keeps_connection_open(venue: EngineHarness, canary: Canary) -> None:
    c = await venue.logged_on("alice", "json")
    for line in (
        b'{"type": "balances"',
        b'{"type": nope}',
        b"[1, 2]",
        b'{"a": 1} {"b": 2}',
        b"{\xff\xfe}",
        b'"just a string"',
    ):
        await c.send_raw(line + b"\n")
        rej = await c.recv("reject")
        assert rej["reason"] == "malformed_message", (line, rej)
    await c.sync()
    assert (await c.order(SYM, "buy", "limit", "0.1", "29000"))["exec_type"] == "new"


async def test_json_line_over_max_is_fatal(venue: EngineHarness, canary: Canary) -> None:
    c = await venue.logged_on("alice", "json")
    await c.send_raw(b'{"type": "help", "pad": "' + b"x" * (MAX_FRAME + 10))  # no newline yet
    rej = await c.recv("reject", pred=lambda m: m["reason"] == "frame_too_large")
    assert rej["reason"] == "frame_too_large"
    await c.wait_closed()


async def test_nul_in_the_middle_of_a_json_connection(venue: EngineHarness, canary: Canary) -> None:
    c = await venue.client("json")
    await c.send_raw(b"ping 1\n\x00\x00\x00\x05hello\nping 2\n")
    await c.recv("heartbeat", test_request_id="1")
    await c.recv("reject")
    await c.recv("heartbeat", test_request_id="2")


# -- churn ---------------------------------------------------------------------------------------------


async def test_connection_churn(venue: EngineHarness, canary: Canary) -> None:
    assert venue.engine is not None
    engine = venue.engine
    baseline = len(engine.sessions)
    for i in range(200):
        _, writer = await asyncio.open_connection(venue.host, venue.port)
        kind = i % 4
        if kind == 1:
            writer.write(frame(pack({"type": "logon", "account": "alice", "api_key": "alice-key"})))
        elif kind == 2:
            writer.write(b"logon alice alice-key\nbuy BTC-USDT 0.01 limit 29000\n")
        elif kind == 3:
            writer.write(b"\x00\x00")  # half a header
        if kind:
            await writer.drain()
        writer.close()
        await writer.wait_closed()
    await eventually(
        lambda: len(engine.sessions) == baseline, 10, what=f"sessions {len(engine.sessions)} vs {baseline}"
    )
    # the accept loop still answers at once
    c = await venue.logged_on("alice")
    orders = await c.open_orders()
    assert all(o["symbol"] == SYM for o in orders)
    await c.send({"type": "cancel_all"})
    await eventually(lambda: _no_orders(c), 10)


async def _no_orders(c: Client) -> bool:
    return await c.open_orders() == []


async def test_json_nested_depth(venue: EngineHarness, canary: Canary) -> None:
    c = await venue.client("json")
    await c.send_raw(b'{"type": "help", "x": ' + b"[" * 5000 + b"]" * 5000 + b"}\n")
    rej = await c.recv("reject")
    assert rej["reason"] in ("malformed_message", "invalid_field")
    await c.send_raw(json.dumps({"type": "test_request", "test_request_id": "after"}).encode() + b"\n")
    await c.recv("heartbeat", test_request_id="after")


async def test_order_flood_is_rate_limited_per_session(harness: EngineHarness) -> None:
    """With a rate limit configured, a burst beyond it is refused (rate_limited); others are not."""
    import attrs

    from tradingapp.config import load_config

    config = load_config()
    await harness.start(
        attrs.evolve(config, limits=attrs.evolve(config.limits, max_orders_per_second=20, burst=20))
    )
    flooder = await harness.logged_on("alice")
    other = await harness.logged_on("bob")
    cids = []
    for _ in range(60):
        cid = flooder.next_cid("fl")
        cids.append(cid)
        await flooder.send(
            {
                "type": "new_order",
                "client_order_id": cid,
                "symbol": SYM,
                "side": "buy",
                "order_type": "limit",
                "quantity": "0.001",
                "price": "29000",
            }
        )
    outcomes = []
    for cid in cids:
        rep = await flooder.recv(
            "execution_report", client_order_id=cid, pred=lambda m: m["exec_type"] in ("new", "rejected")
        )
        outcomes.append(rep["exec_type"] if rep["exec_type"] == "new" else rep["reject_reason"])
    assert outcomes.count("rate_limited") >= 30, outcomes
    assert 20 <= outcomes.count("new") <= 30, outcomes
    # another session is not affected, and queries are not rate limited
    assert (await other.order(SYM, "sell", "limit", "0.001", "31000"))["exec_type"] == "new"
    assert len(await flooder.open_orders()) == outcomes.count("new")


def _nested_list(depth: int) -> bytes:
    """msgpack for ``[[[...[nil]...]]]`` nested ``depth`` deep (the unpacker allows about 1024)."""
    return b"\x91" * depth + b"\xc0"


@pytest.mark.parametrize("mode", ["binary", "json"])
@pytest.mark.parametrize("field", ["type", "side"])
async def test_deeply_nested_value_gets_a_reject(
    venue: EngineHarness, canary: Canary, mode: str, field: str
) -> None:
    """A value nested nearly as deep as the decoder allows, in a field whose bad value is quoted
    back in the reject text: a specific reject, and the connection keeps serving. (The JSON
    decoder may already refuse this depth as malformed; msgpack decodes it.)"""
    c = await venue.logged_on("alice", mode)
    depth = 1000
    head = {
        "type": "new_order",
        "client_order_id": "deep",
        "symbol": SYM,
        "order_type": "limit",
        "quantity": "0.1",
        "price": "30000",
        "side": "buy",
        "request_id": "deep",
    }
    del head[field]
    if mode == "binary":
        body = b"\x88" + b"".join(pack(k) + pack(v) for k, v in head.items())
        await c.send_raw(frame(body + pack(field) + _nested_list(depth)))
    else:
        text = json.dumps(head)[:-1] + f', "{field}": ' + "[" * depth + "]" * depth + "}"
        await c.send_raw(text.encode() + b"\n")
    rej = await c.recv("reject")
    expected = {"type": "unknown_message_type", "side": "invalid_side"}[field]
    if not (mode == "json" and rej["reason"] == "malformed_message"):
        assert (rej["reason"], rej.get("field")) == (expected, field), rej
    assert len(rej["text"]) < 200, rej
    await c.send({"type": "test_request", "test_request_id": "after"})
    await c.recv("heartbeat", test_request_id="after")
    assert await c.open_orders() == []


async def test_decoder_failure_is_answered_before_closing(
    venue: EngineHarness, canary: Canary, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Should the decoder itself fail on some input, the client gets an ``internal_error`` reject
    and a clean close (not a silently dropped connection); other sessions are unaffected."""
    from tradingapp.protocol.framing import ServerCodec

    real_feed = ServerCodec.feed

    def failing_feed(self: ServerCodec, data: bytes) -> list[Any]:
        if b"boom" in data:
            raise RuntimeError("decoder bug")
        return real_feed(self, data)

    monkeypatch.setattr(ServerCodec, "feed", failing_feed)
    c = await venue.client()
    await c.send({"type": "test_request", "test_request_id": "boom"})
    rej = await c.recv("reject")
    assert rej["reason"] == "internal_error", rej
    await c.wait_closed()


@pytest.mark.parametrize("header", [struct.pack(">I", 2**32 - 1), struct.pack(">I", 2**31), b"ping \xff"])
async def test_invalid_utf8_is_refused_before_the_newline(
    venue: EngineHarness, canary: Canary, header: bytes
) -> None:
    """Bytes that cannot be UTF-8 text (such as a binary length header whose first byte is not
    0x00) are refused at once, not when a newline finally comes; the rest of that line is then
    skipped without a second reject, and the connection keeps serving."""
    c = await venue.client("json")
    await c.send_raw(header)  # no newline
    rej = await c.recv("reject", timeout=3)
    assert rej["reason"] == "malformed_message", rej
    await c.send_raw(b"more of the same line\nping after\n")
    await c.recv("heartbeat", test_request_id="after")
    assert [m["type"] for m in c.received] == ["reject", "heartbeat"], c.received


@pytest.mark.parametrize(
    "stop_price,reason,text",
    [
        ("1e400", "invalid_price", "stop_price '1e400' is not a decimal number"),
        ("29000.001", "price_off_tick", "stop_price 29000.001 is not a multiple of 0.01"),
        ("0", "invalid_price", "stop_price must be greater than zero"),
    ],
)
async def test_bad_stop_price_is_named_in_the_reject(
    venue: EngineHarness, stop_price: str, reason: str, text: str
) -> None:
    """The text of a refused stop_price names stop_price (not price, whose grid it shares)."""
    c = await venue.logged_on("alice")
    report = await c.order(SYM, "sell", "stop_loss", "0.1", stop_price=stop_price)
    assert (report["exec_type"], report["reject_reason"], report["text"]) == ("rejected", reason, text)
    assert report["stop_price"] is None
    rep = await c.order(SYM, "sell", "stop_limit", "0.1", "29000", stop_price="29500")
    await c.send({"type": "replace", "symbol": SYM, "order_id": rep["order_id"], "stop_price": stop_price})
    refused = await c.recv("cancel_reject", order_id=rep["order_id"])
    assert (refused["reason"], refused["text"]) == (reason, text), refused
