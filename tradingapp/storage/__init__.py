"""Persistence storage: journal segments and records, the recovery scan, the group-commit writer
and atomic snapshots. Independent of what the records mean: payloads are opaque bytes.

Start-up sequence for the engine::

    snap = load_latest_snapshot(data_dir / "snapshots")           # None, or (seq, payload)
    after = snap.seq if snap else 0
    reading = JournalReading(data_dir / "journal", after, repair=flag)
    for ts_ns, payload in reading:        # checks every record once, cuts a torn tail, or raises
        ...apply...
    report = reading.report               # what recover_journal() would have returned
    writer = JournalWriter(data_dir / "journal", max(report.next_seq, after + 1), fsync=mode,
                           on_fatal=stop_engine)

(``recover_journal`` then ``scan_journal`` do the same in two passes.)

See ``docs/persistence.md``.
"""

from tradingapp.storage.errors import (
    DataDirInUseError,
    JournalCorruptError,
    JournalFailedError,
    JournalFormatError,
    SnapshotFormatError,
    StorageError,
)
from tradingapp.storage.fileops import DEFAULT_FILEOPS, READ_ONLY_FILEOPS, FileOps
from tradingapp.storage.lock import DataDirLock
from tradingapp.storage.records import (
    MAX_PAYLOAD_BYTES,
    MAX_RECORD_BYTES,
    RECORD_OVERHEAD,
    SEGMENT_HEADER_SIZE,
    JournalRecord,
    encode_record,
    encode_segment_header,
)
from tradingapp.storage.segments import (
    JournalReading,
    RecoveryReport,
    SegmentSummary,
    Truncation,
    list_segments,
    recover_journal,
    scan_journal,
    segment_name,
)
from tradingapp.storage.snapshots import (
    SNAPSHOT_STEPS,
    PruneReport,
    Snapshot,
    list_snapshots,
    load_latest_snapshot,
    prune,
    read_snapshot,
    write_snapshot,
)
from tradingapp.storage.writer import (
    DEFAULT_MAX_BACKLOG_BYTES,
    DEFAULT_SEGMENT_BYTES,
    FSYNC_MODES,
    JournalWriter,
)

JOURNAL_DIRNAME = "journal"
SNAPSHOT_DIRNAME = "snapshots"

__all__ = [
    "DEFAULT_FILEOPS",
    "DEFAULT_MAX_BACKLOG_BYTES",
    "DEFAULT_SEGMENT_BYTES",
    "FSYNC_MODES",
    "JOURNAL_DIRNAME",
    "MAX_PAYLOAD_BYTES",
    "MAX_RECORD_BYTES",
    "READ_ONLY_FILEOPS",
    "RECORD_OVERHEAD",
    "SEGMENT_HEADER_SIZE",
    "SNAPSHOT_DIRNAME",
    "SNAPSHOT_STEPS",
    "DataDirInUseError",
    "DataDirLock",
    "FileOps",
    "JournalCorruptError",
    "JournalFailedError",
    "JournalFormatError",
    "JournalReading",
    "JournalRecord",
    "JournalWriter",
    "PruneReport",
    "RecoveryReport",
    "SegmentSummary",
    "Snapshot",
    "SnapshotFormatError",
    "StorageError",
    "Truncation",
    "encode_record",
    "encode_segment_header",
    "list_segments",
    "list_snapshots",
    "load_latest_snapshot",
    "prune",
    "read_snapshot",
    "recover_journal",
    "scan_journal",
    "segment_name",
    "write_snapshot",
]
