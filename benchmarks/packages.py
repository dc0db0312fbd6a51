"""A lockfile never seen, against npm and pnpm: `python benchmarks/packages.py [--runs N] [--scenarios a,b]`.

What the dependency layer costs when an app's lockfile changes, on examples/dashboard (copied per run,
never edited) with the package.json + package-lock.json of each scenario from benchmarks/scenarios/
(made once with the real registry, no `resolved` URLs; see benchmarks/scenarios/README.md):

  add-package     one package added (classnames 2.5.1) to the app;
  upgrade-nested  @radix-ui/react-switch 1.3.8 -> 1.4.1: the seed app (scenarios/upgrade-nested/seed)
                  nests five older @radix-ui packages under node_modules/@radix-ui/react-switch/, the
                  upgrade loses them (no version bump of the app's own dependencies available from the
                  registry changes placement, so the seed is the app one version behind);
  all-stored      one top-level package removed (eslint-plugin-react-refresh): every remaining package is
                  in the seed's tree, so a package store has them all;
  empty-store     the app itself on a fresh daemon root with npm's cache empty too.

The daemon (scenarios 1-3): a daemon root is seeded once by building the seed app (the base app, or the
upgrade's seed) as app bench/bench with npm's cache warm, then stopped and kept aside. Each run copies
that root back to the same path (`cp -a`, outside the timing), starts a daemon on it and builds the
scenario app as the same app: its deps key is new in every run, the seed's tree (and, with the package
store, its packages) is there, and nothing the previous run fetched survives: honest, and faster than
building the seed each run. Timed: the Build request to its result (client side), which includes the
daemon's Vite build; reported beside it the deps decision, the deps time the daemon reports (Metrics
deps_ms: deciding, installing or laying out, and putting node_modules in place), the install phase,
the DepsRecord's method ("npm ci" or "packages", read from the stopped root) and, where the daemon's
deps decision or log lines say so, the packages reused and fetched. Scenario 4: a fresh root and an
empty npm cache each run.

Baselines, interleaved in the same run (their order rotates per run), each in a fresh copy of the
scenario app: `npm ci --ignore-scripts --no-audit --no-fund --prefer-offline --include=dev` with npm's
cache warm and with an empty cache, each followed by `vite build` (install and build reported apart);
pnpm (tools/pnpm, `make bench-tools`) with a warm store holding the scenario's packages:
`pnpm install --frozen-lockfile --offline --ignore-scripts` after `pnpm import`, done once outside the
timing, plus `vite build`. The empty-store scenario has no pnpm baseline (its store is not empty).

Targets, printed beside the figures: one package added <= 0.25x npm ci warm + build and below pnpm
warm install + build; every package stored: deps in place < 1 s; empty store <= 0.8x npm ci with an
empty cache + build. Timings are printed and saved, never asserted. Results: benchmarks/results/
packages.{json,md} (or --out). Run as root (the daemon's overlay mounts, npm's cache shared with the
sandbox user).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, Series, fresh_app, machine, npm_env, run, start_daemon, save_results, timed, version  # noqa: E402

sys.path.insert(0, str(REPO / "client"))
from cached_client import Client  # noqa: E402
from support import app_files  # noqa: E402

SCENARIOS_DIR = REPO / "benchmarks" / "scenarios"
RESULTS = REPO / "benchmarks" / "results"
PNPM = REPO / "tools" / "pnpm" / "node_modules" / ".bin" / "pnpm"
NPM_CI = ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--prefer-offline", "--include=dev"]
VITE_BUILD = ["node", "node_modules/vite/bin/vite.js", "build"]
SANDBOX_UID = "65534:65534"  # the daemon's npm runs as the sandbox user and must write the cache it is given
APP, TENANT = "bench", "bench"


@dataclass(frozen=True)
class Scenario:
    name: str
    title: str
    files: Path | None  # package.json + package-lock.json over the base app; None: the base app itself
    seed: Path | None  # what the daemon root holds before the measured build; None: the base app
    empty: bool = False  # a fresh root and an empty npm cache instead of a seeded root
    baselines: tuple[str, ...] = ("npm-warm", "npm-empty", "pnpm-warm")


SCENARIOS = {
    s.name: s for s in (
        Scenario("add-package", "one package added (classnames 2.5.1)", SCENARIOS_DIR / "add-package", None),
        Scenario("upgrade-nested", "one package upgraded, nested copies lost (@radix-ui/react-switch 1.3.8 -> 1.4.1)",
                 SCENARIOS_DIR / "upgrade-nested", SCENARIOS_DIR / "upgrade-nested" / "seed"),
        Scenario("all-stored", "lockfile never seen, every package stored (eslint-plugin-react-refresh removed)",
                 SCENARIOS_DIR / "all-stored", None),
        Scenario("empty-store", "empty store and empty npm cache (the app itself)", None, None, empty=True,
                 baselines=("npm-warm", "npm-empty")),
    )
}
BASELINE_TITLES = {"npm-warm": "npm ci, warm npm cache", "npm-empty": "npm ci, empty npm cache", "pnpm-warm": "pnpm install --offline, warm store"}

# "12 packages reused", "3 fetched", "fetched 3 packages", "reused 310": whatever words the package store uses
# (the last line that says so wins: progress lines such as "fetched 26/269 packages" are skipped)
_COUNT = re.compile(r"(\d[\d,]*)\s+(?:packages?\s+)?(?:were\s+|are\s+)?(reused|stored|already stored|from the store|fetched|downloaded|missing)"
                    r"|(reused|fetched|downloaded)\s+(\d[\d,]*)(?![\d/])", re.I)
_PROGRESS = re.compile(r"\b\d+/\d+ packages\b")


def app_with(dest: Path, package_files: Path | None) -> Path:
    """A fresh copy of the fixture app with a scenario's package.json and package-lock.json."""
    app = fresh_app(dest)
    if package_files is not None:
        for name in ("package.json", "package-lock.json"):
            shutil.copyfile(package_files / name, app / name)
    return app


def lock_packages(lockfile: Path) -> set[str]:
    """name@version of every registry package a lockfile holds."""
    out = set()
    for path, entry in json.loads(lockfile.read_text())["packages"].items():
        if path and "version" in entry and not entry.get("link"):
            out.add(f"{entry.get('name') or path.rsplit('node_modules/', 1)[-1]}@{entry['version']}")
    return out


def rm(path: Path) -> None:
    if path.exists() or path.is_symlink():
        subprocess.run(["rm", "-rf", str(path)], check=False)


def deps_counts(texts: list[str]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for text in reversed(texts):
        if _PROGRESS.search(text):
            continue
        for m in _COUNT.finditer(text):
            number, word = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
            word = word.lower()
            key = "fetched" if word in ("fetched", "downloaded", "missing") else "reused"
            counts.setdefault(key, int(number.replace(",", "")))
    return counts


def cached_log(logs: list[str]) -> list[str]:
    """The daemon's own lines about packages and node_modules, progress lines but the last left out."""
    lines = [line for line in logs if "node_modules" in line or "package" in line]
    progress = [line for line in lines if _PROGRESS.search(line)]
    return [line[:300] for line in lines if not _PROGRESS.search(line) or line is progress[-1]]


class Bench:
    def __init__(self, work: Path, runs: int, scenarios: list[Scenario]) -> None:
        self.work = work
        self.runs = runs
        self.scenarios = scenarios
        self.npm_cache = work / "npm-cache"
        self.pnpm_store = work / "pnpm-store"
        self.series: dict[str, Series] = {}
        self.details: dict[str, list[dict[str, object]]] = {}
        self.sources: dict[str, dict[str, bytes]] = {}
        self.pnpm_apps: dict[str, Path] = {}

    def s(self, name: str) -> Series:
        return self.series.setdefault(name, Series(name))

    def share_npm_cache(self) -> None:
        if self.npm_cache.exists():
            run(["chown", "-R", SANDBOX_UID, str(self.npm_cache)], self.work)

    # ------------------------------------------------------------ preparation (never timed)
    def prepare(self) -> None:
        base = app_with(self.work / "prime", None)
        run(NPM_CI, base, npm_env(self.npm_cache))  # npm's cache warm with the base app's packages
        known = lock_packages(base / "package-lock.json")
        extra: set[str] = set()
        for sc in self.scenarios:
            for d in (sc.files, sc.seed):
                if d is not None:
                    extra |= lock_packages(d / "package-lock.json") - known
        if extra:  # the packages only the scenarios and seeds hold, so "warm" means warm for them too
            run(["npm", "cache", "add", *sorted(extra)], self.work, npm_env(self.npm_cache))
        rm(base)
        for sc in self.scenarios:
            self.sources[sc.name] = app_files(app_with(self.work / f"source-{sc.name}", sc.files))
        if any("pnpm-warm" in sc.baselines for sc in self.scenarios):
            if not PNPM.exists():
                raise SystemExit(f"pnpm is missing at {PNPM}: run `make bench-tools`")
            for sc in self.scenarios:
                if "pnpm-warm" in sc.baselines:
                    self.pnpm_apps[sc.name] = self.prepare_pnpm(sc)
        self.share_npm_cache()
        for seed in {self.seed_key(sc) for sc in self.scenarios if not sc.empty}:
            self.prepare_seed(seed)

    def pnpm_env(self) -> dict[str, str]:
        return {**npm_env(self.npm_cache), "PATH": f"{PNPM.parent}:{os.environ['PATH']}", "XDG_CACHE_HOME": str(self.work / "xdg-cache"),
                "XDG_DATA_HOME": str(self.work / "xdg-data"), "XDG_STATE_HOME": str(self.work / "xdg-state")}

    def prepare_pnpm(self, sc: Scenario) -> Path:
        app = app_with(self.work / f"pnpm-{sc.name}", sc.files)
        (app / "pnpm-workspace.yaml").write_text(f"storeDir: {self.pnpm_store}\n")
        run([str(PNPM), "import"], app, self.pnpm_env())
        run([str(PNPM), "install", "--frozen-lockfile", "--ignore-scripts"], app, self.pnpm_env())  # fills the store
        return app

    def seed_key(self, sc: Scenario) -> str:
        return "base" if sc.seed is None else sc.name

    def seed_files(self, key: str) -> Path | None:
        return None if key == "base" else SCENARIOS[key].seed

    def root_path(self, key: str) -> Path:
        return self.work / "roots" / key / "root"

    def prepare_seed(self, key: str) -> None:
        """A daemon root holding the seed app's build; kept aside as a snapshot the runs copy back."""
        root = self.root_path(key)
        root.parent.mkdir(parents=True, exist_ok=True)
        files = app_files(app_with(self.work / f"seed-app-{key}", self.seed_files(key)))
        daemon = start_daemon(root, self.npm_cache)
        try:
            with Client(daemon.address) as client:
                client.wait_ready()
                result = client.build(files=files, app=APP, tenant=TENANT)
                assert result.cache == "miss", result.cache
        finally:
            daemon.stop()
        os.rename(root, root.parent / "snapshot")

    # ------------------------------------------------------------ the daemon
    def daemon_run(self, sc: Scenario, i: int) -> None:
        if sc.empty:
            root = self.work / "roots" / "empty" / "root"
            cache = self.work / "roots" / "empty" / f"npm-cache-{i}"
            rm(root)
            cache.mkdir(parents=True)
            run(["chown", SANDBOX_UID, str(cache)], self.work)
        else:
            root, cache = self.root_path(self.seed_key(sc)), self.npm_cache
            rm(root)
            self.share_npm_cache()  # the baselines wrote it as root
            run(["cp", "-a", "--sparse=always", str(root.parent / "snapshot"), str(root)], self.work)
        daemon = start_daemon(root, cache)
        deps_key = ""
        try:
            with Client(daemon.address) as client:
                client.wait_ready()
                result = client.build(files=self.sources[sc.name], app=APP, tenant=TENANT, keep_events=True)
                try:
                    deps_key = client.explain(TENANT, APP).last.deps.deps_key
                except Exception:  # noqa: BLE001 - an older daemon without explain: the method stays unknown
                    deps_key = ""
        finally:
            daemon.stop()
        assert result.cache == "miss", f"{sc.name}: the scenario's build must miss, got {result.cache}"
        deps = result.decision("deps")
        assert deps is not None and deps.result in ("miss", "coalesced"), f"{sc.name}: the deps key must be new, got {deps}"
        logs = [e.log.line for e in result.events if e.WhichOneof("event") == "log" and e.log.source == "cached"]
        metrics = result.metrics
        detail: dict[str, object] = {
            "run": i, "client_ms": round(result.client_ms, 1), "server_ms": round(result.duration_ms, 1),
            "deps_decision": f"{deps.result} {deps.reason}: {deps.detail}",
            "deps_ms": round(metrics.deps_ms, 1) if metrics else None, "deps_method_in_place": metrics.deps_method if metrics else "",
            "phases_ms": {k: round(v, 1) for k, v in result.phases.items()},
            "cached_log": cached_log(logs),
            "packages": deps_counts([deps.detail, *logs]),
            "deps_record_method": self.deps_record_method(root, deps_key),
        }
        self.details.setdefault(sc.name, []).append(detail)
        self.s(f"{sc.name}: daemon build").add(result.client_ms)
        if metrics is not None:
            self.s(f"{sc.name}: daemon deps (reported deps_ms)").add(metrics.deps_ms)
        if "install" in result.phases:
            self.s(f"{sc.name}: daemon install phase").add(result.phases["install"])
        rm(root)
        if sc.empty:
            rm(cache)

    def deps_record_method(self, root: Path, deps_key: str) -> str:
        """How the scenario's tree was made ("npm ci" or "packages"), from the stopped daemon's store."""
        if not deps_key:
            return "unknown (no deps key from explain)"
        try:
            from cached.store import Store
            from cached.v1 import records_pb2
            store = Store.open(root)
            try:
                entry = store.deps.get(deps_key.encode(), lease=False)
                if entry is None:
                    return "unknown (no record)"
                record = records_pb2.DepsRecord.FromString(entry.value)
                return f"{record.method or 'unset'} (install_ms {record.install_ms:.0f})"
            finally:
                store.close()
        except Exception as e:  # noqa: BLE001 - reported, never fatal: the timing stands without it
            return f"unknown ({type(e).__name__}: {e})"

    # ------------------------------------------------------------ baselines
    def baseline(self, sc: Scenario, kind: str, i: int) -> None:
        title = BASELINE_TITLES[kind]
        if kind == "pnpm-warm":
            app, env = self.pnpm_apps[sc.name], self.pnpm_env()
            rm(app / "node_modules")
            rm(app / "dist")
            install = timed(lambda: run([str(PNPM), "install", "--frozen-lockfile", "--offline", "--ignore-scripts"], app, env))
        else:
            app = app_with(self.work / "baseline-app", sc.files)
            cache = self.work / f"npm-empty-{i}" if kind == "npm-empty" else self.npm_cache
            env = npm_env(cache)
            install = timed(lambda: run(NPM_CI, app, env))
            if kind == "npm-empty":
                rm(cache)
        build = timed(lambda: run(VITE_BUILD, app, env))
        self.s(f"{sc.name}: {title}: install").add(install)
        self.s(f"{sc.name}: {title}: vite build").add(build)
        self.s(f"{sc.name}: {title}: install + build").add(install + build)
        if kind != "pnpm-warm":
            rm(app)

    # ------------------------------------------------------------ the loop
    def run_all(self) -> None:
        self.prepare()
        for i in range(self.runs):
            for sc in self.scenarios:
                self.daemon_run(sc, i)
                kinds = list(sc.baselines)
                shift = i % len(kinds) if kinds else 0
                for kind in kinds[shift:] + kinds[:shift]:
                    self.baseline(sc, kind, i)
                print(f"run {i + 1}/{self.runs}: {sc.name} done", file=sys.stderr, flush=True)


def ratio(bench: Bench, a: str, b: str) -> float | None:
    sa, sb = bench.series.get(a), bench.series.get(b)
    if not sa or not sb or not sa.samples or not sb.samples:
        return None
    return float(sa.summary()["median_ms"]) / float(sb.summary()["median_ms"])


def targets(bench: Bench) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    def add(scenario: str, what: str, value: float | None, unit: str, goal: str, met: bool | None) -> None:
        if value is not None:
            rows.append({"scenario": scenario, "target": goal, "measured": round(value, 3), "unit": unit, "met": met, "what": what})
    d = "add-package: daemon build"
    r = ratio(bench, d, "add-package: npm ci, warm npm cache: install + build")
    add("add-package", "daemon / npm ci warm + build", r, "x", "<= 0.25x", None if r is None else r <= 0.25)
    r = ratio(bench, d, "add-package: pnpm install --offline, warm store: install + build")
    add("add-package", "daemon / pnpm warm install + build", r, "x", "< 1x (faster)", None if r is None else r < 1)
    deps = bench.series.get("all-stored: daemon deps (reported deps_ms)")
    if deps and deps.samples:
        m = float(deps.summary()["median_ms"])
        add("all-stored", "daemon deps in place (median deps_ms)", m, "ms", "< 1000 ms", m < 1000)
    r = ratio(bench, "empty-store: daemon build", "empty-store: npm ci, empty npm cache: install + build")
    add("empty-store", "daemon / npm ci empty cache + build", r, "x", "<= 0.8x", None if r is None else r <= 0.8)
    return rows


def comparisons(bench: Bench) -> list[dict[str, object]]:
    out = []
    for sc in bench.scenarios:
        for kind in sc.baselines:
            b = f"{sc.name}: {BASELINE_TITLES[kind]}: install + build"
            r = ratio(bench, f"{sc.name}: daemon build", b)
            if r is not None:
                out.append({"scenario": sc.name, "baseline": b, "ratio": round(r, 3)})
    return out


def markdown(data: dict) -> str:  # type: ignore[type-arg]
    m = data["machine"]
    lines = [
        f"Measured {data['when']} on {m['cores']} cores, {m['memory_gib']} GiB, {m['filesystem']}; node {m['node']}, npm {m['npm']}, "
        f"vite {m['vite']}, pnpm {m['pnpm']}; {data['runs']} run(s) per scenario, interleaved. Page cache warm throughout.",
        "",
        "| series | runs | median ms | min-max ms |",
        "| --- | ---: | ---: | ---: |",
    ]
    for s in data["series"]:
        lines.append(f"| {s['name']} | {s['runs']} | {s['median_ms']:.1f} | {s['min_ms']:.1f}-{s['max_ms']:.1f} |")
    lines += ["", "| scenario | daemon build vs | ratio (medians) |", "| --- | --- | ---: |"]
    for c in data["comparisons"]:
        lines.append(f"| {c['scenario']} | {c['baseline']} | {c['ratio']:.3f}x |")
    lines += ["", "| scenario | measured | value | target | met |", "| --- | --- | ---: | --- | --- |"]
    for t in data["targets"]:
        met = {True: "yes", False: "no", None: "?"}[t["met"]]
        lines.append(f"| {t['scenario']} | {t['what']} | {t['measured']}{' ms' if t['unit'] == 'ms' else 'x'} | {t['target']} | {met} |")
    lines += ["", "Daemon deps per run (decision, reported deps time, how the tree was made, packages reused/fetched where reported):", ""]
    for name, runs in data["daemon_detail"].items():
        for d in runs:
            pk = ", ".join(f"{k} {v}" for k, v in d["packages"].items()) or "not reported"
            lines.append(f"- {name} run {d['run']}: {d['deps_decision']}; deps_ms {d['deps_ms']}; record {d['deps_record_method']}; packages: {pk}")
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help=f"comma-separated, of: {', '.join(SCENARIOS)}")
    parser.add_argument("--out", default="", help=f"where packages.{{json,md}} go (default {RESULTS})")
    parser.add_argument("--work", default="", help="scratch dir (default: a temp dir, removed after)")
    args = parser.parse_args(argv)
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    unknown = [n for n in names if n not in SCENARIOS]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}: choose from {list(SCENARIOS)}")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="cached-bench-packages-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        bench = Bench(work, args.runs, [SCENARIOS[n] for n in names])
        bench.run_all()
    finally:
        if not args.work:
            os.system(f"chmod -R u+w '{work}' 2>/dev/null; rm -rf '{work}'")
    info = machine()
    info["pnpm"] = version([str(PNPM), "--version"]) if PNPM.exists() else "absent"
    info.pop("turbo", None)
    data = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": info, "runs": args.runs,
        "scenarios": {sc.name: sc.title for sc in bench.scenarios},
        "series": [s.summary() for s in bench.series.values() if s.samples],
        "comparisons": comparisons(bench), "targets": targets(bench), "daemon_detail": bench.details,
    }
    save_results("packages", data, markdown(data), args.out)
    return data


if __name__ == "__main__":
    main()
