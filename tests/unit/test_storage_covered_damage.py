"""Damage in journal records a snapshot already covers (``recover_journal(covered=...)``).

Refused without repair, with a hint that says whether a repair loses anything; with repair the
journal starts again where the needed records do, and every intact record after the snapshot is
kept. An interrupted repair is finished by the next one.
"""

from __future__ import annotations

import errno
import random
import shutil
from pathlib import Path

import pytest

from tests.unit.test_storage_recovery import FAST, build, offsets, payloads
from tradingapp.storage import (
    JournalCorruptError,
    JournalRecord,
    JournalWriter,
    list_segments,
    recover_journal,
    scan_journal,
    segment_name,
)
from tradingapp.storage.crashsim import FaultyFS

SEED = 20240607


@pytest.fixture
def journal(tmp_path: Path) -> Path:
    return tmp_path / "journal"


def one_segment(journal: Path, n: int = 40) -> tuple[list[JournalRecord], Path, list[tuple[int, int]]]:
    records = build(journal, payloads(n, random.Random(SEED), 10, 60), segment_bytes=1 << 20)
    [(_, path)] = list_segments(journal)
    return records, path, offsets(path)


def flip(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x10
    path.write_bytes(bytes(data))


def continues(journal: Path, covered: int, expected: list[JournalRecord]) -> None:
    """The journal recovers clean, yields ``expected`` after ``covered``, and takes new records."""
    report = recover_journal(journal, covered=covered, fs=FAST)
    assert report.clean
    assert expected == list(scan_journal(journal, covered))
    writer = JournalWriter(journal, max(report.next_seq, covered + 1), fsync="off", fs=FAST)
    seq = writer.append(1, b"after the repair")
    writer.close()
    assert (expected[-1].seq if expected else covered) + 1 == seq
    assert [*expected, JournalRecord(seq, 1, b"after the repair")] == list(scan_journal(journal, covered))


def test_damage_in_a_covered_record_is_refused_then_repaired_keeping_later_records(journal: Path) -> None:
    records, path, spans = one_segment(journal)
    flip(path, spans[9][0] + 12)  # record 10; the snapshot covers 25

    with pytest.raises(JournalCorruptError) as refused:
        recover_journal(journal, covered=25, fs=FAST)
    assert "record 10 is covered by the snapshot at seq 25" in str(refused.value)
    assert "no record after it is lost" in str(refused.value)

    report = recover_journal(journal, repair=True, covered=25, fs=FAST)

    assert [segment_name(26)] == [p.name for _, p in list_segments(journal)]
    assert (26, 40) == (report.segments[0].first_seq, report.last_seq)
    assert [path] == list(report.removed)
    assert any("REPAIR" in w and "copying seq 26" in w for w in report.warnings)
    continues(journal, 25, records[25:])


def test_a_damaged_segment_the_snapshot_covers_whole_is_removed_without_a_copy(journal: Path) -> None:
    records = build(journal, payloads(200, random.Random(SEED), 10, 60), segment_bytes=512)
    segments = list_segments(journal)
    assert len(segments) > 6
    covered = segments[4][0] - 1  # segment 4 starts right after the snapshot
    flip(segments[1][1], offsets(segments[1][1])[2][0] + 12)
    untouched = {p.name: p.read_bytes() for _, p in segments[4:]}

    with pytest.raises(JournalCorruptError):
        recover_journal(journal, covered=covered, fs=FAST)
    report = recover_journal(journal, repair=True, covered=covered, fs=FAST)

    assert [p for _, p in segments[:4]] == list(report.removed)
    assert untouched == {p.name: p.read_bytes() for _, p in list_segments(journal)}
    continues(journal, covered, records[covered:])


def test_a_covered_damaged_tail_under_a_snapshot_of_the_whole_journal(journal: Path) -> None:
    # A clean stop's snapshot covers the last record: nothing after it is needed.
    _, path, spans = one_segment(journal)
    flip(path, spans[37][0] + 12)

    with pytest.raises(JournalCorruptError) as refused:
        recover_journal(journal, covered=40, fs=FAST)
    assert "no record after it is lost" in str(refused.value)
    report = recover_journal(journal, repair=True, covered=40, fs=FAST)

    assert ([], 0) == (list_segments(journal), report.last_seq)
    continues(journal, 40, [])


def test_records_after_the_snapshot_damaged_too_are_dropped_only_by_repair(journal: Path) -> None:
    _, path, spans = one_segment(journal)
    data = bytearray(path.read_bytes())
    data[spans[9][0] : spans[29][1]] = bytes(spans[29][1] - spans[9][0])  # records 10..30 zeroed
    path.write_bytes(bytes(data))

    with pytest.raises(JournalCorruptError) as refused:
        recover_journal(journal, covered=25, fs=FAST)
    assert "records after seq 25 are damaged too" in str(refused.value)
    report = recover_journal(journal, repair=True, covered=25, fs=FAST)

    assert [] == list_segments(journal)
    assert any("damaged and are dropped" in w for w in report.warnings)
    continues(journal, 25, [])


def test_an_interrupted_repair_is_finished_by_the_next_one(tmp_path: Path) -> None:
    pristine = tmp_path / "pristine"
    records, path, spans = one_segment(pristine)
    flip(path, spans[9][0] + 12)
    counting = FaultyFS(sync=False)
    recover_journal(shutil.copytree(pristine, tmp_path / "count"), repair=True, covered=25, fs=counting)
    assert len(counting.calls) > 3

    for fail_at in range(1, len(counting.calls) + 1):
        journal = shutil.copytree(pristine, tmp_path / f"crash{fail_at}")
        with pytest.raises(OSError):
            recover_journal(journal, repair=True, covered=25, fs=FaultyFS(fail_at, errno.EIO, sync=False))
        recover_journal(journal, repair=True, covered=25, fs=FAST)
        assert [segment_name(26)] == [p.name for _, p in list_segments(journal)], f"fail at {fail_at}"
        continues(journal, 25, records[25:])
