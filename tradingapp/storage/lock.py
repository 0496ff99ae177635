"""One engine per data dir: an exclusive ``flock`` on ``DATA_DIR/LOCK`` while the engine runs.

Two engines appending to one journal would both write records with the same sequence numbers
and ruin it (and a second engine's snapshot would prune what the first still needs), so the
second one must refuse to start, as Kafka (``.lock``) and LevelDB (``LOCK``) do. The kernel drops
a ``flock`` when its holder dies, so a ``kill -9`` never leaves a stale lock behind. The file
records the holder's pid for the error message only.

A forked snapshot writer inherits the descriptor; it closes its copy at once (closing, unlike
``LOCK_UN``, leaves the parent's lock in place), so the lock never outlives the engine.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from tradingapp.storage.errors import DataDirInUseError

LOCK_NAME = "LOCK"

_held: set[int] = set()  # descriptors of the locks this process holds


def _close_in_child() -> None:
    for fd in _held:
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


os.register_at_fork(after_in_child=_close_in_child)


class DataDirLock:
    """The exclusive lock of one data dir, held from :meth:`acquire` to :meth:`release`."""

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock or raise :class:`DataDirInUseError` naming the holder."""
        if self._fd is not None:
            return
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise DataDirInUseError(self.path.parent, holder) from None
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        _held.add(fd)

    def release(self) -> None:
        """Let go of the lock (idempotent); the file stays."""
        fd, self._fd = self._fd, None
        if fd is not None:
            _held.discard(fd)
            os.close(fd)
