"""The full hit alone: one cold build of the fixture app, then N hits on an open channel.

`benchmarks/run.py` measures the same hit among every other scenario and its
baselines (minutes); this is the quick look at the hit path: it prints p50,
p99 and max over gRPC, and the daemon's own share (its `duration_ms`).
Figures only, never assertions.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import Series, fresh_app, start_daemon  # noqa: E402

from cached_client import Client  # noqa: E402
from support import app_files  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--hits", type=int, default=1000, help="requests for the percentiles")
    parser.add_argument("--npm-cache", default="", help="npm download cache to use (default: one in the scratch dir)")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cached-hit-bench-"))
    npm_cache = Path(args.npm_cache) if args.npm_cache else work / "npm-cache"
    npm_cache.mkdir(parents=True, exist_ok=True)
    npm_cache.chmod(0o777)  # the daemon's npm runs as the sandbox user
    try:
        files = app_files(fresh_app(work / "source"))
        daemon = start_daemon(work / "root", npm_cache)
        try:
            with Client(daemon.address) as client:
                client.wait_ready()
                first = client.build(files=files, app="bench", tenant="bench")
                assert first.cache == "miss", "a fresh store must miss"
                hit, server = Series("full hit (gRPC, open channel)"), Series("daemon's share (duration_ms)")
                for _ in range(args.hits):
                    result = client.build(files=files, app="bench", tenant="bench")
                    assert result.cache == "hit", "an unchanged app must hit"
                    hit.add(result.client_ms)
                    server.add(result.duration_ms)
        finally:
            daemon.stop()
    finally:
        os.system(f"chmod -R u+w '{work}' 2>/dev/null")
        shutil.rmtree(work, ignore_errors=True)
    print(f"cold build {first.duration_ms:.0f} ms, then {args.hits} hits of {len(files)} files ({sum(map(len, files.values())) / 1e3:.0f} KB inline)")
    for s in (hit, server):
        summary = s.summary()
        print(f"{s.name}: p50 {statistics.median(s.samples):.2f} ms, p99 {summary['p99_ms']} ms, max {summary['max_ms']} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
