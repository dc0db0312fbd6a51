"""One-file edits rebuilt by a warm builder, by a bare `vite build`, and by the daemon's cold path.

Scenarios (each an edit that changes one source file, a different one each run):
- component: src/components/dashboard/StatCard.tsx (one component);
- utility:   src/lib/utils.ts (`cn`, imported by most components).

For each run and scenario, interleaved in one process (the order rotates):
- warm: the daemon builds app "bench-warm"; its warm builder is reused (checked)
  and runs a fresh Vite build (the default, checked: the decision says so);
- session: a second daemon with `--warm-rebuild session` builds the same edit
  with a reused warm builder that rebuilds its watch session (checked);
- cold: the daemon builds app "bench-cold" with force (the action cache and the
  warm layer skipped; dependencies known, node_modules an overlay);
- bare: `node node_modules/vite/bin/vite.js build` in a copy installed by hand.

Prints min/median/max per series, the warm/bare ratio (target <= 0.45), the cold
path's overhead over bare, and the resident memory of each warm builder
(node alone and its whole sandbox tree). Never asserts on time.

    .venv/bin/python benchmarks/warm_rebuild.py [--runs 10] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, Series, fresh_app, machine, npm_env, run, start_daemon, timed  # noqa: E402

from cached_client import Client  # noqa: E402
from support import app_files  # noqa: E402

SCENARIOS = {
    "component": ("src/components/dashboard/StatCard.tsx", "\nexport const benchComponentEdit{n} = () => '{tag} component edit {n}';\n"),
    "utility": ("src/lib/utils.ts", "\nexport const benchUtilityEdit{n} = (s: string) => s + ' {tag} utility edit {n}';\n"),
}
ORIGINALS: dict[Path, str] = {}
RUN_ID = uuid.uuid4().hex[:8]  # a store kept from an earlier run (--work) must not turn these edits into hits


def edit(app: Path, scenario: str, n: int) -> None:
    """A new version of the scenario's file; the tag (the app's dir name) keeps the apps' sources apart
    (actions are shared by the apps of a tenant: the same sources would be a hit)."""
    rel, text = SCENARIOS[scenario]
    path = app / rel
    original = ORIGINALS.setdefault(path, path.read_text())
    path.write_text(original + text.format(n=n, tag=f"{app.name}-{RUN_ID}"))


def builder_memory() -> list[dict[str, float]]:
    """RSS of each warm builder: the node process running driver.mjs, and its whole sandbox tree."""
    def rss(pid: int) -> int:
        try:
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        except OSError:
            pass
        return 0

    def parent(pid: int) -> int:
        try:
            return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            return 0

    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if len(cmdline) > 1 and cmdline[1].endswith(b"driver.mjs"):
            node = int(entry)
            init = parent(node)
            launcher = parent(init)
            found.append({"pid": node, "node_rss_mib": round(rss(node) / 2**20, 1),
                          "tree_rss_mib": round((rss(node) + rss(init) + rss(launcher)) / 2**20, 1)})
    return found


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--work", default="", help="working directory (default: a temp dir, removed afterwards)")
    parser.add_argument("--json", default="", help="also write the figures here")
    args = parser.parse_args(argv)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="cached-warm-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    npm_cache = work / "npm-cache"
    npm_cache.mkdir(exist_ok=True)
    daemon = session_daemon = None
    try:
        print(f"work dir {work}; installing the bare copy by hand...", flush=True)
        bare = fresh_app(work / "bare")
        run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], bare, npm_env(npm_cache))
        subprocess.run(["chown", "-R", "65534:65534", str(npm_cache)], check=False)  # the daemon's npm runs as 65534
        daemon = start_daemon(work / "root", npm_cache, ["--warm-shadow-share", "0"])
        session_daemon = start_daemon(work / "root-session", npm_cache, ["--warm-shadow-share", "0", "--warm-rebuild", "session"])
        warm_app, cold_app, session_copy = fresh_app(work / "warm-app"), fresh_app(work / "cold-app"), fresh_app(work / "session-app")
        series = {f"{k}/{s}": Series(f"{k}/{s}") for s in SCENARIOS for k in ("warm", "session", "cold", "bare")}
        with Client(daemon.address) as client, Client(session_daemon.address) as session_client:
            print("first builds (npm ci in the daemon, the warm builder starts)...", flush=True)
            client.build(files=app_files(warm_app), app="bench-warm", tenant="bench")
            edit(warm_app, "component", 0)  # new sources: a miss, which starts the builder (the first build may have hit)
            started = client.build(files=app_files(warm_app), app="bench-warm", tenant="bench").decision("warm")
            if started is None or started.reason not in ("started", "reused"):
                raise SystemExit(f"the warm builder did not start: {started}")
            client.build(files=app_files(cold_app), app="bench-cold", tenant="bench", force=True)
            session_client.build(files=app_files(session_copy), app="bench-session", tenant="bench")
            edit(session_copy, "component", 0)
            session_client.build(files=app_files(session_copy), app="bench-session", tenant="bench")
            run(["node", "node_modules/vite/bin/vite.js", "build"], bare)

            def reused(c: Client, app: Path, name: str, n: int, scenario: str, how: str) -> float:
                edit(app, scenario, n)
                files = app_files(app)
                result = None

                def go() -> None:
                    nonlocal result
                    result = c.build(files=files, app=name, tenant="bench")
                ms = timed(go)
                d = result.decision("warm") if result else None  # type: ignore[union-attr]
                if result is None or result.cache != "miss" or d is None or d.reason != "reused" or how not in d.detail:
                    raise SystemExit(f"{name} run {n}/{scenario} was not {how}: {result.decisions if result else None}")
                return ms

            def warm(n: int, scenario: str) -> float:
                return reused(client, warm_app, "bench-warm", n, scenario, "a fresh Vite build")

            def session(n: int, scenario: str) -> float:
                return reused(session_client, session_copy, "bench-session", n, scenario, "a rebuild of its watch session")

            def cold(n: int, scenario: str) -> float:
                edit(cold_app, scenario, n)
                files = app_files(cold_app)
                return timed(lambda: client.build(files=files, app="bench-cold", tenant="bench", force=True))

            def bare_build(n: int, scenario: str) -> float:
                edit(bare, scenario, n)
                return timed(lambda: run(["node", "node_modules/vite/bin/vite.js", "build"], bare))

            kinds = [("warm", warm), ("session", session), ("cold", cold), ("bare", bare_build)]
            for n in range(1, args.runs + 1):
                for scenario in SCENARIOS:
                    order = kinds[n % len(kinds):] + kinds[:n % len(kinds)]
                    for kind, fn in order:
                        series[f"{kind}/{scenario}"].add(fn(n, scenario))
                print(f"run {n}/{args.runs}: " + ", ".join(f"{k} {s.samples[-1]:.0f}" for k, s in series.items()), flush=True)
            memory = builder_memory()
        report: dict[str, object] = {"machine": machine(), "runs": args.runs, "series": [s.summary() for s in series.values()], "builders": memory}
        print("\nseries (ms):")
        for s in series.values():
            m = s.summary()
            print(f"  {m['name']:<17} min {m['min_ms']:>8.1f}  median {m['median_ms']:>8.1f}  max {m['max_ms']:>8.1f}")
        ratios = {}
        for scenario in SCENARIOS:
            w, f, c, b = (statistics.median(series[f"{k}/{scenario}"].samples) for k in ("warm", "session", "cold", "bare"))
            ratios[scenario] = {"warm_over_bare": round(w / b, 3), "session_over_bare": round(f / b, 3),
                                "session_over_warm": round(f / w, 3), "cold_minus_bare_ms": round(c - b, 1)}
            print(f"  {scenario}: warm/bare = {w / b:.2f} (target <= 0.45), watch session/bare = {f / b:.2f}, "
                  f"session/warm = {f / w:.2f}; cold path - bare = {c - b:+.0f} ms (median)")
        for m in memory:
            print(f"  warm builder pid {m['pid']}: node {m['node_rss_mib']} MiB, sandbox tree {m['tree_rss_mib']} MiB")
        report["ratios"] = ratios
        if args.json:
            Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
        return report
    finally:
        for d in (daemon, session_daemon):
            if d is not None:
                d.stop()
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
