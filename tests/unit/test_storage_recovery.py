"""Recovery scan and reader: round trips, torn tails (R6), garbage and bit flips (R7), mid-log
corruption (R8), restart idempotency (R9), foreign formats (R10), seq continuity."""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import struct
from pathlib import Path

import pytest

from tradingapp.storage import (
    JournalCorruptError,
    JournalFormatError,
    JournalRecord,
    JournalWriter,
    list_segments,
    recover_journal,
    scan_journal,
    segment_name,
)
from tradingapp.storage.crashsim import NoSyncFS
from tradingapp.storage.records import SEGMENT_HEADER_SIZE, encode_record, encode_segment_header, read_record

FAST = NoSyncFS()
SEED = int(os.environ.get("STORAGE_TEST_SEED", "20240601"))


def build(
    journal: Path, payloads: list[bytes], *, segment_bytes: int = 1024, first: int = 1
) -> list[JournalRecord]:
    """Write ``payloads`` as records first, first+1, ... (no loop: close() flushes)."""
    writer = JournalWriter(journal, first, fsync="off", segment_bytes=segment_bytes, fs=FAST)
    records = []
    for i, payload in enumerate(payloads):
        seq = writer.append(1_700_000_000_000_000_000 + i, payload)
        records.append(JournalRecord(seq, 1_700_000_000_000_000_000 + i, payload))
    writer.close()
    return records


def payloads(n: int, rng: random.Random, low: int = 0, high: int = 120) -> list[bytes]:
    return [rng.randbytes(rng.randint(low, high)) for _ in range(n)]


def offsets(path: Path) -> list[tuple[int, int]]:
    """(offset, end) of every record in a valid segment."""
    data = path.read_bytes()
    out = []
    offset = SEGMENT_HEADER_SIZE
    while offset < len(data):
        result = read_record(data, offset)
        assert not isinstance(result, str), result
        out.append((offset, result[2]))
        offset = result[2]
    return out


def digest(journal: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(journal.iterdir())}


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return tmp_path / "journal"


# -- round trips -----------------------------------------------------------------------------------


def test_round_trip_across_segments(journal: Path) -> None:
    rng = random.Random(SEED)
    records = build(journal, payloads(300, rng), segment_bytes=1024)
    segments = list_segments(journal)
    assert len(segments) > 10
    for first_seq, path in segments:
        assert path.name == segment_name(first_seq)
        assert path.read_bytes()[:4] == b"TAJ1"
    report = recover_journal(journal)
    assert report.clean and report.records == 300 and report.last_seq == 300 and report.next_seq == 301
    assert report.first_seq == 1
    assert [s.first_seq for s in report.segments] == [s for s, _ in segments]
    # Segments roll only at record boundaries, once over the limit: never more than one record over.
    for summary in report.segments[:-1]:
        assert summary.size >= 1024
        assert summary.size < 1024 + 24 + 120
    assert list(scan_journal(journal)) == records


def test_scan_after_seq_skips_and_checks_continuity(journal: Path) -> None:
    records = build(journal, payloads(200, random.Random(SEED)), segment_bytes=512)
    for after in (0, 1, 17, 99, 150, 199, 200):
        assert list(scan_journal(journal, after)) == records[after:]
    with pytest.raises(JournalCorruptError, match="ends at seq 200, before seq 201"):
        list(scan_journal(journal, 201))


def test_scan_refuses_a_journal_that_starts_too_late(journal: Path) -> None:
    build(journal, [b"x"] * 10, first=50)
    assert [r.seq for r in scan_journal(journal, 49)] == list(range(50, 60))
    with pytest.raises(JournalCorruptError, match="starts at seq 50, but records from 1"):
        list(scan_journal(journal))
    with pytest.raises(JournalCorruptError, match="records from 40"):
        list(scan_journal(journal, 39))


def test_empty_and_missing_journal(journal: Path) -> None:
    report = recover_journal(journal)
    assert report.clean and report.last_seq == 0 and report.next_seq == 1 and report.first_seq is None
    assert list(scan_journal(journal)) == []
    writer = JournalWriter(journal, 1, fsync="off", fs=FAST)
    writer.close()  # nothing appended: no segment is created
    assert list_segments(journal) == []


def test_empty_payload_and_large_payload(journal: Path) -> None:
    records = build(journal, [b"", bytes(100_000), b"z"], segment_bytes=1024)
    assert list(scan_journal(journal)) == records


# -- torn tail (R6) --------------------------------------------------------------------------------


@pytest.mark.parametrize("segment_bytes", [1 << 20, 700])
def test_torn_tail_at_every_offset_of_the_last_record(tmp_path: Path, segment_bytes: int) -> None:
    rng = random.Random(SEED)
    original = tmp_path / "original"
    records = build(original, [*payloads(40, rng, 60, 100), rng.randbytes(97)], segment_bytes=segment_bytes)
    last_path = list_segments(original)[-1][1]
    start, end = offsets(last_path)[-1]
    length = end - start
    assert length == 24 + 97
    for cut in range(length):
        journal = tmp_path / f"cut{cut}"
        shutil.copytree(original, journal)
        path = journal / last_path.name
        with open(path, "r+b") as f:
            f.truncate(start + cut)
        report = recover_journal(journal)
        assert report.last_seq == len(records) - 1
        assert report.bytes_dropped == cut
        if cut:
            assert report.truncations[0].offset == start and not report.truncations[0].repair
            assert f"dropped {cut} bytes" in report.warnings[0]
        else:
            assert report.clean
        assert path.stat().st_size == start
        assert list(scan_journal(journal)) == records[:-1]
        shutil.rmtree(journal)


def test_torn_record_spanning_into_zeros(tmp_path: Path) -> None:
    # A partially persisted record followed by zero-filled blocks (delayed allocation).
    journal = tmp_path / "journal"
    records = build(journal, payloads(10, random.Random(SEED), 200, 200))
    path = list_segments(journal)[-1][1]
    start, end = offsets(path)[-1]
    data = bytearray(path.read_bytes())
    data[start + 30 : end] = bytes(end - start - 30)
    path.write_bytes(bytes(data) + bytes(4096))
    report = recover_journal(journal)
    assert report.bytes_dropped == end - start + 4096
    assert list(scan_journal(journal)) == records[:-1]


# -- tail garbage and bit flips (R7) --------------------------------------------------------------


def test_random_garbage_tail_is_dropped(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    original = tmp_path / "original"
    records = build(original, payloads(30, rng), segment_bytes=800)
    last_name = list_segments(original)[-1][1].name
    clean = (original / last_name).read_bytes()
    journal = tmp_path / "journal"
    shutil.copytree(original, journal)
    path = journal / last_name
    cases = int(os.environ.get("STORAGE_GARBAGE_CASES", "1000"))
    for _ in range(cases):
        garbage = rng.randbytes(rng.randint(1, 4096))
        path.write_bytes(clean + garbage)
        report = recover_journal(journal)
        assert report.bytes_dropped == len(garbage)
        assert report.last_seq == len(records)
        assert path.read_bytes() == clean
    assert list(scan_journal(journal)) == records


@pytest.mark.parametrize("zeros", [4096, 65536])
def test_zero_filled_tail_is_dropped(journal: Path, zeros: int) -> None:
    records = build(journal, payloads(30, random.Random(SEED)))
    path = list_segments(journal)[-1][1]
    size = path.stat().st_size
    with open(path, "ab") as f:
        f.write(bytes(zeros))
    report = recover_journal(journal)
    assert report.bytes_dropped == zeros and path.stat().st_size == size
    assert list(scan_journal(journal)) == records


def _flip_cases(rng: random.Random, start: int, end: int) -> list[tuple[int, int]]:
    header_bits = [(start + i // 8, 1 << (i % 8)) for i in range(24 * 8)]
    payload_bits = [(rng.randrange(start + 24, end), 1 << rng.randrange(8)) for _ in range(1000)]
    return header_bits + payload_bits


def test_bit_flips_in_the_last_record_drop_it(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    journal = tmp_path / "journal"
    records = build(journal, [*payloads(20, rng, 50, 50), rng.randbytes(300)])
    path = list_segments(journal)[-1][1]
    clean = path.read_bytes()
    start, end = offsets(path)[-1]
    for position, mask in _flip_cases(rng, start, end):
        data = bytearray(clean)
        data[position] ^= mask
        path.write_bytes(bytes(data))
        report = recover_journal(journal)
        assert report.bytes_dropped == end - start, (position, mask)
        assert report.last_seq == len(records) - 1
        assert path.read_bytes() == clean[:start]
    assert list(scan_journal(journal)) == records[:-1]


# -- mid-log corruption (R8) ----------------------------------------------------------------------


def test_flipped_byte_in_a_middle_record_is_refused_then_repaired(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    original = tmp_path / "original"
    records = build(original, payloads(120, rng, 10, 80), segment_bytes=1500)
    segments = list_segments(original)
    assert len(segments) >= 4
    located = []  # (segment index, record offset, record end, seq)
    seq = 1
    for index, (_, path) in enumerate(segments):
        for start, end in offsets(path):
            located.append((index, start, end, seq))
            seq += 1
    candidates = located[:-1]  # every record that has at least one valid record after it
    for case in range(100):
        index, start, end, seq = rng.choice(candidates)
        journal = tmp_path / f"case{case}"
        shutil.copytree(original, journal)
        path = journal / segments[index][1].name
        data = bytearray(path.read_bytes())
        data[rng.randrange(start, end)] ^= rng.randrange(1, 256)
        path.write_bytes(bytes(data))
        before = digest(journal)
        with pytest.raises(JournalCorruptError) as info:
            recover_journal(journal)
        assert info.value.path == path and info.value.offset == start
        assert path.name in str(info.value) and f"offset {start}" in str(info.value)
        assert digest(journal) == before  # refused: nothing touched
        with pytest.raises(JournalCorruptError):
            list(scan_journal(journal))
        report = recover_journal(journal, repair=True)
        assert report.last_seq == seq - 1
        assert any(t.repair for t in report.truncations)
        assert "REPAIR" in report.warnings[-1]
        assert [s for s, _ in list_segments(journal)] == [s for s, _ in segments[: index + 1]]
        assert list(scan_journal(journal)) == records[: seq - 1]
        assert recover_journal(journal).clean
        shutil.rmtree(journal)


def test_damaged_tail_of_a_non_final_segment_is_refused(journal: Path) -> None:
    build(journal, payloads(60, random.Random(SEED)), segment_bytes=1024)
    segments = list_segments(journal)
    path = segments[1][1]
    start, end = offsets(path)[-1]
    with open(path, "r+b") as f:
        f.truncate(end - 5)  # no valid record follows in this file, but later segments exist
    with pytest.raises(JournalCorruptError, match=rf"{path.name}: corrupt journal at byte offset {start}"):
        recover_journal(journal)
    report = recover_journal(journal, repair=True)
    assert len(list_segments(journal)) == 2
    assert report.last_seq == segments[2][0] - 2


def test_seq_continuity_across_segments(journal: Path) -> None:
    build(journal, payloads(60, random.Random(SEED)), segment_bytes=1024)
    segments = list_segments(journal)
    segments[2][1].unlink()  # a hole: records missing between two segments
    with pytest.raises(JournalCorruptError, match="gap between segments"):
        recover_journal(journal)
    with pytest.raises(JournalCorruptError):
        list(scan_journal(journal))


def test_header_that_disagrees_with_the_file_name_is_refused(journal: Path) -> None:
    build(journal, payloads(60, random.Random(SEED)), segment_bytes=1024)
    _, path = list_segments(journal)[1]
    data = path.read_bytes()
    path.write_bytes(encode_segment_header(999) + data[SEGMENT_HEADER_SIZE:])
    with pytest.raises(JournalCorruptError, match="does not match the file name"):
        recover_journal(journal)


def test_record_with_a_wrong_seq(journal: Path) -> None:
    records = build(journal, [b"a", b"b", b"c"])
    path = list_segments(journal)[-1][1]
    with open(path, "ab") as f:
        f.write(encode_record(7, 0, b"wrong seq at the tail"))
    report = recover_journal(journal)
    assert "seq 7, expected 4" in report.truncations[0].reason
    assert list(scan_journal(journal)) == records
    with open(path, "ab") as f:
        f.write(encode_record(3, 0, b"dup") + encode_record(4, 0, b"d"))
    with pytest.raises(JournalCorruptError, match="seq 3, expected 4; a valid record follows"):
        recover_journal(journal)


# -- headers of the last segment ------------------------------------------------------------------


def test_torn_header_of_an_empty_last_segment_removes_it(journal: Path) -> None:
    records = build(journal, payloads(30, random.Random(SEED)), segment_bytes=1024)
    next_seq = len(records) + 1
    header = encode_segment_header(next_seq)
    for cut in range(SEGMENT_HEADER_SIZE):
        path = journal / segment_name(next_seq)
        path.write_bytes(header[:cut])
        report = recover_journal(journal)
        assert report.removed == (path,) and not path.exists()
        assert report.next_seq == next_seq
    path.write_bytes(bytes(18) + bytes(4096))  # zero-filled header and tail
    assert recover_journal(journal).removed == (path,)
    assert list(scan_journal(journal)) == records


def test_corrupt_header_with_records_after_it_is_refused(journal: Path) -> None:
    build(journal, payloads(30, random.Random(SEED)), segment_bytes=1024)
    path = list_segments(journal)[-1][1]
    data = bytearray(path.read_bytes())
    data[16] ^= 0xFF  # header crc
    path.write_bytes(bytes(data))
    with pytest.raises(JournalCorruptError, match="byte offset 0: corrupt segment header"):
        recover_journal(journal)
    report = recover_journal(journal, repair=True)
    assert report.removed == (path,)


def test_empty_last_segment_is_kept_and_reused(journal: Path) -> None:
    records = build(journal, [b"a", b"b"])
    path = journal / segment_name(3)
    path.write_bytes(encode_segment_header(3))
    report = recover_journal(journal)
    assert report.clean and report.next_seq == 3 and report.segments[-1].records == 0
    writer = JournalWriter(journal, report.next_seq, fsync="off", fs=FAST)
    writer.append(5, b"c")
    writer.close()
    assert list(scan_journal(journal)) == [*records, JournalRecord(3, 5, b"c")]
    assert path.stat().st_size > SEGMENT_HEADER_SIZE


def test_foreign_segment_format_is_refused_even_with_repair(journal: Path) -> None:
    build(journal, [b"a"])
    path = list_segments(journal)[-1][1]
    data = bytearray(path.read_bytes())
    data[3:4] = b"2"  # TAJ2: a newer build's journal
    path.write_bytes(bytes(data))
    for repair in (False, True):
        with pytest.raises(JournalFormatError, match="TAJ2"):
            recover_journal(journal, repair=repair)
    with pytest.raises(JournalFormatError):
        list(scan_journal(journal))


def test_oversize_length_is_bounded(journal: Path) -> None:
    records = build(journal, [b"a", b"b"])
    path = list_segments(journal)[-1][1]
    with open(path, "ab") as f:
        f.write(struct.pack("<I", 0xFFFFFFFF) + bytes(100))
    report = recover_journal(journal)
    assert "bad length 4294967295" in report.truncations[0].reason
    assert list(scan_journal(journal)) == records


# -- restart idempotency (R9) ----------------------------------------------------------------------


def test_recovery_is_idempotent(journal: Path) -> None:
    rng = random.Random(SEED)
    build(journal, payloads(50, rng), segment_bytes=1024)
    before = digest(journal)
    assert recover_journal(journal).clean
    assert recover_journal(journal).clean
    assert digest(journal) == before  # nothing to truncate: byte-identical
    path = list_segments(journal)[-1][1]
    with open(path, "ab") as f:
        f.write(rng.randbytes(77))
    assert recover_journal(journal).bytes_dropped == 77
    after_cut = digest(journal)
    assert after_cut == before
    assert recover_journal(journal).clean
    assert digest(journal) == after_cut


def test_recover_append_restart_three_times(journal: Path) -> None:
    rng = random.Random(SEED)
    expected: list[JournalRecord] = []
    for _ in range(3):
        report = recover_journal(journal)
        assert report.clean and report.next_seq == len(expected) + 1
        writer = JournalWriter(journal, report.next_seq, fsync="off", segment_bytes=600, fs=FAST)
        for payload in payloads(40, rng):
            seq = writer.append(seq_ts := rng.randrange(2**62), payload)
            expected.append(JournalRecord(seq, seq_ts, payload))
        writer.close()
        assert list(scan_journal(journal)) == expected
    assert [r.seq for r in expected] == list(range(1, 121))


def test_writer_refuses_an_inconsistent_next_seq(journal: Path) -> None:
    build(journal, [b"a", b"b"], first=10)
    with pytest.raises(ValueError, match="cannot precede"):
        JournalWriter(journal, 5, fs=FAST)
    (journal / segment_name(12)).write_bytes(encode_segment_header(12))
    with pytest.raises(ValueError, match="cannot precede"):
        JournalWriter(journal, 13, fs=FAST)
