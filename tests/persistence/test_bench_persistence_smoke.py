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
