"""The file-system calls that change durable state, behind one small class.

Everything in the storage layer that writes, syncs, renames, truncates or removes goes through a
:class:`FileOps` instance, so tests can substitute one that fails the Nth call or simulates a
power loss (``tradingapp.storage.crashsim``). Reads use plain ``open``/``read``: they change
nothing.

``fsync`` uses ``os.fdatasync`` where it exists: for an append-only file it forces the data and
the new file size (all a later read needs) and skips the time stamps. On macOS neither call
flushes the drive's cache (that needs ``F_FULLFSYNC``); this project targets Linux.
"""

from __future__ import annotations

import os
from pathlib import Path

_sync = getattr(os, "fdatasync", os.fsync)
_O_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_O_DIRECTORY = getattr(os, "O_DIRECTORY", 0)

APPEND_FLAGS = os.O_WRONLY | os.O_APPEND | _O_CLOEXEC
CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND | _O_CLOEXEC
REPLACE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | _O_CLOEXEC


class FileOps:
    """The real operations (the default everywhere)."""

    #: False: the calls change files (True for :class:`ReadOnlyFileOps`, so messages say so).
    read_only = False

    def open(self, path: Path, flags: int, mode: int = 0o644) -> int:
        return os.open(path, flags, mode)

    def write(self, fd: int, data: bytes | bytearray | memoryview) -> int:
        return os.write(fd, data)

    def fsync(self, fd: int) -> None:
        _sync(fd)

    def close(self, fd: int) -> None:
        os.close(fd)

    def ftruncate(self, fd: int, length: int) -> None:
        os.ftruncate(fd, length)

    def rename(self, src: Path, dst: Path) -> None:
        os.replace(src, dst)

    def remove(self, path: Path) -> None:
        os.remove(path)

    def fsync_dir(self, path: Path) -> None:
        fd = os.open(path, os.O_RDONLY | _O_DIRECTORY | _O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def mkdir(self, path: Path) -> None:
        os.mkdir(path)


DEFAULT_FILEOPS = FileOps()


class ReadOnlyFileOps(FileOps):
    """For the tools that only look at a data dir (``tradingapp journal``, ``accounts``), which may
    run next to a live engine and with read access only: reading works, and what recovery would
    change is left as it is (a torn tail, a stray ``.tmp`` snapshot the engine may be writing that
    very moment); the engine deals with those itself. A file is only ever opened for reading
    (truncating one opens it first), and creating or writing data is refused outright."""

    read_only = True

    def open(self, path: Path, flags: int, mode: int = 0o644) -> int:
        if flags & os.O_CREAT:
            raise PermissionError(f"read-only access to the data dir: cannot create {path}")
        return os.open(path, os.O_RDONLY | (flags & _O_CLOEXEC))

    def write(self, fd: int, data: bytes | bytearray | memoryview) -> int:
        raise PermissionError("read-only access to the data dir")

    def fsync(self, fd: int) -> None:
        pass

    def ftruncate(self, fd: int, length: int) -> None:
        pass

    def rename(self, src: Path, dst: Path) -> None:
        pass

    def remove(self, path: Path) -> None:
        pass

    def fsync_dir(self, path: Path) -> None:
        pass

    def mkdir(self, path: Path) -> None:
        raise PermissionError(f"read-only access to the data dir: cannot create {path}")


READ_ONLY_FILEOPS = ReadOnlyFileOps()


def write_all(fs: FileOps, fd: int, data: bytes | bytearray | memoryview) -> None:
    """Write all of ``data`` (a regular file may take less than asked, e.g. when the disk fills)."""
    view = memoryview(data)
    while view:
        n = fs.write(fd, view)
        if n <= 0:
            raise OSError(f"write returned {n}")
        view = view[n:]


def ensure_dir(fs: FileOps, path: Path) -> None:
    """Create ``path`` (and missing parents) durably: each new entry's parent is fsynced."""
    if path.is_dir():
        return
    parent = path.parent
    if parent != path:
        ensure_dir(fs, parent)
    try:
        fs.mkdir(path)
    except FileExistsError:
        if not path.is_dir():
            raise
        return
    fs.fsync_dir(parent)


def truncate_file(fs: FileOps, path: Path, length: int) -> None:
    """Cut ``path`` to ``length`` bytes and fsync the result before returning."""
    fd = fs.open(path, os.O_WRONLY | _O_CLOEXEC)
    try:
        fs.ftruncate(fd, length)
        fs.fsync(fd)
    finally:
        fs.close(fd)


def remove_file(fs: FileOps, path: Path) -> None:
    """Remove ``path`` and fsync its directory."""
    fs.remove(path)
    fs.fsync_dir(path.parent)


def write_file_atomically(fs: FileOps, path: Path, *parts: bytes | bytearray | memoryview) -> None:
    """Create ``path`` holding ``parts`` all or nothing: write a ``.tmp`` sibling, fsync it, rename
    it into place and fsync the directory."""
    tmp = path.with_name(path.name + ".tmp")
    fd = fs.open(tmp, REPLACE_FLAGS)
    try:
        for part in parts:
            write_all(fs, fd, part)
        fs.fsync(fd)
    finally:
        fs.close(fd)
    fs.rename(tmp, path)
    fs.fsync_dir(path.parent)
