"""`make bench`: every benchmark scenario in one run, each interleaved with its own baselines.

    .venv/bin/python benchmarks/bench.py [--runs N] [--quick] [--only NAME[,NAME]] [--out DIR] [-- ARGS...]

Runs the scenario scripts below one after the other, in this process, through their
`main(argv: list[str] | None) -> dict` (each script interleaves its baselines itself and saves its
own results), then writes one combined benchmarks/results/latest.{json,md} (every scenario's
summary: its series, its ratios against its baselines, a few figures; the machine; the command) and
latest.png (each daemon/baseline ratio). `make bench` then regenerates the README's benchmark
section from latest.json (benchmarks/readme_section.py).

  run           run.py: never seen vs the old pipeline, full hit and the cold-shell hit vs
                Turborepo, one file changed vs bare vite / turbo --force, new app vs pnpm,
                after a purge (its own files: results/run/latest.{json,md,png})
  warm_rebuild  warm_rebuild.py: the warm ratio, a warm builder vs a bare `vite build`
  load          load.py: hits under load from separate client processes
  edit_to_live  edit_to_live.py: an edit to served through the local workerd target, Cloudflare
                request/byte counts
  packages      packages.py: a lockfile never seen vs npm ci and pnpm
  remote        remote.py: several daemons on one bucket

A scenario script that is missing is reported as missing (and in latest.json as not run) and the
others go on; a script that fails is reported with its error, the others go on, and bench.py exits
1 at the end. Nothing is ever filled in for a scenario that did not run.

`--runs N` goes to every script; without it each gets its own default (below), `--quick` gives 3
each. `--only` runs some scenarios and replaces only their entries in an existing latest.json.
Arguments after `--` go to every script run (for plumbing checks, e.g.
`--only run --out /tmp/b -- --smoke`); they need `--out`, so they never replace the published results.

What a scenario script returns, for the combined summary: `series` (a list of common.Series
summaries), `ratios` (a list of {situation, daemon, baseline, daemon_median_ms, baseline_median_ms,
ratio}) or `comparisons` (remote.py's {what, a, b, a_ms, b_ms, stat, ratio}), and optionally
`figures` (a flat {name: number or text}) with counts such as requests and bytes.
"""

from __future__ import annotations

import argparse
import importlib.util
import inspect
import json
import shlex
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import REPO, machine  # noqa: E402
from readme_section import render  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
QUICK_RUNS = 3


@dataclass(frozen=True)
class Scenario:
    name: str
    script: str  # file name in benchmarks/
    title: str
    runs: int | None  # default --runs; None: the script's own default
    args: Callable[[Path, bool], list[str]] = field(default=lambda out, custom_out: [])  # (results dir, --out given)
    summarize: Callable[[dict[str, Any]], dict[str, Any]] | None = None

    @property
    def path(self) -> Path:
        return HERE / self.script


def _out(out: Path, custom: bool) -> list[str]:
    """For scripts that take --out (save_results's convention): only when bench.py was given --out."""
    return ["--out", str(out)] if custom else []


# ---------------------------------------------------------------------------- summaries

def _series(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key)
    if isinstance(value, list) and all(isinstance(s, dict) and "name" in s and "median_ms" in s for s in value):
        return value
    return []


def _medians(series: list[dict[str, Any]]) -> dict[str, float]:
    return {s["name"]: float(s["median_ms"]) for s in series if s.get("median_ms") is not None}


def _ratio(situation: str, daemon: str, baseline: str, medians: dict[str, float], stat: str = "median") -> dict[str, Any] | None:
    a, b = medians.get(daemon), medians.get(baseline)
    if a is None or not b:
        return None
    return {"situation": situation, "daemon": daemon, "baseline": baseline, "stat": stat,
            "daemon_ms": round(a, 3), "baseline_ms": round(b, 3), "ratio": round(a / b, 4)}


def _flat(d: Any, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    if isinstance(d, dict):
        for k, v in d.items():
            out.update(_flat(v, f"{prefix}{k}" if not prefix else f"{prefix} {k}"))
    elif isinstance(d, (int, float, str, bool)) or d is None:
        out[prefix] = d
    return out


def summarize_generic(data: dict[str, Any]) -> dict[str, Any]:
    """series / scenarios, ratios / comparisons and figures, in any of the shapes the scripts use."""
    series = _series(data, "series") or _series(data, "scenarios")
    medians = _medians(series)
    ratios = []
    for r in data.get("ratios") or []:
        if isinstance(r, dict) and "ratio" in r:
            daemon, baseline = r.get("daemon", r.get("a", "?")), r.get("baseline", r.get("b", "?"))
            ratios.append({"situation": r.get("situation", r.get("what", "")), "daemon": daemon, "baseline": baseline,
                           "stat": r.get("stat", "median"),
                           "daemon_ms": r.get("daemon_median_ms", r.get("daemon_ms", medians.get(daemon))),
                           "baseline_ms": r.get("baseline_median_ms", r.get("baseline_ms", medians.get(baseline))),
                           "ratio": float(r["ratio"])})
    for c in data.get("comparisons") or []:
        if isinstance(c, dict) and "ratio" in c and "a" in c and "b" in c:
            ratios.append({"situation": c.get("what", ""), "daemon": c["a"], "baseline": c["b"], "stat": c.get("stat", "median"),
                           "daemon_ms": c.get("a_ms"), "baseline_ms": c.get("b_ms"), "ratio": float(c["ratio"])})
    return {"series": series, "ratios": ratios, "figures": _flat(data.get("figures") or {})}


def summarize_run(data: dict[str, Any]) -> dict[str, Any]:
    out = summarize_generic(data)
    extra = data.get("extra", {})
    figures: dict[str, Any] = {}
    for k, v in (extra.get("hit_breakdown_median_ms") or {}).items():
        figures[f"full hit, median ms: {k}"] = v
    for k, v in (extra.get("changed_overhead_over_bare_vite_ms") or {}).items():
        figures[f"one file changed, ms over bare vite: {k}"] = v
    deps = extra.get("deps_in_place_ms") or []
    if deps:
        figures["new app: deps in place, median ms"] = sorted(deps)[len(deps) // 2]
    if "daemon_peak_rss_mib" in extra:
        figures["daemon peak RSS, MiB"] = extra["daemon_peak_rss_mib"]
    if isinstance(extra.get("after_purge"), str):
        figures["after purge"] = extra["after_purge"]
    out["figures"] = figures
    return out


def summarize_warm_rebuild(data: dict[str, Any]) -> dict[str, Any]:
    series = _series(data, "series")
    medians = _medians(series)
    ratios, figures = [], {}
    for scenario, r in (data.get("ratios") or {}).items():
        for kind, situation in (("warm", "one file edited, warm builder"),
                                ("session", "one file edited, warm builder (watch session)"),
                                ("cold", "one file edited, cold path (force)")):
            row = _ratio(f"{situation} ({scenario})", f"{kind}/{scenario}", f"bare/{scenario}", medians)
            if row:
                ratios.append(row)
        figures[f"{scenario}: warm / bare (target <= 0.45)"] = r.get("warm_over_bare")
        figures[f"{scenario}: watch session / bare"] = r.get("session_over_bare")
        figures[f"{scenario}: cold path - bare, ms"] = r.get("cold_minus_bare_ms")
    for b in data.get("builders") or []:
        figures[f"warm builder pid {b.get('pid')}: node / sandbox tree RSS, MiB"] = f"{b.get('node_rss_mib')} / {b.get('tree_rss_mib')}"
    return {"series": series, "ratios": ratios, "figures": figures}


def summarize_load(data: dict[str, Any]) -> dict[str, Any]:
    """load.py's rows, one per daemon and number of client processes: latency percentiles, hits/s, daemon CPU per hit."""
    series, figures, by = [], {}, {}
    for row in data.get("rows") or []:
        label, n = row.get("daemon", "daemon"), row.get("processes", "?")
        name = f"{label}: hits from {n} client process{'es' if n != 1 else ''}"
        by[(label, n)] = name
        series.append({"name": name, "runs": row.get("requests"), "min_ms": row.get("min_ms"), "median_ms": row.get("p50_ms"),
                       "p99_ms": row.get("p99_ms"), "max_ms": row.get("max_ms")})
        who = f"{label}, {n} client process{'es' if n != 1 else ''}"
        figures[f"{who}: hits/s (median of rounds)"] = row.get("hits_per_s_median")
        figures[f"{who}: daemon CPU ms per hit"] = row.get("daemon_cpu_ms_per_hit")
    medians = _medians(series)
    ratios = [row for (label, n), name in by.items() if label == "daemon" and ("baseline", n) in by
              if (row := _ratio(f"hits under load, {n} client processes", name, by[("baseline", n)], medians))]
    return {"series": series, "ratios": ratios, "figures": figures}


def summarize_edit_to_live(data: dict[str, Any]) -> dict[str, Any]:
    """edit_to_live.py: its series (a dict by key), the median shares, and the Cloudflare requests and bytes per case."""
    raw = data.get("series") or {}
    series = [s for s in (raw.values() if isinstance(raw, dict) else raw) if isinstance(s, dict) and "median_ms" in s]
    figures: dict[str, Any] = {}
    total = (raw.get("edit_to_served") or {}).get("median_ms") if isinstance(raw, dict) else None
    if total is not None:
        figures[f"edit to served, median ms (target under {data.get('target_ms', '?')})"] = total
    for k, v in (data.get("median_shares") or {}).items():
        figures[f"share of edit to served: {k}"] = v
    for c in data.get("cloudflare") or []:
        if isinstance(c, dict):
            figures[f"Cloudflare, {c.get('case')}: requests / bytes sent"] = f"{c.get('requests')} / {c.get('bytes_sent'):,}" \
                if isinstance(c.get("bytes_sent"), int) else f"{c.get('requests')} / {c.get('bytes_sent')}"
            figures[f"Cloudflare, {c.get('case')}: assets sent / total"] = f"{c.get('assets_uploaded')} / {c.get('assets_total')}"
    return {"series": series, "ratios": [], "figures": figures}


def summarize_packages(data: dict[str, Any]) -> dict[str, Any]:
    series = _series(data, "series")
    medians = _medians(series)
    ratios = [row for c in data.get("comparisons") or []
              if (row := _ratio(data.get("scenarios", {}).get(c["scenario"], c["scenario"]), f"{c['scenario']}: daemon build", c["baseline"], medians))]
    figures = {f"{t['scenario']}: {t['what']} (target {t['target']})": f"{t['measured']}{' ms' if t.get('unit') == 'ms' else 'x'}"
               f"{'' if t.get('met') is None else (', met' if t['met'] else ', not met')}" for t in data.get("targets") or []}
    return {"series": series, "ratios": ratios, "figures": figures}


def summarize_remote(data: dict[str, Any]) -> dict[str, Any]:
    out = summarize_generic({"series": data.get("series"), "comparisons": data.get("comparisons")})
    figures = {}
    for who, r in (data.get("remote") or {}).items():
        if isinstance(r, dict):
            figures[f"{who}: bytes from / to the bucket"] = f"{r.get('bytes_in')} / {r.get('bytes_out')}"
    out["figures"] = figures
    return out


SCENARIOS: list[Scenario] = [
    Scenario("run", "run.py", "cold and warm vs the old pipeline, Turborepo, bare vite and pnpm", 10,
             lambda out, custom: ["--out", str(out / "run")], summarize_run),
    Scenario("warm_rebuild", "warm_rebuild.py", "the warm ratio: a warm builder vs a bare vite build", 10,
             lambda out, custom: ["--json", str(out / "warm_rebuild.json")], summarize_warm_rebuild),
    Scenario("load", "load.py", "hits under load from separate client processes", None, _out, summarize_load),
    Scenario("edit_to_live", "edit_to_live.py", "an edit to served through the local workerd target", None, _out,
             summarize_edit_to_live),
    Scenario("packages", "packages.py", "a lockfile never seen vs npm ci and pnpm", 5, _out, summarize_packages),
    Scenario("remote", "remote.py", "several daemons on one bucket", 5, _out, summarize_remote),
]
BY_NAME = {s.name: s for s in SCENARIOS}


# ---------------------------------------------------------------------------- running

def load_main(scenario: Scenario) -> Callable[[list[str] | None], dict[str, Any]]:
    spec = importlib.util.spec_from_file_location(f"bench_scenario_{scenario.name}", scenario.path)
    if spec is None or spec.loader is None:
        raise RuntimeError(f"cannot load {scenario.path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses and pickling look the module up by name
    spec.loader.exec_module(module)
    fn = getattr(module, "main", None)
    if fn is None or not inspect.signature(fn).parameters:
        raise RuntimeError(f"benchmarks/{scenario.script} has no main(argv: list[str] | None) -> dict")
    return fn


def script_argv(scenario: Scenario, runs: int | None, out: Path, custom_out: bool, extra: list[str]) -> list[str]:
    argv = [] if runs is None else ["--runs", str(runs)]
    return argv + scenario.args(out, custom_out) + extra


def run_scenario(scenario: Scenario, argv: list[str], command: str) -> dict[str, Any]:
    rel = f"benchmarks/{scenario.script}"
    entry: dict[str, Any] = {"name": scenario.name, "script": rel, "title": scenario.title, "argv": argv,
                             "command": shlex.join([".venv/bin/python", rel, *argv]), "bench_command": command,
                             "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    banner = f"==== {scenario.name}: {entry['command']}"
    print(f"\n{banner}\n", flush=True)
    if not scenario.path.exists():
        entry.update(status="missing", error=f"{rel} is missing: scenario not run")
        print(f"!!!! {scenario.name}: {entry['error']}", flush=True)
        return entry
    started = time.monotonic()
    try:
        data = load_main(scenario)(argv)
        if not isinstance(data, dict):
            raise RuntimeError(f"{rel}'s main returned {type(data).__name__}, not its data dict")
    except KeyboardInterrupt:
        raise
    except BaseException as e:  # SystemExit included: a script's failed step stops that script, not the bench
        why = f"exited with status {e.code} (its output above says why)" if isinstance(e, SystemExit) and isinstance(e.code, int) \
            else f"{type(e).__name__}: {str(e)[-2000:]}"
        entry.update(status="failed", seconds=round(time.monotonic() - started, 1), error=why)
        traceback.print_exc()
        print(f"!!!! {scenario.name} failed after {entry['seconds']:.0f} s: {entry['error'][:500]}", flush=True)
        return entry
    entry.update(status="ok", seconds=round(time.monotonic() - started, 1))
    try:
        entry.update((scenario.summarize or summarize_generic)(data))
    except Exception as e:  # the script's own results are saved; only the combined summary lacks this one
        entry.update(summary_error=f"{type(e).__name__}: {e}", **summarize_generic(data))
        print(f"!!!! {scenario.name}: its data did not summarize ({entry['summary_error']}); see its own results", flush=True)
    print(f"==== {scenario.name} done in {entry['seconds']:.0f} s", flush=True)
    return entry


def chart(data: dict[str, Any], path: Path) -> None:
    """Every ratio (daemon median / baseline median), log scale, one colour per scenario script."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit("matplotlib is missing: run `make bench` (the venv's dev extra has it)") from None
    rows = [(s["name"], r) for s in data["scenarios"] if s.get("status") == "ok" for r in s.get("ratios", []) if r.get("ratio")]
    palette = ["#2b7bba", "#e08a1e", "#3a9c4a", "#b33c3c", "#7a52a8", "#6b6b6b"]
    colours = {s.name: palette[i % len(palette)] for i, s in enumerate(SCENARIOS)}
    fig, ax = plt.subplots(figsize=(14, 0.36 * max(len(rows), 1) + 1.8))
    if rows:
        labels = [f"{r['daemon']}  /  {r['baseline']}" + ("" if r.get("stat", "median") == "median" else f" ({r['stat']})")
                  for name, r in rows]
        values = [float(r["ratio"]) for _, r in rows]
        ax.barh(range(len(rows)), [v - 1 for v in values], left=1, color=[colours.get(name, "#999999") for name, _ in rows])  # from 1: faster to the left
        ax.set_yticks(range(len(rows)), [label if len(label) <= 92 else label[:89] + "..." for label in labels], fontsize=7)
        ax.set_xscale("log")
        ax.axvline(1.0, color="black", linewidth=0.8)
        for y, v in enumerate(values):
            ax.text(v, y, f" {v:.3g}x", va="center", fontsize=7)
        ax.invert_yaxis()
        handles = [plt.Rectangle((0, 0), 1, 1, color=colours[n]) for n in dict.fromkeys(name for name, _ in rows)]
        ax.legend(handles, list(dict.fromkeys(name for name, _ in rows)), fontsize=7, loc="lower right")
    else:
        ax.text(0.5, 0.5, "no scenario produced a ratio", ha="center", va="center", transform=ax.transAxes)
        ax.set_yticks([])
    ax.set_xlabel("daemon median / baseline median (log scale; left of 1: the daemon is faster)")
    ax.set_title(f"cached benchmarks, {data['when']}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110, bbox_inches="tight")  # the long labels kept whole
    plt.close(fig)


def write(data: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "latest.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "latest.md").write_text("# cached benchmarks\n\n" + render(data, chart="latest.png"))
    chart(data, out / "latest.png")


def parse(argv: list[str] | None) -> tuple[argparse.Namespace, list[str]]:
    argv = list(sys.argv[1:] if argv is None else argv)
    extra: list[str] = []
    if "--" in argv:
        i = argv.index("--")
        argv, extra = argv[:i], argv[i + 1:]
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=None, help="runs for every script (default: each script's, see SCENARIOS)")
    parser.add_argument("--quick", action="store_true", help=f"{QUICK_RUNS} runs each (--runs wins if given too)")
    parser.add_argument("--only", default="", help=f"comma-separated, of: {', '.join(BY_NAME)}")
    parser.add_argument("--out", default="", help=f"where latest.{{json,md,png}} go (default {RESULTS.relative_to(REPO)})")
    parser.add_argument("--list", action="store_true", help="print each scenario, its script and the command bench.py would run")
    args = parser.parse_args(argv)
    if args.runs is not None and args.runs < 1:
        parser.error("--runs takes at least 1")
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown scenario(s) {unknown}: choose from {list(BY_NAME)}")
    if extra and not args.out:
        parser.error("arguments after -- need --out DIR: a run with extra arguments must not replace the published results")
    args.names = names
    return args, extra


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args, extra = parse(argv)
    out = Path(args.out).resolve() if args.out else RESULTS
    custom_out = bool(args.out)
    selected = [BY_NAME[n] for n in args.names] if args.names else SCENARIOS
    shown = list(sys.argv[1:] if argv is None else argv)
    command = shlex.join([".venv/bin/python", "benchmarks/bench.py", *shown])

    def runs_for(s: Scenario) -> int | None:
        return args.runs if args.runs is not None else QUICK_RUNS if args.quick else s.runs

    if args.list:
        for s in SCENARIOS:
            state = "" if s.path.exists() else "   (MISSING)"
            print(f"{s.name:<13} benchmarks/{s.script:<16} {shlex.join(script_argv(s, runs_for(s), out, custom_out, extra))}{state}")
        return {"scenarios": [s.name for s in SCENARIOS]}

    missing = [s for s in selected if not s.path.exists()]
    for s in missing:
        print(f"!!!! benchmarks/{s.script} is missing: scenario {s.name} will not run (the others will)", flush=True)
    started = time.monotonic()
    entries = [run_scenario(s, script_argv(s, runs_for(s), out, custom_out, extra), command) for s in selected]

    previous: dict[str, Any] = {}
    if args.names and (out / "latest.json").exists():
        try:
            previous = {e["name"]: e for e in json.loads((out / "latest.json").read_text()).get("scenarios", []) if "name" in e}
        except (json.JSONDecodeError, AttributeError, TypeError):
            previous = {}
    fresh = {e["name"]: e for e in entries}
    combined = [fresh.get(s.name) or previous.get(s.name) for s in SCENARIOS]
    data = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "command": command, "machine": machine(),
        "page_cache": "Page cache warm for every scenario and baseline (never dropped between runs).",
        "seconds": round(time.monotonic() - started, 1), "extra_args": extra,
        "scenarios": [e for e in combined if e is not None],
    }
    write(data, out)
    print(f"\n==== bench: {out / 'latest.json'}, latest.md and latest.png written in {data['seconds']:.0f} s")
    for e in entries:
        print(f"  {e['name']:<13} {e['status']:<8} {e.get('seconds', 0):>7.0f} s  {e.get('error', '')[:200]}")
    failed = [e["name"] for e in entries if e["status"] == "failed"]
    if [e for e in entries if e["status"] == "missing"]:
        print("  missing scenario scripts: " + ", ".join(e["script"] for e in entries if e["status"] == "missing"))
    if failed:
        raise SystemExit(f"bench: scenario(s) failed: {', '.join(failed)} (their entries in latest.json say why)")
    return data


if __name__ == "__main__":
    main()
