"""`make demo`: a daemon with its embedded store builds the fixture app cold, then warm.

It starts `cached serve` as its own process on 127.0.0.1 (an ephemeral port),
with the store in `.cached/store` (emptied first, so the first build is
really cold; npm's download cache in `.cached/npm-cache` is kept between
runs), builds a copy of the fixture app twice and prints both results side by
side.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cached.progress import ProgressView
from cached_client import Client

REPO = Path(__file__).resolve().parents[1]


def fixture_dir() -> Path:
    found = os.environ.get("CACHED_FIXTURE") or str(REPO.parent / "shared" / "fixtures" / "generated-app")
    path = Path(found)
    if not (path / "package.json").is_file():
        raise SystemExit(f"demo: no fixture app at {path}; set CACHED_FIXTURE to an app directory")
    return path


def start_daemon(root: Path, npm_cache: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], int]:
    port_file = root.parent / "demo.port"
    port_file.unlink(missing_ok=True)
    log = open(log_path, "wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "cached", "serve", "--root", str(root), "--npm-cache", str(npm_cache),
         "--listen", "127.0.0.1:0", "--port-file", str(port_file)],
        stdout=log, stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 60
    while not port_file.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit(f"demo: the daemon did not start; its log:\n{log_path.read_text()}")
        time.sleep(0.05)
    return proc, int(port_file.read_text())


def main() -> int:
    base = Path(os.environ.get("CACHED_DEMO_DIR", REPO / ".cached"))
    root, npm_cache = base / "store", base / "npm-cache"
    shutil.rmtree(root, ignore_errors=True)
    npm_cache.mkdir(parents=True, exist_ok=True)
    root.parent.mkdir(parents=True, exist_ok=True)
    log_path = base / "daemon.log"
    with tempfile.TemporaryDirectory(prefix="cached-demo-") as tmp:
        app = Path(tmp) / "generated-app"
        shutil.copytree(fixture_dir(), app)
        for p in [app, *app.rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)
        proc, port = start_daemon(root, npm_cache, log_path)
        print(f"daemon on 127.0.0.1:{port}, store {root}, log {log_path}")
        rows = []
        try:
            with Client(f"127.0.0.1:{port}") as client:
                client.wait_ready()
                for label in ("cold", "warm"):
                    before = client.stats().processes_started
                    print(f"\n== {label} build ==")
                    started = time.perf_counter()
                    result = client.build(app, app="generated-app", tenant="demo", on_event=ProgressView(show_logs=False))
                    wall = (time.perf_counter() - started) * 1000
                    children = client.stats().processes_started - before
                    action = next(d for d in result.decisions if d.layer == "action")
                    rows.append((label, f"{action.result} ({action.reason})", f"{wall:,.1f} ms", str(len(result.outputs)), str(children)))
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                proc.kill()
    headers = ("build", "cache decision", "duration", "output files", "node/npm processes")
    widths = [max(len(r[i]) for r in [headers, *rows]) for i in range(len(headers))]
    print()
    for row in [headers, tuple("-" * w for w in widths), *rows]:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths)))
    warm = rows[-1]
    if not warm[1].startswith("hit") or warm[4] != "0":
        print("\ndemo: the warm build was not a pure hit", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
