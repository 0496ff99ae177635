"""Snapshots written by a forked child (EngineStore.start_snapshot): the parent only forks, learns
the outcome by polling, and counts a snapshot only once the child reports it durable."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

import tradingapp.persistence.store as store_module
from tests.persistence.conftest import CleanRun
from tests.persistence.harness import copy_data_dir, full_history, recovered_state
from tradingapp.persistence.store import EngineStore
from tradingapp.storage import list_snapshots

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="fork-based snapshots need os.fork")


def reap(store: EngineStore, timeout: float = 60.0) -> None:
    """Poll until the snapshot child has been reaped (bounded)."""
    deadline = time.monotonic() + timeout
    while store.snapshot_running:
        assert time.monotonic() < deadline, "the snapshot child did not finish"
        store.poll_snapshot()
        time.sleep(0.01)


def recovered_store(clean_run: CleanRun, tmp_path: Path) -> tuple[Path, EngineStore]:
    """A copy of the clean run's data dir, and a store recovered on it from the older of its two
    snapshots (the newest one removed)."""
    data_dir = copy_data_dir(clean_run.data_dir, tmp_path / "data")
    (_, _), (_, newest) = list_snapshots(data_dir / "snapshots")
    newest.unlink()
    store = EngineStore(clean_run.config, data_dir, "batch", on_fatal=lambda exc: None)
    store.recover()
    return data_dir, store


def test_a_forked_snapshot_is_written_and_counted_after_the_child_ends(
    tmp_path: Path, clean_run: CleanRun
) -> None:
    data_dir, store = recovered_store(clean_run, tmp_path)
    seq = store.journal.last_seq
    assert store.start_snapshot(time.monotonic())
    assert store.snapshot_running
    assert not store.start_snapshot(time.monotonic()), "a second snapshot started while one runs"
    reap(store)
    assert list_snapshots(data_dir / "snapshots")[-1][0] == seq
    assert not store.snapshot_due(time.monotonic()), "the new snapshot does not count"
    store.close(snapshot=False)
    venue, _, snap_seq, _ = recovered_state(clean_run.config, data_dir)
    assert snap_seq == seq
    assert venue.state_digest() == full_history(clean_run.config, data_dir).venue.state_digest()


def test_a_failed_child_leaves_the_previous_snapshot_and_delays_the_retry(
    tmp_path: Path, clean_run: CleanRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir, store = recovered_store(clean_run, tmp_path)
    before = list_snapshots(data_dir / "snapshots")

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(store_module, "write_snapshot", broken)
    assert store.start_snapshot(time.monotonic())
    reap(store)
    assert list_snapshots(data_dir / "snapshots") == before
    assert not store.start_snapshot(time.monotonic()), "retried at once after a failure"
    assert store.start_snapshot(time.monotonic() + store_module.SNAPSHOT_RETRY_SECONDS + 1)
    store.close(snapshot=False)  # waits for (reaps) the running child
    assert not store.snapshot_running


def test_a_failed_fork_is_a_failed_snapshot_not_an_error(
    tmp_path: Path, clean_run: CleanRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    # fork() fails with ENOMEM or EAGAIN under memory or process limits; the engine's snapshot
    # loop must carry on (and retry later) rather than end on the exception
    data_dir, store = recovered_store(clean_run, tmp_path)
    before = list_snapshots(data_dir / "snapshots")

    def no_fork(work: object) -> int:
        raise OSError(12, "Cannot allocate memory")

    monkeypatch.setattr(store_module.forked, "start", no_fork)
    assert not store.start_snapshot(time.monotonic())
    assert not store.snapshot_running
    assert list_snapshots(data_dir / "snapshots") == before
    monkeypatch.undo()
    assert not store.start_snapshot(time.monotonic()), "retried at once after a failure"
    seq = store.journal.last_seq
    assert store.start_snapshot(time.monotonic() + store_module.SNAPSHOT_RETRY_SECONDS + 1)
    reap(store)
    assert list_snapshots(data_dir / "snapshots")[-1][0] == seq
    store.close(snapshot=False)
