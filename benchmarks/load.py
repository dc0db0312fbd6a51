"""Full hits under load, from separate client processes: the daemon's figure, not the client's GIL.

`benchmarks/run.py` drives its "8 concurrent clients" from threads of one
Python process, so its latencies include that process's own GIL contention
and the Python client building a ~300 KB request for every call. Here one
daemon builds examples/dashboard once (cold), then every request is a full
hit sent by its own process: each client process serializes the Build
request once (exactly the bytes and metadata ``cached_client.Client.build``
sends) and sends those bytes as they are on a gRPC method with identity
serializers, reading the answer's events as raw bytes. What a client costs
is then a copy and a few receives, and what the figures measure is the
daemon and the transport.

Each round runs the process counts of the sweep in turn (interleaved, so a
busy moment of the machine lands on every count): N=1 is "alone", N=8 the
"8 concurrent clients" figure, and every N gives hits per second while all N
processes run (saturation). Each client process warms its channel, waits
for the parent's go, sends its requests back to back, then reports its
latencies in a JSON file; the parent checks every answer was a hit.

Figures only, never assertions on time. Results: benchmarks/results/load.{json,md}.
``--baseline-src DIR`` runs a second daemon from another checkout of the
code (e.g. ``git worktree add /tmp/base HEAD~1``) interleaved with this one,
for a before/after on one noisy machine.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BUILD_METHOD = "/cached.v1.Builder/Build"
SWEEP = (1, 2, 4, 8, 16)
WARMUP = 3  # requests each client sends before the go: its channel is connected and the daemon's paths are warm


# ---------------------------------------------------------------- client process
def client_process(spec_path: str, out_path: str) -> int:
    """One client: grpc alone is imported (no protobuf, no cached code), the request is bytes read from a file."""
    import grpc

    spec = json.loads(Path(spec_path).read_text())
    request = base64.b64decode(spec["request"])
    metadata = [tuple(m) for m in spec["metadata"]] or None
    hits = int(spec["hits"])
    # grpc.experimental.ChannelOptions.SingleThreadedUnaryStream: the calling thread reads its answer
    # (no channel thread hands each event over), a leaner client
    options = [*(tuple(o) for o in spec["options"]), ("SingleThreadedUnaryStream", 1)]
    channel = grpc.insecure_channel(spec["address"], options=options)
    build = channel.unary_stream(BUILD_METHOD, request_serializer=None, response_deserializer=None)
    grpc.channel_ready_future(channel).result(timeout=30)

    def one() -> tuple[float, float, bytes, int]:
        started = time.perf_counter()
        last, count = b"", 0
        for message in build(request, metadata=metadata):
            last, count = message, count + 1
        return started, time.perf_counter(), last, count

    for _ in range(WARMUP):
        one()
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    if sys.stdin.readline().strip() != "go":
        return 1
    times: list[tuple[float, float]] = []
    finals: list[bytes] = []
    counts: list[int] = []
    for _ in range(hits):
        started, ended, last, count = one()
        times.append((started, ended))
        finals.append(last)
        counts.append(count)
    sys.stdout.write("done\n")
    sys.stdout.flush()
    channel.close()
    # after the timed loop: the last event of each answer (its Result), for the parent to check
    with open(out_path + ".finals", "wb") as f:
        for message in finals:
            f.write(struct.pack("<I", len(message)))
            f.write(message)
    Path(out_path).write_text(json.dumps({"times": times, "events": counts}))
    return 0


# ---------------------------------------------------------------- parent
def request_spec(address: str, files: dict[str, bytes], tenant: str, app: str, hits: int) -> dict[str, Any]:
    """The request ``Client.build(files=..., app=, tenant=)`` sends, serialized once, with its metadata and channel options."""
    from cached_client import Client
    from cached_client import client as client_module
    from cached_client.routing import route_key

    with Client(address) as client:
        collected = client_module._files(None, files)
        big = {f.path for f in collected if len(f.content) > client_module.INLINE_LIMIT}
        assert not big, "the fixture's files all travel inline (no upload before a hit)"
        request = client_module._request(collected, big, tenant=tenant, app=app, mode="", env=None, script="", force=False,
                                         timeout_s=0.0, deploy=None, function=client.digest_function)
        metadata = client._metadata(route_key(tenant, app)) or []
        options = client._options
    return {"address": address, "request": base64.b64encode(request.SerializeToString()).decode(), "metadata": metadata,
            "options": options, "hits": hits, "request_bytes": request.ByteSize()}


def cpu_seconds(pid: int) -> float:
    """User plus system CPU of a process so far (/proc/PID/stat), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_clients(spec: dict[str, Any], n: int, work: Path, daemon_pid: int) -> dict[str, Any]:
    """N client processes against one daemon; their latencies, hits/s while all ran, the daemon's CPU per hit."""
    from cached.v1 import cached_pb2

    spec_path = work / "spec.json"
    spec_path.write_text(json.dumps(spec))
    outs = [work / f"client-{n}-{i}.json" for i in range(n)]
    procs = [subprocess.Popen([sys.executable, __file__, "--client", str(spec_path), str(out)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for out in outs]
    try:
        for p in procs:
            if (p.stdout.readline().strip() if p.stdout else "") != "ready":  # type: ignore[union-attr]
                raise SystemExit(f"a client process did not get ready (exit {p.wait()})")
        cpu_before = cpu_seconds(daemon_pid)
        clients_before = [cpu_seconds(p.pid) for p in procs]
        for p in procs:
            assert p.stdin is not None
            p.stdin.write("go\n")
            p.stdin.flush()
        for p in procs:
            assert p.stdout is not None
            if p.stdout.readline().strip() != "done":  # the timed loop is over; the process reports its CPU and then exits
                raise SystemExit(f"a client process failed (exit {p.wait()})")
        cpu_after = cpu_seconds(daemon_pid)
        clients_cpu = sum(cpu_seconds(p.pid) for p in procs) - sum(clients_before)
        for p in procs:
            if p.wait(timeout=600) != 0:
                raise SystemExit(f"a client process failed (exit {p.returncode})")
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    latencies: list[float] = []
    starts, ends, all_ends = [], [], []
    for out in outs:
        report = json.loads(out.read_text())
        times = report["times"]
        latencies += [(e - s) * 1000 for s, e in times]
        starts.append(times[0][0])
        ends.append(times[-1][1])
        all_ends += [e for _, e in times]
        data = Path(str(out) + ".finals").read_bytes()
        offset = 0
        while offset < len(data):
            (size,) = struct.unpack_from("<I", data, offset)
            event = cached_pb2.BuildEvent.FromString(data[offset + 4:offset + 4 + size])
            offset += 4 + size
            if not event.HasField("result") or event.result.cache != "hit":
                raise SystemExit(f"a request was not answered by a hit: {event}")
        out.unlink()
        Path(str(out) + ".finals").unlink()
    # saturation: the requests that ended while every process was still sending, over that window
    window_start, window_end = max(starts), min(ends)
    inside = sum(1 for e in all_ends if window_start < e <= window_end)
    if window_end - window_start <= 0 or inside == 0:
        window_start, window_end, inside = min(starts), max(ends), len(all_ends)
    total = len(latencies)
    return {
        "latencies_ms": latencies, "hits_per_s": inside / (window_end - window_start),
        "daemon_cpu_ms_per_hit": (cpu_after - cpu_before) * 1000 / total, "client_cpu_ms_per_hit": clients_cpu * 1000 / total,
    }


def pct(samples: list[float], p: float) -> float:
    s = sorted(samples)
    return s[min(len(s) - 1, int(round(p * (len(s) - 1))))]


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3, help="rounds of the sweep (each N once per round)")
    parser.add_argument("--hits", type=int, default=200, help="requests per client process in each measurement")
    parser.add_argument("--smoke", action="store_true", help="one tiny round (N=1, 2, 8; 5 hits each) to keep the harness working")
    parser.add_argument("--sweep", default=",".join(map(str, SWEEP)), help="client process counts, comma-separated (1 and 8 give the alone and 8-way figures)")
    parser.add_argument("--out", default="", help="where results go (default benchmarks/results; with --smoke, the scratch dir)")
    parser.add_argument("--npm-cache", default="", help="npm download cache to use (default: one in the scratch dir)")
    parser.add_argument("--baseline-src", default="", help="a checkout of other code whose daemon runs interleaved with this one")
    args = parser.parse_args(argv)

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from common import fresh_app, machine, save_results, start_daemon
    from support import app_files

    runs, hits = (1, 5) if args.smoke else (args.runs, args.hits)
    sweep = (1, 2, 8) if args.smoke else tuple(int(n) for n in args.sweep.split(","))
    work = Path(tempfile.mkdtemp(prefix="cached-load-bench-"))
    npm_cache = Path(args.npm_cache) if args.npm_cache else work / "npm-cache"
    npm_cache.mkdir(parents=True, exist_ok=True)
    npm_cache.chmod(0o777)  # the daemon's npm runs as the sandbox user
    daemons: dict[str, Any] = {}
    measured = False  # the scratch dir goes after the results are saved (with --smoke they are saved in it)
    try:
        files = app_files(fresh_app(work / "source"))
        labels = ["daemon"] + (["baseline"] if args.baseline_src else [])
        specs: dict[str, dict[str, Any]] = {}
        for label in labels:
            daemons[label] = start_daemon_from(start_daemon, work / f"root-{label}", npm_cache,
                                               args.baseline_src if label == "baseline" else "")
            specs[label] = cold_build(daemons[label].address, files, hits)
        samples: dict[tuple[str, int], list[float]] = {}
        rates: dict[tuple[str, int], list[float]] = {}
        cpu: dict[tuple[str, int], list[float]] = {}
        client_cpu: dict[tuple[str, int], list[float]] = {}
        for r in range(runs):
            for n in sweep:
                for label in (labels if r % 2 == 0 else labels[::-1]):
                    m = run_clients(specs[label], n, work, daemons[label].proc.pid)
                    samples.setdefault((label, n), []).extend(m["latencies_ms"])
                    rates.setdefault((label, n), []).append(m["hits_per_s"])
                    cpu.setdefault((label, n), []).append(m["daemon_cpu_ms_per_hit"])
                    client_cpu.setdefault((label, n), []).append(m["client_cpu_ms_per_hit"])
                    print(f"round {r + 1}/{runs} {label} N={n}: p50 {statistics.median(m['latencies_ms']):.2f} ms, "
                          f"p99 {pct(m['latencies_ms'], 0.99):.2f} ms, {m['hits_per_s']:.0f} hits/s, "
                          f"daemon CPU {m['daemon_cpu_ms_per_hit']:.2f} ms/hit, clients' {m['client_cpu_ms_per_hit']:.2f}", flush=True)
        measured = True
    finally:
        for d in daemons.values():
            d.stop()
        if not measured:
            remove(work)

    rows = []
    for (label, n), lat in samples.items():
        rows.append({
            "daemon": label, "processes": n, "requests": len(lat), "min_ms": round(min(lat), 3),
            "p50_ms": round(statistics.median(lat), 3), "p99_ms": round(pct(lat, 0.99), 3), "max_ms": round(max(lat), 3),
            "hits_per_s_median": round(statistics.median(rates[(label, n)]), 1), "hits_per_s_runs": [round(x, 1) for x in rates[(label, n)]],
            "daemon_cpu_ms_per_hit": round(statistics.median(cpu[(label, n)]), 3),
            "client_cpu_ms_per_hit": round(statistics.median(client_cpu[(label, n)]), 3),
        })
    rows.sort(key=lambda row: (row["daemon"], row["processes"]))
    data: dict[str, Any] = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "smoke": args.smoke, "machine": machine(),
        "runs": runs, "hits_per_process": hits, "sweep": list(sweep), "request_bytes": specs["daemon"]["request_bytes"],
        "files": len(files), "commit": commit(Path(__file__).resolve().parents[1]),
        "baseline_commit": commit(Path(args.baseline_src)) if args.baseline_src else "", "rows": rows,
    }
    try:
        save_results("load", data, markdown(data), out=(args.out or str(work / "results")) if args.smoke else (args.out or None))
    finally:
        remove(work)
    return data


def remove(work: Path) -> None:
    import shutil

    os.system(f"chmod -R u+w '{work}' 2>/dev/null")
    shutil.rmtree(work, ignore_errors=True)


def commit(src: Path) -> str:
    """The checkout's commit (with ``+changes`` when its tree differs from it), so a result says which code it measured."""
    def git(*argv: str) -> str:
        return subprocess.run(["git", "-C", str(src), *argv], capture_output=True, text=True).stdout.strip()
    head = git("rev-parse", "--short", "HEAD")
    return head + ("+changes" if git("status", "--porcelain", "--untracked-files=no", "--", "cached", "client") else "")


def start_daemon_from(start: Any, root: Path, npm_cache: Path, src: str) -> Any:
    """A daemon of this checkout, or of ``src`` (its code first on the path: ``-m cached`` looks in the working dir first)."""
    if not src:
        return start(root, npm_cache)
    from support import DaemonProcess

    daemon = DaemonProcess(root, npm_cache, env={"PYTHONPATH": str(Path(src).resolve())})
    here = os.getcwd()
    os.chdir(src)
    try:
        return daemon.start()
    finally:
        os.chdir(here)


def cold_build(address: str, files: dict[str, bytes], hits: int) -> dict[str, Any]:
    """The one cold build (a miss) that makes every later request a full hit; then the request the clients send."""
    from cached_client import Client

    with Client(address) as client:
        client.wait_ready(timeout=60)
        first = client.build(files=files, app="bench", tenant="bench")
        if first.cache != "miss":
            raise SystemExit("a fresh store must miss")
        if client.build(files=files, app="bench", tenant="bench").cache != "hit":
            raise SystemExit("an unchanged app must hit")
    return request_spec(address, files, "bench", "bench", hits)


def markdown(data: dict[str, Any]) -> str:
    m = data["machine"]
    lines = [
        f"Measured {data['when']} on {m['cores']} cores, {m['memory_gib']} GiB; Python {m['python']}. "
        f"Full hits of examples/dashboard ({data['files']} files, {data['request_bytes'] / 1e3:.0f} KB request), "
        f"each client its own process sending pre-serialized bytes; {data['runs']} rounds of N = {', '.join(map(str, data['sweep']))}, "
        f"{data['hits_per_process']} requests per process per round. daemon: {data['commit']}"
        + (f"; baseline: {data['baseline_commit']}, interleaved." if data["baseline_commit"] else "."),
        "",
        "| daemon | client processes | requests | p50 ms | p99 ms | max ms | hits/s (median of rounds) | daemon CPU ms/hit | clients' CPU ms/hit |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in data["rows"]:
        lines.append(f"| {r['daemon']} | {r['processes']} | {r['requests']} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | {r['max_ms']:.2f} | "
                     f"{r['hits_per_s_median']:.0f} | {r['daemon_cpu_ms_per_hit']:.2f} | {r['client_cpu_ms_per_hit']:.2f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--client":
        sys.exit(client_process(sys.argv[2], sys.argv[3]))
    sys.exit(0 if main() else 1)
