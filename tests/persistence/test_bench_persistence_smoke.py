"""bench/persistence.py at toy sizes: it runs, and its own correctness checks (the replayed and the
reloaded state digests) hold. Never asserts speed."""

from __future__ import annotations

import json
from pathlib import Path

from bench.persistence import main


def test_bench_persistence_runs_at_toy_sizes(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    argv = ["--dir", str(tmp_path / "work"), "--json", str(out), "--seconds", "0.3", "--warmup", "0.1"]
    argv += ["--part", "fsync", "--modes", "batch", "--loads", "2x2"]
    argv += ["--part", "recovery", "--orders", "3000", "--part", "snapshot", "--resting", "3000"]
    assert main(argv) == 0
    results = json.loads(out.read_text())["results"]
    assert results["fsync"]["batch 2x2"]["requests"] > 0
    assert results["recovery"]["orders"] == 3000 and results["recovery"]["records"] > 9000
    assert results["snapshot"]["resting"] == 3000


def test_bench_restart_kills_a_loaded_server_and_times_its_recovery(tmp_path: Path) -> None:
    out = tmp_path / "results.json"
    argv = ["--dir", str(tmp_path / "work"), "--json", str(out), "--part", "restart", "--orders", "3000"]
    assert main(argv) == 0
    r = json.loads(out.read_text())["results"]["restart"]
    assert r["orders"] >= 3000 and r["orders"] + r["cancels"] == 6000
    # every request was journaled (a new order or a cancel: at least its admission or its book
    # step), so the recovered engine continues after all of them
    assert r["next_seq"] > 6000
    assert 0 < r["recovered_seconds"] < r["start_seconds"]
