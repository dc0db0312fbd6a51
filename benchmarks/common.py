"""Shared pieces of the benchmarks: timing statistics, the fixture app, the tools, a daemon.

Benchmarks print and save figures; they never assert on time. Each scenario
runs interleaved with its baseline in one process, so the ratios hold on a
noisy machine.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from support import DaemonProcess, copy_fixture, fixture_dir  # noqa: E402

TOOLS = REPO / "benchmarks" / "tools"


@dataclass
class Series:
    """One scenario's samples, in milliseconds."""

    name: str
    samples: list[float] = field(default_factory=list)
    note: str = ""

    def add(self, ms: float) -> None:
        self.samples.append(ms)

    def summary(self) -> dict[str, float | int | str]:
        s = sorted(self.samples)
        if not s:
            return {"name": self.name, "runs": 0, "note": self.note}
        def pct(p: float) -> float:
            return s[min(len(s) - 1, int(round(p * (len(s) - 1))))]
        return {
            "name": self.name, "runs": len(s), "min_ms": round(s[0], 3), "median_ms": round(statistics.median(s), 3),
            "p99_ms": round(pct(0.99), 3), "max_ms": round(s[-1], 3), "note": self.note,
        }


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    """Runs a command; a failure stops the benchmark loudly (no silent zeros)."""
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"benchmark step failed: {' '.join(argv)} in {cwd}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")


def npm_env(cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("npm_config_")}
    env.update({"npm_config_cache": str(cache), "npm_config_audit": "false", "npm_config_fund": "false", "npm_config_update_notifier": "false", "CI": "true"})
    return env


def fresh_app(dest: Path) -> Path:
    if dest.exists():
        shutil.rmtree(dest)
    return copy_fixture(dest)


def install_tools(npm_cache: Path) -> Path:
    """turbo and pnpm, pinned in benchmarks/tools, installed once."""
    if not (TOOLS / "node_modules" / ".bin" / "turbo").exists():
        run(["npm", "ci", "--no-audit", "--no-fund"], TOOLS, npm_env(npm_cache))
    return TOOLS / "node_modules" / ".bin"


def version(argv: list[str]) -> str:
    try:
        return subprocess.run(argv, capture_output=True, text=True, timeout=60).stdout.strip()
    except OSError:
        return "absent"


def machine() -> dict[str, object]:
    mem = next((line.split()[1] for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")), "0")
    bin_dir = TOOLS / "node_modules" / ".bin"
    fixture_lock = json.loads((fixture_dir() / "package-lock.json").read_text())
    return {
        "cores": os.cpu_count(), "memory_gib": round(int(mem) / 2**20, 1), "kernel": platform.release(),
        "python": platform.python_version(), "node": version(["node", "--version"]), "npm": version(["npm", "--version"]),
        "vite": fixture_lock["packages"].get("node_modules/vite", {}).get("version", "?"),
        "turbo": version([str(bin_dir / "turbo"), "--version"]), "pnpm": version([str(bin_dir / "pnpm"), "--version"]),
        "filesystem": version(["stat", "-f", "-c", "%T", str(REPO)]),
    }


def drop_page_cache() -> bool:
    """Drops the page cache when allowed (root); returns whether it did."""
    try:
        subprocess.run(["sync"], check=True)
        Path("/proc/sys/vm/drop_caches").write_text("3\n")
        return True
    except OSError:
        return False


def start_daemon(root: Path, npm_cache: Path, args: list[str] | None = None) -> DaemonProcess:
    return DaemonProcess(root, npm_cache, args=args or []).start()


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def save_results(name: str, data: dict[str, object], text: str, out: str | None = None) -> None:
    """``benchmarks/results/<name>.{json,md}`` (or under ``out``), and the markdown printed."""
    directory = Path(out) if out else REPO / "benchmarks" / "results"
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{name}.json").write_text(json.dumps(data, indent=2) + "\n")
    (directory / f"{name}.md").write_text(text)
    print(text)
