"""The shared tier between daemons: `python benchmarks/remote.py [--runs N] [--hits 200]`.

Several daemons share one S3-compatible bucket (cached/remote). This measures what a daemon that
never built an app gains from a bucket another daemon filled, on examples/dashboard (copied, never
edited), with moto's S3 server in this process on 127.0.0.1 (a fresh bucket, fixed test
credentials in a temp file) and daemons each on their own root:

  1. daemon A, the writer (`--remote-signing-key`, a key pair from `cached keygen`), builds the app
     cold: an empty store, npm's cache warm (primed once by an untimed `npm ci`). Reported, not a
     result. Then its writes are flushed: the bucket is listed (bounded) until it holds the action
     record, A's queue gauge (cached_remote_queue_depth) reads 0 and the object count is stable.
  2. per run, daemon B (a fresh root, an empty npm cache, read-only: no signing key, A's public key
     trusted) answers the same app: its first request, which brings the result's blobs from the
     bucket, then --hits requests (B's local hits) interleaved one for one with A's own hits of the
     same app (the order of each pair alternates). p50/p99 of each.
  3. per run, a variant of the app (one line appended to src/App.tsx, a different line for each
     build, so every action misses while the deps key stays A's), timed to its result, the order of
     these rotating per run:
       - daemon C: a fresh root, a fresh empty npm cache, read-only: its dependencies can only come
         from the bucket (or, failing that, from the registry);
       - daemon A as a new app (a new app name: local deps, no warm builder for it, Node starts);
       - daemon A as the same app (local deps and the warm builder of its cold build);
       - `npm ci` + `vite build` in a temp dir with npm's cache warm.

Every request goes through the Python client over gRPC on an open channel; daemon start-up is
outside the timing. Reported beside the figures: each daemon's cache decisions by layer, result and
tier (from the build results), and from its Prometheus metrics (--metrics-listen) the
cached_lookups_total by tier and the cached_remote_* counters (bytes in and out, drops, rejections,
errors). Results: benchmarks/results/remote.{json,md} (or --out). Timings are printed and saved,
never asserted. Run as root (the daemons' sandbox and overlays).

`--self-test` checks only the parts that need no daemon: moto's server, the bucket, `cached keygen`,
the credentials file and a listing of the bucket with them.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, Series, fresh_app, machine, npm_env, run, save_results, start_daemon, timed  # noqa: E402

sys.path.insert(0, str(REPO / "client"))
from cached_client import Client  # noqa: E402
from support import DaemonProcess, app_files, scrape  # noqa: E402

RESULTS = REPO / "benchmarks" / "results"
TENANT, APP = "bench", "dashboard"
ACCESS_KEY, SECRET = "remote-bench-access-key", "remote-bench-secret"  # moto takes any; fixed test values
PREFIX = "team"
SANDBOX_UID = "65534:65534"  # the daemon's npm runs as the sandbox user and must write the cache it is given
NPM_CI = ["npm", "ci"]
VITE_BUILD = ["node", "node_modules/vite/bin/vite.js", "build"]
EDITED = "src/App.tsx"

S_COLD = "A: cold build (empty store, npm cache warm)"
S_B_FIRST = "B: first request (result's blobs from the bucket)"
S_B_HIT = "B: local hit after the first"
S_A_HIT = "A: local hit"
S_C = "C: variant, fresh root + empty npm cache (deps via the bucket)"
S_A_NEW = "A: variant as a new app (local deps, no warm builder)"
S_A_WARM = "A: variant as the same app (local deps, warm builder)"
S_NPM = "npm ci + vite build, warm npm cache"
S_FLOOR = "reference: boto3 GET of every packages/ object from moto, 16 threads"
STEP3 = {"C": S_C, "A-new": S_A_NEW, "A-warm": S_A_WARM, "npm": S_NPM}


def rm(path: Path) -> None:
    if path.exists() or path.is_symlink():
        subprocess.run(["chmod", "-R", "u+w", str(path)], check=False, capture_output=True)
        subprocess.run(["rm", "-rf", str(path)], check=False)


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------- the bucket

class MotoS3:
    """moto's S3 server in this process, on an ephemeral 127.0.0.1 port."""

    def __init__(self) -> None:
        self._server: Any = None
        self.port = 0

    def start(self) -> "MotoS3":
        import logging

        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one INFO line per request otherwise
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            inner = getattr(self._server, "_server", None)
            if inner is not None:
                inner.server_close()  # ThreadedMotoServer.stop leaves the socket open
            self._server = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET,
            config=Config(request_checksum_calculation="when_required", response_checksum_validation="when_required",
                          retries={"max_attempts": 1}, connect_timeout=5, read_timeout=30),
        )


def list_bucket(s3: Any, bucket: str, prefix: str = "", max_pages: int = 1000) -> dict[str, int]:
    """Object name -> size, at most max_pages pages of 1,000 (bounded)."""
    out: dict[str, int] = {}
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    for n, page in enumerate(pages):
        for o in page.get("Contents", []):
            out[o["Key"]] = o["Size"]
        if n + 1 >= max_pages:
            break
    return out


def bucket_summary(objects: dict[str, int]) -> dict[str, dict[str, int]]:
    """Objects and bytes by kind (cas, ac/<tenant>, deps, packages, resolutions)."""
    out: dict[str, dict[str, int]] = {}
    for name, size in objects.items():
        parts = name[len(PREFIX) + 1:].split("/") if name.startswith(PREFIX + "/") else name.split("/")
        kind = "/".join(parts[:2]) if parts[0] == "ac" else parts[0]
        slot = out.setdefault(kind, {"objects": 0, "bytes": 0})
        slot["objects"] += 1
        slot["bytes"] += size
    return dict(sorted(out.items()))


# ---------------------------------------------------------------------------- metrics

def scrape_remote(address: str) -> dict[str, float]:
    """The samples that say what the shared tier did: cached_remote_* (no histogram buckets) and cached_lookups_total."""
    if not address:
        return {}
    try:
        samples = scrape(address)
    except Exception as e:  # noqa: BLE001 - reported, never fatal
        return {"scrape_error": f"{type(e).__name__}: {e}"}  # type: ignore[dict-item]
    out: dict[str, float] = {}
    for (name, labels), value in samples.items():
        if name.endswith("_bucket") or name.endswith("_created"):
            continue
        if name.startswith("cached_remote") or name.startswith("cached_lookups"):
            label = ",".join(f"{k}={v}" for k, v in labels)
            out[f"{name}{{{label}}}" if label else name] = value
    return dict(sorted(out.items()))


def metric(samples: dict[str, float], name: str, **labels: str) -> float | None:
    """The sum of the samples of `name` whose labels include `labels`."""
    total, found = 0.0, False
    for key, value in samples.items():
        if not isinstance(value, (int, float)):
            continue
        base, _, rest = key.partition("{")
        if base != name:
            continue
        have = dict(kv.split("=", 1) for kv in rest.rstrip("}").split(",") if "=" in kv)
        if all(have.get(k) == v for k, v in labels.items()):
            total, found = total + value, True
    return total if found else None


def lookups_by_tier(samples: dict[str, float]) -> dict[str, float]:
    out: dict[str, float] = {}
    for key, value in samples.items():
        base, _, rest = key.partition("{")
        if base != "cached_lookups_total" or not value:
            continue
        have = dict(kv.split("=", 1) for kv in rest.rstrip("}").split(",") if "=" in kv)
        out[f"{have.get('layer', '?')} {have.get('result', '?')} ({have.get('tier') or 'no tier label'})"] = value
    return dict(sorted(out.items()))


def decision_text(result: Any) -> str:
    return "; ".join(f"{d.layer} {d.result} ({d.tier or '?'}){': ' + d.reason if d.reason else ''}" for d in result.decisions)


# ---------------------------------------------------------------------------- the benchmark

class Bench:
    def __init__(self, work: Path, runs: int, hits: int, npm_cache: Path | None, flush_timeout: float) -> None:
        self.work = work
        self.runs = runs
        self.hits = hits
        self.flush_timeout = flush_timeout
        self.npm_cache = npm_cache or work / "npm-cache"
        self.series: dict[str, Series] = {}
        self.decisions: dict[str, Counter[str]] = {}
        self.notes: list[str] = []
        self.detail: dict[str, Any] = {"runs": []}
        self.metrics: dict[str, Any] = {}
        self.s3 = MotoS3()
        self.bucket = f"cached-bench-{uuid.uuid4().hex[:12]}"
        self.daemons: list[DaemonProcess] = []  # every daemon started, stopped in finally
        self.files: dict[str, bytes] = {}

    def s(self, name: str) -> Series:
        return self.series.setdefault(name, Series(name))

    def note(self, text: str) -> None:
        say(f"NOTE: {text}")
        self.notes.append(text)

    def count(self, daemon: str, result: Any) -> None:
        c = self.decisions.setdefault(daemon, Counter())
        for d in result.decisions:
            c[f"{d.layer} {d.result} ({d.tier or '?'})"] += 1

    # ------------------------------------------------------------ the parts without a daemon
    def setup_bucket(self) -> None:
        self.s3.start()
        self.s3.client().create_bucket(Bucket=self.bucket)
        keys = self.work / "keys"
        keys.mkdir(parents=True, exist_ok=True)
        self.credentials = keys / "remote-credentials"
        self.credentials.write_text(f"{ACCESS_KEY}:{SECRET}\n")
        self.credentials.chmod(0o600)
        self.private, self.public = keys / "a.key", keys / "a.pub"
        run([sys.executable, "-m", "cached", "keygen", "--private", str(self.private), "--public", str(self.public)], REPO)
        self.trusted = keys / "trusted-keys"
        self.trusted.write_text(self.public.read_text())
        say(f"moto S3 on {self.s3.endpoint}, bucket {self.bucket}, key pair in {keys}")

    def self_test(self) -> dict[str, Any]:
        """moto, the bucket, keygen and the credentials file, checked with the tier's own settings loader."""
        self.setup_bucket()
        s3 = self.s3.client()
        s3.put_object(Bucket=self.bucket, Key=f"{PREFIX}/self-test", Body=b"ok")
        listed = list_bucket(s3, self.bucket, PREFIX + "/")
        from cached.remote import RemoteSettings

        writer = RemoteSettings.load(self.remote_url(), endpoint=self.s3.endpoint, credentials_file=str(self.credentials),
                                     signing_key_file=str(self.private), trusted_keys_file=str(self.trusted))
        reader = RemoteSettings.load(self.remote_url(), endpoint=self.s3.endpoint, credentials_file=str(self.credentials),
                                     trusted_keys_file=str(self.trusted))
        from cached.remote import RemoteTier

        tier = RemoteTier(writer)
        try:
            tier.put_record("deps", "self-test", b"value")
            flushed = tier.flush(10)
        finally:
            tier.close(10)
        reading = RemoteTier(reader)
        try:
            got = reading.get_record("deps", "self-test")
        finally:
            reading.close(10)
        args = self.remote_args(writer=True)
        return {"endpoint": self.s3.endpoint, "bucket": self.bucket, "listed": sorted(listed), "writer": repr(writer),
                "reader": repr(reader), "writer_flushed": flushed, "reader_got_signed_record": got == b"value",
                "serve_args_writer": args, "public_key": self.public.read_text().strip()}

    def remote_url(self) -> str:
        return f"s3://{self.bucket}/{PREFIX}"

    def remote_args(self, *, writer: bool) -> list[str]:
        args = ["--remote", self.remote_url(), "--remote-endpoint", self.s3.endpoint,
                "--remote-credentials-file", str(self.credentials), "--remote-trusted-keys", str(self.trusted),
                "--metrics-listen", "127.0.0.1:0"]
        return args + (["--remote-signing-key", str(self.private)] if writer else [])

    # ------------------------------------------------------------ daemons
    def start(self, name: str, npm_cache: Path, *, writer: bool) -> DaemonProcess:
        home = self.work / "daemons" / name
        rm(home)
        home.mkdir(parents=True)
        daemon = start_daemon(home / "root", npm_cache, self.remote_args(writer=writer))
        self.daemons.append(daemon)
        return daemon

    def stop(self, daemon: DaemonProcess) -> None:
        try:
            daemon.stop()
        finally:
            if daemon in self.daemons:
                self.daemons.remove(daemon)

    def stop_all(self) -> None:
        for daemon in list(self.daemons):
            try:
                self.stop(daemon)
            except Exception as e:  # noqa: BLE001 - the others still get stopped
                say(f"stopping the daemon on {daemon.root}: {type(e).__name__}: {e}")

    def empty_npm_cache(self, name: str) -> Path:
        cache = self.work / "npm-empty" / name
        rm(cache)
        cache.mkdir(parents=True)
        run(["chown", SANDBOX_UID, str(cache)], self.work)
        return cache

    @staticmethod
    def metrics_address(client: Client) -> str:
        try:
            return client.stats().metrics_address
        except Exception:  # noqa: BLE001 - metrics are a report, not the benchmark
            return ""

    def variant(self, tag: str) -> dict[str, bytes]:
        files = dict(self.files)
        files[EDITED] = self.files[EDITED] + f'\nexport const remoteBench = "{tag}";\n'.encode()
        return files

    # ------------------------------------------------------------ 0 and 1: prime, cold build on A, flush
    def prepare(self) -> None:
        self.setup_bucket()
        self.npm_cache.mkdir(parents=True, exist_ok=True)
        self.files = app_files(fresh_app(self.work / "source"))
        prime = fresh_app(self.work / "prime")
        say("priming npm's cache (npm ci, untimed)")
        run(NPM_CI, prime, npm_env(self.npm_cache))
        rm(prime)
        run(["chown", "-R", SANDBOX_UID, str(self.npm_cache)], self.work)

    def wait_flushed(self, a_metrics: str) -> dict[str, Any]:
        """The bucket holds A's action record, A's write queue is empty and the object count is stable (bounded)."""
        s3 = self.s3.client()
        started = time.monotonic()
        deadline = started + self.flush_timeout
        ac_prefix = f"{PREFIX}/ac/{TENANT}/"
        seen_record = False
        last_count, stable, depth = -1, 0, None
        polls = 0
        while time.monotonic() < deadline:
            polls += 1
            objects = list_bucket(s3, self.bucket, PREFIX + "/")
            seen_record = seen_record or any(k.startswith(ac_prefix) for k in objects)
            depth = metric(scrape_remote(a_metrics), "cached_remote_queue_depth") if a_metrics else None
            stable = stable + 1 if len(objects) == last_count else 0
            last_count = len(objects)
            if seen_record and (depth is None or depth == 0) and stable >= 2:
                break
            time.sleep(1.0)
        waited = time.monotonic() - started
        summary = bucket_summary(list_bucket(s3, self.bucket, PREFIX + "/"))
        out = {"waited_s": round(waited, 1), "polls": polls, "action_record": seen_record, "queue_depth": depth,
               "objects": last_count, "bucket": summary}
        if not seen_record:
            raise SystemExit(f"the bucket has no action record under {ac_prefix} after {self.flush_timeout:.0f}s: is the "
                             f"shared tier wired into `cached serve`? bucket: {json.dumps(summary)}")
        if stable < 2 or (depth not in (None, 0)):
            self.note(f"A's writes did not settle in {self.flush_timeout:.0f}s (queue depth {depth}, objects {last_count}); measuring anyway")
        return out

    # ------------------------------------------------------------ the loop
    def run_all(self) -> None:
        self.prepare()
        a = self.start("a", self.npm_cache, writer=True)
        with Client(a.address) as ca:
            ca.wait_ready(30)
            a_metrics = self.metrics_address(ca)
            if not a_metrics:
                self.note("daemon A exposes no metrics address: the remote counters and queue gauge are not reported")
            say("A: cold build")
            cold = ca.build(files=self.files, app=APP, tenant=TENANT)
            self.count("A", cold)
            self.s(S_COLD).add(cold.client_ms)
            self.detail["cold"] = {"client_ms": round(cold.client_ms, 1), "cache": cold.cache, "decisions": decision_text(cold)}
            if cold.cache != "miss":
                self.note(f"A's cold build was not a miss: {decision_text(cold)}")
            say("waiting for A's writes to reach the bucket")
            self.detail["flush"] = self.wait_flushed(a_metrics)
            say(f"flushed: {json.dumps(self.detail['flush'])}")
            for i in range(self.runs):
                record: dict[str, Any] = {"run": i}
                self.step2(i, ca, record)
                kinds = list(STEP3)
                shift = i % len(kinds)
                for kind in kinds[shift:] + kinds[:shift]:
                    self.step3(kind, i, ca, record)
                self.detail["runs"].append(record)
                say(f"run {i + 1}/{self.runs} done")
            self.metrics["A"] = scrape_remote(a_metrics)
        self.stop(a)
        self.bucket_floor()
        self.detail["bucket_at_end"] = bucket_summary(list_bucket(self.s3.client(), self.bucket, PREFIX + "/"))

    def bucket_floor(self, threads: int = 16) -> None:
        """A reference, not a result: GET every packages/ object with boto3 from this process, `threads` at a time (the
        tier's read_concurrency), through the same in-process moto; what C's package fetch cannot beat here."""
        from concurrent.futures import ThreadPoolExecutor

        s3 = self.s3.client()
        names = sorted(list_bucket(s3, self.bucket, f"{PREFIX}/packages/"))
        if not names:
            return
        def get(name: str) -> int:
            return len(s3.get_object(Bucket=self.bucket, Key=name)["Body"].read())
        got: list[int] = []
        with ThreadPoolExecutor(threads) as pool:
            ms = timed(lambda: got.extend(pool.map(get, names)))
        self.s(S_FLOOR).add(ms)
        self.detail["bucket_floor"] = {"objects": len(names), "bytes": sum(got), "threads": threads, "ms": round(ms, 1),
                                       "mib_per_s": round(sum(got) / 2**20 / (ms / 1000), 1)}

    def step2(self, i: int, ca: Client, record: dict[str, Any]) -> None:
        b = self.start(f"b-{i}", self.empty_npm_cache(f"b-{i}"), writer=False)
        try:
            with Client(b.address) as cb:
                cb.wait_ready(30)
                b_metrics = self.metrics_address(cb)
                first = cb.build(files=self.files, app=APP, tenant=TENANT)
                self.count("B", first)
                self.s(S_B_FIRST).add(first.client_ms)
                action = first.decision("action")
                record["b_first"] = {"client_ms": round(first.client_ms, 1), "cache": first.cache, "decisions": decision_text(first)}
                if first.cache != "hit" or action is None or action.tier != "remote":
                    self.note(f"run {i}: B's first request was expected to be an action hit from the remote tier: {decision_text(first)}")
                b_hit, a_hit = self.s(S_B_HIT), self.s(S_A_HIT)
                for n in range(self.hits):
                    pair = [(cb, b_hit, "B"), (ca, a_hit, "A")]
                    for client, series, who in pair if n % 2 == 0 else pair[::-1]:
                        result = client.build(files=self.files, app=APP, tenant=TENANT)
                        if result.cache != "hit":
                            raise SystemExit(f"run {i}: {who}'s request {n} for the unchanged app missed: {decision_text(result)}")
                        if n == 0 or n == self.hits - 1:
                            self.count(who, result)
                        series.add(result.client_ms)
                last = cb.build(files=self.files, app=APP, tenant=TENANT)
                self.count("B", last)
                record["b_after"] = decision_text(last)
                self.metrics[f"B run {i}"] = scrape_remote(b_metrics)
        finally:
            self.stop(b)
        rm(b.root.parent)

    def step3(self, kind: str, i: int, ca: Client, record: dict[str, Any]) -> None:
        tag = f"{kind} run {i} {uuid.uuid4().hex[:8]}"
        files = self.variant(tag)
        series = self.s(STEP3[kind])
        if kind == "npm":
            app = self.work / "npm-app"
            rm(app)
            app = fresh_app(app)
            (app / EDITED).write_bytes(files[EDITED])
            env = npm_env(self.npm_cache)
            series.add(timed(lambda: (run(NPM_CI, app, env), run(VITE_BUILD, app, env))))
            rm(app)
            record["npm_ms"] = round(series.samples[-1], 1)
            return
        if kind == "C":
            c = self.start(f"c-{i}", self.empty_npm_cache(f"c-{i}"), writer=False)
            try:
                with Client(c.address) as cc:
                    cc.wait_ready(30)
                    c_metrics = self.metrics_address(cc)
                    result = cc.build(files=files, app=APP, tenant=TENANT)
                    self.metrics[f"C run {i}"] = scrape_remote(c_metrics)
            finally:
                self.stop(c)
            rm(c.root.parent)
            who = "C"
        else:
            app = f"variant-{i}-{time.time_ns()}" if kind == "A-new" else APP
            result = ca.build(files=files, app=app, tenant=TENANT)
            who = "A"
        self.count(who, result)
        series.add(result.client_ms)
        deps = result.decision("deps")
        m = result.metrics
        record[kind] = {"client_ms": round(result.client_ms, 1), "cache": result.cache, "decisions": decision_text(result),
                        "deps_ms": round(m.deps_ms, 1) if m else None, "deps_method": m.deps_method if m else "",
                        "packages_reused": m.packages_reused if m else None, "packages_fetched": m.packages_fetched if m else None,
                        "package_bytes_downloaded": m.package_bytes_downloaded if m else None,
                        "phases_ms": {k: round(v, 1) for k, v in result.phases.items()}}
        if result.cache != "miss":
            self.note(f"run {i}: {kind}'s variant build was expected to miss the action: {decision_text(result)}")
        if kind == "C":
            bytes_in = metric(self.metrics.get(f"C run {i}", {}), "cached_remote_bytes_total", direction="in")
            if deps is None or deps.result != "hit" or deps.tier != "remote":
                self.note(f"run {i}: C's deps layer missed locally and was no remote hit ({decision_text(result)}): its tree was laid "
                          f"out from {m.packages_fetched if m else '?'} packages fetched ({m.packages_reused if m else '?'} reused), "
                          f"{mib(bytes_in)} from the bucket, {mib(m.package_bytes_downloaded if m else None)} from the registry, "
                          f"deps {m.deps_ms if m else 0:.0f} ms")
        elif deps is None or deps.result != "hit":
            self.note(f"run {i}: {kind}'s variant build was expected to hit the deps layer locally: {decision_text(result)}")


# ---------------------------------------------------------------------------- the report

def median(bench: Bench, name: str, key: str = "median_ms") -> float | None:
    s = bench.series.get(name)
    return float(s.summary()[key]) if s and s.samples else None


def comparisons(bench: Bench) -> list[dict[str, Any]]:
    rows = []
    def add(what: str, a: str, b: str, key: str = "median_ms") -> None:
        va, vb = median(bench, a, key), median(bench, b, key)
        if va is not None and vb:
            rows.append({"what": what, "a": a, "b": b, "stat": key.replace("_ms", ""), "a_ms": va, "b_ms": vb, "ratio": round(va / vb, 3)})
    add("B's first request vs A's cold build", S_B_FIRST, S_COLD)
    add("B's first request vs A's local hit", S_B_FIRST, S_A_HIT)
    add("B's local hit vs A's local hit (p50)", S_B_HIT, S_A_HIT)
    add("B's local hit vs A's local hit (p99)", S_B_HIT, S_A_HIT, "p99_ms")
    add("new app, known deps: C (bucket) vs A (local, no warm builder)", S_C, S_A_NEW)
    add("new app, known deps: C (bucket) vs A (local, warm builder)", S_C, S_A_WARM)
    add("new app, known deps: C (bucket) vs npm ci + vite build", S_C, S_NPM)
    add("A (local, no warm builder) vs npm ci + vite build", S_A_NEW, S_NPM)
    return rows


def remote_summary(samples: dict[str, float]) -> dict[str, Any]:
    declared = any(k.startswith("cached_remote") for k in samples)  # a labelled counter shows no sample before its first event

    def counter(name: str, **labels: str) -> float | None:
        v = metric(samples, name, **labels)
        return 0.0 if v is None and declared else v

    return {
        "bytes_in": counter("cached_remote_bytes_total", direction="in"),
        "bytes_out": counter("cached_remote_bytes_total", direction="out"),
        "requests": {op: counter("cached_remote_request_seconds_count", op=op)
                     for op in ("head", "get_blob", "get_record", "put_blob", "put_record")},
        "dropped": counter("cached_remote_dropped_total"),
        "rejected": counter("cached_remote_rejected_total"),
        "errors": counter("cached_remote_errors_total"),
        "lookups_by_tier": lookups_by_tier(samples),
    }


def mib(n: float | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:.1f} MiB"


def markdown(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [
        f"Measured {data['when']} on {m['cores']} cores, {m['memory_gib']} GiB, {m['filesystem']}; node {m['node']}, npm {m['npm']}, "
        f"vite {m['vite']}; moto {data['moto']} (S3 in the benchmark's process, 127.0.0.1); {data['runs']} run(s), "
        f"{data['hits']} hit pairs per run, interleaved. Page cache warm throughout.",
        "",
        "| series | samples | median ms | p99 ms | min-max ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for s in data["series"]:
        lines.append(f"| {s['name']} | {s['runs']} | {s['median_ms']:.1f} | {s['p99_ms']:.1f} | {s['min_ms']:.1f}-{s['max_ms']:.1f} |")
    lines += ["", "| comparison | stat | ms | vs ms | ratio |", "| --- | --- | ---: | ---: | ---: |"]
    for c in data["comparisons"]:
        lines.append(f"| {c['what']} | {c['stat']} | {c['a_ms']:.1f} | {c['b_ms']:.1f} | {c['ratio']:.3f}x |")
    lines += ["", "Decisions by layer, result and tier, from the build results (hits: the first and last of each run's loop counted):", ""]
    for who, counts in data["decisions"].items():
        lines.append(f"- {who}: " + ", ".join(f"{k} x{v}" for k, v in sorted(counts.items())))
    lines += ["", "The shared tier from each daemon's Prometheus metrics (B and C: fresh daemons each run):", "",
              "| daemon | remote bytes in | remote bytes out | GETs (blob/record) | PUTs (blob/record) | dropped | rejected | errors | lookups by tier |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
    for who, r in data["remote"].items():
        q = r["requests"]
        def n(v: float | None) -> str:
            return "n/a" if v is None else f"{v:.0f}"
        tiers = "; ".join(f"{k} x{v:.0f}" for k, v in r["lookups_by_tier"].items()) or "n/a"
        lines.append(f"| {who} | {mib(r['bytes_in'])} | {mib(r['bytes_out'])} | {n(q['get_blob'])}/{n(q['get_record'])} | "
                     f"{n(q['put_blob'])}/{n(q['put_record'])} | {n(r['dropped'])} | {n(r['rejected'])} | {n(r['errors'])} | {tiers} |")
    f = data["detail"].get("flush", {})
    fl = data["detail"].get("bucket_floor")
    if fl:
        lines += ["", f"Bucket read floor (moto in this process, Python): {fl['objects']} package objects, {mib(fl['bytes'])}, "
                  f"in {fl['ms']:.0f} ms with {fl['threads']} threads ({fl['mib_per_s']} MiB/s); C's package fetch goes through the same server."]
    lines += ["", f"A's writes flushed in {f.get('waited_s', '?')} s ({f.get('objects', '?')} objects); the bucket at the end: "
              + ", ".join(f"{k} {v['objects']} ({mib(v['bytes'])})" for k, v in data["detail"].get("bucket_at_end", {}).items()), ""]
    for run_ in data["detail"]["runs"]:
        parts = [f"B first: {run_.get('b_first', {}).get('decisions', '?')}"]
        for kind in ("C", "A-new", "A-warm"):
            if kind in run_:
                r = run_[kind]
                fetch = f", fetch phase {r['phases_ms']['fetch']} ms" if "fetch" in r.get("phases_ms", {}) else ""
                parts.append(f"{kind}: {r['decisions']} (deps_ms {r['deps_ms']}{fetch}, {r['deps_method'] or 'method n/a'}, packages "
                             f"{r.get('packages_fetched')} fetched / {r.get('packages_reused')} reused, "
                             f"{mib(r.get('package_bytes_downloaded'))} from the registry)")
        lines.append(f"- run {run_['run']}: " + "; ".join(parts))
    if data["notes"]:
        lines += ["", "Notes:", ""] + [f"- {n}" for n in data["notes"]]
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5, help="runs of steps 2 and 3 (each with fresh daemons B and C)")
    parser.add_argument("--hits", type=int, default=200, help="hit pairs (B, A) per run for the percentiles")
    parser.add_argument("--npm-cache", default="", help="npm download cache to use (default: one in the scratch dir, primed)")
    parser.add_argument("--flush-timeout", type=float, default=300.0, help="seconds to wait for A's writes to reach the bucket")
    parser.add_argument("--out", default="", help=f"where remote.{{json,md}} go (default {RESULTS})")
    parser.add_argument("--work", default="", help="scratch dir (default: a temp dir, removed after)")
    parser.add_argument("--self-test", action="store_true", help="check moto, the bucket, keygen and the credentials; no daemon")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.hits < 1:
        parser.error("--runs and --hits take at least 1")
    work = Path(args.work) if args.work else Path(tempfile.mkdtemp(prefix="cached-bench-remote-"))
    work.mkdir(parents=True, exist_ok=True)
    bench = Bench(work, args.runs, args.hits, Path(args.npm_cache) if args.npm_cache else None, args.flush_timeout)
    try:
        if args.self_test:
            checked = bench.self_test()
            print(json.dumps(checked, indent=2))
            return checked
        bench.run_all()
    finally:
        bench.stop_all()
        bench.s3.stop()
        if not args.work:
            rm(work)
    import moto

    data = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "machine": machine(), "moto": moto.__version__,
        "runs": args.runs, "hits": args.hits,
        "setup": {"tenant": TENANT, "app": APP, "edited": EDITED, "remote": f"s3://<bucket>/{PREFIX}",
                  "npm_ci": " ".join(NPM_CI), "vite_build": " ".join(VITE_BUILD),
                  "a_cold": "empty store, npm cache warm (primed by an untimed npm ci)",
                  "a_variant_new_app": "a new app name: deps local, no warm builder for it",
                  "a_variant_same_app": "the cold build's app: deps local, its warm builder"},
        "series": [s.summary() for s in bench.series.values() if s.samples],
        "comparisons": comparisons(bench),
        "decisions": {k: dict(v) for k, v in bench.decisions.items()},
        "remote": {k: remote_summary(v) for k, v in bench.metrics.items()},
        "metrics": bench.metrics, "detail": bench.detail, "notes": bench.notes,
    }
    save_results("remote", data, markdown(data), args.out)
    return data


if __name__ == "__main__":
    main()
