"""Fixtures of the persistence tests: the venue configuration they run with and one journal made
by a real server (mixed flow, clean stop) that several tests copy and then damage or replay.

Environment knobs (defaults are the CI sizes):

- ``TRADINGAPP_TEST_SEED``: the seed of every randomised test (each prints the one it uses);
- ``TRADINGAPP_KILL_ROUNDS``: kill -9 rounds of the R1 test (5).
"""

from __future__ import annotations

import asyncio
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.persistence.harness import (
    FlowResult,
    Server,
    flow_then_stop,
    load_config,
    seed_for,
    write_config,
)
from tradingapp.config import VenueConfig

#: Snapshots every 1,000 journal records (the demo venue says 100,000), so that every run
#: writes several snapshots and prunes, and kills can land in or around a snapshot.
SNAPSHOT_EVERY_RECORDS = 1000


@dataclass
class CleanRun:
    """A data directory written by a real server: a mixed flow, then a clean stop (SIGTERM)."""

    data_dir: Path
    config_path: Path
    config: VenueConfig
    flow: FlowResult
    exit_code: int
    seed: int
    server: Server


@pytest.fixture(scope="session")
def venue_config_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("config") / "venue.toml"
    return write_config(path, snapshot_every_records=SNAPSHOT_EVERY_RECORDS, snapshot_every_seconds=0)


@pytest.fixture(scope="session")
def venue_config(venue_config_path: Path) -> VenueConfig:
    return load_config(venue_config_path)


@pytest.fixture(scope="session")
def clean_run(
    tmp_path_factory: pytest.TempPathFactory, venue_config_path: Path, venue_config: VenueConfig
) -> CleanRun:
    """Three phases of 250 requests on each of 6 connections (pausing so that periodic snapshots
    are taken), then SIGTERM; the clients read until the server closes them."""
    seed = seed_for(20240501)
    print(f"clean run seed={seed}")
    data_dir = tmp_path_factory.mktemp("clean") / "data"
    server = Server(data_dir, venue_config_path, fsync="batch").start()
    flow, rc = asyncio.run(flow_then_stop(server, venue_config, seed, "clean", 250, phases=3))
    return CleanRun(data_dir, venue_config_path, venue_config, flow, rc, seed, server)


@pytest.fixture
def kill_rounds() -> int:
    return int(os.environ.get("TRADINGAPP_KILL_ROUNDS", "5"))
