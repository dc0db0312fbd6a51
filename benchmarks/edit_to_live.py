"""Edit to live: from a Build request with one changed file to the new bytes served by the deployed Worker.

A daemon (local deploy target under the work dir, and a Cloudflare target
pointed at the API stand-in of tests/deploy/cf_api.py, both on 127.0.0.1)
builds and deploys examples/dashboard once. Then, per run, one component
(src/components/dashboard/StatCard.tsx) gets a new visible string, the app is
built with ``deploy: local, production`` through the Python client, and the
Worker's URL (Miniflare/workerd on 127.0.0.1) is polled until the JS entry
that the new index.html points to holds the string. Recorded per run:

- build ms: the request sent to the build's Result event (the daemon's phases too);
- deploy ms: the daemon's ``deploy`` phase (its Phase event), and Result to DeployResult on the client;
- serve ms: the DeployResult to the new bytes served (workerd taking the new bundle, and the poll);
- edit to served ms: the file written to the new bytes served.

``--serve follow`` (the default): one Miniflare server follows the app's
``current`` link and reloads when a deploy moves it (node and Miniflare stay
up, workerd restarts on the same port). ``--serve restart``: Miniflare is
stopped and started again on each new bundle, as ``cached watch --deploy local``
did before, for comparison.

Once, against the Cloudflare API stand-in: requests and bytes sent for a first
deploy, a one-file edit, and a Worker-only change (new vars, same assets: the
version keeps the assets, no upload session). Never asserts on time.

    .venv/bin/python benchmarks/edit_to_live.py [--runs 3] [--smoke] [--serve follow|restart] [--work DIR]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, Series, fresh_app, machine, save_results, start_daemon  # noqa: E402

sys.path.insert(0, str(REPO / "tests" / "deploy"))
import httpx  # noqa: E402
from cf_api import FakeCloudflare  # noqa: E402
from support import app_files  # noqa: E402

from cached.deploy.local import MiniflareServer  # noqa: E402
from cached.deploy.names import script_name  # noqa: E402
from cached_client import Client, DeployOptions  # noqa: E402

TENANT, APP = "bench", "edit-to-live"
COMPONENT = "src/components/dashboard/StatCard.tsx"
ANCHOR = "vs. last month"
RUN_ID = uuid.uuid4().hex[:8]  # a store kept from an earlier run (--work) must not turn the edits into hits
SERVE_DEADLINE_S = 60.0
POLL_S = 0.01


def edit(app: Path, n: int) -> str:
    """A new visible string in the component (rendered on the dashboard page); returns it."""
    path = app / COMPONENT
    original = getattr(edit, "original", None) or path.read_text()
    edit.original = original  # type: ignore[attr-defined]
    marker = f"edit-to-live {RUN_ID} run {n}"
    assert ANCHOR in original, f"{COMPONENT} no longer says {ANCHOR!r}"
    path.write_text(original.replace(ANCHOR, f"{ANCHOR} ({marker})", 1))
    return marker


def served(http: httpx.Client, marker: str) -> bool:
    """Whether the Worker serves the marker: in index.html or in a script/module it points to."""
    index = http.get("/")
    if index.status_code != 200:
        return False
    if marker.encode() in index.content:
        return True
    refs = re.findall(r'(?:src|href)="(/[^"]+\.js)"', index.text)
    for ref in refs:
        r = http.get(ref)
        if r.status_code == 200 and marker.encode() in r.content:
            return True
    return False


def wait_served(url: str, marker: str) -> float:
    """Polls until the marker is served; the perf_counter time it was seen. Raises SystemExit at the deadline."""
    deadline = time.monotonic() + SERVE_DEADLINE_S
    with httpx.Client(base_url=url, trust_env=False, timeout=5.0) as http:
        while time.monotonic() < deadline:
            try:
                if served(http, marker):
                    return time.perf_counter()
            except httpx.HTTPError:
                pass  # workerd is restarting on the same port
            time.sleep(POLL_S)
    raise SystemExit(f"the Worker at {url} did not serve {marker!r} within {SERVE_DEADLINE_S:.0f} s")


class Timeline:
    """When the build's events reached the client."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.result_at = 0.0
        self.deploy_at = 0.0
        self.deploy_phase_ms = 0.0

    def __call__(self, event: Any) -> None:
        kind = event.WhichOneof("event")
        now = time.perf_counter()
        if kind == "result":
            self.result_at = now
        elif kind == "deploy_result":
            self.deploy_at = now
        elif kind == "phase" and event.phase.name == "deploy" and event.phase.elapsed_ms:
            self.deploy_phase_ms = event.phase.elapsed_ms


def cloudflare_case(cf: FakeCloudflare, client: Client, app: Path, name: str, what: str, *, vars_: dict[str, str] | None = None) -> dict[str, Any]:
    """One Build with deploy to Cloudflare production; what it sent the API."""
    files = app_files(app)
    mark = cf.mark()
    result = client.build(files=files, app=APP, tenant=TENANT,
                          deploy=DeployOptions(target="cloudflare", environment="production", vars=vars_ or {}))
    if result.deploy is None or result.deploy.error:
        raise SystemExit(f"cloudflare {what}: the deploy failed: {result.deploy}")
    calls = cf.calls_since(mark)
    version = cf.scripts[name].versions[-1]
    kinds: dict[str, int] = {}
    for c in calls:
        rest = c.path.split(f"/accounts/{cf.account_id}", 1)[-1].replace(f"/{name}", "/{script}")
        kinds[f"{c.method} {rest}"] = kinds.get(f"{c.method} {rest}", 0) + 1
    return {
        "case": what, "build_cache": result.cache, "requests": len(calls), "bytes_sent": sum(c.sent for c in calls),
        "assets_uploaded": len(cf.uploaded_since(mark)), "assets_total": sum(1 for o in result.outputs if o.path not in ("_headers", "_redirects")),
        "upload_sessions": sum(1 for c in calls if c.path.endswith("/assets-upload-session")),
        "keep_assets": bool(version["metadata"].get("keep_assets")), "calls": kinds,
    }


def outputs_of(client: Client, result: Any) -> dict[str, bytes]:
    return {o.path: client.read_blob(TENANT, o, app=APP) for o in result.outputs}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--smoke", action="store_true", help="one run (the Cloudflare cases still run once)")
    parser.add_argument("--serve", choices=("follow", "restart"), default="follow")
    parser.add_argument("--warm-rebuild", choices=("fresh", "session"), default="fresh",
                        help="the daemon's --warm-rebuild (how its warm builder rebuilds an edit)")
    parser.add_argument("--work", default="", help="working directory (default: a temp dir, removed afterwards)")
    parser.add_argument("--out", default=None, help="results directory (default benchmarks/results)")
    args = parser.parse_args(argv)
    runs = 1 if args.smoke else max(1, args.runs)
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="cached-edit-live-"))
    work.mkdir(parents=True, exist_ok=True)
    npm_cache = work / "npm-cache"
    npm_cache.mkdir(exist_ok=True)
    npm_cache.chmod(0o777)
    os.environ.setdefault("NO_PROXY", "127.0.0.1,localhost")
    os.environ.setdefault("no_proxy", "127.0.0.1,localhost")
    cf = FakeCloudflare().start()
    token_file = work / "cf-token"
    token_file.write_text(cf.token + "\n")
    deploy_dir = work / "bundles"
    daemon = None
    server: MiniflareServer | None = None
    name = script_name(TENANT, APP)
    current = deploy_dir / name / "current"
    local = DeployOptions(target="local", environment="production")
    try:
        daemon = start_daemon(work / "root", npm_cache, [
            "--deploy-dir", str(deploy_dir),
            "--cloudflare-api-base", cf.base_url, "--cloudflare-account-id", cf.account_id, "--cloudflare-token-file", str(token_file),
            "--cloudflare-retry-base", "0.05", "--cloudflare-retry-attempts", "3",
            # no background cold rebuild (a shadow check) competing with the next edit for the 2 cores
            "--warm-shadow-share", "0", "--warm-rebuild", args.warm_rebuild,
        ])
        app = fresh_app(work / "app")
        series = {k: Series(k) for k in ("edit_to_served", "build", "deploy_phase", "deploy_client", "serve", "reload_reported")}
        per_run: list[dict[str, Any]] = []
        with Client(daemon.address) as client:
            print("first build and deploy (npm ci in the daemon)...", flush=True)
            first = client.build(files=app_files(app), app=APP, tenant=TENANT, deploy=local)
            if first.deploy is None or first.deploy.error:
                raise SystemExit(f"the first local deploy failed: {first.deploy}")
            edit(app, 0)  # a miss that starts the warm builder (the first build may have been a hit)
            warm = client.build(files=app_files(app), app=APP, tenant=TENANT, deploy=local)
            if warm.deploy is None or warm.deploy.error:
                raise SystemExit(f"the warm-up deploy failed: {warm.deploy}")
            server = MiniflareServer(current if args.serve == "follow" else Path(warm.deploy.bundle_dir), follow=args.serve == "follow")
            url = server.start()
            print(f"serving {url} ({args.serve})", flush=True)
            wait_served(url, f"edit-to-live {RUN_ID} run 0")

            for n in range(1, runs + 1):
                t = Timeline()
                marker = edit(app, n)
                result = client.build(files=app_files(app), app=APP, tenant=TENANT, deploy=local, on_event=t)
                returned = time.perf_counter()
                d = result.deploy
                if d is None or d.error:
                    raise SystemExit(f"run {n}: the local deploy failed: {d}")
                if args.serve == "restart":
                    port = int(server.url.rsplit(":", 1)[1])
                    server.stop()
                    server = MiniflareServer(Path(d.bundle_dir), port=port)
                    url = server.start()
                seen = wait_served(url, marker)
                warm_decision = result.decision("warm")
                row = {
                    "run": n, "cache": result.cache, "warm": f"{warm_decision.result}:{warm_decision.reason}" if warm_decision else "",
                    "edit_to_served_ms": round((seen - t.started) * 1000, 1),
                    "build_ms": round((t.result_at - t.started) * 1000, 1),
                    "deploy_phase_ms": round(t.deploy_phase_ms, 1),
                    "deploy_client_ms": round((t.deploy_at - t.result_at) * 1000, 1),
                    "serve_ms": round((seen - t.deploy_at) * 1000, 1),
                    "call_return_to_served_ms": round((seen - returned) * 1000, 1),
                    "reload_reported_ms": server.last_reload_ms if args.serve == "follow" else None,
                    "deploy_result_to_reloaded_ms": round((server.last_reload_at - t.deploy_at) * 1000, 1) if args.serve == "follow" else None,
                    "reloaded_to_seen_ms": round((seen - server.last_reload_at) * 1000, 1) if args.serve == "follow" else None,
                    "daemon_duration_ms": round(result.duration_ms, 1),
                    "daemon_phases_ms": {k: round(v, 1) for k, v in sorted(result.phases.items())},
                    "sequence": d.sequence,
                }
                per_run.append(row)
                series["edit_to_served"].add(row["edit_to_served_ms"])
                series["build"].add(row["build_ms"])
                series["deploy_phase"].add(row["deploy_phase_ms"])
                series["deploy_client"].add(row["deploy_client_ms"])
                series["serve"].add(row["serve_ms"])
                if row["reload_reported_ms"] is not None:
                    series["reload_reported"].add(float(row["reload_reported_ms"]))
                print(f"run {n}/{runs}: edit to served {row['edit_to_served_ms']:.0f} ms (build {row['build_ms']:.0f}, "
                      f"deploy {row['deploy_phase_ms']:.0f}, serve {row['serve_ms']:.0f}; {row['cache']}, warm {row['warm']})", flush=True)
            server.stop()
            server = None

            print("cloudflare cases against the API stand-in...", flush=True)
            base = client.build(files=app_files(app), app=APP, tenant=TENANT)
            cf.expected_files[name] = outputs_of(client, base)
            cases = [cloudflare_case(cf, client, app, name, "first deploy")]
            marker = edit(app, runs + 1)
            edited = client.build(files=app_files(app), app=APP, tenant=TENANT)
            cf.expected_files[name] = outputs_of(client, edited)
            changed = sorted(set(cf.expected_files[name]) - {o.path for o in base.outputs})
            cases.append(cloudflare_case(cf, client, app, name, "one-file edit"))
            cases[-1]["new_output_paths"] = changed
            cases.append(cloudflare_case(cf, client, app, name, "worker-only change (new vars)", vars_={"EDIT_TO_LIVE": marker}))
            if cf.violations:
                raise SystemExit(f"the Cloudflare API stand-in saw requests against its documented shape: {cf.violations}")
    finally:
        if server is not None:
            server.stop()
        if daemon is not None:
            daemon.stop()
        cf.stop()
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)

    summaries = {k: s.summary() for k, s in series.items() if s.samples}
    total = statistics.median(series["edit_to_served"].samples)
    shares = {k: round(statistics.median(series[k].samples) / total, 3) for k in ("build", "deploy_client", "serve")}
    data: dict[str, Any] = {
        "machine": machine(), "runs": runs, "serve": args.serve, "app": "examples/dashboard", "component": COMPONENT,
        "target_ms": 1500, "series": summaries, "median_shares": shares, "per_run": per_run, "cloudflare": cases,
        "command": "benchmarks/edit_to_live.py " + " ".join(argv if argv is not None else sys.argv[1:]),
    }
    lines = [
        "# Edit to live (examples/dashboard, one component edited)", "",
        f"`.venv/bin/python {data['command'].strip()}` ({runs} runs, local target served by Miniflare/workerd, `--serve {args.serve}`)", "",
        "| series | runs | min ms | median ms | max ms |", "| --- | ---: | ---: | ---: | ---: |",
    ]
    labels = {
        "edit_to_served": "edit to served (file written to new bytes served)", "build": "build (request to Result event)",
        "deploy_phase": "deploy (daemon's deploy phase)", "deploy_client": "deploy (Result to DeployResult, client)",
        "serve": "serve (DeployResult to new bytes served)", "reload_reported": "workerd reload (as Miniflare reports it)",
    }
    for k, m in summaries.items():
        lines.append(f"| {labels[k]} | {m['runs']} | {m['min_ms']:.1f} | {m['median_ms']:.1f} | {m['max_ms']:.1f} |")
    lines += ["", f"Median shares of edit to served: build {shares['build']:.0%}, deploy {shares['deploy_client']:.0%}, "
              f"serve {shares['serve']:.0%} (target: under 1,500 ms).", "",
              "Cloudflare client against the API stand-in (tests/deploy/cf_api.py, 127.0.0.1), one deploy each:", "",
              "| case | requests | bytes sent | assets sent / total | upload sessions | keep_assets | calls |",
              "| --- | ---: | ---: | ---: | ---: | --- | --- |"]
    for c in cases:
        calls = ", ".join(f"{k} x{v}" for k, v in sorted(c["calls"].items()))
        lines.append(f"| {c['case']} | {c['requests']} | {c['bytes_sent']:,} | {c['assets_uploaded']} / {c['assets_total']} | "
                     f"{c['upload_sessions']} | {'yes' if c['keep_assets'] else 'no'} | {calls} |")
    lines.append("")
    save_results("edit_to_live", data, "\n".join(lines), out=args.out)
    return data


if __name__ == "__main__":
    main()
