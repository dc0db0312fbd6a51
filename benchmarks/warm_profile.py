"""Where the time of a one-file-edit warm rebuild goes, next to a bare `vite build` of the same app.

Measurement only. Two copies of the fixture app (examples/dashboard) get a probe:
their vite.config.ts becomes vite.config.base.ts, and a new vite.config.ts adds
two plugins around the app's own (warm-profile-plugin.mjs: one first, one last).
They stamp epoch-ms marks of the build's hooks (configResolved, buildStart, the
first resolveId, buildEnd, renderStart, renderChunk, generateBundle, writeBundle,
closeBundle), count resolveId/load/transform calls, and sum the time spent in
every JS plugin hook (native plugins are not seen), then print one line on
stderr. The warm build's stderr reaches the client as build log lines; the
client also stamps the arrival of the daemon's phase events (`build` started and
finished) and reads the build's phase_ms.

Per run (the order rotates): edit src/components/dashboard/StatCard.tsx in each
copy (a new export, a different one each run) and build it
- warm: through a daemon (`cached serve`, shadow checks off), the builder reused (checked);
- bare: `node node_modules/vite/bin/vite.js build` in a copy installed with npm ci;
- bare, minify off: the same with `--minify false`, to see which gap minify fills.
Plus, once per run, `node -e "await import('vite'), the two plugins"` in the bare
copy: the import share of the bare build's start (the warm builder has paid it).

Prints a markdown table of medians per phase (ms and share of the total) and
saves benchmarks/results/warm_profile.{json,md}. Never asserts on time.

    .venv/bin/python benchmarks/warm_profile.py [--runs 5] [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, fresh_app, machine, npm_env, run, start_daemon  # noqa: E402

from cached_client import Client  # noqa: E402
from support import app_files  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
EDIT = ("src/components/dashboard/StatCard.tsx", "\nexport const benchProfileEdit{n} = () => '{tag} profile edit {n}';\n")
RUN_ID = uuid.uuid4().hex[:8]
TAG = "[warm-profile] "

PLUGIN = r"""// Timing probe of benchmarks/warm_profile.py (see its docstring).
const now = () => performance.timeOrigin + performance.now();
const evalAt = now();
const HOOKS = ["options", "buildStart", "resolveId", "load", "transform", "moduleParsed", "buildEnd", "renderStart",
  "renderChunk", "augmentChunkHash", "generateBundle", "writeBundle", "closeBundle"];
export function warmProfile() {
  const t = { eval: evalAt, originNode: performance.timeOrigin };
  const counts = { resolveId: 0, load: 0, transform: 0, renderChunk: 0, moduleParsed: 0 };
  const hookMs = {};
  const pluginMs = {};
  const mark = (k) => { t[k] = now(); };
  const first = (k) => { if (t[k] === undefined) t[k] = now(); };
  function wrap(plugin) {
    if (!plugin || typeof plugin !== "object" || String(plugin.name || "").startsWith("warm-profile")) return;
    for (const hook of HOOKS) {
      const h = plugin[hook];
      const fn = typeof h === "function" ? h : h && typeof h.handler === "function" ? h.handler : null;
      if (!fn || fn.__wp) continue;
      const name = plugin.name || "?";
      const timed = function (...args) {
        const s = performance.now();
        const done = () => { const d = performance.now() - s; hookMs[hook] = (hookMs[hook] || 0) + d; pluginMs[name] = (pluginMs[name] || 0) + d; };
        let r;
        try { r = fn.apply(this, args); } catch (e) { done(); throw e; }
        if (r && typeof r.then === "function") return r.then((v) => { done(); return v; }, (e) => { done(); throw e; });
        done();
        return r;
      };
      timed.__wp = true;
      if (typeof h === "function") plugin[hook] = timed; else h.handler = timed;
    }
  }
  const pre = {
    name: "warm-profile:pre", enforce: "pre",
    config: { order: "pre", handler() { first("configHook"); } },
    configResolved: { order: "pre", handler(config) { mark("configResolved"); for (const p of config.plugins) wrap(p); } },
    options: { order: "pre", handler() { first("options"); } },
    buildStart: { order: "pre", handler() { first("buildStart"); } },
    resolveId: { order: "pre", handler() { first("firstResolve"); counts.resolveId++; return null; } },
    load: { order: "pre", handler() { first("firstLoad"); counts.load++; return null; } },
    transform: { order: "pre", handler() { first("firstTransform"); counts.transform++; return null; } },
    buildEnd: { order: "pre", handler() { mark("buildEndPre"); } },
    renderStart: { order: "pre", handler() { first("renderStartPre"); } },
    renderChunk: { order: "pre", handler() { first("renderChunkFirst"); counts.renderChunk++; return null; } },
    generateBundle: { order: "pre", handler() { first("generateBundlePre"); } },
    writeBundle: { order: "pre", handler() { first("writeBundlePre"); } },
    closeBundle: { order: "pre", handler() { first("closeBundlePre"); } },
  };
  const post = {
    name: "warm-profile:post", enforce: "post",
    configResolved: { order: "post", handler() { mark("configResolvedPost"); } },
    buildStart: { order: "post", handler() { mark("buildStartPost"); } },
    moduleParsed: { order: "post", handler() { counts.moduleParsed++; t.lastModuleParsed = now(); } },
    transform: { order: "post", handler() { t.lastTransform = now(); return null; } },
    buildEnd: { order: "post", handler() { mark("buildEnd"); } },
    renderStart: { order: "post", handler() { mark("renderStartPost"); } },
    renderChunk: { order: "post", handler() { t.renderChunkLast = now(); return null; } },
    generateBundle: { order: "post", handler(_o, bundle) { mark("generateBundlePost"); t.outputs = Object.keys(bundle).length; } },
    writeBundle: { order: "post", handler() { mark("writeBundlePost"); } },
    closeBundle: {
      order: "post",
      handler() {
        mark("closeBundlePost");
        const round = (o) => Object.fromEntries(Object.entries(o).map(([k, v]) => [k, typeof v === "number" ? Math.round(v * 1000) / 1000 : v]));
        process.stderr.write("[warm-profile] " + JSON.stringify({ t: round(t), counts, hookMs: round(hookMs), pluginMs: round(pluginMs), pid: process.pid }) + "\n");
      },
    },
  };
  return [pre, post];
}
"""

WRAPPER = """import base from "./vite.config.base.ts";
import { warmProfile } from "./warm-profile-plugin.mjs";
const [pre, post] = warmProfile();
export default { ...base, plugins: [pre, ...(base.plugins ?? []), post] };
"""

IMPORT_PROBE = """const t0 = performance.now();
await import("vite"); await import("@vitejs/plugin-react"); await import("@tailwindcss/vite");
console.log(JSON.stringify({ import_ms: performance.now() - t0, node_ready_ms: t0 }));
"""

# (row, kind): kind "vite" = inside the Vite build, "daemon" = the daemon's own share, "process" = bare's start/exit.
ROWS = [
    ("daemon: request, lookup, dependencies", "daemon"),
    ("daemon: workspace writes (changed files)", "daemon"),
    ("node start (spawn + bootstrap)", "process"),
    ("import Vite + plugins (bare; estimate)", "process"),
    ("config load (bundle+eval config, resolve)", "vite"),
    ("plugin set-up (environments, rolldown options, buildStart)", "vite"),
    ("resolve + load + transform (all modules)", "vite"),
    ("link + render chunks + renderChunk hooks", "vite"),
    ("minify + finalize chunks", "vite"),
    ("generateBundle hooks (CSS/HTML assets)", "vite"),
    ("write to disk (empty outDir, copy public/, write bundle)", "vite"),
    ("closeBundle + exit / driver end + freeze", "vite"),
    ("daemon: collect + ingest + record", "daemon"),
    ("daemon: RPC, streaming, rest", "daemon"),
]


def probe(app: Path) -> None:
    """The timing plugins around the app's own (an object config: the fixture's)."""
    (app / "vite.config.ts").rename(app / "vite.config.base.ts")
    (app / "vite.config.ts").write_text(WRAPPER)
    (app / "warm-profile-plugin.mjs").write_text(PLUGIN)


ORIGINAL: dict[Path, str] = {}


def edit(app: Path, n: int) -> None:
    path = app / EDIT[0]
    original = ORIGINAL.setdefault(path, path.read_text())
    path.write_text(original + EDIT[1].format(n=n, tag=f"{app.name}-{RUN_ID}"))


def profile_line(lines: list[str]) -> dict:
    for line in lines:
        if TAG in line:
            return json.loads(line.split(TAG, 1)[1])
    raise SystemExit("no profile line in the build's output:\n" + "\n".join(lines[-30:]))


def vite_phases(t: dict[str, float]) -> dict[str, float]:
    """The Vite-internal rows from the plugin's marks (epoch ms)."""
    prepare = t["renderStartPost"] - t["renderStartPre"]
    return {
        "plugin set-up (environments, rolldown options, buildStart)": t["firstResolve"] - t["configResolvedPost"],
        "resolve + load + transform (all modules)": t["buildEnd"] - t["firstResolve"],
        "link + render chunks + renderChunk hooks": t["renderChunkLast"] - t["buildEnd"] - prepare,
        "minify + finalize chunks": t["generateBundlePre"] - t["renderChunkLast"],
        "generateBundle hooks (CSS/HTML assets)": t["generateBundlePost"] - t["generateBundlePre"],
        "write to disk (empty outDir, copy public/, write bundle)": prepare + t["writeBundlePost"] - t["generateBundlePost"],
    }


def bare_build(app: Path, extra: list[str]) -> dict:
    started = time.time() * 1000
    done = subprocess.run(["node", "node_modules/vite/bin/vite.js", "build", *extra], cwd=app, capture_output=True, text=True, timeout=600)
    ended = time.time() * 1000
    if done.returncode != 0:
        raise SystemExit(f"bare build failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    prof = profile_line((done.stderr + done.stdout).splitlines())
    t = prof["t"]
    phases = {row: 0.0 for row, _ in ROWS}
    raw = {"spawn_ms": t["originNode"] - started, "boot_ms": t["configResolvedPost"] - t["originNode"]}
    phases.update(vite_phases(t))
    phases["closeBundle + exit / driver end + freeze"] = ended - t["writeBundlePost"]
    return {"total_ms": ended - started, "phases": phases, "raw": raw, "counts": prof["counts"], "hook_ms": prof["hookMs"],
            "plugin_ms": prof["pluginMs"], "t": t}


def split_start(sample: dict, import_ms: float, boot_ms: float) -> None:
    """A bare build's start, from its process spawn to configResolved, split with the figures measured apart:
    Node's bootstrap, the import of Vite and the plugins, and the rest (config load)."""
    boot = sample["raw"]["boot_ms"]
    nodeboot = min(boot_ms, boot)
    imp = min(import_ms, boot - nodeboot)
    sample["phases"]["node start (spawn + bootstrap)"] = sample["raw"]["spawn_ms"] + nodeboot
    sample["phases"]["import Vite + plugins (bare; estimate)"] = imp
    sample["phases"]["config load (bundle+eval config, resolve)"] = boot - nodeboot - imp


def warm_build(client: Client, app: Path, n: int) -> dict:
    edit(app, n)
    files = app_files(app)
    arrivals: dict[str, float] = {}
    lines: list[str] = []

    def on_event(event) -> None:  # noqa: ANN001 - a cached_pb2.BuildEvent
        kind = event.WhichOneof("event")
        if kind == "phase":
            state = {1: "started", 2: "finished"}.get(event.phase.state)
            if state:
                arrivals.setdefault(f"{event.phase.name}:{state}", time.time() * 1000)
        elif kind == "log":
            lines.append(event.log.line)

    started = time.time() * 1000
    result = client.build(files=files, app="profile-warm", tenant="bench", on_event=on_event)
    ended = time.time() * 1000
    d = result.decision("warm")
    if result.cache != "miss" or d is None or d.reason != "reused":
        raise SystemExit(f"warm run {n} did not reuse the builder: {result.decisions}")
    prof = profile_line(lines)
    t = prof["t"]
    ph = result.phases
    b0, b1 = arrivals.get("build:started"), arrivals.get("build:finished")
    if b0 is None or b1 is None:
        raise SystemExit(f"the build phase was not streamed: {sorted(arrivals)}")
    phases = {row: 0.0 for row, _ in ROWS}
    phases["daemon: workspace writes (changed files)"] = ph.get("workspace", 0.0)
    phases["daemon: request, lookup, dependencies"] = (b0 - started) - ph.get("workspace", 0.0)
    phases["config load (bundle+eval config, resolve)"] = t["configResolvedPost"] - b0
    phases.update(vite_phases(t))
    phases["closeBundle + exit / driver end + freeze"] = b1 - t["writeBundlePost"]
    after = ph.get("collect", 0.0) + ph.get("ingest", 0.0) + ph.get("record", 0.0)
    phases["daemon: collect + ingest + record"] = after
    phases["daemon: RPC, streaming, rest"] = (ended - b1) - after
    return {"total_ms": ended - started, "phases": phases, "counts": prof["counts"], "hook_ms": prof["hookMs"], "plugin_ms": prof["pluginMs"],
            "daemon_phase_ms": dict(ph), "decision": d.detail, "t": t}


def median_of(samples: list[dict], key: str) -> dict[str, float]:
    names = sorted({k for s in samples for k in s[key]})
    return {k: round(statistics.median(s[key].get(k, 0.0) for s in samples), 1) for k in names}


def summarize(samples: list[dict]) -> dict:
    return {
        "runs": len(samples),
        "total_ms": {"median": round(statistics.median(s["total_ms"] for s in samples), 1),
                     "min": round(min(s["total_ms"] for s in samples), 1), "max": round(max(s["total_ms"] for s in samples), 1)},
        "phases_ms": {row: round(statistics.median(s["phases"][row] for s in samples), 1) for row, _ in ROWS},
        "counts": median_of(samples, "counts"),
        "js_hook_ms": median_of(samples, "hook_ms"),
        "js_plugin_ms": median_of(samples, "plugin_ms"),
    }


def table(summary: dict[str, dict], import_ms: float, boot_ms: float) -> str:
    cols = list(summary)
    out = ["| phase (median ms, share of total) | " + " | ".join(cols) + " |", "|---|" + "---:|" * len(cols)]
    for row, _kind in ROWS:
        cells = []
        for c in cols:
            v, total = summary[c]["phases_ms"][row], summary[c]["total_ms"]["median"]
            cells.append("-" if abs(v) < 0.05 else f"{v:,.0f} ({100 * v / total:.0f}%)")
        out.append(f"| {row} | " + " | ".join(cells) + " |")
    out.append("| **total (median of wall, min-max)** | " + " | ".join(
        f"**{summary[c]['total_ms']['median']:,.0f}** ({summary[c]['total_ms']['min']:,.0f}-{summary[c]['total_ms']['max']:,.0f})" for c in cols) + " |")
    for c in cols:
        s = summary[c]
        vite_ms = sum(s["phases_ms"][r] for r, k in ROWS if k == "vite")
        daemon_ms = sum(s["phases_ms"][r] for r, k in ROWS if k == "daemon")
        out.append(f"\n- {c}: Vite's own build {vite_ms:,.0f} ms; daemon's share {daemon_ms:,.0f} ms; "
                   f"hooks seen: {s['counts'].get('resolveId', 0):,.0f} resolveId, {s['counts'].get('load', 0):,.0f} load, "
                   f"{s['counts'].get('transform', 0):,.0f} transform, {s['counts'].get('renderChunk', 0):,.0f} renderChunk; "
                   "JS plugin time (sum): " + ", ".join(f"{k} {v:,.0f}" for k, v in sorted(s["js_plugin_ms"].items(), key=lambda kv: -kv[1])[:4]))
    bare, warm = summary.get("bare"), summary.get("warm")
    if bare and warm:
        out.append(f"\nwarm/bare: {warm['total_ms']['median'] / bare['total_ms']['median']:.2f}x "
                   f"(measured apart in the bare copy, medians: Node's bootstrap {boot_ms:,.0f} ms, "
                   f"import of Vite and the two plugins {import_ms:,.0f} ms; the bare rows \"node start\" and \"import\" use them)")
    return "\n".join(out)


def main(argv: list[str] | None = None) -> dict[str, object]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--work", default="", help="working directory (default: a temp dir, removed afterwards)")
    parser.add_argument("--no-minify-column", action="store_true", help="skip the `--minify false` bare builds")
    args = parser.parse_args(argv)
    runs = max(1, min(args.runs, 100))
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="cached-warm-profile-"))
    work.mkdir(parents=True, exist_ok=True)
    npm_cache = work / "npm-cache"
    npm_cache.mkdir(exist_ok=True)
    daemon = None
    try:
        print(f"work dir {work}; installing the bare copy (npm ci)...", flush=True)
        bare = fresh_app(work / "bare")
        probe(bare)
        run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], bare, npm_env(npm_cache))
        subprocess.run(["chown", "-R", "65534:65534", str(npm_cache)], check=False)  # the daemon's npm runs as 65534
        (bare / "import-probe.mjs").write_text(IMPORT_PROBE)
        warm_app = fresh_app(work / "warm-app")
        probe(warm_app)
        daemon = start_daemon(work / "root", npm_cache, ["--warm-shadow-share", "0"])
        samples: dict[str, list[dict]] = {"bare": [], "warm": []}
        if not args.no_minify_column:
            samples["bare --minify false"] = []
        imports: list[float] = []
        boots: list[float] = []
        with Client(daemon.address) as client:
            print("first builds (npm ci in the daemon, the warm builder starts)...", flush=True)
            client.build(files=app_files(warm_app), app="profile-warm", tenant="bench")
            edit(warm_app, 0)
            started = client.build(files=app_files(warm_app), app="profile-warm", tenant="bench").decision("warm")
            if started is None or started.reason not in ("started", "reused"):
                raise SystemExit(f"the warm builder did not start: {started}")
            edit(bare, 0)
            bare_build(bare, [])  # page cache warm for both

            def imp() -> tuple[float, float]:
                done = subprocess.run(["node", "import-probe.mjs"], cwd=bare, capture_output=True, text=True, timeout=120, check=True)
                got = json.loads(done.stdout.strip().splitlines()[-1])
                return float(got["import_ms"]), float(got["node_ready_ms"])

            kinds = list(samples)
            for n in range(1, runs + 1):
                i_ms, b_ms = imp()
                imports.append(i_ms)
                boots.append(b_ms)
                for kind in kinds[n % len(kinds):] + kinds[:n % len(kinds)]:
                    if kind == "warm":
                        samples[kind].append(warm_build(client, warm_app, n))
                    else:
                        edit(bare, n)
                        samples[kind].append(bare_build(bare, [] if kind == "bare" else ["--minify", "false"]))
                print(f"run {n}/{runs}: " + ", ".join(f"{k} {v[-1]['total_ms']:.0f} ms" for k, v in samples.items()), flush=True)
        import_ms, boot_ms = statistics.median(imports), statistics.median(boots)
        for sample in samples["bare"] + samples.get("bare --minify false", []):
            split_start(sample, import_ms, boot_ms)
        summary = {k: summarize(v) for k, v in samples.items()}
        md = table(summary, import_ms, boot_ms)
        print("\n" + md)
        RESULTS.mkdir(parents=True, exist_ok=True)
        command = f".venv/bin/python benchmarks/warm_profile.py --runs {runs}"
        data = {"machine": machine(), "command": command, "runs": runs, "import_ms_median": round(import_ms, 1),
                "node_bootstrap_ms_median": round(boot_ms, 1),
                "summary": summary, "samples": samples}
        (RESULTS / "warm_profile.json").write_text(json.dumps(data, indent=2) + "\n")
        (RESULTS / "warm_profile.md").write_text(
            f"# Warm rebuild profile (one-file edit of examples/dashboard)\n\n`{command}`\n\n{md}\n")
        return data
    finally:
        if daemon is not None:
            daemon.stop()
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
