"""Errors raised by the storage layer.

Every error that concerns a file names it, and corruption errors carry the byte offset, so that
an operator can look at the exact spot (``xxd -s OFFSET FILE``).
"""

from __future__ import annotations

from pathlib import Path


class StorageError(Exception):
    """Base class of every storage-layer error."""


class FormatError(StorageError):
    """A file has an unknown magic or format version: refused, never guessed at."""

    #: What the file is, in messages ("journal segment", "snapshot").
    noun = "file"
    #: The format's name, in messages ("journal", "snapshot").
    format_name = "file"

    def __init__(self, path: Path, detail: str) -> None:
        super().__init__(f"{path}: {detail}")
        self.path = path
        self.detail = detail

    @classmethod
    def refuse_other_format(
        cls, path: Path, header: tuple[bytes, int], ours: tuple[bytes, int], *, intact: bool
    ) -> None:
        """Raise for a header of another format than ``ours`` (its ``(magic, version)``).

        ``header`` is the file's ``(magic, version)``; ``intact``: its header CRC matches. Another
        version of our magic (same first three bytes, then a digit) is refused even when the CRC
        does not match (a newer format may lay its header out differently: downgrade is refused);
        any other magic or version only when the header is intact, since a damaged header is the
        caller's to report.
        """
        (magic, version), (our_magic, our_version) = header, ours
        if magic[:3] == our_magic[:3] and magic[3:4].isdigit() and magic != our_magic:
            raise cls(
                path,
                f"{cls.format_name} format {magic.decode('ascii')!r} is not supported "
                f"(this build reads {our_magic.decode('ascii')})",
            )
        if intact and magic != our_magic:
            raise cls(path, f"not a TradingApp {cls.noun} (magic {magic!r})")
        if intact and version != our_version:
            raise cls(path, f"{cls.noun} version {version} is not supported (this build reads {our_version})")


class JournalFormatError(FormatError):
    """A journal file has an unknown magic or format version: refused, never guessed at."""

    noun = "journal segment"
    format_name = "journal"


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


class DataDirInUseError(StorageError):
    """Another engine holds the data dir's lock: starting a second one there would ruin it."""

    def __init__(self, data_dir: Path, holder: str) -> None:
        super().__init__(f"{data_dir} is in use by another engine (pid {holder}); stop it first")
        self.data_dir = data_dir
        self.holder = holder


class JournalFailedError(StorageError):
    """The journal writer hit a write or fsync error and stopped for good (fail-stop)."""


class SnapshotFormatError(FormatError):
    """A snapshot file has an unknown magic or format version: refused, never guessed at."""

    noun = "snapshot"
    format_name = "snapshot"
