"""R1: kill -9 under load, restart on the same data directory, several rounds.

A real server subprocess; six binary connections (one account each) send a mixed flow on two
symbols (limits on both sides around a mid, some crossing, market/IOC/FOK, post-only, stops,
cancels, replaces, cancel-all); the server is SIGKILLed at a random moment, under ``batch`` and
``always`` in turn. After each kill, a copy of the data directory is recovered offline and
checked against everything the clients received before the kill (see
``harness.check_seen_against_state``); the restarted server must recover the same state digest.
"""

from __future__ import annotations

import random
from pathlib import Path

from tests.persistence.conftest import CleanRun  # noqa: F401  (fixtures module)
from tests.persistence.harness import KillCampaign, seed_for
from tradingapp.config import VenueConfig


def test_kill9_rounds_on_one_data_dir(
    tmp_path: Path, venue_config_path: Path, venue_config: VenueConfig, kill_rounds: int
) -> None:
    seed = seed_for(7)
    print(f"kill -9 seed={seed} rounds={kill_rounds}")
    rng = random.Random(seed)
    campaign = KillCampaign(tmp_path / "data", tmp_path, venue_config_path, venue_config, seed)
    for i in range(kill_rounds):
        fsync = "batch" if i % 2 == 0 else "always"
        kill_after = rng.uniform(0.3, 1.2)
        print(f"round {i + 1}: fsync={fsync} kill after {kill_after:.3f} s")
        campaign.round(fsync, kill_after)
    assert len(campaign.seen_trades) > 0, "no client saw a fill: the flow did not trade"
    campaign.final_clean_stop()
