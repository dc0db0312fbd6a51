"""`cached gc` and `purge` say what they could not free yet, why, and when it can be freed."""

from __future__ import annotations

import json
import time

from cached_client import Client
from operate_support import run_cli
from support import DaemonProcess, tiny_app

LARGE = """
import { mkdirSync, writeFileSync } from "node:fs";
mkdirSync("dist", { recursive: true });
let text = "";
for (let i = 0; text.length < 1500000; i++) text += i.toString(36) + "\\n";
writeFileSync("dist/data.txt", text);
"""


def test_gc_to_1mb_after_a_build_and_a_hit_reports_the_leased_bytes_and_when_they_free(make_daemon) -> None:  # type: ignore[no-untyped-def]
    daemon: DaemonProcess = make_daemon(args=["--lease-seconds", "600", "--gc-grace-seconds", "60"])
    files = tiny_app(LARGE)
    with Client(daemon.address) as client:
        assert client.build(files=files, app="big", tenant="held").cache == "miss"
        before_hit = time.time()
        hit = client.build(files=files, app="big", tenant="held")
        assert hit.cache == "hit"  # leases what it served for 600 s
    output = next(o for o in hit.outputs if o.path == "data.txt")

    done = run_cli("gc", "--max-size", "1MB", "--json", "--server", daemon.address)
    after = time.time()
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["bytes_after"] > 1_000_000, report
    held = {h["reason"]: h for h in report["held"]}
    leased = held["leased"]
    assert leased["bytes"] >= output.size and leased["blobs"] >= 1
    assert (before_hit + 600) * 1000 - 1000 <= leased["free_from_unix_ms"] <= leased["free_all_unix_ms"] <= (after + 600) * 1000
    assert leased["detail"].startswith("leased until ")
    assert report["bytes_held"] == sum(h["bytes"] for h in report["held"]) >= report["bytes_after"] - 100_000

    text = run_cli("gc", "--max-size", "1MB", "--server", daemon.address)
    assert text.returncode == 0, text.stderr
    assert "still over 1" in text.stdout and "not freed yet" in text.stdout, text.stdout
    assert "leased until " + time.strftime("%Y-%m-%d", time.gmtime(leased["free_all_unix_ms"] / 1000)) in text.stdout

    purged = json.loads(run_cli("purge", "--all", "--json", "--server", daemon.address).stdout)
    assert purged["bytes_held"] >= output.size and any(h["reason"] == "leased" for h in purged["held"]), purged
