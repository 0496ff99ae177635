"""The snapshot body (tradingapp.persistence.snapshot): a decoded venue equals the encoded one in
every field and behaves the same afterwards; format 1 bodies still load; others are refused."""

from __future__ import annotations

import msgpack
import pytest

from tests.unit.test_risk_snapshot import busy, future
from tests.unit.test_risk_support import BTC, Harness
from tradingapp.engine.commands import Replace
from tradingapp.engine.venue import Venue
from tradingapp.persistence.snapshot import SNAPSHOT_FORMAT, decode_snapshot, encode_snapshot


def twin_of(h: Harness, payload: bytes) -> Harness:
    twin = Harness(h.config)
    decode_snapshot(payload, twin.venue)
    twin.books = twin.venue.books
    twin.clock = h.clock
    return twin


def test_a_decoded_venue_has_every_field_of_the_original() -> None:
    h, ids = busy()
    payload = encode_snapshot(h.venue)
    assert msgpack.unpackb(payload)["format"] == SNAPSHOT_FORMAT == 2
    twin = twin_of(h, payload)
    twin.check()
    # the row form covers every order field (resting, stops, done) and every hold field
    assert twin.venue.snapshot() == h.venue.snapshot()
    assert twin.venue.state_digest() == h.venue.state_digest()
    assert encode_snapshot(twin.venue) == payload
    refused = twin.books[BTC].order(ids["refused"])  # a post-only order the book refused
    assert refused is not None and "rejected" == refused.status.value


def test_a_decoded_venue_behaves_like_the_original() -> None:
    h, ids = busy()
    twin = twin_of(h, encode_snapshot(h.venue))
    assert future(twin, ids) == future(h, ids)
    assert twin.venue.state_digest() == h.venue.state_digest()


def test_a_replace_in_flight_keeps_its_pending_reservation() -> None:
    h, ids = busy()
    h.risk.admit_replace("alice", Replace(ids["alice_bid"], "alice", price=h.px(BTC, "30000.02"), symbol=BTC))
    held = h.risk.hold("alice", ids["alice_bid"])
    assert held is not None and list(held.pending)
    twin = twin_of(h, encode_snapshot(h.venue))
    restored = twin.risk.hold("alice", ids["alice_bid"])
    assert restored is not None and list(restored.pending) == list(held.pending)
    assert twin.risk.snapshot() == h.risk.snapshot()


def test_a_format_1_body_still_loads() -> None:
    h, _ = busy()
    legacy = msgpack.packb({"format": 1, "venue": h.venue.snapshot()}, use_bin_type=True)
    fresh = Venue(h.config)
    decode_snapshot(legacy, fresh)
    assert fresh.state_digest() == h.venue.state_digest()


@pytest.mark.parametrize("body", [{"format": 3}, {"format": None}, [1, 2]])
def test_an_unknown_format_is_refused(body: object) -> None:
    h, _ = busy()
    with pytest.raises(ValueError, match="unsupported snapshot format"):
        decode_snapshot(msgpack.packb(body), Venue(h.config))


def test_an_empty_venue_round_trips() -> None:
    h = Harness()
    twin = twin_of(h, encode_snapshot(h.venue))
    assert twin.venue.snapshot() == h.venue.snapshot()
