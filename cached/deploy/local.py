"""The local target: the same bundle a Cloudflare deploy makes, written to a directory, served by Miniflare.

Layout under the local deploy root (the daemon's ``deploy_dir``)::

    <script name>/v<sequence>/worker.mjs      the generated Worker module
                             /wrangler.json   a wrangler-compatible config (assets, vars, R2 binding)
                             /assets/...      the static assets (files up to the asset limit), with _headers
                                              and _redirects, which Miniflare reads as Cloudflare does
                             /r2/<key>        files over the limit, keyed as in R2; seeded into Miniflare's local R2
                             /.dev.vars       secrets, 0600, only when the deploy has some (wrangler's convention)
    <script name>/current -> v<sequence>      the production version (a rollback moves it)

Files are copied out of the store, never hardlinked: Miniflare (or a person)
may run with rights that ignore the store's read-only bits, and a write through
a hardlink would change a blob. A version directory is written under a
temporary name and renamed into place, so a half-written bundle is never seen.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import IO

from cached.deploy.assets import BlobSource, Manifest
from cached.deploy.errors import DeployError
from cached.digest import Digest

ASSETS_DIR = "assets"
R2_DIR = "r2"
LOCAL_BUCKET = "cached-local-large-files"


class LocalBundles:
    def __init__(self, root: Path, blobs: BlobSource, *, keep: int = 10) -> None:
        self.root = root
        self.blobs = blobs
        self.keep = keep

    def version_dir(self, name: str, sequence: int) -> Path:
        return self.root / name / f"v{sequence}"

    def current(self, name: str) -> Path | None:
        link = self.root / name / "current"
        return link.resolve() if link.is_symlink() else None

    def write(
        self, name: str, sequence: int, manifest: Manifest, module: str, config: dict[str, object],
        r2_keys: dict[str, str], secrets: dict[str, str],
    ) -> Path:
        """Writes version ``sequence`` of ``name`` (blocking: run it in a thread). ``r2_keys``: path -> key."""
        app_dir = self.root / name
        app_dir.mkdir(parents=True, exist_ok=True)
        final = self.version_dir(name, sequence)
        tmp = Path(tempfile.mkdtemp(prefix=f".tmp-v{sequence}-", dir=app_dir))
        try:
            (tmp / "worker.mjs").write_text(module)
            (tmp / "wrangler.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
            assets = tmp / ASSETS_DIR
            assets.mkdir()
            for a in manifest.assets:
                self._copy(a.digest, assets / a.path)
            for rule_file, text in manifest.rules.items():  # _headers, _redirects: Miniflare parses them there
                (assets / rule_file).write_text(text)
            for f in manifest.large:
                self._copy(f.digest, tmp / R2_DIR / r2_keys[f.path])
            if secrets:
                fd = os.open(tmp / ".dev.vars", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as out:
                    out.writelines(f"{k}={json.dumps(v)}\n" for k, v in sorted(secrets.items()))
            if final.exists():  # left by a deploy that failed after writing it
                shutil.rmtree(final)
            tmp.rename(final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return final

    def activate(self, name: str, sequence: int) -> Path:
        """Points ``current`` at a version: a symlink replaced by rename, atomic for readers."""
        target = self.version_dir(name, sequence)
        if not target.is_dir():
            raise DeployError(f"local bundle {target} is gone")
        link = self.root / name / "current"
        tmp = link.with_name(f".current-{os.getpid()}-{time.monotonic_ns()}")
        tmp.symlink_to(target.name)
        tmp.replace(link)
        return target

    def prune(self, name: str, keep: set[int]) -> None:
        """Removes version directories not in ``keep`` (the newest ones and the live one)."""
        app_dir = self.root / name
        for child in app_dir.glob("v*"):
            if child.is_dir() and child.name[1:].isdigit() and int(child.name[1:]) not in keep:
                shutil.rmtree(child, ignore_errors=True)

    def _copy(self, digest: Digest, dest: Path) -> None:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with self.blobs.open(digest) as src, open(dest, "xb") as out:
            shutil.copyfileobj(src, out, 1 << 20)


def miniflare_dir() -> Path:
    """Where Miniflare is installed (``npm ci`` in tools/miniflare); ``CACHED_MINIFLARE_DIR`` overrides."""
    env = os.environ.get("CACHED_MINIFLARE_DIR")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "tools" / "miniflare"


class MiniflareServer:
    """Runs ``tools/miniflare/serve.mjs`` on a bundle, on 127.0.0.1; ``url`` once it is ready.

    A new bundle is served without starting node and Miniflare again: only
    workerd is restarted, with the new config, on the same port. ``reload``
    asks for it explicitly; with ``follow`` the server watches the bundle path
    (a symlink such as ``<deploy dir>/<script>/current``) and reloads as soon as
    a deploy moves it. ``served`` is the bundle directory being served and
    ``reloads`` how many reloads were done.

    Miniflare (node) and the workerd it starts end with the process that
    started them, however it ends: node runs in a session of its own (a
    terminal's signals reach only the command), is sent SIGTERM when its
    parent dies (``pdeathsig.py``: SIGKILL included; start it from the main
    thread, whose death is the one that counts) and also watches its parent
    itself (its stdin, a pipe from here, closes; its parent pid changes).
    On SIGTERM, SIGINT, SIGHUP or a dead parent it stops workerd before it
    exits. ``stop`` ends node and then whatever of its process group is left.
    """

    def __init__(self, bundle: Path, *, port: int = 0, tools: Path | None = None, node: str = "node", follow: bool = False) -> None:
        self.bundle = bundle
        self.port = port
        self.tools = tools or miniflare_dir()
        self.node = node
        self.follow = follow
        self.proc: subprocess.Popen[str] | None = None
        self._group_gone = False  # stop killed what was left of node's process group
        self.url = ""
        self.output: deque[str] = deque(maxlen=200)  # the last lines Miniflare printed
        self.served = ""  # the bundle directory served (the symlink resolved)
        self.reloads = 0
        self.last_reload_ms = 0.0  # as serve.mjs measured it: new config to served
        self.last_reload_at = 0.0  # time.perf_counter() when the last reload was reported here
        self._events = threading.Condition()
        self._errors: list[str] = []

    def start(self, timeout_s: float = 60.0, attempts: int = 2) -> str:
        """Starts Miniflare; a runtime that exits during startup is tried once more (workerd rarely fails to bind)."""
        for attempt in range(1, attempts + 1):
            try:
                return self._start_once(timeout_s)
            except _EarlyExit as e:
                if attempt == attempts:
                    raise DeployError(f"Miniflare did not start on {self.bundle}: {e}") from None
            except BaseException:  # a signal or Ctrl-C while it starts: nothing is left running
                self.stop()
                raise
        raise AssertionError("unreachable")

    def _start_once(self, timeout_s: float) -> str:
        script = self.tools / "serve.mjs"
        if not (self.tools / "node_modules" / "miniflare").is_dir():
            raise DeployError(f"Miniflare is not installed: run `npm ci` in {self.tools}")
        launcher = [sys.executable, "-I", "-S", str(Path(__file__).with_name("pdeathsig.py")), str(os.getpid()), str(int(signal.SIGTERM))]
        self._group_gone = False
        follow = ["--follow", "1"] if self.follow else []
        self.proc = subprocess.Popen(
            [*launcher, self.node, str(script), "--bundle", str(self.bundle.absolute()), "--host", "127.0.0.1", "--port", str(self.port),
             "--parent", str(os.getpid()), *follow],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True, cwd=self.tools,
        )
        deadline = time.monotonic() + timeout_s
        assert self.proc.stdout is not None
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            try:
                data = json.loads(line)
            except ValueError:
                continue
            if isinstance(data, dict) and data.get("url"):
                self.url = str(data["url"]).rstrip("/")
                self.served = str(self.bundle.resolve())
                # Drained, so workerd never blocks on a full pipe; stdout also carries the reload events.
                threading.Thread(target=_drain, args=(self.proc.stdout, self.output, self._event), daemon=True).start()
                threading.Thread(target=_drain, args=(self.proc.stderr, self.output), daemon=True).start()
                return self.url
        exited = self.proc.poll() is not None
        err = self.proc.stderr.read() if exited and self.proc.stderr else ""
        self.stop()
        lines = [line for line in err.splitlines() if "workerd@" not in line and ".so.6@" not in line]  # drop stack addresses
        if exited:
            raise _EarlyExit("\n".join(lines).strip()[-3000:])
        raise DeployError(f"Miniflare did not start on {self.bundle} within {timeout_s:.0f} s")

    def reload(self, bundle: Path | None = None, timeout_s: float = 60.0) -> str:
        """Serves ``bundle`` (default: the bundle path given, resolved again) from the running server; returns
        the URL (the same port) once it is served. Raises DeployError if it could not be loaded."""
        if self.proc is None or self.proc.poll() is not None or self.proc.stdin is None:
            raise DeployError("Miniflare is not running")
        target = (bundle or self.bundle).absolute()
        real = str(target.resolve())
        with self._events:
            before, errors = self.reloads, len(self._errors)
            self.proc.stdin.write(json.dumps({"reload": str(target)}) + "\n")
            self.proc.stdin.flush()
            ok = self._events.wait_for(
                lambda: (self.reloads > before and self.served == real) or len(self._errors) > errors or self.proc is None or self.proc.poll() is not None,
                timeout=timeout_s,
            )
            if len(self._errors) > errors:
                raise DeployError(f"Miniflare could not load {target}: {self._errors[-1]}")
            if not ok or self.served != real:
                raise DeployError(f"Miniflare did not serve {target} within {timeout_s:.0f} s")
        return self.url

    def wait_served(self, bundle: Path, timeout_s: float = 60.0) -> bool:
        """With ``follow``: waits until ``bundle`` (a version directory) is the one served."""
        real = str(bundle.resolve())
        with self._events:
            return self._events.wait_for(lambda: self.served == real, timeout=timeout_s)

    def _event(self, line: str) -> None:
        try:
            data = json.loads(line)
        except ValueError:
            return
        if not isinstance(data, dict):
            return
        with self._events:
            if data.get("reloaded"):
                self.url = str(data["reloaded"]).rstrip("/")
                self.served = str(data.get("bundle") or "")
                self.last_reload_ms = float(data.get("ms") or 0.0)
                self.last_reload_at = time.perf_counter()
                self.reloads += 1
            elif "reload_error" in data:
                self._errors.append(str(data["reload_error"]))
            else:
                return
            self._events.notify_all()

    def wait(self) -> int:
        assert self.proc is not None
        return self.proc.wait()

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid)
                proc.wait()
        if not self._group_gone:  # once: node led its process group, so workerd is in it if node left it behind
            self._group_gone = True
            _kill_group(proc.pid)
        if proc.stdin is not None:
            proc.stdin.close()

    def __enter__(self) -> "MiniflareServer":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class _EarlyExit(Exception):
    """Miniflare exited before it printed its URL; the message is its stderr."""


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _drain(stream: "IO[str] | None", into: deque[str], on_line: "Callable[[str], None] | None" = None) -> None:
    if stream is None:
        return
    for line in stream:
        into.append(line.rstrip("\n"))
        if on_line is not None and line.startswith("{"):
            on_line(line)
