"""`make demo`: the whole story of a build cache in about a minute, on 127.0.0.1 only.

1. starts `cached serve` as its own process on 127.0.0.1 (an ephemeral port),
   with its store in `.cached/store` (emptied first, so the first build is
   really cold; npm's download cache in `.cached/npm-cache` is kept between
   runs) and Prometheus metrics on another ephemeral 127.0.0.1 port;
2. builds a copy of the example app (`examples/dashboard`, or `$CACHED_FIXTURE`)
   cold: `npm ci`, then Vite in a warm builder the daemon starts for the app;
3. sends the unchanged request again: an action-cache hit, no Node process;
4. changes one string in a component: the app's warm builder rebuilds it;
5. builds a second app (another package name, one page different) with the
   same dependencies: the deps layer hits, npm does not run;
6. deploys the edited app to the local target (a build request with
   `deploy=DeployOptions("local", "production")`: an action hit, then the
   bundle), serves it with Miniflare (workerd) and fetches it over HTTP;
7. scrapes the metrics endpoint before and after, for the counter deltas;
8. prints one table, a row per step, then those deltas.

Every process it starts (the daemon, Miniflare and workerd) is stopped on the
way out, on success, on an error, on Ctrl-C or on SIGTERM.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DEFAULT_APP = REPO / "examples" / "dashboard"
MINIFLARE = REPO / "tools" / "miniflare"
TENANT = "demo"
MARKER = "(edited in the cached demo)"
SECOND_MARKER = "(the second app's own page)"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # 127.0.0.1 is never reached through a proxy
HTTP_TIMEOUT_S = 10.0
BUILD_TIMEOUT_S = 600.0
CALL_TIMEOUT_S = 60.0
DAEMON_START_S = 60.0
DAEMON_STOP_S = 30.0
# JSX text between two tags, e.g. `<p className="x">Here's what's new.</p>`: no code characters.
JSX_TEXT = re.compile(r">(\s*[^<>{}\n=;&|()`]*[A-Za-z]{3,}[^<>{}\n=;&|()`]*?)\s*<")
PREFERRED = ("src/pages/Dashboard.tsx", "src/pages/Home.tsx", "src/pages/Index.tsx", "src/App.tsx")


class DemoError(Exception):
    """Something the user can act on; the message says what to do."""


# ---------------------------------------------------------------------------- the app


def app_source() -> Path:
    """The example app: ``examples/dashboard`` in this repository, or ``$CACHED_FIXTURE``."""
    override = os.environ.get("CACHED_FIXTURE")
    path = Path(override) if override else DEFAULT_APP
    if not (path / "package.json").is_file():
        if override:
            raise DemoError(f"no app at {path} (no package.json): point CACHED_FIXTURE at an app directory, or unset it to use {DEFAULT_APP}")
        raise DemoError(f"the example app is missing at {path}: it is part of the repository; check out the whole tree "
                        "(or set CACHED_FIXTURE to another Vite app with a package-lock.json)")
    if not (path / "package-lock.json").is_file():
        raise DemoError(f"{path} has no package-lock.json: the demo needs an app with a lockfile")
    return path


def copy_app(source: Path, dest: Path) -> Path:
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns("node_modules", ".git", "dist"))
    for p in [dest, *dest.rglob("*")]:
        p.chmod(p.stat().st_mode | 0o200)
    return dest


@dataclass(frozen=True)
class Edit:
    path: str   # relative to the app
    old: str    # the text as it was
    new: str

    def apply(self, app: Path) -> None:
        file = app / self.path
        text = file.read_text()
        file.write_text(text.replace(self.old, self.new, 1))


def _candidates(app: Path) -> Iterator[str]:
    seen: set[str] = set()
    ordered = [*PREFERRED, *sorted(str(p.relative_to(app)) for p in (app / "src" / "pages").glob("*.tsx")),
               *sorted(str(p.relative_to(app)) for p in (app / "src" / "components").rglob("*.tsx"))]
    for rel in ordered:
        if rel not in seen and (app / rel).is_file():
            seen.add(rel)
            yield rel


def pick_edits(app: Path, count: int = 2) -> list[Edit]:
    """One string in each of ``count`` different components: the first JSX text of the preferred pages first."""
    edits: list[Edit] = []
    for rel in _candidates(app):
        text = (app / rel).read_text(errors="replace")
        match = JSX_TEXT.search(text)
        if match is None:
            continue
        phrase = match.group(1).strip()
        old = f">{match.group(1)}"
        edits.append(Edit(rel, old, old.replace(phrase, f"{phrase} {{MARKER}}", 1)))
        if len(edits) == count:
            return edits
    raise DemoError(f"found no component with a text to change under {app / 'src'} (looked for JSX text in .tsx files)")


def make_second_app(first: Path, dest: Path, page: Edit) -> Path:
    """A copy of the app under another package name, one page different, the same dependencies."""
    app = copy_app(first, dest)
    for name in ("package.json", "package-lock.json"):
        data = json.loads((app / name).read_text())
        data["name"] = f"{data.get('name', 'app')}-second"
        if name == "package-lock.json" and "" in data.get("packages", {}):
            data["packages"][""]["name"] = data["name"]
        (app / name).write_text(json.dumps(data, indent=2) + "\n")
    Edit(page.path, page.old, page.new.replace("{MARKER}", SECOND_MARKER)).apply(app)
    return app


def app_id(source: Path) -> str:
    name = re.sub(r"[^a-z0-9_-]+", "-", source.name.lower()).strip("-_") or "app"
    return name[:40]


# ---------------------------------------------------------------------------- processes


def check_tools() -> None:
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            raise DemoError(f"`{tool}` is not on PATH: install Node.js 20 and npm (Debian: apt-get install nodejs npm), then run `make demo` again")


def ensure_miniflare() -> None:
    """Miniflare (tools/miniflare) is installed once with `npm ci`; `make demo` does it before the demo starts."""
    if (MINIFLARE / "node_modules" / "miniflare" / "package.json").is_file():
        return
    print(f"installing Miniflare in {MINIFLARE.relative_to(REPO)} (npm ci, once)", flush=True)
    try:
        out = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=MINIFLARE, capture_output=True, text=True, timeout=600)
    except subprocess.TimeoutExpired:
        raise DemoError(f"`npm ci` in {MINIFLARE} took over 10 minutes: check npm's network access, then run `make demo` again") from None
    if out.returncode != 0:
        raise DemoError(f"`npm ci` in {MINIFLARE} failed; fix what npm says and run `make demo` again:\n{out.stderr[-2000:]}")


def _store_holder(root: Path) -> int | None:
    """The pid of a daemon still holding the store's lock (one left by an earlier run), else None."""
    lock = root / "lock"
    if not lock.exists():
        return None
    fd = os.open(lock, os.O_RDONLY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    except OSError:
        text = os.pread(fd, 32, 0).decode(errors="replace").strip()
        return int(text) if text.isdigit() else -1
    finally:
        os.close(fd)


def empty_store(root: Path) -> threading.Thread:
    """Moves the last run's store aside (instantly, so the daemon starts on an empty one) and removes it in the background."""
    if root.exists():
        root.rename(root.with_name(f"{root.name}.old-{os.getpid()}"))

    def sweep() -> None:
        for old in root.parent.glob(f"{root.name}.old-*"):
            shutil.rmtree(old, ignore_errors=True)

    thread = threading.Thread(target=sweep, name="demo-sweep", daemon=True)
    thread.start()
    return thread


class Daemon:
    """`cached serve` in its own process group (Ctrl-C reaches the demo, which stops it in order)."""

    def __init__(self, root: Path, npm_cache: Path, log_path: Path) -> None:
        self.root, self.npm_cache, self.log_path = root, npm_cache, log_path
        self.proc: subprocess.Popen[bytes] | None = None
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "Daemon":
        port_file = self.root.parent / "demo.port"
        port_file.unlink(missing_ok=True)
        env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        with open(self.log_path, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "cached", "serve", "--root", str(self.root), "--npm-cache", str(self.npm_cache),
                 "--listen", "127.0.0.1:0", "--port-file", str(port_file), "--metrics-listen", "127.0.0.1:0",
                 "--warm-shadow-share", "0",  # no background cold rebuilds: every process in the table is one the story needs
                 "--drain-seconds", "10"],
                stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True,
            )
        deadline = time.monotonic() + DAEMON_START_S
        while not port_file.exists():
            if self.proc.poll() is not None:
                hint = "" if os.geteuid() == 0 else " (its sandbox needs root: mount and pid namespaces, overlayfs; run `make demo` as root)"
                raise DemoError(f"the daemon exited at startup (code {self.proc.returncode}){hint}; "
                                f"the end of its log ({self.log_path}):\n{self.log_tail()}")
            if time.monotonic() > deadline:
                raise DemoError(f"the daemon did not start within {DAEMON_START_S:.0f} s; its log ({self.log_path}):\n{self.log_tail()}")
            time.sleep(0.05)
        self.port = int(port_file.read_text())
        return self

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""

    def stop(self) -> None:
        proc = self.proc
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)  # drains running builds, stops its warm builders
            try:
                proc.wait(timeout=DAEMON_STOP_S)
            except subprocess.TimeoutExpired:
                _kill_group(proc.pid)
                proc.wait()
        _kill_group(proc.pid)  # anything of its process group still alive


def _kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def deadlines():  # type: ignore[no-untyped-def]
    """A client interceptor giving every gRPC call without a deadline one: no wait on the daemon is unbounded."""
    import grpc

    class Deadlines(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor, grpc.StreamUnaryClientInterceptor):
        @staticmethod
        def _bounded(details, seconds: float):  # type: ignore[no-untyped-def]
            return details._replace(timeout=seconds) if details.timeout is None else details

        def intercept_unary_unary(self, continuation, details, request):  # type: ignore[no-untyped-def]
            return continuation(self._bounded(details, CALL_TIMEOUT_S), request)

        def intercept_unary_stream(self, continuation, details, request):  # type: ignore[no-untyped-def]
            return continuation(self._bounded(details, BUILD_TIMEOUT_S + 60), request)

        def intercept_stream_unary(self, continuation, details, request_iterator):  # type: ignore[no-untyped-def]
            return continuation(self._bounded(details, CALL_TIMEOUT_S), request_iterator)

    return Deadlines()


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    if not url.startswith("http://127.0.0.1:"):
        raise DemoError(f"refusing to fetch {url}: the demo talks to 127.0.0.1 only")
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with NO_PROXY.open(request, timeout=HTTP_TIMEOUT_S) as response:
            return response.status, {k.lower(): v for k, v in response.headers.items()}, response.read()
    except urllib.error.HTTPError as e:
        return e.code, {k.lower(): v for k, v in e.headers.items()}, e.read()


# ---------------------------------------------------------------------------- metrics

Counters = dict[tuple[str, tuple[tuple[str, str], ...]], float]
COUNTED = {"cached_lookups_total": ("layer", "result"), "cached_misses_total": ("layer", "reason")}


def parse_counters(text: str) -> Counters:
    """The decision and miss counters of a Prometheus text exposition, keyed by name and the labels shown."""
    from prometheus_client.parser import text_string_to_metric_families

    counters: Counters = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = COUNTED.get(sample.name)
            if labels is None:
                continue
            key = (sample.name, tuple((k, sample.labels.get(k, "")) for k in labels))
            counters[key] = counters.get(key, 0.0) + sample.value
    return counters


def counter_deltas(before: Counters, after: Counters) -> list[tuple[str, str, int]]:
    """(counter, labels, delta) for every counter that moved, in a stable order."""
    rows = []
    for key in sorted(after):
        delta = after[key] - before.get(key, 0.0)
        if delta:
            name, labels = key
            rows.append((name, ",".join(f'{k}="{v}"' for k, v in labels), int(round(delta))))
    return rows


def scrape(address: str) -> Counters:
    status, _, body = http_get(f"http://{address}/metrics")
    if status != 200:
        raise DemoError(f"the metrics endpoint http://{address}/metrics answered {status}")
    return parse_counters(body.decode())


# ---------------------------------------------------------------------------- the table


@dataclass
class Row:
    step: str
    decisions: str
    reason: str
    wall_ms: float | None
    processes: str
    outputs: str


def render_table(rows: list[Row]) -> list[str]:
    headers = ("step", "cache decisions", "reason", "wall ms", "node/npm processes", "outputs")
    cells = [headers] + [(r.step, r.decisions, r.reason, "-" if r.wall_ms is None else f"{r.wall_ms:,.1f}", r.processes, r.outputs)
                         for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(len(headers))]
    right = {3}
    lines = []
    for n, row in enumerate(cells):
        lines.append("  ".join(cell.rjust(w) if i in right else cell.ljust(w) for i, (cell, w) in enumerate(zip(row, widths))).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def render_deltas(deltas: list[tuple[str, str, int]]) -> list[str]:
    if not deltas:
        return ["  (no counter moved)"]
    width = max(len(f"{n}{{{labels}}}") for n, labels, _ in deltas)
    return [f"  {f'{n}{{{labels}}}'.ljust(width)}  +{d}" for n, labels, d in deltas]


def summarize(result, children: int) -> tuple[str, str, str]:  # type: ignore[no-untyped-def]
    """(decisions, reason, processes) cells of a build's row."""
    by_layer = {d.layer: d for d in result.decisions}
    shown = []
    for layer in ("resolution", "action", "deps", "warm"):
        d = by_layer.get(layer)
        if d is not None:
            shown.append(f"{layer} {d.result}" + ("" if d.reason in ("hit", "coalesced") else f" ({d.reason})"))
    action, deps = by_layer.get("action"), by_layer.get("deps")
    if action is None or action.result != "miss":
        reason = "identical inputs built before" if action is not None and action.result == "hit" else result.reason
    elif action.reason == "sources_changed":
        reason = "changed: " + action.detail.removeprefix("sources changed: ")
    else:
        reason = action.detail.strip("()") or action.reason
        if deps is not None:
            reason += "; deps in the store, no npm" if deps.result == "hit" else "; deps never installed here"
    what = []
    if "resolution" in by_layer and by_layer["resolution"].result == "miss":
        what.append("npm install")
    if "deps" in by_layer and by_layer["deps"].result == "miss":
        what.append("npm ci")
    warm = by_layer.get("warm")
    if warm is not None and warm.result == "miss" and warm.reason == "started":
        what.append("node: Vite builder")
    elif action is not None and action.result == "miss" and (warm is None or warm.result == "miss"):
        what.append("vite build")
    processes = str(children)
    if children and len(what) == children:
        processes += f" ({' + '.join(what)})"
    return ", ".join(shown), reason, processes


def literal_around(data: bytes, at: int, length: int, window: int = 120) -> str:
    """The string literal of a minified bundle that holds ``data[at:at+length]`` (or a window around it)."""
    quotes = [data.rfind(q, max(0, at - window), at) for q in (b"`", b'"')]
    start = max(quotes)
    if start < 0:
        start = max(0, at - 40)
    end = at + length
    if start >= 0 and data[start:start + 1] in (b"`", b'"'):
        close = data.find(data[start:start + 1], end, end + window)
        end = close + 1 if close >= 0 else end
    return data[start:end].decode(errors="replace")


def describe_outputs(result) -> str:  # type: ignore[no-untyped-def]
    total = sum(o.size for o in result.outputs)
    return f"{len(result.outputs)} files, {total / 1024:,.0f} KiB"


# ---------------------------------------------------------------------------- the story


def run(base: Path) -> int:
    from cached.deploy.errors import DeployError
    from cached.deploy.local import MiniflareServer
    from cached.progress import ProgressView
    from cached_client import BuildFailed, CachedError, Client, DeployOptions

    check_tools()
    source = app_source()
    ensure_miniflare()
    root, npm_cache = base / "store", base / "npm-cache"
    holder = _store_holder(root)
    if holder is not None:
        who = f"process {holder}" if holder > 0 else "another process"
        raise DemoError(f"{root} is in use by {who} (a daemon of an earlier run?): stop it (kill {holder if holder > 0 else 'PID'}), then run `make demo` again")
    sweeper = empty_store(root)
    npm_cache.mkdir(parents=True, exist_ok=True)
    log_path = base / "daemon.log"
    rows: list[Row] = []
    daemon = Daemon(root, npm_cache, log_path)
    miniflare: MiniflareServer | None = None
    failed: list[str] = []

    with tempfile.TemporaryDirectory(prefix="cached-demo-") as tmp:
        name = app_id(source)
        app = copy_app(source, Path(tmp) / name)
        edits = pick_edits(app)
        try:
            print(f"== 1. start the daemon: {source} will be built as {TENANT}/{name}")
            started = time.perf_counter()
            daemon.start()
            client = Client(daemon.address, options=[("grpc.enable_http_proxy", 0)], interceptors=[deadlines()])
            try:
                try:
                    client.wait_ready(timeout=30)
                except Exception:
                    raise DemoError(f"the daemon did not answer on {daemon.address} within 30 s; the end of its log ({log_path}):\n{daemon.log_tail()}") from None
                stats = client.stats()
                metrics = stats.metrics_address
                if not metrics:
                    raise DemoError("the daemon serves no metrics endpoint although it was started with --metrics-listen; see its log " + str(log_path))
                before = scrape(metrics)
                wall = (time.perf_counter() - started) * 1000
                print(f"daemon on {daemon.address} (pid {daemon.proc.pid if daemon.proc else '?'}), metrics http://{metrics}/metrics, "
                      f"store {root}, log {log_path}")
                rows.append(Row("1. start daemon", "-", "store emptied: nothing cached", wall, str(stats.processes_started),
                                f"gRPC {daemon.address}, metrics :{metrics.rpartition(':')[2]}"))

                def build(step: str, label: str, app_dir: Path, app_name: str, **kwargs):  # type: ignore[no-untyped-def]
                    print(f"\n== {step} {label}")
                    count = client.stats().processes_started
                    view = ProgressView(sys.stdout, show_logs=False)
                    started = time.perf_counter()
                    try:
                        result = client.build(app_dir, app=app_name, tenant=TENANT, on_event=view, timeout_s=BUILD_TIMEOUT_S, **kwargs)
                    except BuildFailed as e:
                        raise DemoError(f"the build of {app_name} failed: {e.details}\n{e.log_tail}\n"
                                        f"(the daemon's log: {log_path}; a cold build needs npm's registry the first time)") from None
                    finally:
                        view.done()
                    wall = (time.perf_counter() - started) * 1000
                    children = client.stats().processes_started - count
                    decisions, reason, processes = summarize(result, children)
                    print(f"-> {decisions} | {wall:,.1f} ms | {children} child processes started | {describe_outputs(result)}")
                    return result, Row(f"{step} {label}", decisions, reason, wall, processes, describe_outputs(result))

                # 2. cold
                cold, row = build("2.", "cold build", app, name)
                rows.append(row)

                # 3. the same request: an action hit, no process
                hit, row = build("3.", "unchanged again", app, name)
                rows.append(row)
                if hit.cache != "hit" or row.processes != "0":
                    failed.append("the unchanged request was not an action hit without processes")

                # 4. one string of a component changed: the warm builder rebuilds it
                first_edit = edits[0]
                print(f"\nediting {first_edit.path}: {first_edit.old.strip('>').strip()!r} -> ...{MARKER!r}")
                Edit(first_edit.path, first_edit.old, first_edit.new.replace("{MARKER}", MARKER)).apply(app)
                edited, row = build("4.", "one-file edit", app, name)
                rows.append(row)
                warm = edited.decision("warm")
                if warm is None or warm.result != "hit":
                    failed.append(f"the edit was not rebuilt warm ({warm.reason + ': ' + warm.detail if warm else 'no warm decision'})")
                if not any(MARKER.encode() in client.read_blob(TENANT, o) for o in edited.outputs if o.path.endswith(".js")):
                    failed.append("the edited string is in no JavaScript output")

                # 5. another app, the same dependencies: no npm
                second = make_second_app(source, Path(tmp) / f"{name}-second", edits[1])
                print(f"\nsecond app {TENANT}/{name}-second: package name changed, {edits[1].path} changed, the same package-lock.json dependencies")
                other, row = build("5.", "second app, same deps", second, f"{name}-second")
                rows.append(row)
                deps = other.decision("deps")
                if deps is None or deps.result != "hit":
                    failed.append(f"the second app's dependencies were not a hit ({deps.reason if deps else 'no deps decision'})")

                # 6. deploy the edited app to the local target and fetch it through workerd
                deployed, row = build("6.", "local deploy", app, name, deploy=DeployOptions("local", "production"))
                d = deployed.deploy
                if d is None or d.error or not d.bundle_dir:
                    raise DemoError(f"the local deploy failed: {d.error if d else 'no deploy result'} (see {log_path})")
                bundle = Path(d.bundle_dir)
                print(f"bundle v{d.sequence} in {bundle}; starting Miniflare (workerd) on 127.0.0.1")
                started = time.perf_counter()
                miniflare = MiniflareServer(bundle)
                try:
                    url = miniflare.start(timeout_s=60)
                except DeployError as e:
                    raise DemoError(f"{e}\n(reinstall it with `rm -rf tools/miniflare/node_modules && make demo`)") from None
                serve_ms = (time.perf_counter() - started) * 1000
                status, headers, body = http_get(url + "/", {"accept": "text/html"})
                title = re.search(rb"<title>(.*?)</title>", body)
                print(f"serving at {url} (Miniflare up in {serve_ms:,.0f} ms)")
                print(f"GET {url}/ -> {status} {headers.get('content-type', '?')}, title {title.group(1).decode() if title else '?'!r}")
                asset = next((p for p in sorted((bundle / "assets").rglob("*.js")) if MARKER.encode() in p.read_bytes()), None)
                proof = "edited string not served"
                if asset is None:
                    failed.append("the deployed bundle has no JavaScript with the edited string")
                else:
                    path = "/" + asset.relative_to(bundle / "assets").as_posix()
                    js_status, _, js = http_get(url + path)
                    at = js.find(MARKER.encode())
                    if js_status == 200 and at >= 0:
                        print(f"GET {url}{path} -> {js_status}, {len(js):,} bytes, contains {literal_around(js, at, len(MARKER))}")
                        proof = f"{url} {status}, edit served"
                    else:
                        failed.append(f"GET {url}{path} answered {js_status} without the edited string")
                if status != 200:
                    failed.append(f"GET {url}/ answered {status}")
                row.outputs = f"v{d.sequence}: {proof}"
                row.reason = f"identical inputs built before; bundle v{d.sequence} written"
                row.processes = f"{row.processes} (+ Miniflare: node, workerd)"
                rows.append(row)

                # 7. what the counters say
                after = scrape(metrics)
                print(f"\n== 7. metrics: http://{metrics}/metrics scraped before step 2 and after step 6")
            finally:
                client.close()
        except CachedError as e:
            raise DemoError(f"the daemon answered {e.code.name if e.code else '?'}: {e.details}\n"
                            f"the end of its log ({log_path}):\n{daemon.log_tail(1500)}") from None
        finally:
            previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not leave processes behind
            try:
                if miniflare is not None:
                    miniflare.stop()
                daemon.stop()
            finally:
                signal.signal(signal.SIGINT, previous)

    sweeper.join(timeout=60)
    print("\n== 8. summary")
    for line in render_table(rows):
        print(line)
    print("\nPrometheus counters these builds moved (after - before, summed over tiers):")
    for line in render_deltas(counter_deltas(before, after)):
        print(line)
    if failed:
        print("\ndemo: " + "; ".join(failed), file=sys.stderr)
        print(f"(the daemon's log: {log_path})", file=sys.stderr)
        return 1
    return 0


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main() -> int:
    signal.signal(signal.SIGTERM, _terminate)
    base = Path(os.environ.get("CACHED_DEMO_DIR", REPO / ".cached"))
    base.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        code = run(base)
    except DemoError as e:
        print(f"\ndemo: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\ndemo: interrupted; every process it started was stopped", file=sys.stderr)
        return 130
    print(f"\ndemo took {time.perf_counter() - started:,.1f} s")
    return code


if __name__ == "__main__":
    sys.exit(main())
