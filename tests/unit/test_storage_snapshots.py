"""Snapshots: format, atomic write, newest-valid load, pruning, and step-wise crashes (R3)."""

from __future__ import annotations

import random
import struct
import zlib
from pathlib import Path

import pytest

from tradingapp.storage import (
    SNAPSHOT_STEPS,
    JournalWriter,
    Snapshot,
    SnapshotFormatError,
    list_segments,
    list_snapshots,
    load_latest_snapshot,
    prune,
    read_snapshot,
    recover_journal,
    scan_journal,
    write_snapshot,
)
from tradingapp.storage.crashsim import CrashFS, NoSyncFS, SimulatedCrash
from tradingapp.storage.snapshots import SNAPSHOT_HEADER_SIZE, snapshot_name

FAST = NoSyncFS()


def test_snapshot_layout_and_round_trip(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path, 42, b"state bytes")
    assert path.name == "snap-00000000000000000042.snap"
    data = path.read_bytes()
    assert len(data) == SNAPSHOT_HEADER_SIZE + 11 == 41
    magic, version, seq, length, body_crc, header_crc = struct.unpack_from("<4sHQQII", data)
    assert (magic, version, seq, length) == (b"TAS1", 1, 42, 11)
    assert body_crc == zlib.crc32(b"state bytes") and header_crc == zlib.crc32(data[:26])
    assert load_latest_snapshot(tmp_path) == Snapshot(42, b"state bytes")
    assert not list(tmp_path.glob("*.tmp"))


def test_load_picks_the_newest_valid_and_reports_the_rest(tmp_path: Path) -> None:
    assert load_latest_snapshot(tmp_path / "missing") is None
    write_snapshot(tmp_path, 10, b"ten")
    write_snapshot(tmp_path, 20, b"twenty")
    newest = write_snapshot(tmp_path, 30, b"thirty")
    data = bytearray(newest.read_bytes())
    data[-1] ^= 1
    newest.write_bytes(bytes(data))
    (tmp_path / "snap-00000000000000000040.snap").write_bytes(b"short")
    (tmp_path / "snap-00000000000000000050.tmp").write_bytes(b"half written")
    problems: list[str] = []
    assert load_latest_snapshot(tmp_path, on_problem=problems.append) == Snapshot(20, b"twenty")
    assert len(problems) == 3
    assert "removed an unfinished snapshot" in problems[0]
    assert "short file" in problems[1] and "bad body crc" in problems[2]
    assert not (tmp_path / "snap-00000000000000000050.tmp").exists()
    assert newest.exists()  # invalid snapshots are reported, never deleted by load


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda d: d[:-3], "body is"),
        (lambda d: d + b"x", "body is"),
        (lambda d: d[:10], "short file"),
        (lambda d: bytes([d[0]]) + bytes([d[1] ^ 4]) + d[2:], "corrupt header"),
    ],
)
def test_damaged_snapshots(tmp_path: Path, mutate: object, reason: str) -> None:
    path = write_snapshot(tmp_path, 5, b"body" * 10)
    path.write_bytes(mutate(path.read_bytes()))  # type: ignore[operator]
    result = read_snapshot(path, 5)
    assert isinstance(result, str) and reason in result


def test_misnamed_snapshot_is_invalid(tmp_path: Path) -> None:
    path = write_snapshot(tmp_path, 5, b"body")
    other = path.rename(tmp_path / snapshot_name(6))
    assert "does not match the file name" in str(read_snapshot(other, 6))


@pytest.mark.parametrize(("magic", "version"), [(b"TAS2", 1), (b"TAS1", 9), (b"ABCD", 1)])
def test_foreign_snapshot_format_is_refused(tmp_path: Path, magic: bytes, version: int) -> None:
    body = struct.pack("<4sHQQI", magic, version, 7, 3, zlib.crc32(b"abc"))
    (tmp_path / snapshot_name(7)).write_bytes(body + struct.pack("<I", zlib.crc32(body)) + b"abc")
    with pytest.raises(SnapshotFormatError, match=r"not supported|not a TradingApp snapshot"):
        load_latest_snapshot(tmp_path)


# -- pruning ----------------------------------------------------------------------------------------


def make_journal(journal: Path, n: int, segment_bytes: int = 600) -> None:
    writer = JournalWriter(journal, 1, fsync="off", segment_bytes=segment_bytes, fs=FAST)
    for i in range(n):
        writer.append(i, b"p" * 40)
    writer.close()


def test_prune_keeps_two_and_the_segments_they_need(tmp_path: Path) -> None:
    journal, snaps = tmp_path / "journal", tmp_path / "snapshots"
    make_journal(journal, 200)
    segments = list_segments(journal)
    assert len(segments) > 10
    with pytest.raises(ValueError, match="at least 2"):
        prune(snaps, journal, keep=1)
    write_snapshot(snaps, 50, b"s50")
    assert prune(snaps, journal).removed_segments == ()  # one snapshot: nothing may go
    write_snapshot(snaps, 120, b"s120")
    write_snapshot(snaps, 170, b"s170")
    report = prune(snaps, journal)
    assert report.kept == (170, 120)
    assert [p.name for p in report.removed_snapshots] == [snapshot_name(50)]
    # Every remaining record stream still starts at or before 121 and runs to 200.
    first_left = list_segments(journal)[0][0]
    assert first_left <= 121
    firsts = [s for s, _ in segments]
    assert firsts[firsts.index(first_left) - 1] < 121  # and nothing more than needed was kept
    for after in (120, 170):
        assert [r.seq for r in scan_journal(journal, after)] == list(range(after + 1, 201))
    assert len(list(scan_journal(journal, 120))) == 80


def test_prune_counts_only_valid_snapshots_and_never_the_last_segment(tmp_path: Path) -> None:
    journal, snaps = tmp_path / "journal", tmp_path / "snapshots"
    make_journal(journal, 30, segment_bytes=1 << 20)  # one segment
    write_snapshot(snaps, 10, b"a")
    write_snapshot(snaps, 20, b"b")
    bad = write_snapshot(snaps, 30, b"c")
    bad.write_bytes(bad.read_bytes()[:-1])
    report = prune(snaps, journal)
    assert report.kept == (20, 10) and report.removed_snapshots == ()
    write_snapshot(snaps, 40, b"d")
    report = prune(snaps, journal)
    assert report.kept == (40, 20)
    assert {p.name for p in report.removed_snapshots} == {snapshot_name(10)}
    assert len(list_segments(journal)) == 1  # the last segment stays even though 30 <= 40


# -- step-wise snapshot crashes (R3) --------------------------------------------------------------


def run_life(journal: Path, fs: CrashFS, n: int) -> int:
    report = recover_journal(journal, fs=fs)
    writer = JournalWriter(journal, report.next_seq, fsync="always", segment_bytes=500, fs=fs)
    for i in range(n):
        writer.append(i, b"r" * 30)
    last = writer.last_seq
    writer.close()
    return last


@pytest.mark.parametrize("step", SNAPSHOT_STEPS)
@pytest.mark.parametrize("seed", range(10))
def test_crash_at_each_snapshot_step(tmp_path: Path, step: str, seed: int) -> None:
    rng = random.Random(seed)
    journal, snaps = tmp_path / "journal", tmp_path / "snapshots"
    fs = CrashFS()
    # Two earlier cycles of "journal, then snapshot, then prune", as the engine does them.
    valid: list[int] = []
    for _ in range(2):
        last = run_life(journal, fs, rng.randint(20, 60))
        write_snapshot(snaps, last, f"state at {last}".encode(), fs=fs)
        prune(snaps, journal, fs=fs)
        valid.append(last)
    last = run_life(journal, fs, rng.randint(20, 60))

    def fault(name: str) -> None:
        if name == step:
            raise SimulatedCrash("crash at " + name)

    with pytest.raises(SimulatedCrash):
        write_snapshot(snaps, last, f"state at {last}".encode(), fs=fs, fault=fault)
    crash = fs.crash(rng)

    # Restart on a healthy file system.
    snap = load_latest_snapshot(snaps)
    assert snap is not None
    new_is_durable = step == "dir_fsynced"
    final = str((snaps / snapshot_name(last)).absolute())
    # Before the directory fsync, the rename may be undone and the new entry may vanish.
    rename_survived = step == "renamed" and not crash.renames_undone and final not in crash.vanished
    if new_is_durable:
        assert snap.seq == last
    else:
        assert snap.seq in (valid[-1], last)
        assert snap.seq == (last if rename_survived else valid[-1])
    assert snap.payload == f"state at {snap.seq}".encode()
    assert not list(snaps.glob("*.tmp"))
    report = recover_journal(journal)
    assert report.last_seq == last  # journal records were all durable ("always")
    assert [r.seq for r in scan_journal(journal, snap.seq)] == list(range(snap.seq + 1, last + 1))
    # Pruning after the restart keeps every segment the surviving snapshots need.
    prune(snaps, journal)
    for seq, _ in list_snapshots(snaps):
        assert [r.seq for r in scan_journal(journal, seq)] == list(range(seq + 1, last + 1))
    assert len(list_snapshots(snaps)) >= 2


@pytest.mark.parametrize("at", ["snapshot_removed", "segment_removed"])
def test_crash_during_prune_leaves_a_usable_journal(tmp_path: Path, at: str) -> None:
    journal, snaps = tmp_path / "journal", tmp_path / "snapshots"
    make_journal(journal, 300, segment_bytes=400)
    for seq in (50, 100, 150, 250):
        write_snapshot(snaps, seq, b"s")

    def fault(name: str) -> None:
        if name == at:
            raise SimulatedCrash(name)

    with pytest.raises(SimulatedCrash):
        prune(snaps, journal, fault=fault)
    assert recover_journal(journal).clean
    for seq, _ in list_snapshots(snaps):
        if seq >= 150:
            assert [r.seq for r in scan_journal(journal, seq)] == list(range(seq + 1, 301))
    prune(snaps, journal)
    assert [s for s, _ in list_snapshots(snaps)] == [150, 250]
    assert [r.seq for r in scan_journal(journal, 150)] == list(range(151, 301))
