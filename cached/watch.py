"""Watching an app directory: rebuild on every save, through the daemon, and show what it decided.

A watchfiles watcher (debounced; editor temp files, node_modules, .git and the
output dir ignored) triggers a build of the whole directory. Every file goes
by digest: the daemon is asked which blobs it lacks (``FindMissingBlobs``) and
only those travel (``UploadBlobs``), so after the first build a save sends the
changed files and nothing else. Digests are cached by (size, mtime), so only
changed files are read again. With ``--deploy local`` each successful build is
deployed to the daemon's local target and served by Miniflare on 127.0.0.1
(the running server takes the newest bundle: only workerd restarts, on the same
port; Miniflare is started again only if that fails). Ctrl-C stops it cleanly.

The mechanism behind `cached watch` (``cached/cli/watch.py`` is the command):
it takes a ``WatchSettings`` and never reads the command line itself.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SKIPPED_DIRS = {"node_modules", ".git", ".cached", "__pycache__"}
# Editors' swap, backup and atomic-save files (vim, emacs, JetBrains, Kate, VS Code...).
TEMP_PATTERNS = [re.compile(p) for p in (
    r"\.sw[a-p]$", r"\.sw[x-z]$", r"~$", r"^\.#", r"^#.*#$", r"^4913$", r"\.tmp$", r"\.temp$", r"___jb_(tmp|old)___$",
    r"\.kate-swp$", r"^\.DS_Store$", r"\.crswap$", r"\.orig$", r"\.rej$", r"^flycheck_",
)]


def is_temp_file(name: str) -> bool:
    return any(p.search(name) for p in TEMP_PATTERNS)


def is_ignored(rel: str, output_dir: str = "dist") -> bool:
    """True for paths a save must not trigger on and a build must not carry."""
    parts = rel.split("/")
    if any(p in SKIPPED_DIRS for p in parts[:-1]) or parts[0] == output_dir:
        return True
    return is_temp_file(parts[-1]) or parts[-1] in SKIPPED_DIRS


@dataclass
class _Entry:
    size: int
    mtime_ns: int
    content: bytes
    executable: bool


class AppSnapshot:
    """The app's files as a build sends them, re-reading only files whose size or mtime changed."""

    def __init__(self, root: Path, output_dir: str = "dist") -> None:
        self.root = root
        self.output_dir = output_dir
        self._cache: dict[str, _Entry] = {}

    def files(self) -> dict[str, _Entry]:
        found: dict[str, _Entry] = {}
        for dirpath, dirnames, filenames in os.walk(self.root):
            rel_dir = os.path.relpath(dirpath, self.root)
            rel_dir = "" if rel_dir == "." else rel_dir.replace(os.sep, "/") + "/"
            dirnames[:] = sorted(d for d in dirnames if not is_ignored(rel_dir + d + "/x", self.output_dir)
                                 and not os.path.islink(os.path.join(dirpath, d)))
            for name in sorted(filenames):
                rel = rel_dir + name
                if is_ignored(rel, self.output_dir):
                    continue
                full = os.path.join(dirpath, name)
                try:
                    st = os.lstat(full)
                except FileNotFoundError:
                    continue
                if not (st.st_mode & 0o170000 == 0o100000):
                    continue  # symlinks and special files are not sources (as collect_files)
                old = self._cache.get(rel)
                if old is not None and old.size == st.st_size and old.mtime_ns == st.st_mtime_ns:
                    found[rel] = old
                    continue
                try:
                    with open(full, "rb") as f:
                        content = f.read()
                except FileNotFoundError:
                    continue
                found[rel] = _Entry(st.st_size, st.st_mtime_ns, content, bool(st.st_mode & 0o100))
        self._cache = found
        return found


@dataclass
class WatchSettings:
    """What to build on every save, through which daemon, and how to report it."""

    app_dir: Path
    tenant: str
    app: str
    server: str
    token: str | None = None
    mode: str = ""
    script: str = ""
    env: dict[str, str] = field(default_factory=dict)
    deploy_local: bool = False  # deploy each build to the daemon's local target and serve it with Miniflare
    port: int = 0  # Miniflare's port with deploy_local (0: any free one, kept across restarts)
    debounce_ms: int = 150
    max_builds: int = 0  # stop after this many builds, failed ones included (0: until stopped)
    json: bool = False  # one JSON object a line instead of text


class Watcher:
    def __init__(self, settings: WatchSettings, out: Callable[[str], None] = print) -> None:
        self.settings = settings
        self.root = Path(settings.app_dir).resolve()
        self.snapshot = AppSnapshot(self.root)
        self.out = out
        self.stop_event = threading.Event()
        self.builds = 0
        self.failures = 0
        self.miniflare: Any = None
        self.serving = ""

    def request(self, client: Any) -> Any:
        from cached.v1 import cached_pb2
        from cached_client.client import digest_of

        files = self.snapshot.files()
        digests = {p: digest_of(e.content, client.digest_function) for p, e in files.items()}
        missing = {d.hash for d in client.find_missing(self.settings.tenant, list(digests.values()), app=self.settings.app)} if digests else set()
        upload = {digests[p].hash: files[p].content for p in files if digests[p].hash in missing}
        if upload:
            client.upload_missing(self.settings.tenant, list(upload.values()), app=self.settings.app)
        request = cached_pb2.BuildRequest(
            tenant=self.settings.tenant, app=self.settings.app, mode=self.settings.mode, build_script=self.settings.script,
            env=self.settings.env,
        )
        if self.settings.deploy_local:
            request.deploy.CopyFrom(cached_pb2.DeployOptions(target="local", environment=cached_pb2.PRODUCTION))
        for path, entry in sorted(files.items()):
            request.files.append(cached_pb2.File(path=path, executable=entry.executable, digest=digests[path]))
        self._sent = (len(upload), sum(len(c) for c in upload.values()), len(files))
        return request

    def build_once(self, client: Any, why: str) -> bool:
        from cached_client import CachedError

        started = time.perf_counter()
        try:
            result = client.build_request(self.request(client))
        except CachedError as e:
            self.failures += 1
            self._say({"event": "failed", "why": why, "code": e.code.name, "error": e.details.splitlines()[0] if e.details else ""},
                      f"{_clock()} {why}: build failed ({e.code.name}): {e.details.strip()[:2000]}")
            return False
        self.builds += 1
        total_ms = (time.perf_counter() - started) * 1000
        decisions = {d.layer: d for d in result.decisions}
        warm = decisions.get("warm")
        warm_text = f", warm {warm.result} ({warm.reason})" if warm is not None else ""
        reason = f" ({result.reason})" if result.reason else ""
        uploaded, up_bytes, count = self._sent
        self._say(
            {"event": "built", "why": why, "cache": result.cache, "reason": result.reason,
             "warm": f"{warm.result}:{warm.reason}" if warm is not None else "", "duration_ms": round(result.duration_ms, 1),
             "total_ms": round(total_ms, 1), "uploaded": uploaded, "files": count, "outputs": len(result.outputs),
             "action_key": result.action_key},
            f"{_clock()} {why}: {result.cache}{reason}{warm_text}; {len(result.outputs)} files in {result.duration_ms:.0f} ms "
            f"({total_ms:.0f} ms in all; sent {uploaded} of {count} files, {up_bytes} bytes)",
        )
        deploy = getattr(result, "deploy", None)
        if self.settings.deploy_local and deploy is not None:
            self._serve(deploy)
        return True

    def _serve(self, deploy: Any) -> None:
        from cached.deploy.errors import DeployError
        from cached.deploy.local import MiniflareServer

        bundle = getattr(deploy, "bundle_dir", "")
        error = getattr(deploy, "error", "")
        if error or not bundle:
            self._say({"event": "deploy_failed", "error": error}, f"{_clock()} deploy failed: {error or 'no local bundle'}")
            return
        if self.miniflare is not None:
            try:  # the running server takes the new bundle: only workerd restarts, on the same port
                self.serving = self.miniflare.reload(Path(bundle))
            except DeployError as e:
                self._say({"event": "reload_failed", "error": str(e)}, f"{_clock()} reload failed, restarting Miniflare: {e}")
            else:
                self._say({"event": "serving", "url": self.serving, "bundle": bundle}, f"{_clock()} serving {self.serving}")
                return
        port = int(self.serving.rsplit(":", 1)[1]) if self.serving else self.settings.port
        if self.miniflare is not None:
            self.miniflare.stop()
        self.miniflare = MiniflareServer(Path(bundle), port=port)
        try:
            self.serving = self.miniflare.start()
        except DeployError as e:
            self.miniflare = None
            self._say({"event": "serve_failed", "error": str(e)}, f"{_clock()} cannot serve the bundle: {e}")
            return
        self._say({"event": "serving", "url": self.serving, "bundle": bundle}, f"{_clock()} serving {self.serving}")

    def run(self) -> int:
        import watchfiles
        from cached_client import CachedError, Client

        debounce = max(1, int(self.settings.debounce_ms))
        with Client(self.settings.server, token=self.settings.token) as client:
            try:
                client.wait_ready(10.0)
            except Exception as e:  # noqa: BLE001 - no daemon: say so and stop
                print(f"cached: no daemon at {self.settings.server}: {e}", file=sys.stderr)
                return 2
            try:
                self.build_once(client, "initial build")
                self._say({"event": "watching", "dir": str(self.root)}, f"{_clock()} watching {self.root} (Ctrl-C to stop)")
                watch_filter = _Filter(self.root)
                for changes in watchfiles.watch(self.root, watch_filter=watch_filter, debounce=debounce, step=min(50, debounce),
                                                stop_event=self.stop_event, raise_interrupt=False):
                    paths = sorted({os.path.relpath(p, self.root).replace(os.sep, "/") for _c, p in changes})
                    if not paths:
                        continue
                    shown = ", ".join(paths[:3]) + (f" (+{len(paths) - 3})" if len(paths) > 3 else "")
                    self.build_once(client, f"{shown} changed")
                    if self.settings.max_builds and self.builds + self.failures >= self.settings.max_builds:
                        break
            except KeyboardInterrupt:
                pass
            except CachedError as e:
                print(f"cached: {e}", file=sys.stderr)
                return 1
            finally:
                if self.miniflare is not None:
                    self.miniflare.stop()
        self._say({"event": "stopped", "builds": self.builds, "failures": self.failures}, f"{_clock()} stopped after {self.builds} builds")
        return 0

    def _say(self, data: dict[str, Any], text: str) -> None:
        self.out(json.dumps(data) if self.settings.json else text)
        sys.stdout.flush()


class _Filter:
    """watchfiles filter: the same rules as the files a build carries."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def __call__(self, change: Any, path: str) -> bool:
        rel = os.path.relpath(path, self.root).replace(os.sep, "/")
        return not rel.startswith("../") and not is_ignored(rel)


def _clock() -> str:
    return time.strftime("%H:%M:%S")
