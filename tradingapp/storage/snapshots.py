"""Atomic snapshot files, loading the newest valid one, and pruning.

A snapshot lives in ``<data_dir>/snapshots/snap-<seq:020d>.snap``: a 30-byte header and the body
(opaque bytes from the engine: its state after applying every journal record up to ``seq``)::

    4s  magic        b"TAS1"
    u16 version      1
    u64 seq          last journal seq the body covers
    u64 body_length
    u32 body_crc     zlib.crc32 of the body
    u32 header_crc   zlib.crc32 of the 26 header bytes before it

Writing (:func:`write_snapshot`) follows the crash-safe replace pattern (Pillai et al., OSDI'14):
``snap-<seq>.tmp`` is written and fsynced, renamed to ``snap-<seq>.snap``, then the directory is
fsynced. Until the rename is durable the previous snapshot stays the newest valid one; a ``.tmp``
is never read and is removed by :func:`load_latest_snapshot`.

Before a snapshot covering ``seq`` is written, the journal must be durable through ``seq``
(``JournalWriter.flush_now()``): restore = snapshot + journal records after ``seq``.
"""

from __future__ import annotations

import itertools
import re
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final, NamedTuple

import structlog

from tradingapp.storage.errors import SnapshotFormatError
from tradingapp.storage.fileops import DEFAULT_FILEOPS, REPLACE_FLAGS, FileOps, ensure_dir, write_all
from tradingapp.storage.segments import list_segments

log = structlog.get_logger("tradingapp.storage")

SNAPSHOT_MAGIC: Final = b"TAS1"  # every snapshot format version keeps the prefix "TAS"
SNAPSHOT_VERSION: Final = 1
_HEADER_BODY: Final = struct.Struct("<4sHQQI")
SNAPSHOT_HEADER: Final = struct.Struct("<4sHQQII")
SNAPSHOT_HEADER_SIZE: Final = SNAPSHOT_HEADER.size  # 30
SNAPSHOT_STEPS: Final = ("written", "fsynced", "renamed", "dir_fsynced")
MIN_KEEP: Final = 2

SNAPSHOT_NAME_RE: Final = re.compile(r"^snap-(\d{20})\.snap$")
SNAPSHOT_TMP_RE: Final = re.compile(r"^snap-(\d{20})\.tmp$")

Fault = Callable[[str], None]


class Snapshot(NamedTuple):
    """A loaded snapshot: the last journal seq it covers and its body."""

    seq: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class PruneReport:
    kept: tuple[int, ...]  # seqs of the snapshots kept (newest first); empty when nothing pruned
    removed_snapshots: tuple[Path, ...]
    removed_segments: tuple[Path, ...]


def snapshot_name(seq: int) -> str:
    return f"snap-{seq:020d}.snap"


def encode_snapshot_header(seq: int, payload: bytes | bytearray | memoryview) -> bytes:
    body = _HEADER_BODY.pack(SNAPSHOT_MAGIC, SNAPSHOT_VERSION, seq, len(payload), zlib.crc32(payload))
    return body + struct.pack("<I", zlib.crc32(body))


def list_snapshots(snap_dir: Path) -> list[tuple[int, Path]]:
    """``(seq, path)`` of every ``.snap`` file, oldest first (from the names alone)."""
    snap_dir = Path(snap_dir)
    if not snap_dir.is_dir():
        return []
    found = []
    for path in snap_dir.iterdir():
        match = SNAPSHOT_NAME_RE.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    found.sort()
    return found


def write_snapshot(
    snap_dir: Path,
    seq: int,
    payload: bytes | bytearray | memoryview,
    *,
    fs: FileOps = DEFAULT_FILEOPS,
    fault: Fault | None = None,
) -> Path:
    """Write the snapshot covering ``seq`` atomically and durably; return its path.

    ``fault``, for tests, is called with each step name in ``SNAPSHOT_STEPS`` right after that
    step and may raise to simulate a crash there.
    """
    if seq < 0:
        raise ValueError(f"snapshot seq must be >= 0, got {seq}")
    snap_dir = Path(snap_dir)
    ensure_dir(fs, snap_dir)
    final = snap_dir / snapshot_name(seq)
    tmp = final.with_suffix(".tmp")
    fd = fs.open(tmp, REPLACE_FLAGS)
    try:
        write_all(fs, fd, encode_snapshot_header(seq, payload))
        write_all(fs, fd, payload)
        if fault is not None:
            fault("written")
        fs.fsync(fd)
        if fault is not None:
            fault("fsynced")
    finally:
        fs.close(fd)
    fs.rename(tmp, final)
    if fault is not None:
        fault("renamed")
    fs.fsync_dir(snap_dir)
    if fault is not None:
        fault("dir_fsynced")
    return final


def read_snapshot(path: Path, expected_seq: int | None = None) -> Snapshot | str:
    """Read and verify one snapshot file: a :class:`Snapshot`, or the reason it is invalid.

    Raises :class:`SnapshotFormatError` for an intact header of another format (or a ``TAS<n>``
    magic with n != 1): never guessed at.
    """
    data = Path(path).read_bytes()
    if len(data) < SNAPSHOT_HEADER_SIZE:
        return f"short file ({len(data)} bytes)"
    magic, version, seq, length, body_crc, header_crc = SNAPSHOT_HEADER.unpack_from(data, 0)
    intact = zlib.crc32(memoryview(data)[: SNAPSHOT_HEADER_SIZE - 4]) == header_crc
    SnapshotFormatError.refuse_other_format(
        path, (magic, version), (SNAPSHOT_MAGIC, SNAPSHOT_VERSION), intact=intact
    )
    if not intact:
        return "corrupt header (bad crc)"
    if expected_seq is not None and seq != expected_seq:
        return f"header seq {seq} does not match the file name ({expected_seq})"
    if len(data) != SNAPSHOT_HEADER_SIZE + length:
        return f"body is {len(data) - SNAPSHOT_HEADER_SIZE} bytes, header says {length}"
    body = data[SNAPSHOT_HEADER_SIZE:]
    if zlib.crc32(body) != body_crc:
        return "bad body crc"
    return Snapshot(seq, body)


def _report(on_problem: Callable[[str], None] | None, message: str) -> None:
    log.warning("snapshot_problem", detail=message)
    if on_problem is not None:
        on_problem(message)


def load_latest_snapshot(
    snap_dir: Path,
    *,
    fs: FileOps = DEFAULT_FILEOPS,
    on_problem: Callable[[str], None] | None = None,
) -> Snapshot | None:
    """Return the newest snapshot whose header and body check out, or None if there is none.

    Invalid snapshots are skipped (and reported to ``on_problem`` and the log, never deleted here);
    stray ``.tmp`` files (an interrupted write) are removed (left alone with read-only ``fs``).
    """
    snap_dir = Path(snap_dir)
    if not snap_dir.is_dir():
        return None
    stray = [p for p in snap_dir.iterdir() if SNAPSHOT_TMP_RE.match(p.name)]
    what = (
        "kept an unfinished snapshot (.tmp): read-only"
        if fs.read_only
        else "removed an unfinished snapshot (.tmp)"
    )
    for path in stray:
        fs.remove(path)
        _report(on_problem, f"{path}: {what}")
    if stray:
        fs.fsync_dir(snap_dir)
    for seq, path in reversed(list_snapshots(snap_dir)):
        result = read_snapshot(path, seq)
        if isinstance(result, Snapshot):
            return result
        _report(on_problem, f"{path}: skipped invalid snapshot: {result}")
    return None


def prune(
    snap_dir: Path,
    journal_dir: Path,
    keep: int = MIN_KEEP,
    *,
    fs: FileOps = DEFAULT_FILEOPS,
    fault: Fault | None = None,
) -> PruneReport:
    """Delete snapshots older than the ``keep`` newest valid ones, and the journal segments whose
    records are all <= the oldest kept snapshot's seq.

    Call it after :func:`write_snapshot` has returned. It first fsyncs the snapshot directory
    (so every snapshot it counts is durable) and verifies each snapshot in full; with fewer than
    ``keep`` valid snapshots it deletes nothing. The last journal segment is never deleted.
    Segments go oldest first, so an interruption leaves a contiguous journal. ``fault`` (tests)
    is called with "snapshot_removed" / "segment_removed" after each removal.
    """
    if keep < MIN_KEEP:
        raise ValueError(f"prune keeps at least {MIN_KEEP} snapshots, got keep={keep}")
    snap_dir = Path(snap_dir)
    journal_dir = Path(journal_dir)
    snapshots = list_snapshots(snap_dir)
    if not snapshots:
        return PruneReport((), (), ())
    fs.fsync_dir(snap_dir)
    valid = [seq for seq, path in reversed(snapshots) if isinstance(read_snapshot(path, seq), Snapshot)]
    if len(valid) < keep:
        return PruneReport((), (), ())
    kept = tuple(valid[:keep])
    oldest = kept[-1]

    removed_snapshots = []
    for seq, path in snapshots:
        if seq < oldest:
            fs.remove(path)
            removed_snapshots.append(path)
            if fault is not None:
                fault("snapshot_removed")
    if removed_snapshots:
        fs.fsync_dir(snap_dir)

    removed_segments = []
    segments = list_segments(journal_dir)
    for (_, path), (next_first, _) in itertools.pairwise(segments):
        if next_first - 1 > oldest:
            break
        fs.remove(path)
        removed_segments.append(path)
        if fault is not None:
            fault("segment_removed")
    if removed_segments:
        fs.fsync_dir(journal_dir)
    if removed_snapshots or removed_segments:
        log.info(
            "storage_pruned",
            kept=list(kept),
            snapshots_removed=len(removed_snapshots),
            segments_removed=len(removed_segments),
        )
    return PruneReport(kept, tuple(removed_snapshots), tuple(removed_segments))
