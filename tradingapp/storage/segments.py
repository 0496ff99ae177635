"""Journal segment files: naming, the recovery scan (truncate a damaged tail, refuse anything
else) and the replay reader.

The journal lives in ``<data_dir>/journal/`` as ``journal-<first_seq:020d>.seg`` files, each an
18-byte header followed by whole records (formats in :mod:`tradingapp.storage.records`).

Recovery rules (:func:`recover_journal`), applied at the first bad spot in seq order: a record
that is cut short, has a length outside ``20..max_record_bytes``, a bad CRC, or a seq other than
the previous one plus one; or a segment header that is torn, corrupt, disagrees with its file name
or does not continue the previous segment's seq.

* In the **last** segment with **no valid record after it** (a torn write, a zero-filled or
  garbage tail): truncate the file there, fsync, report the bytes dropped, go on. A bad header
  there means the segment holds nothing: the file is removed.
* Anywhere else (a non-final segment, or valid records follow): refuse with
  :class:`JournalCorruptError` naming the file and byte offset. ``repair=True`` truncates there
  instead and removes every later segment, and reports it.
* A header of another format (unknown magic or version) is refused with
  :class:`JournalFormatError`, repair or not.
* Damage in records a snapshot already covers (``covered``: the newest valid snapshot's seq) is
  checked first, wherever it is: recovery does not need those records. It is still refused
  without ``repair`` (the disk damaged the journal; the operator should know), with a hint that
  says whether repair loses anything. ``repair=True`` then drops the covered part of the journal
  and keeps every intact record after ``covered``: the segments before the one holding
  ``covered + 1`` are removed, and when that record sits in the damaged segment itself, the
  segment's records from ``covered + 1`` on are first copied into a new segment named for it. Only
  when records after ``covered`` are unreadable too does repair drop them (reported as an error),
  so the journal then starts again at ``covered + 1``.

:func:`scan_journal` reads a recovered journal strictly: any fault raises.
"""

from __future__ import annotations

import re
import struct
import zlib
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import structlog

from tradingapp.storage.errors import JournalCorruptError
from tradingapp.storage.fileops import (
    DEFAULT_FILEOPS,
    FileOps,
    remove_file,
    truncate_file,
    write_file_atomically,
)
from tradingapp.storage.records import (
    MAX_RECORD_BYTES,
    MIN_RECORD_LENGTH,
    RECORD_HEADER,
    RECORD_OVERHEAD,
    SEGMENT_HEADER_SIZE,
    U64_MAX,
    JournalRecord,
    encode_segment_header,
    parse_segment_header,
    read_record,
)

log = structlog.get_logger("tradingapp.storage")

SEGMENT_NAME_RE: Final = re.compile(r"^journal-(\d{20})\.seg$")
REPAIR_HINT: Final = "start the engine with --repair to truncate here and drop everything after"
RECOVER_HINT: Final = "a damaged tail is dropped when the engine next starts; mid-log damage needs --repair"

_U32 = struct.Struct("<I")
_U64_AT_8 = struct.Struct("<8xQ")
_NONZERO = re.compile(rb"[^\x00]")
_crc32 = zlib.crc32


def segment_name(first_seq: int) -> str:
    """File name of the segment whose first record has ``first_seq``."""
    return f"journal-{first_seq:020d}.seg"


def list_segments(journal_dir: Path) -> list[tuple[int, Path]]:
    """``(first_seq, path)`` of every segment file, by first_seq (from the names alone)."""
    journal_dir = Path(journal_dir)
    if not journal_dir.is_dir():
        return []
    found = []
    for path in journal_dir.iterdir():
        match = SEGMENT_NAME_RE.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    found.sort()
    return found


@dataclass(frozen=True, slots=True)
class SegmentSummary:
    """A segment as recovery left it."""

    path: Path
    first_seq: int
    last_seq: int  # first_seq - 1 when it holds no record
    size: int
    records: int


@dataclass(frozen=True, slots=True)
class Truncation:
    """One cut made by recovery: ``path`` now ends at ``offset`` (or was removed when 0)."""

    path: Path
    offset: int
    bytes_dropped: int
    reason: str
    removed_file: bool
    repair: bool  # True: a mid-log cut made only because repair=True was given


@dataclass(frozen=True, slots=True)
class RecoveryReport:
    """What :func:`recover_journal` found and did."""

    journal_dir: Path
    segments: tuple[SegmentSummary, ...]
    records: int
    last_seq: int  # seq of the last record (first_seq - 1 of an empty last segment; 0 if none)
    truncations: tuple[Truncation, ...]
    removed: tuple[Path, ...]  # segment files removed (torn headers; later segments on repair)
    warnings: tuple[str, ...]

    @property
    def next_seq(self) -> int:
        """The seq the writer must assign next."""
        return self.last_seq + 1

    @property
    def first_seq(self) -> int | None:
        """The first seq the journal holds (None without segments)."""
        return self.segments[0].first_seq if self.segments else None

    @property
    def bytes_dropped(self) -> int:
        return sum(t.bytes_dropped for t in self.truncations)

    @property
    def clean(self) -> bool:
        """True when recovery changed nothing."""
        return not self.truncations and not self.removed


def _find_valid_record(data: bytes, start: int, seq_base: int, max_record_bytes: int) -> int | None:
    """Offset of the first whole, CRC-valid record at or after ``start``, or None.

    A candidate's seq must be at least 1 and at most ``seq_base + 1 + (offset - start) // 24``
    (no more records than fit in between): a cheap filter before the CRC. Runs of zero bytes
    are skipped at once (a zero length field is never valid).
    """
    size = len(data)
    view = memoryview(data)
    unpack_len = _U32.unpack_from
    unpack_seq = _U64_AT_8.unpack_from
    p = start
    last = size - RECORD_OVERHEAD
    while p <= last:
        (length,) = unpack_len(data, p)
        if length == 0:
            nonzero = _NONZERO.search(data, p + 4)
            if nonzero is None:
                return None
            p = nonzero.start() - 3
            continue
        if MIN_RECORD_LENGTH <= length <= max_record_bytes and p + 4 + length <= size:
            (seq,) = unpack_seq(data, p)
            if 1 <= seq <= seq_base + 1 + (p - start) // RECORD_OVERHEAD:
                _, crc, _, _ = RECORD_HEADER.unpack_from(data, p)
                if _crc32(view[p + 8 : p + 4 + length]) == crc:
                    return p
        p += 1
    return None


def recover_journal(
    journal_dir: Path,
    *,
    repair: bool = False,
    covered: int = 0,
    max_record_bytes: int = MAX_RECORD_BYTES,
    fs: FileOps = DEFAULT_FILEOPS,
) -> RecoveryReport:
    """Validate every segment in order; cut a damaged tail; refuse mid-log damage.

    ``covered`` is the seq the newest valid snapshot covers: damage in records up to it is
    handled by the covered-damage rule (module docstring). Returns a :class:`RecoveryReport`.
    Raises :class:`JournalCorruptError` for damage that is not a droppable tail (unless
    ``repair``), :class:`JournalFormatError` for a foreign format. Every truncation and removal
    is fsynced before this returns; running it again changes nothing.
    """
    reading = JournalReading(
        journal_dir, None, repair=repair, covered=covered, max_record_bytes=max_record_bytes, fs=fs
    )
    for _ in reading:
        pass
    assert reading.report is not None
    return reading.report


class JournalReading:
    """:func:`recover_journal` and :func:`scan_journal` in one pass: iterate it for the
    ``(ts_ns, payload)`` of every record with seq > ``after_seq``; afterwards ``report`` holds the
    :class:`RecoveryReport`.

    Each segment is read once and each record checked once (recovery at start-up used to read and
    check the whole journal twice). Records are yielded as they are checked, before the scan
    knows whether damage follows; that is sound because recovery only ever cuts *after* the
    last valid record: a droppable tail is truncated at the fault, and mid-log damage raises
    :class:`JournalCorruptError` (the caller then discards what it built) unless ``repair``,
    which also keeps exactly the records before the fault. ``after_seq=None`` yields nothing
    (validation only). Like :func:`scan_journal`, it raises when the journal cannot continue from
    ``after_seq`` (it starts after ``after_seq + 1`` or ends before ``after_seq``). ``covered``
    (default: ``after_seq``) is the seq the newest snapshot covers; damage at or below it comes
    before any record is yielded, so its repair simply starts the reading again.
    """

    def __init__(
        self,
        journal_dir: Path,
        after_seq: int | None = 0,
        *,
        repair: bool = False,
        covered: int | None = None,
        max_record_bytes: int = MAX_RECORD_BYTES,
        fs: FileOps = DEFAULT_FILEOPS,
    ) -> None:
        self.journal_dir = Path(journal_dir)
        self.after_seq = after_seq
        self.repair = repair
        self.covered = covered if covered is not None else (after_seq or 0)
        self.max_record_bytes = max_record_bytes
        self.fs = fs
        self.report: RecoveryReport | None = None

    def __iter__(self) -> Iterator[tuple[int, bytes]]:
        self.report = yield from _recover(
            self.journal_dir, self.after_seq, self.repair, self.covered, self.max_record_bytes, self.fs
        )
        after = self.after_seq
        if after is not None and self.report.segments and self.report.last_seq < after:
            last = self.report.segments[-1]
            raise JournalCorruptError(
                last.path, last.size, f"the journal ends at seq {last.last_seq}, before seq {after}"
            )


def _check_records(
    data: bytes, offset: int, seq_next: int, max_record_bytes: int, after_seq: int | None
) -> Generator[tuple[int, bytes], None, tuple[int, int, str | None]]:
    """Check the records of one segment from ``offset``; yield ``(ts_ns, payload)`` of those with
    seq > ``after_seq`` (None: none). Returns ``(offset, seq_next, fault reason or None)``: where
    the walk stopped and the seq the next record must have.

    The hot loop of recovery, so it is written flat: one header unpack, one CRC, three compares
    per record; the exact reason of a fault is worked out by :func:`read_record` only then.
    """
    size = len(data)
    view = memoryview(data)
    unpack_header = RECORD_HEADER.unpack_from
    crc32 = _crc32
    yield_from = U64_MAX if after_seq is None else after_seq
    last_header = size - RECORD_OVERHEAD
    while offset < size:
        if offset > last_header:
            break
        length, crc, seq, ts_ns = unpack_header(data, offset)
        end = offset + 4 + length
        if length < MIN_RECORD_LENGTH or length > max_record_bytes or end > size:
            break
        if crc32(view[offset + 8 : end]) != crc:
            break
        if seq != seq_next:
            return offset, seq_next, f"seq {seq}, expected {seq_next}"
        if seq > yield_from:
            yield ts_ns, data[offset + RECORD_OVERHEAD : end]
        seq_next += 1
        offset = end
    if offset >= size:
        return offset, seq_next, None
    reason = read_record(data, offset, max_record_bytes)
    assert isinstance(reason, str), "a record that failed the fast check passed read_record"
    return offset, seq_next, reason


def _recover(
    journal_dir: Path, after_seq: int | None, repair: bool, covered: int, max_record_bytes: int, fs: FileOps
) -> Generator[tuple[int, bytes], None, RecoveryReport]:
    journal_dir = Path(journal_dir)
    segments = list_segments(journal_dir)
    summaries: list[SegmentSummary] = []
    truncations: list[Truncation] = []
    removed: list[Path] = []
    warnings: list[str] = []
    expected: int | None = None  # seq the next record must have
    records = 0
    if after_seq is not None and segments and segments[0][0] > after_seq + 1:
        first_seq, first_path = segments[0]
        raise JournalCorruptError(
            first_path,
            0,
            f"the journal starts at seq {first_seq}, but records from {after_seq + 1} are needed",
        )

    for index, (name_seq, path) in enumerate(segments):
        is_last = index == len(segments) - 1
        data = path.read_bytes()
        size = len(data)
        fault: tuple[int, str] | None = None
        header = parse_segment_header(data, path)
        seq_next = name_seq if expected is None else expected
        count = 0
        if isinstance(header, str):
            fault = (0, header)
        elif header != name_seq:
            fault = (0, f"header first_seq {header} does not match the file name")
        elif expected is not None and header != expected:
            fault = (0, f"segment starts at seq {header}, expected {expected} (gap between segments)")
        else:
            first = seq_next
            offset, seq_next, reason = yield from _check_records(
                data, SEGMENT_HEADER_SIZE, seq_next, max_record_bytes, after_seq
            )
            count = seq_next - first
            if reason is not None:
                fault = (offset, reason)

        if fault is None:
            summaries.append(SegmentSummary(path, name_seq, seq_next - 1, size, count))
            records += count
            expected = seq_next
            continue

        offset, reason = fault
        if seq_next <= covered:  # nothing was yielded yet: repair, then read the rest afresh
            repaired = _repair_covered(
                segments, index, data, fault, seq_next, covered, repair, max_record_bytes, fs
            )
            again = yield from _recover(journal_dir, after_seq, repair, covered, max_record_bytes, fs)
            return RecoveryReport(
                journal_dir=journal_dir,
                segments=again.segments,
                records=again.records,
                last_seq=again.last_seq,
                truncations=repaired.truncations + again.truncations,
                removed=repaired.removed + again.removed,
                warnings=repaired.warnings + again.warnings,
            )
        follower = None
        if is_last:
            base = max(seq_next, name_seq, header if isinstance(header, int) else 0)
            follower = _find_valid_record(data, offset + 1, base, max_record_bytes)
        if is_last and follower is None:
            dropped = size - offset
            left = " (left in the file: read-only)" if fs.read_only else ""
            if offset == 0:
                remove_file(fs, path)
                removed.append(path)
                message = f"{path}: removed the last segment ({size} bytes, no records){left}: {reason}"
            else:
                truncate_file(fs, path, offset)
                summaries.append(SegmentSummary(path, name_seq, seq_next - 1, offset, count))
                records += count
                expected = seq_next
                message = (
                    f"{path}: dropped {dropped} bytes of damaged tail at offset {offset} "
                    f"after seq {seq_next - 1}{left}: {reason}"
                )
            truncations.append(Truncation(path, offset, dropped, reason, offset == 0, repair=False))
            warnings.append(message)
            log.warning(
                "journal_tail_dropped",
                path=str(path),
                offset=offset,
                bytes_dropped=dropped,
                reason=reason,
                left_in_file=fs.read_only,
            )
            break

        later = segments[index + 1 :]
        if follower is not None:
            where = f"a valid record follows at offset {follower}"
        else:
            where = f"{len(later)} later segment(s) follow"
        if not repair:
            raise JournalCorruptError(path, offset, f"{reason}; {where}", REPAIR_HINT)

        # Repair: later segments go first (newest first), so an interrupted repair leaves a
        # journal that is still a prefix and that a second repair finishes.
        for _, later_path in reversed(later):
            later_size = later_path.stat().st_size
            remove_file(fs, later_path)
            removed.append(later_path)
            truncations.append(Truncation(later_path, 0, later_size, "after a repaired fault", True, True))
        dropped = size - offset
        if offset == 0:
            remove_file(fs, path)
            removed.append(path)
        else:
            truncate_file(fs, path, offset)
            summaries.append(SegmentSummary(path, name_seq, seq_next - 1, offset, count))
            records += count
            expected = seq_next
        truncations.append(Truncation(path, offset, dropped, reason, offset == 0, repair=True))
        total = sum(t.bytes_dropped for t in truncations if t.repair)
        message = (
            f"{path}: REPAIR truncated at offset {offset} ({reason}); dropped {total} bytes "
            f"including {len(later)} later segment(s); the journal now ends at seq "
            f"{summaries[-1].last_seq if summaries else 0}"
        )
        warnings.append(message)
        log.error("journal_repaired", path=str(path), offset=offset, bytes_dropped=total, reason=reason)
        break

    last_seq = summaries[-1].last_seq if summaries else 0
    return RecoveryReport(
        journal_dir=journal_dir,
        segments=tuple(summaries),
        records=records,
        last_seq=last_seq,
        truncations=tuple(truncations),
        removed=tuple(removed),
        warnings=tuple(warnings),
    )


def _first_needed(data: bytes, start: int, covered: int, max_record_bytes: int) -> tuple[int, int] | None:
    """``(offset, seq)`` of the first CRC-valid record at or after ``start`` whose seq is above
    ``covered``, skipping valid covered records whole; None if there is none."""
    p = start
    while True:
        found = _find_valid_record(data, p, 1 << 64, max_record_bytes)
        if found is None:
            return None
        length, _crc, seq, _ts = RECORD_HEADER.unpack_from(data, found)
        if seq > covered:
            return found, seq
        p = found + 4 + length


def _repair_covered(
    segments: list[tuple[int, Path]],
    index: int,
    data: bytes,
    fault: tuple[int, str],
    seq: int,
    covered: int,
    repair: bool,
    max_record_bytes: int,
    fs: FileOps,
) -> RecoveryReport:
    """Damage at ``fault`` in segment ``index``, where record ``seq`` should be, which the snapshot
    at ``covered`` holds.

    Without ``repair`` raise, saying whether a repair keeps every record after ``covered``. With
    it, make the journal start where the needed records do (module docstring) and report what was
    removed; the caller then recovers the rest of the journal by the ordinary rules.
    """
    offset, reason = fault
    name_seq, path = segments[index]
    # A segment from which the journal can go on: a later one that starts at covered + 1 or
    # before, or this one when only its start breaks the sequence (a gap before it).
    first = index if offset == 0 and parse_segment_header(data, path) == name_seq else index + 1
    later = [i for i in range(first, len(segments)) if segments[i][0] <= covered + 1]
    keep_from = later[-1] if later else None
    copy_at = None  # else the offset of covered + 1 in this segment, when it is readable
    needed_lost = False
    if keep_from is None:
        found = _first_needed(data, offset + 1, covered, max_record_bytes)
        if found is not None and found[1] == covered + 1:
            copy_at = found[0]
        else:
            needed_lost = found is not None or index + 1 < len(segments)
    where = f"record {seq} is covered by the snapshot at seq {covered}"
    if not repair:
        if needed_lost:
            hint = f"records after seq {covered} are damaged too; repair drops them and the journal"
            hint += f" restarts at seq {covered + 1}"
        else:
            hint = f"start with --repair to drop the journal up to seq {covered}; no record after it is lost"
        raise JournalCorruptError(path, offset, f"{reason}; {where}", hint)

    truncations: list[Truncation] = []
    removed: list[Path] = []
    if copy_at is not None:
        new_path = path.with_name(segment_name(covered + 1))
        write_file_atomically(fs, new_path, encode_segment_header(covered + 1), data[copy_at:])
    if keep_from is not None:
        drop = segments[:keep_from]
    elif copy_at is not None:
        drop = segments[: index + 1]
    else:
        drop = segments  # nothing readable after covered: the journal restarts at covered + 1
    for _seq, old in drop:  # oldest first, so an interrupted repair leaves the same situation
        size = old.stat().st_size
        remove_file(fs, old)
        removed.append(old)
        truncations.append(Truncation(old, 0, size, f"covered by the snapshot at seq {covered}", True, True))
    message = f"{path}: REPAIR at offset {offset} ({reason}; {where}): removed {len(drop)} segment(s)"
    if copy_at is not None:
        message += f" after copying seq {covered + 1} onwards into {segment_name(covered + 1)}"
    if needed_lost:
        message += f"; records after seq {covered} were damaged and are dropped"
        log.error(
            "journal_repaired", path=str(path), offset=offset, reason=reason, covered=covered, lost=True
        )
    else:
        log.warning(
            "journal_repaired", path=str(path), offset=offset, reason=reason, covered=covered, lost=False
        )
    return RecoveryReport(path.parent, (), 0, 0, tuple(truncations), tuple(removed), (message,))


def scan_journal(
    journal_dir: Path, after_seq: int = 0, *, max_record_bytes: int = MAX_RECORD_BYTES
) -> Iterator[JournalRecord]:
    """Yield every record with seq > ``after_seq``, in order, from a recovered journal.

    Strict: any damage raises :class:`JournalCorruptError` (run :func:`recover_journal` first).
    Segments whose records are all <= ``after_seq`` are not read. Also raises when the journal
    cannot continue from ``after_seq``: it starts after ``after_seq + 1`` (records missing) or
    ends before ``after_seq`` (a snapshot newer than the journal). No segments at all yields
    nothing.
    """
    segments = list_segments(Path(journal_dir))
    if not segments:
        return
    start = 0
    for index in range(1, len(segments)):
        if segments[index][0] <= after_seq + 1:
            start = index
        else:
            break
    first_seq, first_path = segments[start]
    if first_seq > after_seq + 1:
        needed = after_seq + 1
        raise JournalCorruptError(
            first_path, 0, f"the journal starts at seq {first_seq}, but records from {needed} are needed"
        )
    expected = first_seq
    unpack_header = RECORD_HEADER.unpack_from
    path = first_path
    for name_seq, path in segments[start:]:
        data = path.read_bytes()
        header = parse_segment_header(data, path)
        if isinstance(header, str):
            raise JournalCorruptError(path, 0, header, RECOVER_HINT)
        if header != name_seq or header != expected:
            raise JournalCorruptError(
                path, 0, f"segment starts at seq {header}, expected {expected} ({name_seq} by name)"
            )
        view = memoryview(data)
        size = len(data)
        offset = SEGMENT_HEADER_SIZE
        while offset < size:
            if offset + RECORD_OVERHEAD > size:
                raise JournalCorruptError(path, offset, "truncated record", RECOVER_HINT)
            length, crc, seq, ts_ns = unpack_header(data, offset)
            end = offset + 4 + length
            if length < MIN_RECORD_LENGTH or length > max_record_bytes or end > size:
                raise JournalCorruptError(path, offset, f"bad or truncated length {length}", RECOVER_HINT)
            if _crc32(view[offset + 8 : end]) != crc:
                raise JournalCorruptError(path, offset, "bad crc", RECOVER_HINT)
            if seq != expected:
                raise JournalCorruptError(path, offset, f"seq {seq}, expected {expected}", RECOVER_HINT)
            expected += 1
            if seq > after_seq:
                yield JournalRecord(seq, ts_ns, data[offset + RECORD_OVERHEAD : end])
            offset = end
    if expected - 1 < after_seq:
        raise JournalCorruptError(
            path, path.stat().st_size, f"the journal ends at seq {expected - 1}, before seq {after_seq}"
        )
