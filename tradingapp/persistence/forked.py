"""Running a snapshot writer in a forked child, so the event loop never waits for it.

The parent forks at a moment when no work is in flight: the child's memory is a copy-on-write
image of the state at that instant, so it can encode and write a snapshot at leisure while the
parent keeps serving (the technique of Redis's ``BGSAVE``). The child only serialises, writes
files and exits with ``os._exit``: it never touches the event loop, the journal or the sockets
it inherited, and its status (0 = done) is the only thing it reports.

In the child, before the work:

- inherited sockets are closed (the listening socket, the clients', the loop's internal ones): a
  connection the parent closes is really closed, and the child cannot write to any; standard
  logging is disabled, so the child adds nothing to the engine's log;
- SIGTERM and SIGINT get their default action back (the parent's handlers write to the event
  loop's wakeup descriptor, which the child no longer has);
- on Linux the child asks for SIGKILL when its parent dies (``PR_SET_PDEATHSIG``): a server
  killed in the middle of a snapshot takes its writer with it, so a restarted server never
  shares the data directory with an orphan. A crash therefore leaves what any crash leaves
  (a ``.tmp`` at worst), and recovery already handles that;
- the cyclic collector is off: it would walk (and so copy) the whole inherited heap.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import logging
import os
import signal
import stat
import sys
import traceback
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1


def _resolve_prctl() -> Callable[..., int] | None:
    # Resolved in the parent, at import: dlopen/dlsym in a forked child of a threaded process
    # could wait for a loader lock that another thread held at the fork.
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl: Callable[..., int] = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    return prctl


_PRCTL = _resolve_prctl()


def fork_available() -> bool:
    """True where :func:`start` can run work in a child (POSIX)."""
    return hasattr(os, "fork")


def start(work: Callable[[], object]) -> int:
    """Fork; run ``work()`` in the child, which exits 0 when it returns and 1 when it raises
    (the traceback goes to descriptor 2). Return the child's pid (in the parent)."""
    parent = os.getpid()
    pid = os.fork()
    if pid != 0:
        return pid
    status = 1
    try:
        _detach(parent)
        work()
        status = 0
    except BaseException:  # whatever happens, the child must not return into the engine
        # straight to descriptor 2: sys.stderr may wrap a descriptor closed by _detach
        with contextlib.suppress(OSError):
            os.write(2, f"snapshot child {os.getpid()} failed:\n{traceback.format_exc()}".encode())
    finally:
        os._exit(status)


def _detach(parent: int) -> None:
    gc.disable()
    logging.disable(logging.CRITICAL)
    signal.set_wakeup_fd(-1)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, signal.SIG_DFL)
    if _PRCTL is not None:
        _PRCTL(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the request above took effect
        os._exit(1)
    _close_sockets()


def _close_sockets() -> None:
    # Only sockets: files (the log, a test runner's capture files) may still be written to.
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        fds = list(range(3, 1024))
    for fd in fds:
        with contextlib.suppress(OSError):
            if fd > 2 and stat.S_ISSOCK(os.fstat(fd).st_mode):
                os.close(fd)


def poll(pid: int) -> int | None:
    """The exit code of child ``pid`` once it has ended (reaping it), else None. A child killed
    by a signal reports minus the signal number."""
    done, status = os.waitpid(pid, os.WNOHANG)
    if done == 0:
        return None
    return os.waitstatus_to_exitcode(status)


def wait(pid: int) -> int:
    """Block until child ``pid`` ends; return its exit code (as :func:`poll`)."""
    _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status)
