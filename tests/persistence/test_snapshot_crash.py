"""R2/R3 through the engine: a crash during a snapshot, a stray ``.tmp``, a damaged newest
snapshot. Recovery must use the newest *valid* snapshot plus the journal after it and reach the
same state digest as a replay of the whole journal from seq 1.

The last test is R2 proper: a real server with snapshots every 1,000 records, the mixed flow,
and a SIGKILL aimed inside the snapshot writer (after each of its four steps in turn), four
rounds on one data directory, each checked like the kill -9 rounds.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path

import pytest

import tradingapp.persistence.store as store_module
from tests.persistence.conftest import CleanRun
from tests.persistence.harness import (
    KillCampaign,
    copy_data_dir,
    full_history,
    journal_records,
    recovered_state,
    replay_records,
    seeded_random,
)
from tradingapp.config import VenueConfig
from tradingapp.persistence.store import EngineStore, encode_snapshot
from tradingapp.storage import SNAPSHOT_STEPS, list_snapshots, prune, write_snapshot
from tradingapp.storage.crashsim import SimulatedCrash
from tradingapp.storage.snapshots import SNAPSHOT_HEADER_SIZE


@pytest.fixture(scope="module")
def full_digest(clean_run: CleanRun) -> str:
    return full_history(clean_run.config, clean_run.data_dir).venue.state_digest()


def stray_tmps(data_dir: Path) -> list[str]:
    return [p.name for p in (data_dir / "snapshots").iterdir() if p.suffix == ".tmp"]


def test_the_clean_run_left_two_snapshots_and_a_complete_journal(
    clean_run: CleanRun, full_digest: str
) -> None:
    snaps = list_snapshots(clean_run.data_dir / "snapshots")
    records = journal_records(clean_run.data_dir)
    assert len(snaps) == 2 and snaps[-1][0] == len(records), (snaps, len(records))
    venue, next_seq, snap_seq, finished = recovered_state(clean_run.config, clean_run.data_dir)
    assert (snap_seq, next_seq, finished) == (len(records), len(records) + 1, 0)
    assert venue.state_digest() == full_digest


def test_stray_tmp_files_are_ignored_and_removed(
    tmp_path: Path, clean_run: CleanRun, full_digest: str
) -> None:
    data_dir = copy_data_dir(clean_run.data_dir, tmp_path / "data")
    snaps = list_snapshots(data_dir / "snapshots")
    newest_seq, newest = snaps[-1]
    # a half-written .tmp of a later snapshot, and a complete one that was never renamed
    (data_dir / "snapshots" / f"snap-{newest_seq + 7:020d}.tmp").write_bytes(newest.read_bytes()[:1000])
    (data_dir / "snapshots" / f"snap-{newest_seq + 9:020d}.tmp").write_bytes(b"\0" * 64)
    (data_dir / "snapshots" / f"snap-{newest_seq + 11:020d}.tmp").write_bytes(newest.read_bytes())
    venue, _, snap_seq, _ = recovered_state(clean_run.config, data_dir)
    assert snap_seq == newest_seq
    assert venue.state_digest() == full_digest
    assert stray_tmps(data_dir) == []


@pytest.mark.parametrize("damage", ["body_byte", "truncated", "header_crc", "empty", "wrong_seq_name"])
def test_a_damaged_newest_snapshot_falls_back_to_the_previous_one(
    tmp_path: Path, clean_run: CleanRun, full_digest: str, damage: str
) -> None:
    data_dir = copy_data_dir(clean_run.data_dir, tmp_path / "data")
    (older_seq, _), (newest_seq, newest) = list_snapshots(data_dir / "snapshots")
    data = bytearray(newest.read_bytes())
    if damage == "body_byte":
        data[SNAPSHOT_HEADER_SIZE + len(data) // 3] ^= 0x10
    elif damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "header_crc":
        data[7] ^= 0x01  # inside the seq field
    elif damage == "empty":
        data = bytearray()
    else:  # a valid snapshot under the name of another seq
        newest.rename(newest.with_name(f"snap-{newest_seq + 1:020d}.snap"))
        newest = newest.with_name(f"snap-{newest_seq + 1:020d}.snap")
    newest.write_bytes(bytes(data))
    venue, _, snap_seq, _ = recovered_state(clean_run.config, data_dir)
    assert snap_seq == older_seq, damage
    assert venue.state_digest() == full_digest, damage


def test_every_snapshot_damaged_replays_from_the_start(
    tmp_path: Path, clean_run: CleanRun, full_digest: str
) -> None:
    data_dir = copy_data_dir(clean_run.data_dir, tmp_path / "data")
    for _, path in list_snapshots(data_dir / "snapshots"):
        data = bytearray(path.read_bytes())
        data[-1] ^= 0xFF
        path.write_bytes(bytes(data))
    venue, _, snap_seq, _ = recovered_state(clean_run.config, data_dir)
    assert snap_seq == 0
    assert venue.state_digest() == full_digest


def crash_at(step: str) -> Callable[[str], None]:
    def fault(name: str) -> None:
        if name == step:
            raise SimulatedCrash(f"crash after {name}")

    return fault


@pytest.mark.parametrize("step", SNAPSHOT_STEPS)
def test_engine_snapshot_interrupted_at_each_step(
    tmp_path: Path, clean_run: CleanRun, full_digest: str, step: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The engine's own snapshot (EngineStore.take_snapshot) crashes after ``step``; the next
    recovery uses the new snapshot only once its rename happened, and the state is the same."""
    data_dir = copy_data_dir(clean_run.data_dir, tmp_path / "data")
    (older_seq, _), (newest_seq, newest) = list_snapshots(data_dir / "snapshots")
    newest.unlink()  # the engine recovers from the older snapshot + journal, then snapshots again
    store = EngineStore(clean_run.config, data_dir, "batch", on_fatal=lambda exc: None)
    venue = store.recover()
    assert venue.state_digest() == full_digest
    monkeypatch.setattr(
        store_module, "write_snapshot", functools.partial(write_snapshot, fault=crash_at(step))
    )
    with pytest.raises(SimulatedCrash):
        store.take_snapshot(time.monotonic())
    store.journal.close()
    monkeypatch.undo()
    venue, _, snap_seq, _ = recovered_state(clean_run.config, data_dir)
    assert snap_seq == (newest_seq if step in ("renamed", "dir_fsynced") else older_seq), step
    assert venue.state_digest() == full_digest
    assert stray_tmps(data_dir) == []


def test_crash_while_pruning(tmp_path: Path, clean_run: CleanRun, full_digest: str) -> None:
    """Three valid snapshots; pruning crashes after removing the oldest: still the same state."""
    config = clean_run.config
    data_dir = copy_data_dir(clean_run.data_dir, tmp_path / "data")
    records = journal_records(data_dir)
    (older_seq, _), _ = list_snapshots(data_dir / "snapshots")
    early = older_seq // 2
    write_snapshot(data_dir / "snapshots", early, encode_snapshot(replay_records(config, records[:early])))
    assert len(list_snapshots(data_dir / "snapshots")) == 3
    with pytest.raises(SimulatedCrash):
        prune(data_dir / "snapshots", data_dir / "journal", keep=2, fault=crash_at("snapshot_removed"))
    assert len(list_snapshots(data_dir / "snapshots")) == 2
    venue, *_ = recovered_state(config, data_dir)
    assert venue.state_digest() == full_digest


def test_kill9_aimed_inside_the_snapshot_writer(
    tmp_path: Path, venue_config_path: Path, venue_config: VenueConfig
) -> None:
    seed, rng = seeded_random(31, "aimed kill seed")
    campaign = KillCampaign(tmp_path / "data", tmp_path, venue_config_path, venue_config, seed)
    for step in SNAPSHOT_STEPS:
        env = {"TA_TEST_KILL_AT_SNAPSHOT": f"{step}:1"}
        fsync = rng.choice(("batch", "always"))
        print(f"kill after snapshot step {step!r} (fsync {fsync})")
        # bursts: the clients pause together now and then, so that the engine is idle at times
        # (its periodic snapshot waits for a moment with no work in flight)
        server, _ = campaign.round(fsync, 8.0, env, bursts=(0.25, 0.05))
        logged = [e["seq"] for e in server.log_events() if e.get("event") == "snapshot_written"]
        snaps = list_snapshots(tmp_path / f"check-k{campaign.rounds}" / "snapshots")
        if step in ("written", "fsynced"):
            assert campaign.log[-1].count(".tmp"), f"no .tmp left: the kill missed the snapshot ({step})"
        else:
            started_at = server.recovered()["next_seq"]
            assert not logged and snaps and snaps[-1][0] >= started_at, (
                f"the kill missed the snapshot ({step}): logged {logged}, snapshots {snaps}"
            )
    campaign.final_clean_stop()
