"""Fixtures for the client-library and load-generator tests (imported by those test files).

``engine_addr``: a real engine started in the test's event loop (port 0, tmp data dir, fsync
off); yields ``(host, port)``. ``threaded_engine``: the same in a background thread with its own
event loop, for blocking code (``SyncClient``, ``loadgen.main``) run from a synchronous test.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tradingapp.config import load_config
from tradingapp.server import Engine


@pytest.fixture
async def engine_addr(tmp_path: Path) -> AsyncIterator[tuple[str, int]]:
    engine = Engine(load_config(None), data_dir=tmp_path / "data", fsync="off")
    host, port = await engine.start("127.0.0.1", 0)
    try:
        yield host, port
    finally:
        await asyncio.wait_for(engine.stop(), 30)


@pytest.fixture
def threaded_engine(tmp_path: Path) -> Iterator[tuple[str, int]]:
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever, name="test-engine", daemon=True)
    thread.start()

    async def start() -> tuple[Engine, str, int]:
        engine = Engine(load_config(None), data_dir=tmp_path / "data", fsync="off")
        host, port = await engine.start("127.0.0.1", 0)
        return engine, host, port

    engine, host, port = asyncio.run_coroutine_threadsafe(start(), loop).result(30)
    try:
        yield host, port
    finally:
        asyncio.run_coroutine_threadsafe(engine.stop(), loop).result(30)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
