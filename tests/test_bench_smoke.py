"""`make bench-smoke`: every daemon scenario of the benchmark harness runs once, so the harness cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from support import REPO

EXPECTED = {
    "daemon: never seen (cold store)",
    "daemon: unchanged, full hit (gRPC, open channel)",
    "daemon: unchanged, full hit, 8 concurrent clients",
    "daemon: unchanged, full hit, cold shell (cached build --out)",
    "daemon: one file changed, deps known",
    "daemon: new app, same lockfile",
}


def test_benchmark_smoke_run_produces_every_scenario_and_the_report(tmp_path: Path, npm_cache: Path) -> None:
    out = tmp_path / "results"
    done = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "run.py"), "--smoke", "--out", str(out), "--npm-cache", str(npm_cache), "--work", str(tmp_path / "work")],
        capture_output=True, text=True, timeout=900,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    data = json.loads((out / "latest.json").read_text())
    names = {s["name"] for s in data["scenarios"]}
    assert EXPECTED <= names
    assert all(s["runs"] >= 1 and s["median_ms"] > 0 for s in data["scenarios"])
    assert (out / "latest.md").read_text().count("| daemon:") >= len(EXPECTED)
    assert (out / "latest.png").stat().st_size > 1000
    assert data["extra"]["daemon_peak_rss_mib"] > 0
