"""Helpers shared by the tests: the fixture app, a daemon in its own process, tiny apps."""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Collection, Mapping
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def fixture_dir() -> Path:
    """The app the end-to-end tests build: examples/dashboard, or $CACHED_FIXTURE (another app, tried by hand)."""
    path = Path(os.environ.get("CACHED_FIXTURE") or EXAMPLES / "dashboard")
    assert (path / "package.json").is_file(), f"the fixture app is missing at {path}; set CACHED_FIXTURE"
    return path


def copy_fixture(dest: Path) -> Path:
    """A writable copy of the fixture app, without the node_modules and dist of someone who ran npm in it by hand."""
    source = fixture_dir()
    shutil.copytree(source, dest, ignore=lambda d, names: {n for n in names if n in ("node_modules", "dist") and Path(d) == source})
    for p in [dest, *dest.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)
    return dest


def app_files(app_dir: Path) -> dict[str, bytes]:
    from cached_client import collect_files

    return {f.path: f.content for f in collect_files(app_dir)}


def tiny_app(build_js: str, *, extra: dict[str, bytes] | None = None, script: str = "node build.mjs") -> dict[str, bytes]:
    """An app without dependencies whose build is a Node script: npm ci is instant."""
    package = {"name": "tiny", "version": "1.0.0", "private": True, "scripts": {"build": script}}
    lock = {"name": "tiny", "version": "1.0.0", "lockfileVersion": 3, "requires": True, "packages": {"": {"name": "tiny", "version": "1.0.0"}}}
    files = {
        "package.json": json.dumps(package, indent=2).encode(),
        "package-lock.json": json.dumps(lock, indent=2).encode(),
        "build.mjs": build_js.encode(),
    }
    files.update(extra or {})
    return files


WRITE_DIST = """
import { mkdirSync, writeFileSync } from "node:fs";
mkdirSync("dist", { recursive: true });
writeFileSync("dist/index.html", "<h1>" + (process.env.GREETING ?? "hello") + "</h1>\\n");
"""


class DaemonProcess:
    """`cached serve` in its own process on 127.0.0.1, on an ephemeral port."""

    def __init__(self, root: Path, npm_cache: Path, *, env: dict[str, str] | None = None, args: list[str] | None = None) -> None:
        self.root = root
        self.npm_cache = npm_cache
        self.env = env or {}
        self.args = args or []
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.log_path = root.parent / f"{root.name}.log"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 60.0) -> "DaemonProcess":
        port_file = self.root.parent / f"{self.root.name}.port"
        port_file.unlink(missing_ok=True)
        env = {**os.environ, **self.env}
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "cached", "serve", "--root", str(self.root), "--npm-cache", str(self.npm_cache),
             "--listen", "127.0.0.1:0", "--port-file", str(port_file), "--drain-seconds", "20",
             "--warm-shadow-share", "0",  # shadow checks are random: tests that want them ask for 1.0
             *self.args],
            stdout=log, stderr=subprocess.STDOUT, env=env,
        )
        deadline = time.monotonic() + timeout
        while not port_file.exists():
            if self.proc.poll() is not None:
                raise RuntimeError(f"daemon exited with {self.proc.returncode}:\n{self.log()}")
            if time.monotonic() > deadline:
                self.proc.kill()
                raise RuntimeError(f"daemon did not start in {timeout}s:\n{self.log()}")
            time.sleep(0.05)
        self.port = int(port_file.read_text())
        return self

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 60.0) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def wait_exit(self, timeout: float = 120.0) -> int:
        assert self.proc is not None
        return self.proc.wait(timeout=timeout)


DEV_TOOL_BIN = """#!/usr/bin/env node
// A build tool that comes from devDependencies only: `devtool` in the build script.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
const own = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8"));
mkdirSync("dist", { recursive: true });
writeFileSync("dist/index.html", `devtool ${own.version} NODE_ENV=${process.env.NODE_ENV ?? ""} dev=${existsSync("node_modules/devtool/package.json")}\\n`);
"""


def npm_tarball(
    name: str, version: str, files: Mapping[str, str | bytes], package: Mapping[str, object] | None = None, *, executable: Collection[str] = ()
) -> bytes:
    """A package tarball as npm packs it (``package/`` prefix), byte-for-byte reproducible.

    ``package`` adds to the package.json's name and version; the paths in
    ``executable`` (a bin) get mode 755, the others 644."""
    manifest = {"name": name, "version": version, **(package or {})}
    members = {"package.json": json.dumps(manifest).encode(), **{p: d.encode() if isinstance(d, str) else d for p, d in files.items()}}
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        for path, data in members.items():
            info = tarfile.TarInfo(f"package/{path}")
            info.size, info.mode, info.mtime = len(data), 0o755 if path in executable else 0o644, 499162500
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def integrity(data: bytes) -> str:
    """A lockfile's ``integrity`` of a tarball."""
    return "sha512-" + base64.b64encode(hashlib.sha512(data).digest()).decode()


def dev_tool_tarball(version: str = "1.0.0") -> bytes:
    """The devtool package: its bin and a package.json naming it."""
    bin_path = "bin/devtool.js"
    return npm_tarball("devtool", version, {bin_path: DEV_TOOL_BIN}, {"type": "module", "bin": {"devtool": bin_path}}, executable={bin_path})


def dev_tool_app(*, name: str = "devtool-app", extra: dict[str, bytes] | None = None) -> dict[str, bytes]:
    """An app whose build tool is a devDependency, installed from a tarball in the app (no registry).

    The tarball sits under ``patches/``, one of the few paths an install sees
    (the deps key is made of them), and the lockfile points at it with
    ``file:``, so ``npm ci`` needs no network.
    """
    tarball = dev_tool_tarball()
    spec = "file:patches/devtool-1.0.0.tgz"
    package = {"name": name, "version": "1.0.0", "private": True, "scripts": {"build": "devtool build"}, "devDependencies": {"devtool": spec}}
    lock = {
        "name": name, "version": "1.0.0", "lockfileVersion": 3, "requires": True,
        "packages": {
            "": {"name": name, "version": "1.0.0", "devDependencies": {"devtool": spec}},
            "node_modules/devtool": {"version": "1.0.0", "resolved": spec, "integrity": integrity(tarball), "dev": True, "bin": {"devtool": "bin/devtool.js"}},
        },
    }
    files = {
        "package.json": json.dumps(package, indent=2).encode(),
        "package-lock.json": json.dumps(lock, indent=2).encode(),
        "patches/devtool-1.0.0.tgz": tarball,
        "index.html": b"<p>app</p>\n",
    }
    files.update(extra or {})
    return files


def scrape(address: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the metrics endpoint: (name, sorted labels) -> value."""
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    text = urllib.request.urlopen(f"http://{address}/metrics", timeout=30).read().decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text) for s in family.samples
    }


def sample(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)
