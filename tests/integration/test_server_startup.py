"""Start-up refusals: a data dir that another engine is using, a port that is taken, a journal
damaged mid-log. Each is refused before anything is written, with one clear line on stderr
(no traceback) and exit status 1; the engine already running is not disturbed."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from tests.integration.conftest import EngineHarness
from tests.unit.test_config import ISSUE_TOML
from tradingapp.config import ConfigError, load_config
from tradingapp.server import Engine
from tradingapp.storage import DataDirInUseError


def _serve(data_dir: Path, port: int) -> subprocess.CompletedProcess[str]:
    """Run ``tradingapp serve`` as a user would; it must give up at once."""
    return subprocess.run(
        [sys.executable, "-m", "tradingapp.cli", "serve", "--data-dir", str(data_dir), "--port", str(port)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


async def test_second_engine_on_a_data_dir_in_use_is_refused(harness: EngineHarness) -> None:
    await harness.start()
    c = await harness.logged_on("alice")
    first = await c.order("BTC-USDT", "buy", "limit", "0.1", "29000")
    with pytest.raises(DataDirInUseError, match=str(harness.data_dir)):
        await Engine(load_config(), data_dir=harness.data_dir, fsync="off").start("127.0.0.1", 0)
    # the running engine is untouched and keeps serving
    second = await c.order("BTC-USDT", "buy", "limit", "0.1", "29001")
    assert second["order_id"] == first["order_id"] + 1
    # once it has stopped, the data dir is free again
    await harness.close_all()
    await harness.stop()
    await harness.start()
    c = await harness.logged_on("alice")
    assert [o["order_id"] for o in await c.open_orders()] == [first["order_id"], second["order_id"]]


async def test_serve_refuses_a_data_dir_in_use_without_a_traceback(harness: EngineHarness) -> None:
    await harness.start()
    proc = await asyncio.to_thread(_serve, harness.data_dir, 0)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"{harness.data_dir} is in use by another engine" in proc.stderr
    assert "listening on" not in proc.stdout


async def test_serve_refuses_a_port_in_use_without_a_traceback(
    harness: EngineHarness, tmp_path: Path
) -> None:
    await harness.start()
    proc = await asyncio.to_thread(_serve, tmp_path / "other", harness.port)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert f"cannot listen on 127.0.0.1:{harness.port}" in proc.stderr
    assert "listening on" not in proc.stdout
    # the refused engine released its data dir: it can start there now
    await harness.stop()
    again = Engine(load_config(), data_dir=tmp_path / "other", fsync="off")
    await again.start("127.0.0.1", 0)
    await again.stop()


_BAD_CONFIGS = {
    "missing.toml": None,
    "not-toml.toml": "not toml [[[\n",
    "float-tick.toml": '[[symbols]]\nsymbol = "BTC-USDT"\nbase = "BTC"\nquote = "USDT"\n'
    'tick_size = 0.01\nlot_size = "0.00001"\n',
    "unknown-key.toml": "foo = 1\n",
}


@pytest.mark.parametrize(
    ("command", "name"),
    [
        *(("serve", name) for name in sorted(_BAD_CONFIGS)),
        ("journal", "not-toml.toml"),
        ("accounts", "unknown-key.toml"),
    ],
)
def test_a_bad_config_is_one_line_not_a_traceback(tmp_path: Path, name: str, command: str) -> None:
    """A missing file, invalid TOML or a bad key: the ConfigError's message (file and key) on one
    line, exit status 1, and the engine never listens."""
    config = tmp_path / name
    if _BAD_CONFIGS[name] is not None:
        config.write_text(_BAD_CONFIGS[name])
    data_dir = tmp_path / "data"
    (data_dir / "journal").mkdir(parents=True)  # so journal and accounts get as far as the config
    proc = subprocess.run(
        [sys.executable, "-m", "tradingapp.cli", command, "--config", str(config),
         "--data-dir", str(data_dir), *(["--port", "0"] if command == "serve" else [])],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr.startswith(f"tradingapp {command}: {config}: ")
    assert proc.stderr.count("\n") == 1


@pytest.mark.parametrize("port", ["70000", "-1"])
def test_serve_refuses_a_port_out_of_range(tmp_path: Path, port: str) -> None:
    """Not wrapped modulo 2^16 (70000 would listen on 4464) nor passed to getaddrinfo."""
    proc = subprocess.run(
        [sys.executable, "-m", "tradingapp.cli", "serve", "--data-dir", str(tmp_path), "--port", port],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "listening on" not in proc.stdout
    assert "argument --port: must be from 0 to 65535" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_serve_refuses_a_data_dir_it_cannot_create(tmp_path: Path) -> None:
    not_a_dir = tmp_path / "file"
    not_a_dir.write_text("")
    proc = _serve(not_a_dir, 0)
    assert proc.returncode == 1
    assert "listening on" not in proc.stdout
    assert proc.stderr.startswith(f"tradingapp serve: cannot use data dir {not_a_dir}: ")
    assert proc.stderr.count("\n") == 1


# The issue's example venue on a coarser grid (tick 0.5, lot 0.25), without fees.
_VENUE = (
    ISSUE_TOML.replace('tick_size = "0.01"', 'tick_size = "0.5"')
    .replace('lot_size = "0.00001"', 'lot_size = "0.25"')
    .replace('maker_bps = "1"\ntaker_bps = "2"\n', 'maker_bps = "0"\ntaker_bps = "0"\n')
)

# One more symbol trading USDT on a finer grid: USDT needs 4 places instead of 3, so every
# stored USDT amount (an integer of 10**-3) would read ten times smaller.
_FINER_USDT = _VENUE.replace(
    "[[accounts]]",
    '[[symbols]]\nsymbol = "ETH-USDT"\nbase = "ETH"\nquote = "USDT"\ntick_size = "0.01"\n'
    'lot_size = "0.01"\n\n[[accounts]]',
)
# A new symbol that changes no existing scale is fine.
_NEW_SYMBOL = _VENUE.replace(
    "[[accounts]]",
    '[[symbols]]\nsymbol = "ETH-USDT"\nbase = "ETH"\nquote = "USDT"\ntick_size = "0.5"\n'
    'lot_size = "0.25"\n\n[[accounts]]',
)


async def _venue_with_an_order(harness: EngineHarness, tmp_path: Path) -> Path:
    config = tmp_path / "venue.toml"
    config.write_text(_VENUE)
    await harness.start(load_config(config))
    c = await harness.logged_on("alice")
    await c.order("BTC-USDT", "buy", "limit", "0.25", "100.5")
    await harness.close_all()
    await harness.stop()
    return config


@pytest.mark.parametrize(
    ("changed", "problem"),
    [
        (_FINER_USDT, "asset USDT has 4 decimal places, but the data was written with 3"),
        (_VENUE.replace('tick_size = "0.5"', 'tick_size = "0.25"'), "symbol BTC-USDT has tick_size 0.25"),
        (_VENUE.replace('lot_size = "0.25"', 'lot_size = "0.5"'), "symbol BTC-USDT has lot_size 0.5"),
        (_VENUE.replace("BTC-USDT", "XBT-USDT"), "symbol BTC-USDT is in the data but not in the config"),
    ],
)
async def test_a_data_dir_is_refused_with_a_configuration_of_other_scales(
    harness: EngineHarness, tmp_path: Path, changed: str, problem: str
) -> None:
    """Balances, prices and quantities are stored as integers of the configured steps: a changed
    tick, lot or asset scale would silently misread them (a balance ten times smaller), so the
    engine and the read-only tools refuse with one line naming what changed."""
    config = await _venue_with_an_order(harness, tmp_path)
    config.write_text(changed)
    with pytest.raises(ConfigError, match=problem):
        await Engine(load_config(config), data_dir=harness.data_dir, fsync="off").start("127.0.0.1", 0)
    for command in ("serve", "accounts", "journal"):
        proc = subprocess.run(
            [sys.executable, "-m", "tradingapp.cli", command, "--config", str(config),
             "--data-dir", str(harness.data_dir), *(["--port", "0"] if command == "serve" else [])],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert (proc.returncode, proc.stdout) == (1, "")
        assert proc.stderr.startswith(f"tradingapp {command}: {config}: ")
        assert problem in proc.stderr and proc.stderr.count("\n") == 1


async def test_a_data_dir_accepts_a_configuration_that_adds_a_symbol(
    harness: EngineHarness, tmp_path: Path
) -> None:
    config = await _venue_with_an_order(harness, tmp_path)
    config.write_text(_NEW_SYMBOL)
    await harness.start(load_config(config))
    c = await harness.logged_on("alice")
    assert [o["price"] for o in await c.open_orders()] == ["100.5"]
    assert (await c.balances())["USDT"]["reserved"] == Decimal("25.125")
    assert (await c.order("ETH-USDT", "buy", "limit", "0.25", "10"))["exec_type"] == "new"
    await harness.close_all()
    await harness.stop()
    # and the first configuration, without the new symbol, is now refused
    config.write_text(_VENUE)
    with pytest.raises(ConfigError, match="symbol ETH-USDT is in the data but not in the configuration"):
        await Engine(load_config(config), data_dir=harness.data_dir, fsync="off").start("127.0.0.1", 0)
