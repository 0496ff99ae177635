"""D1 and D2 on the journal of a real server run (the session's clean run).

D1: the same journal replayed in separate processes with ``PYTHONHASHSEED`` 0 and 1 gives the
same state digest (through the engine's recovery path: snapshot + journal) and the same book
events (a hash of every event every ``B`` record produced, replayed from seq 1).

D2: live == replay. The snapshot the live engine wrote at its clean stop is its in-memory state:
it must equal a replay of the journal from seq 1. And the outputs must be equal: every execution
report the clients received, order by order, equals the report rebuilt from the replayed events
(same builders as the book actor, same time stamps: the engine time is in the journal).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.persistence.conftest import CleanRun
from tests.persistence.harness import (
    PYTHON,
    ROOT,
    answers,
    copy_data_dir,
    full_history,
    recovered_state,
    snapshot_venue,
)
from tradingapp.config import VenueConfig
from tradingapp.engine.events import BboChanged, CancelRejected, DepthChanged, Trade
from tradingapp.engine.venue import Venue
from tradingapp.persistence import records as rec
from tradingapp.persistence.replay import Replayer
from tradingapp.reports import execution_report, fill_reports
from tradingapp.storage import scan_journal


def replay_in_process(data_dir: Path, config_path: Path, hashseed: str) -> dict[str, Any]:
    env = {**os.environ, "PYTHONHASHSEED": hashseed}
    out = subprocess.run(
        [
            PYTHON,
            "-c",
            "from tests.persistence.harness import replay_main; replay_main()",
            str(data_dir),
            str(config_path),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def test_replay_is_the_same_in_processes_with_different_hash_seeds(
    tmp_path: Path, clean_run: CleanRun
) -> None:
    results = []
    for seed in ("0", "1"):
        data_dir = copy_data_dir(clean_run.data_dir, tmp_path / f"data{seed}")
        results.append(replay_in_process(data_dir, clean_run.config_path, seed))
    a, b = results
    assert (a["hashseed"], b["hashseed"]) == ("0", "1")
    for key in ("digest", "full_digest", "events", "records", "snapshot_seq"):
        assert a[key] == b[key], f"{key} differs between PYTHONHASHSEED=0 and 1: {a[key]} != {b[key]}"
    assert a["digest"] == a["full_digest"]
    history = full_history(clean_run.config, copy_data_dir(clean_run.data_dir, tmp_path / "here"))
    assert (history.event_hash, history.venue.state_digest()) == (a["events"], a["digest"])
    assert history.records == a["records"] and len(history.trades) > 100


def test_live_state_at_clean_stop_equals_replay(clean_run: CleanRun) -> None:
    assert clean_run.exit_code == 0
    assert not clean_run.server.errors(), clean_run.server.errors()
    snap = snapshot_venue(clean_run.config, clean_run.data_dir)
    assert snap is not None
    history = full_history(clean_run.config, clean_run.data_dir)
    assert snap[0] == history.records, "the clean stop's snapshot does not cover the whole journal"
    assert snap[1].state_digest() == history.venue.state_digest()
    venue, *_ = recovered_state(clean_run.config, clean_run.data_dir)
    assert venue.state_digest() == history.venue.state_digest()


def replayed_reports(config: VenueConfig, data_dir: Path) -> dict[int, list[dict[str, Any]]]:
    """Execution reports rebuilt from a replay, per order id, as the book actor builds them."""
    venue = Venue(config)
    replayer = Replayer(venue)
    out: dict[int, list[dict[str, Any]]] = {}
    for record in scan_journal(data_dir / "journal", 0):
        payload = rec.unpack(record.payload)
        events = replayer.apply(record.ts_ns, payload)
        if not events:
            continue
        spec = config.symbol(payload[1])
        assert spec is not None
        for event in events:
            if isinstance(event, Trade):
                maker, taker = fill_reports(spec, event, record.ts_ns)
                out.setdefault(event.maker.order_id, []).append(maker)
                out.setdefault(event.taker.order_id, []).append(taker)
            elif not isinstance(event, BboChanged | DepthChanged | CancelRejected):
                out.setdefault(event.order.order_id, []).append(execution_report(spec, event, record.ts_ns))
    assert not replayer.pending_steps(), "a clean stop leaves nothing in flight"
    return out


def test_live_reports_equal_replayed_reports(clean_run: CleanRun) -> None:
    replayed = replayed_reports(clean_run.config, clean_run.data_dir)
    live: dict[int, list[dict[str, Any]]] = {}
    for trader in clean_run.flow.traders:
        for message in trader.client.received:
            if message.get("type") != "execution_report" or message.get("order_id") is None:
                continue
            if message["exec_type"] == "order_status":
                continue
            report = {k: v for k, v in message.items() if k != "request_id"}
            live.setdefault(message["order_id"], []).append(report)
    assert set(live) == set(replayed), (
        f"orders reported live but not in the replay: {sorted(set(live) - set(replayed))[:10]}, "
        f"in the replay but never reported: {sorted(set(replayed) - set(live))[:10]}"
    )
    for oid in sorted(live):
        assert live[oid] == replayed[oid], f"order {oid}: live reports differ from the replay"


def test_request_ids_only_on_direct_replies(clean_run: CleanRun) -> None:
    """docs/protocol.md: request_id is echoed on the direct replies to a message; "later events
    (fills, stop triggers, expiries) and market data do not carry it". A client matches replies
    by request_id, so a report about some other order carrying one of the client's request ids
    (taken from whatever command caused the event, possibly another account's) is misread as the
    reply to that request."""
    wrong = []
    for trader in clean_run.flow.traders:
        requests = {sent.request_id: sent.message for sent in trader.sent}
        for message in trader.client.received:
            rid = message.get("request_id")
            if rid is None or message.get("type") == "logon":
                continue
            request = requests.get(rid)
            ok = request is not None and (
                answers(request, message)
                or (
                    request["type"] == "cancel_all"
                    and message.get("exec_type") == "canceled"
                    and request.get("symbol") in (None, message.get("symbol"))
                )
            )
            if not ok:
                wrong.append((trader.client.account, request, message))
    examples = "\n".join(f"{a}: request {r}\n    got {m}" for a, r, m in wrong[:3])
    assert not wrong, f"{len(wrong)} messages carry a request_id they do not answer, e.g.\n{examples}"
