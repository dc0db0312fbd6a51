"""`make bench`: cold versus warm, side by side with what users run today.

Each daemon scenario is interleaved with the baseline for the same situation,
in one process, so the ratios hold on a noisy machine. Results go to
benchmarks/results/latest.{json,md,png}. `--smoke` runs each daemon scenario
once and skips the baselines: it keeps the harness from rotting, in CI.
Every scenario checks its own outcome (a hit is a hit, a miss a miss) and the
run stops loudly when one fails: no silent zeros.
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
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, Series, fresh_app, install_tools, machine, npm_env, peak_rss_mib, run, start_daemon, timed  # noqa: E402

from cached_client import Client  # noqa: E402
from support import app_files  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
TURBO_JSON = {"$schema": "https://turborepo.com/schema.json", "tasks": {"build": {"outputs": ["dist/**"]}}}


class Bench:
    def __init__(self, work: Path, runs: int, hits: int, smoke: bool) -> None:
        self.work = work
        self.runs = 1 if smoke else runs
        self.hits = 20 if smoke else hits
        self.smoke = smoke
        self.npm_cache = work / "npm-cache"
        self.series: dict[str, Series] = {}
        self.comparisons: list[tuple[str, str, str]] = []  # (daemon scenario, baseline, situation)
        self.extra: dict[str, object] = {}

    def s(self, name: str, note: str = "") -> Series:
        if name not in self.series:
            self.series[name] = Series(name, note=note)
        return self.series[name]

    def share_npm_cache(self) -> None:
        """The baselines run npm as root; the daemon's npm runs as the sandbox user and must write the same cache."""
        if self.npm_cache.exists():
            run(["chown", "-R", "65534:65534", str(self.npm_cache)], self.work)

    # ------------------------------------------------------------ baselines
    def old_pipeline(self, i: int, empty_cache: bool) -> float:
        app = fresh_app(self.work / "old")
        cache = self.work / f"npm-empty-{i}" if empty_cache else self.npm_cache
        env = npm_env(cache)
        ms = timed(lambda: (run(["npm", "ci"], app, env), run(["npm", "run", "build"], app, env)))
        if empty_cache:
            shutil.rmtree(cache, ignore_errors=True)
        return ms

    def prepare_installed(self) -> Path:
        app = fresh_app(self.work / "installed")
        run(["npm", "ci", "--ignore-scripts"], app, npm_env(self.npm_cache))
        return app

    def prepare_turbo(self, tools: Path) -> Path:
        app = fresh_app(self.work / "turbo")
        package = json.loads((app / "package.json").read_text())
        npm_version = subprocess.run(["npm", "--version"], capture_output=True, text=True).stdout.strip()
        package["packageManager"] = f"npm@{npm_version}"
        (app / "package.json").write_text(json.dumps(package, indent=2))
        (app / "turbo.json").write_text(json.dumps(TURBO_JSON))
        run(["npm", "ci", "--ignore-scripts"], app, npm_env(self.npm_cache))
        run(["git", "init", "-q"], app)
        run([str(tools / "turbo"), "run", "build"], app, self.turbo_env())
        return app

    def turbo_env(self) -> dict[str, str]:
        return {**npm_env(self.npm_cache), "TURBO_TELEMETRY_DISABLED": "1", "DO_NOT_TRACK": "1", "TURBO_NO_UPDATE_NOTIFIER": "1"}

    def prepare_pnpm(self, tools: Path) -> tuple[Path, dict[str, str]]:
        app = fresh_app(self.work / "pnpm")
        store = self.work / "pnpm-store"
        (app / "pnpm-workspace.yaml").write_text(f"storeDir: {store}\n")
        env = {**npm_env(self.npm_cache), "PATH": f"{tools}:{os.environ['PATH']}"}
        run([str(tools / "pnpm"), "import"], app, env)
        run([str(tools / "pnpm"), "install", "--frozen-lockfile", "--ignore-scripts"], app, env)
        return app, env

    # ------------------------------------------------------------ scenarios
    def run_all(self) -> None:
        tools = None if self.smoke else install_tools(self.npm_cache)
        source = fresh_app(self.work / "source")
        files = app_files(source)
        installed = None if self.smoke else self.prepare_installed()
        turbo = None if self.smoke or tools is None else self.prepare_turbo(tools)
        pnpm = None if self.smoke or tools is None else self.prepare_pnpm(tools)

        # 4. never seen: a fresh store each run (npm's download cache warm, as on a running daemon)
        for i in range(self.runs):
            self.share_npm_cache()
            daemon = start_daemon(self.work / f"cold-root-{i}", self.npm_cache)
            try:
                with Client(daemon.address) as client:
                    client.wait_ready()
                    result = None
                    def cold() -> None:
                        nonlocal result
                        result = client.build(files=files, app="bench", tenant="bench")
                    self.s("daemon: never seen (cold store)").add(timed(cold))
                    assert result is not None and result.cache == "miss", "a cold store must miss"
            finally:
                daemon.stop()
                shutil.rmtree(self.work / f"cold-root-{i}", ignore_errors=True)
            if not self.smoke:
                self.s("old pipeline: npm ci + build, warm npm cache").add(self.old_pipeline(i, empty_cache=False))
                self.s("old pipeline: npm ci + build, empty npm cache").add(self.old_pipeline(i, empty_cache=True))
        self.comparisons += [
            ("daemon: never seen (cold store)", "old pipeline: npm ci + build, warm npm cache", "never seen"),
            ("daemon: never seen (cold store)", "old pipeline: npm ci + build, empty npm cache", "never seen"),
        ]

        self.share_npm_cache()
        daemon = start_daemon(self.work / "root", self.npm_cache)
        try:
            with Client(daemon.address) as client:
                client.wait_ready()
                first = client.build(files=files, app="bench", tenant="bench")
                assert first.cache == "miss"
                self.unchanged(client, daemon, files, source, turbo)
                self.changed(client, files, installed, turbo)
                self.new_app(client, files, pnpm)
                self.after_purge(client, files)
            self.extra["daemon_peak_rss_mib"] = peak_rss_mib(daemon.proc.pid)  # type: ignore[union-attr]
        finally:
            daemon.stop()

    def unchanged(self, client: Client, daemon: object, files: dict[str, bytes], source: Path, turbo: Path | None) -> None:
        # 5. full hit on an open channel, sequential then 8 concurrent clients
        hit = self.s("daemon: unchanged, full hit (gRPC, open channel)")
        server_ms: list[float] = []
        phases: dict[str, list[float]] = {}
        for _ in range(self.hits):
            result = client.build(files=files, app="bench", tenant="bench")
            assert result.cache == "hit"
            hit.add(result.client_ms)
            server_ms.append(result.duration_ms)
            for name, ms in result.phases.items():
                phases.setdefault(name, []).append(ms)
        self.extra["hit_breakdown_median_ms"] = {
            "client_total": round(statistics.median(hit.samples), 3),
            "server_total": round(statistics.median(server_ms), 3),
            **{f"server_{k} (hash+validate)" if k == "validate" else f"server_{k}": round(statistics.median(v), 3) for k, v in phases.items()},
            "transport_and_respond": round(statistics.median(hit.samples) - statistics.median(server_ms), 3),
        }
        concurrent = self.s("daemon: unchanged, full hit, 8 concurrent clients")
        lock = threading.Lock()
        per_client = max(1, self.hits // 8)
        def worker() -> None:
            with Client(client.address) as c:
                for _ in range(per_client):
                    r = c.build(files=files, app="bench", tenant="bench")
                    assert r.cache == "hit"
                    with lock:
                        concurrent.add(r.client_ms)
        threads = [threading.Thread(target=worker) for _ in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # from a cold shell, writing the outputs, as Turborepo's figure includes restoring dist/
        shell = self.s("daemon: unchanged, full hit, cold shell (cached build --out)")
        turbo_hit = self.s("turborepo: cache hit (turbo run build)")
        for i in range(max(self.runs, 3 if self.smoke else self.runs)):
            out = self.work / f"out-{i}"
            argv = [sys.executable, "-m", "cached", "build", str(source), "--app", "bench", "--tenant", "bench",
                    "--server", client.address, "--out", str(out), "--json"]
            captured: dict[str, str] = {}
            def shell_build() -> None:
                done = subprocess.run(argv, capture_output=True, text=True)
                if done.returncode != 0:
                    raise SystemExit(f"cached build --out failed: {done.stderr}")
                captured["out"] = done.stdout
            shell.add(timed(shell_build))
            assert json.loads(captured["out"])["cache"] == "hit"
            if turbo is not None:
                turbo_hit.add(timed(lambda: run([str(TOOLS_BIN / "turbo"), "run", "build"], turbo, self.turbo_env())))
        self.comparisons += [
            ("daemon: unchanged, full hit (gRPC, open channel)", "turborepo: cache hit (turbo run build)", "unchanged app"),
            ("daemon: unchanged, full hit, cold shell (cached build --out)", "turborepo: cache hit (turbo run build)", "unchanged app"),
        ]

    def changed(self, client: Client, files: dict[str, bytes], installed: Path | None, turbo: Path | None) -> None:
        # 6. one source file changed, dependencies known
        daemon_s = self.s("daemon: one file changed, deps known")
        bare = self.s("bare vite build (installed deps)")
        turbo_miss = self.s("turborepo: forced miss (turbo run build --force)")
        overhead: list[float] = []
        for i in range(self.runs):
            edited = dict(files)
            edited["src/App.tsx"] = files["src/App.tsx"] + f"\nexport const benchEdit = {i};\n".encode()
            result = client.build(files=edited, app="bench", tenant="bench")
            assert result.cache == "miss" and [d.result for d in result.decisions if d.layer == "deps"] == ["hit"]
            daemon_s.add(result.client_ms)
            if installed is not None:
                b = timed(lambda: run(["node", "node_modules/vite/bin/vite.js", "build"], installed))
                bare.add(b)
                overhead.append(result.client_ms - b)
            if turbo is not None:
                turbo_miss.add(timed(lambda: run([str(TOOLS_BIN / "turbo"), "run", "build", "--force"], turbo, self.turbo_env())))
            if not self.smoke:
                self.s("old pipeline: npm ci + build, warm npm cache").add(self.old_pipeline(100 + i, empty_cache=False))
        if overhead:
            overhead.sort()
            self.extra["changed_overhead_over_bare_vite_ms"] = {"min": round(overhead[0], 1), "median": round(statistics.median(overhead), 1), "max": round(overhead[-1], 1)}
        self.comparisons += [
            ("daemon: one file changed, deps known", "bare vite build (installed deps)", "one file changed"),
            ("daemon: one file changed, deps known", "turborepo: forced miss (turbo run build --force)", "one file changed"),
            ("daemon: one file changed, deps known", "old pipeline: npm ci + build, warm npm cache", "one file changed"),
        ]

    def new_app(self, client: Client, files: dict[str, bytes], pnpm: tuple[Path, dict[str, str]] | None) -> None:
        # 7. a new app with the same lockfile: dependencies restored from the store
        s = self.s("daemon: new app, same lockfile")
        pnpm_s = self.s("pnpm: warm store install --offline + build")
        for i in range(self.runs):
            edited = dict(files)
            edited["src/App.tsx"] = files["src/App.tsx"] + f"\nexport const newApp = {i};\n".encode()
            result = client.build(files=edited, app=f"new-app-{i}-{time.time_ns()}", tenant="bench")
            assert result.cache == "miss" and [d.result for d in result.decisions if d.layer == "deps"] == ["hit"]
            s.add(result.client_ms)
            self.extra.setdefault("deps_in_place_ms", []).append(round(result.metrics.deps_ms, 2))  # type: ignore[union-attr]
            if pnpm is not None:
                app, env = pnpm
                def pnpm_build() -> None:
                    shutil.rmtree(app / "node_modules", ignore_errors=True)
                    run([str(TOOLS_BIN / "pnpm"), "install", "--frozen-lockfile", "--offline", "--ignore-scripts"], app, env)
                    run(["node", "node_modules/vite/bin/vite.js", "build"], app, env)
                pnpm_s.add(timed(pnpm_build))
        self.comparisons += [
            ("daemon: new app, same lockfile", "pnpm: warm store install --offline + build", "new app, known dependencies"),
            ("daemon: new app, same lockfile", "old pipeline: npm ci + build, warm npm cache", "new app, known dependencies"),
        ]

    def after_purge(self, client: Client, files: dict[str, bytes]) -> None:
        # 8. after a purge of the app: the action misses (purged), dependencies still hit
        purge = getattr(client, "purge", None)
        if purge is None:
            self.extra["after_purge"] = "not run: this build of the client has no purge call"
            return
        s = self.s("daemon: after a purge of the app")
        for _ in range(self.runs):
            purge(app="bench/bench")
            result = client.build(files=files, app="bench", tenant="bench")
            assert result.cache == "miss" and result.reason == "purged", result.reason
            s.add(result.client_ms)
        self.comparisons.append(("daemon: after a purge of the app", "old pipeline: npm ci + build, warm npm cache", "after purge"))


TOOLS_BIN = REPO / "benchmarks" / "tools" / "node_modules" / ".bin"


def report(bench: Bench, out_dir: Path, smoke: bool) -> dict[str, object]:
    summaries = {name: s.summary() for name, s in bench.series.items() if s.samples}
    ratios = []
    for scenario, baseline, situation in bench.comparisons:
        a, b = summaries.get(scenario), summaries.get(baseline)
        if a and b:
            ratios.append({"situation": situation, "daemon": scenario, "baseline": baseline, "daemon_median_ms": a["median_ms"], "baseline_median_ms": b["median_ms"], "ratio": round(float(a["median_ms"]) / float(b["median_ms"]), 4)})
    data = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "smoke": smoke, "machine": machine(),
        "page_cache": "warm for every scenario and baseline (never dropped between runs)",
        "runs": bench.runs, "hit_requests": bench.hits, "scenarios": list(summaries.values()), "ratios": ratios, "extra": bench.extra,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "latest.json").write_text(json.dumps(data, indent=2) + "\n")
    (out_dir / "latest.md").write_text(markdown(data))
    chart(summaries, out_dir / "latest.png")
    return data


def markdown(data: dict) -> str:  # type: ignore[type-arg]
    m = data["machine"]
    lines = [
        f"Measured {data['when']} on {m['cores']} cores, {m['memory_gib']} GiB, {m['filesystem']}; node {m['node']}, npm {m['npm']}, vite {m['vite']}, turbo {m['turbo']}, pnpm {m['pnpm']}. Page cache: {data['page_cache']}.",
        "",
        "| scenario | runs | min ms | median ms | p99 ms | max ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for s in data["scenarios"]:
        lines.append(f"| {s['name']} | {s['runs']} | {s['min_ms']:.1f} | {s['median_ms']:.1f} | {s['p99_ms']:.1f} | {s['max_ms']:.1f} |")
    lines += ["", "| situation | daemon | baseline | ratio (daemon / baseline, medians) |", "| --- | --- | --- | ---: |"]
    for r in data["ratios"]:
        lines.append(f"| {r['situation']} | {r['daemon']} ({r['daemon_median_ms']:.1f} ms) | {r['baseline']} ({r['baseline_median_ms']:.1f} ms) | {r['ratio']:.3f} |")
    lines += ["", "```json", json.dumps(data["extra"], indent=2), "```", ""]
    return "\n".join(lines)


def chart(summaries: dict[str, dict], path: Path) -> None:  # type: ignore[type-arg]
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("matplotlib is missing: run `make bench` (it installs the bench extra)") from None
    names = list(summaries)
    medians = [float(summaries[n]["median_ms"]) for n in names]
    fig, ax = plt.subplots(figsize=(11, 0.45 * len(names) + 1.5))
    colors = ["#2b7bba" if n.startswith("daemon") else "#999999" for n in names]
    ax.barh(names, medians, color=colors)
    ax.set_xscale("log")
    ax.set_xlabel("median ms (log scale); blue: cached, grey: baselines")
    ax.invert_yaxis()
    for y, v in enumerate(medians):
        ax.text(v, y, f" {v:,.1f}", va="center", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--hits", type=int, default=1000, help="requests for the full-hit percentiles")
    parser.add_argument("--smoke", action="store_true", help="one run per daemon scenario, no baselines")
    parser.add_argument("--out", default="", help=f"where results go (default {RESULTS}; with --smoke, the scratch dir)")
    parser.add_argument("--npm-cache", default="", help="npm download cache to use (default: one in the scratch dir)")
    parser.add_argument("--work", default="", help="scratch dir (default: a temp dir, removed after)")
    args = parser.parse_args(argv)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="cached-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        bench = Bench(work, args.runs, args.hits, args.smoke)
        if args.npm_cache:
            bench.npm_cache = Path(args.npm_cache)
        bench.run_all()
        out = Path(args.out) if args.out else (work / "results" if args.smoke else RESULTS)
        data = report(bench, out, args.smoke)
    finally:
        if not args.work:
            os.system(f"chmod -R u+w '{work}' 2>/dev/null; rm -rf '{work}'")
    print(markdown(data))
    return data


if __name__ == "__main__":
    main()
