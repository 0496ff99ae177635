"""R6, R7, R8 through the engine's recovery path (``replay_journal``), on a journal written by a
real server (the session's clean run).

The storage layer's own unit tests cover the byte-level rules on synthetic payloads; these check
that the engine, given a damaged journal of its own records, recovers to exactly the state of the
intact prefix (torn or garbled tail: dropped) or refuses (mid-log damage), and that repair works.

Two data directories are built from the clean run:

- ``A``: the whole journal plus the *older* of the two snapshots the engine kept (the newer one
  covers the last record, so a cut tail would fall below it, which a flush-before-snapshot
  engine never produces); recovery = that snapshot + the journal after it;
- ``B``: a prefix of the journal that ends with an ``O`` (admit) record, no snapshot: the
  record's book and settle steps are then in flight and recovery must finish them.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.persistence.conftest import CleanRun
from tests.persistence.harness import (
    Server,
    journal_records,
    recovered_state,
    replay_records,
    seeded_random,
)
from tradingapp.config import VenueConfig
from tradingapp.persistence import records as rec
from tradingapp.storage import JournalCorruptError, list_segments, list_snapshots
from tradingapp.storage.records import SEGMENT_HEADER_SIZE, read_record


@dataclass
class Layout:
    """One journal segment and where each record starts and ends in it."""

    segment_name: str
    data: bytes
    starts: list[int]
    ends: list[int]
    records: list[tuple[int, int, list[Any]]]


def layout(data_dir: Path) -> Layout:
    segments = list_segments(data_dir / "journal")
    assert len(segments) == 1, "the clean run's journal should be one segment"
    path = segments[0][1]
    data = path.read_bytes()
    starts, ends = [], []
    offset = SEGMENT_HEADER_SIZE
    while offset < len(data):
        result = read_record(data, offset)
        assert not isinstance(result, str), result
        starts.append(offset)
        ends.append(result[2])
        offset = result[2]
    records = journal_records(data_dir)
    assert len(records) == len(starts)
    return Layout(path.name, data, starts, ends, records)


@pytest.fixture(scope="module")
def journal(clean_run: CleanRun) -> Layout:
    assert clean_run.exit_code == 0
    return layout(clean_run.data_dir)


@pytest.fixture(scope="module")
def older_snapshot(clean_run: CleanRun) -> tuple[int, Path]:
    snaps = list_snapshots(clean_run.data_dir / "snapshots")
    assert len(snaps) == 2, f"expected the engine to keep two snapshots, found {snaps}"
    return snaps[0]


class Cases:
    """Writes damaged data directories and recovers them."""

    def __init__(self, root: Path, config: VenueConfig, journal: Layout, snapshot: tuple[int, Path] | None):
        self.root = root
        self.config = config
        self.journal = journal
        self.snapshot = snapshot
        self.n = 0

    def make(self, segment: bytes) -> Path:
        self.n += 1
        data_dir = self.root / f"case{self.n}"
        if data_dir.exists():
            shutil.rmtree(data_dir)
        (data_dir / "journal").mkdir(parents=True)
        (data_dir / "snapshots").mkdir()
        (data_dir / "journal" / self.journal.segment_name).write_bytes(segment)
        if self.snapshot is not None:
            shutil.copy(self.snapshot[1], data_dir / "snapshots" / self.snapshot[1].name)
        return data_dir

    def recover(self, segment: bytes, *, repair: bool = False) -> tuple[str, int, Path]:
        data_dir = self.make(segment)
        venue, next_seq, _, _ = recovered_state(self.config, data_dir, repair=repair)
        return venue.state_digest(), next_seq, data_dir


def flip(data: bytes, offset: int, bit: int) -> bytes:
    out = bytearray(data)
    out[offset] ^= 1 << bit
    return bytes(out)


def expected_digest(config: VenueConfig, journal: Layout, count: int) -> str:
    """State after the first ``count`` records (in-flight steps finished), replayed from seq 1."""
    return replay_records(config, journal.records[:count]).state_digest()


def test_torn_last_record_every_offset(
    tmp_path: Path, clean_run: CleanRun, journal: Layout, older_snapshot: tuple[int, Path]
) -> None:
    config = clean_run.config
    n = len(journal.records)
    assert older_snapshot[0] < n - 1
    start, end = journal.starts[-1], journal.ends[-1]
    want = expected_digest(config, journal, n - 1)
    cases = Cases(tmp_path, config, journal, older_snapshot)
    for cut in range(start, end):
        digest, next_seq, data_dir = cases.recover(journal.data[:cut])
        assert (digest, next_seq) == (want, n), f"cut at byte {cut} (record {n} spans {start}..{end})"
        size = (data_dir / "journal" / journal.segment_name).stat().st_size
        assert size == start, f"cut at {cut}: the torn record was not truncated away"
    # and the whole journal recovers to the whole state
    digest, next_seq, _ = cases.recover(journal.data)
    assert (digest, next_seq) == (expected_digest(config, journal, n), n + 1)
    assert digest == rec_digest_of_clean_stop(clean_run)


def rec_digest_of_clean_stop(clean_run: CleanRun) -> str:
    venue, *_ = recovered_state(clean_run.config, clean_run.data_dir)
    return venue.state_digest()


def test_torn_admit_record_every_offset_finishes_in_flight(
    tmp_path: Path, clean_run: CleanRun, journal: Layout
) -> None:
    config = clean_run.config
    m = next(i for i in range(600, len(journal.records)) if journal.records[i][2][0] == rec.ADMIT)
    prefix = journal.data[: journal.ends[m]]  # m + 1 records, the last an admitted order
    start, end = journal.starts[m], journal.ends[m]
    cases = Cases(tmp_path, config, journal, None)
    # intact: the admitted order's book and settle steps are owed and recovery finishes them
    venue, next_seq, _, finished = recovered_state(config, cases.make(prefix))
    assert finished >= 2 and next_seq == m + 2
    assert venue.state_digest() == expected_digest(config, journal, m + 1)
    want = expected_digest(config, journal, m)
    for cut in range(start, end):
        digest, next_seq, _ = cases.recover(prefix[:cut])
        assert (digest, next_seq) == (want, m + 1), f"cut at byte {cut} of record {m + 1} ({start}..{end})"


def prefix(journal: Layout, count: int) -> Layout:
    """The journal of the first ``count`` records (what a crash right after them leaves)."""
    return Layout(
        journal.segment_name,
        journal.data[: journal.ends[count - 1]],
        journal.starts[:count],
        journal.ends[:count],
        journal.records[:count],
    )


@pytest.fixture(scope="module")
def short_journal(journal: Layout) -> Layout:
    """About 1,200 records ending with a settle or book step (fast to replay hundreds of times)."""
    count = next(i for i in range(1200, len(journal.records)) if journal.records[i - 1][2][0] != rec.ADMIT)
    return prefix(journal, count)


def test_bit_flips_in_the_last_record_drop_it(
    tmp_path: Path, clean_run: CleanRun, short_journal: Layout
) -> None:
    seed, rng = seeded_random(11)
    config = clean_run.config
    journal = short_journal
    n = len(journal.records)
    start, end = journal.starts[-1], journal.ends[-1]
    want = expected_digest(config, journal, n - 1)
    cases = Cases(tmp_path, config, journal, None)
    spots = [(start + i, bit) for i in range(24) for bit in range(8)]  # every header bit
    spots += [(rng.randrange(start + 24, end), rng.randrange(8)) for _ in range(64)]  # payload bits
    for offset, bit in spots:
        digest, next_seq, _ = cases.recover(flip(journal.data, offset, bit))
        assert (digest, next_seq) == (want, n), f"seed {seed}: bit {bit} of byte {offset} flipped"


def test_garbage_and_zeros_after_the_last_record_are_dropped(
    tmp_path: Path, clean_run: CleanRun, short_journal: Layout
) -> None:
    seed, rng = seeded_random(12)
    config = clean_run.config
    journal = short_journal
    n = len(journal.records)
    want = expected_digest(config, journal, n)
    cases = Cases(tmp_path, config, journal, None)
    tails = [rng.randbytes(rng.randint(1, 4096)) for _ in range(40)] + [bytes(4096), bytes(65536)]
    for tail in tails:
        digest, next_seq, data_dir = cases.recover(journal.data + tail)
        assert (digest, next_seq) == (want, n + 1), f"seed {seed}: {len(tail)} bytes appended"
        assert (data_dir / "journal" / journal.segment_name).read_bytes() == journal.data


def test_mid_log_damage_is_refused_and_repair_keeps_the_prefix(
    tmp_path: Path, clean_run: CleanRun, journal: Layout, older_snapshot: tuple[int, Path]
) -> None:
    """Damage after the snapshot: refused (file and offset named, nothing changed); with repair
    the journal is cut there and the state is the snapshot plus the records before the damage."""
    seed, rng = seeded_random(13)
    config = clean_run.config
    n = len(journal.records)
    snap_seq = older_snapshot[0]
    cases = Cases(tmp_path, config, journal, older_snapshot)
    for _ in range(12):
        k = rng.randrange(snap_seq, n - 1)  # 0-based index of the damaged record (seq k + 1)
        offset = rng.randrange(journal.starts[k], journal.ends[k])
        damaged = flip(journal.data, offset, rng.randrange(8))
        data_dir = cases.make(damaged)
        with pytest.raises(JournalCorruptError) as refused:
            recovered_state(config, data_dir)
        text = str(refused.value)
        assert journal.segment_name in text and str(journal.starts[k]) in text, text
        assert (data_dir / "journal" / journal.segment_name).read_bytes() == damaged, "refusal changed files"
        venue, next_seq, _, _ = recovered_state(config, data_dir, repair=True)
        assert next_seq == k + 1, f"seed {seed}: record {k + 1} damaged at byte {offset}"
        assert venue.state_digest() == expected_digest(config, journal, k), f"seed {seed}: record {k + 1}"


def test_repair_of_damage_below_the_snapshot(
    tmp_path: Path, clean_run: CleanRun, journal: Layout, older_snapshot: tuple[int, Path]
) -> None:
    """Damage in a record the snapshot already covers: refused without repair; with repair the
    engine comes up from the snapshot plus every record after it (nothing acknowledged is lost),
    and the repaired journal needs no repair at the next start."""
    _, rng = seeded_random(14)
    config = clean_run.config
    n = len(journal.records)
    snap_seq = older_snapshot[0]
    k = rng.randrange(1, snap_seq - 1)
    offset = rng.randrange(journal.starts[k] + 8, journal.ends[k])  # a crc-covered byte
    damaged = flip(journal.data, offset, rng.randrange(8))
    cases = Cases(tmp_path, config, journal, older_snapshot)
    with pytest.raises(JournalCorruptError):
        recovered_state(config, cases.make(damaged))
    data_dir = cases.make(damaged)
    venue, next_seq, _, _ = recovered_state(config, data_dir, repair=True)
    assert (venue.state_digest(), next_seq) == (expected_digest(config, journal, n), n + 1)
    again, next_seq, _, _ = recovered_state(config, data_dir)
    assert (again.state_digest(), next_seq) == (expected_digest(config, journal, n), n + 1)


def test_server_recovers_a_torn_tail_and_refuses_mid_log_damage(
    tmp_path: Path, clean_run: CleanRun, journal: Layout, older_snapshot: tuple[int, Path]
) -> None:
    """The same through a real server: start on a torn tail (recovers, logs what it dropped);
    start on mid-log damage (exits non-zero naming the file and offset); start with repair."""
    config = clean_run.config
    n = len(journal.records)
    cases = Cases(tmp_path, config, journal, older_snapshot)
    start, end = journal.starts[-1], journal.ends[-1]
    torn = cases.make(journal.data[: (start + end) // 2])
    server = Server(torn, clean_run.config_path).start()
    recovered = server.recovered()
    dropped = [
        e for e in server.log_events() if e.get("event") in ("journal_tail_dropped", "journal_tail_truncated")
    ]
    assert server.stop() == 0
    assert recovered["digest"] == expected_digest(config, journal, n - 1)
    assert dropped and dropped[0]["offset"] == start, server.log_events()

    k = n - 5
    offset = journal.starts[k] + 30
    damaged = flip(journal.data, offset, 3)
    refused = Server(cases.make(damaged), clean_run.config_path)
    code, stderr = refused.start_expecting_failure()
    assert code != 0
    assert journal.segment_name in stderr and str(journal.starts[k]) in stderr, stderr[-2000:]

    repaired = Server(cases.make(damaged), clean_run.config_path, repair=True).start()
    recovered = repaired.recovered()
    assert repaired.stop() == 0
    assert recovered["digest"] == expected_digest(config, journal, k)
