"""Errors raised by the storage layer.

Every error that concerns a file names it, and corruption errors carry the byte offset, so that
an operator can look at the exact spot (``xxd -s OFFSET FILE``).
"""

from __future__ import annotations

from pathlib import Path


class StorageError(Exception):
    """Base class of every storage-layer error."""


class JournalFormatError(StorageError):
    """A journal file has an unknown magic or format version: refused, never guessed at."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.detail = detail


class JournalCorruptError(StorageError):
    """The journal is damaged somewhere other than a droppable tail.

    Raised for a bad record (or header) in a non-final segment, for one followed by valid records,
    and for a break in the sequence between segments. ``recover_journal(..., repair=True)``
    truncates at ``offset`` instead (dropping everything after it, later segments included).
    """

    def __init__(self, path: Path, offset: int, reason: str, hint: str = "") -> None:
        message = f"{path}: corrupt journal at byte offset {offset}: {reason}"
        if hint:
            message += f" ({hint})"
        super().__init__(message)
        self.path = path
        self.offset = offset
        self.reason = reason


class JournalFailedError(StorageError):
    """The journal writer hit a write or fsync error and stopped for good (fail-stop)."""


class SnapshotFormatError(StorageError):
    """A snapshot file has an unknown magic or format version: refused, never guessed at."""

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.detail = detail
