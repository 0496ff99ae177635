"""Simulated power loss (R4, SQLite test6.c style), fail-the-Nth-I/O (R5) and recovery fuzzing (F4).

Every randomised loop prints its seed on failure; set STORAGE_CRASH_SEED / STORAGE_CRASH_ITERATIONS
to replay or to run the nightly size.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import os
import random
import shutil
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tradingapp.storage import (
    JournalCorruptError,
    JournalFailedError,
    JournalFormatError,
    JournalRecord,
    JournalWriter,
    list_segments,
    recover_journal,
    scan_journal,
)
from tradingapp.storage.crashsim import CrashFS, FaultyFS, NoSyncFS

SEED = int(os.environ.get("STORAGE_CRASH_SEED", "1234"))
ITERATIONS = int(os.environ.get("STORAGE_CRASH_ITERATIONS", "1000"))


async def one_life(
    journal: Path, mode: str, rng: random.Random, expected: list[JournalRecord], context: str
) -> None:
    """Append at random, crash at a random moment, recover, and check what survived."""
    fs = CrashFS(garble=True, rng=rng)
    report = recover_journal(journal, fs=fs)
    assert report.clean and report.next_seq == len(expected) + 1, context
    acked: list[int] = []
    writer = JournalWriter(
        journal,
        report.next_seq,
        fsync=mode,
        segment_bytes=rng.choice([200, 700, 1 << 20]),
        fs=fs,
        on_fatal=lambda exc: None,
    )
    # Crash between loop iterations, or at a random I/O call (a write there is torn).
    fs.crash_at = fs.ops + rng.randint(1, 40) if rng.random() < 0.5 else None
    for _ in range(rng.randint(0, 10)):
        if writer.failed is not None:
            break
        for _ in range(rng.randint(1, 8)):
            payload = rng.randbytes(rng.randint(0, 60))
            ts = rng.randrange(-(2**63), 2**63)
            try:
                seq = writer.append(ts, payload)
            except JournalFailedError:
                if writer.last_seq == len(expected) + 1:  # "always": the seq was taken, then I/O died
                    expected.append(JournalRecord(writer.last_seq, ts, payload))
                break
            expected.append(JournalRecord(seq, ts, payload))
            writer.hold(seq, acked.append, seq)
        for _ in range(rng.randint(0, 3)):
            await asyncio.sleep(0)
    fs.crash(rng)
    durable = writer.durable_seq
    with contextlib.suppress(JournalFailedError):
        writer.close()

    recover_journal(journal, fs=NoSyncFS())  # the restart
    survived = list(scan_journal(journal))
    assert survived == expected[: len(survived)], f"{context}: not an exact prefix"
    # "always"/"batch": nothing acked is lost; every mode: nothing fsynced is lost.
    must_survive = max([durable, *acked]) if mode != "off" else durable
    assert len(survived) >= must_survive, (
        f"{context}: record {must_survive} was acked or durable but the journal ends at {len(survived)}"
    )
    del expected[len(survived) :]


@pytest.mark.parametrize("mode", ["always", "batch", "off"])
async def test_power_loss_keeps_an_exact_prefix_and_every_ack(tmp_path: Path, mode: str) -> None:
    iterations = ITERATIONS // 2 if mode == "batch" else max(1, ITERATIONS // 4)  # 1,000 in all
    for i in range(iterations):
        seed = SEED * 1_000_003 + i
        rng = random.Random(seed)
        journal = tmp_path / f"run{i}" / "journal"
        expected: list[JournalRecord] = []
        for life in range(3):
            await one_life(journal, mode, rng, expected, f"mode={mode} seed={seed} life={life}")
        report = recover_journal(journal)
        assert list(scan_journal(journal)) == expected[: report.last_seq], f"seed={seed}"
        shutil.rmtree(journal.parent)


# -- fail the Nth I/O (R5) --------------------------------------------------------------------------


async def scripted_run(journal: Path, mode: str, fs: FaultyFS) -> tuple[list[int], list[BaseException]]:
    acked: list[int] = []
    fatal: list[BaseException] = []
    writer = JournalWriter(journal, 1, fsync=mode, segment_bytes=300, fs=fs, on_fatal=fatal.append)
    try:
        for i in range(60):
            seq = writer.append(i, bytes([i]) * (i % 25))
            writer.hold(seq, acked.append, seq)
            if i % 5 == 4:
                await asyncio.sleep(0)
        with contextlib.suppress(JournalFailedError):
            await writer.wait_released(60)
    except JournalFailedError:
        pass  # "always": the failing append raises
    finally:
        with contextlib.suppress(JournalFailedError):
            writer.close()
    return acked, fatal


@pytest.mark.parametrize("mode", ["always", "batch"])
async def test_fail_the_nth_io_call(tmp_path: Path, mode: str) -> None:
    counting = FaultyFS(sync=False)
    (tmp_path / "count").mkdir()
    acked, fatal = await scripted_run(tmp_path / "count" / "journal", mode, counting)
    assert acked == list(range(1, 61)) and not fatal
    total = len(counting.calls)
    assert total > 20
    for n in range(1, total + 1):
        journal = tmp_path / f"n{n}" / "journal"
        journal.parent.mkdir()
        err = errno.EIO if n % 2 else errno.ENOSPC
        fs = FaultyFS(fail_at=n, err=err, sync=False)
        try:
            acked, fatal = await scripted_run(journal, mode, fs)
        except OSError:
            assert n <= 2  # creating the journal directory failed: the writer never started
            continue
        if not fatal:  # batch: group boundaries follow fsync timing, so K varies from run to run
            assert len(fs.calls) < n and acked == list(range(1, 61)), f"n={n}"
            shutil.rmtree(journal.parent)
            continue
        assert len(fatal) == 1, f"n={n}: fatal callback called {len(fatal)} times"
        assert isinstance(fatal[0], OSError) and fatal[0].errno == err
        assert len(fs.calls) == n, f"n={n}: I/O continued after the failure: {fs.calls[n - 1 :]}"
        report = recover_journal(journal)
        records = list(scan_journal(journal))
        assert [r.seq for r in records] == list(range(1, report.last_seq + 1))
        assert acked == list(range(1, len(acked) + 1)) and len(acked) <= len(records), f"n={n}"
        shutil.rmtree(journal.parent)


# -- recovery fuzzing (F4, CI size) -----------------------------------------------------------------


_BASE_RECORDS: list[JournalRecord] = []


def _base_journal(root: Path) -> Path:
    base = root / "base"
    if not base.exists():
        rng = random.Random(7)
        writer = JournalWriter(base, 1, fsync="off", segment_bytes=400, fs=NoSyncFS())
        _BASE_RECORDS.clear()
        for i in range(40):
            payload = rng.randbytes(rng.randint(0, 40))
            _BASE_RECORDS.append(JournalRecord(writer.append(i, payload), i, payload))
        writer.close()
    return base


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_recovery_fuzz_yields_a_prefix_or_refuses(tmp_path: Path, data: st.DataObject) -> None:
    base = _base_journal(tmp_path)
    journal = tmp_path / "fuzz"
    shutil.rmtree(journal, ignore_errors=True)
    shutil.copytree(base, journal)
    segments = list_segments(journal)
    index = data.draw(st.integers(0, len(segments) - 1), label="segment")
    path = segments[index][1]
    raw = bytearray(path.read_bytes())
    for _ in range(data.draw(st.integers(1, 4), label="edits")):
        kind = data.draw(st.sampled_from(["flip", "overwrite", "truncate", "append"]))
        if kind == "flip" and raw:
            raw[data.draw(st.integers(0, len(raw) - 1))] ^= data.draw(st.integers(1, 255))
        elif kind == "overwrite" and raw:
            at = data.draw(st.integers(0, len(raw) - 1))
            chunk = data.draw(st.binary(min_size=1, max_size=64))
            raw[at : at + len(chunk)] = chunk
        elif kind == "truncate":
            del raw[data.draw(st.integers(0, len(raw))) :]
        else:
            raw += data.draw(st.binary(min_size=1, max_size=300))
    path.write_bytes(bytes(raw))
    try:
        report = recover_journal(journal)
    except JournalFormatError:
        return  # the edit made the header look like another format version: refused, fine
    except JournalCorruptError as exc:
        assert exc.path.parent == journal and exc.offset >= 0
        report = recover_journal(journal, repair=True)
    records = list(scan_journal(journal))
    assert records == _BASE_RECORDS[: len(records)]
    assert report.last_seq == len(records)
    assert recover_journal(journal).clean
