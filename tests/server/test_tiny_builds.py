"""The build service on apps without dependencies: hits, failures, timeouts, the sandbox."""

from __future__ import annotations

import json
import socket
import threading
import uuid

import grpc
import pytest

from cached_client import CachedError, Client
from cached.v1 import cached_pb2
from support import WRITE_DIST, DaemonProcess, tiny_app


def _decision(result, layer: str = "action"):  # type: ignore[no-untyped-def]
    return next(d for d in result.decisions if d.layer == layer)


def test_identical_request_returns_cached_output_without_running_node(daemon: DaemonProcess) -> None:
    files = tiny_app(WRITE_DIST, extra={"src/a.txt": b"one"})
    with Client(daemon.address) as client:
        first = client.build(files=files, app="hit", tenant="t1")
        assert first.cache == "miss" and _decision(first).reason == "new_app"
        started = client.stats().processes_started
        second = client.build(files=files, app="hit", tenant="t1", keep_events=True)
        assert client.stats().processes_started == started
    assert second.cache == "hit"
    assert [(o.path, o.digest) for o in second.outputs] == [(o.path, o.digest) for o in first.outputs]
    kinds = [e.WhichOneof("event") for e in second.events]
    assert "log" not in kinds
    assert kinds.index("metrics") < kinds.index("result")


def test_changed_source_misses_naming_the_file_and_env_change_is_env_changed(daemon: DaemonProcess) -> None:
    files = tiny_app(WRITE_DIST, extra={"src/a.txt": b"one", "src/b.txt": b"two"})
    with Client(daemon.address) as client:
        client.build(files=files, app="reasons", tenant="t1")
        changed = client.build(files={**files, "src/b.txt": b"TWO"}, app="reasons", tenant="t1")
        assert _decision(changed).reason == "sources_changed"
        assert "src/b.txt" in _decision(changed).detail
        env = client.build(files={**files, "src/b.txt": b"TWO"}, app="reasons", tenant="t1", env={"GREETING": "hi"})
        assert _decision(env).reason == "env_changed"
        assert "GREETING" in _decision(env).detail and "hi" not in _decision(env).detail
        out = {o.path: o for o in env.outputs}
        data = client.read_blob("t1", _digest(out["index.html"]))
        assert data == b"<h1>hi</h1>\n"


def _digest(o):  # type: ignore[no-untyped-def]
    from cached.v1 import tree_pb2
    return tree_pb2.Digest(hash=o.hash, size=o.size, function=tree_pb2.BLAKE3)


def test_failing_build_is_failed_precondition_with_log_tail_and_caches_nothing(daemon: DaemonProcess) -> None:
    files = tiny_app("console.error('something broke: missing export Foo'); process.exit(3);")
    with Client(daemon.address) as client:
        actions = client.stats().actions
        for _ in range(2):  # a second identical request builds again: nothing was recorded
            with pytest.raises(CachedError) as e:
                client.build(files=files, app="broken", tenant="t1")
            assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION
            assert "missing export Foo" in e.value.details
        assert client.stats().actions == actions


def test_build_without_output_fails(daemon: DaemonProcess) -> None:
    with Client(daemon.address) as client, pytest.raises(CachedError) as e:
        client.build(files=tiny_app("console.log('no output')"), app="empty", tenant="t1")
    assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "dist" in e.value.details


def test_timeout_kills_the_build_and_is_deadline_exceeded(daemon: DaemonProcess) -> None:
    import subprocess
    import time

    marker = f"cached-timeout-marker-{uuid.uuid4().hex[:12]}"  # unique: another run of this test on the machine must not match
    script = f"import {{ spawn }} from 'node:child_process'; spawn('sh', ['-c', 'sleep 300; echo {marker}'], {{ detached: true, stdio: 'ignore' }}); setTimeout(() => {{}}, 300000);"
    files = tiny_app(script, script=f"node build.mjs {marker}")
    seen: list[int] = []

    def watch() -> None:  # the marked processes must exist while the build runs, or the check below proves nothing
        deadline = time.monotonic() + 60
        while not seen and time.monotonic() < deadline:
            seen.extend(int(p) for p in subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split())
            time.sleep(0.1)

    watcher = threading.Thread(target=watch)
    watcher.start()
    with Client(daemon.address) as client, pytest.raises(CachedError) as e:
        client.build(files=files, app="slow", tenant="t1", timeout_s=5)
    watcher.join()
    assert e.value.code == grpc.StatusCode.DEADLINE_EXCEEDED
    assert seen, "the build's processes were never seen running"
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True).stdout.split()
    assert left == []


PROBE = """
import { readFileSync, writeFileSync, mkdirSync, readdirSync } from "node:fs";
import net from "node:net";
const out = {};
function attempt(name, fn) { try { out[name] = "read:" + String(fn()).slice(0, 40); } catch (e) { out[name] = "denied:" + e.code; } }
const [root, pid] = [process.env.PROBE_ROOT, process.env.PROBE_PID];
attempt("store_root", () => readdirSync(root).join(","));
attempt("index", () => readdirSync(root + "/index").join(","));
attempt("environ", () => readFileSync(`/proc/${pid}/environ`, "latin1"));
attempt("uid", () => process.getuid());
out.workspace = process.cwd();
mkdirSync("dist", { recursive: true });
const sock = net.connect({ host: "127.0.0.1", port: Number(process.env.PROBE_PORT) });
sock.setTimeout(2000);
const done = (what) => { out.network = what; writeFileSync("dist/probe.json", JSON.stringify(out)); process.exit(0); };
sock.on("connect", () => done("connected"));
sock.on("error", (e) => done("error:" + e.code));
sock.on("timeout", () => done("timeout"));
"""


def test_sandbox_hides_store_and_daemon_and_blocks_network(daemon: DaemonProcess) -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)
    accepted: list[object] = []
    listener.settimeout(10)
    t = threading.Thread(target=lambda: accepted.append(_accept(listener)), daemon=True)
    t.start()
    assert daemon.proc is not None
    env = {"PROBE_ROOT": str(daemon.root), "PROBE_PID": str(daemon.proc.pid), "PROBE_PORT": str(listener.getsockname()[1])}
    with Client(daemon.address) as client:
        result = client.build(files=tiny_app(PROBE), app="probe", tenant="t1", env=env)
        probe = json.loads(client.read_blob("t1", _digest(next(o for o in result.outputs if o.path == "probe.json"))))
    listener.close()
    assert probe["store_root"] in ("read:work", "read:") or probe["store_root"].startswith("denied"), probe
    assert probe["index"].startswith("denied"), probe
    assert probe["environ"].startswith("denied"), probe
    assert probe["uid"] == "read:65534"
    assert probe["network"] != "connected", probe


def _accept(listener: socket.socket) -> object:
    try:
        return listener.accept()
    except OSError:
        return None


PLANT = """
import { mkdirSync, writeFileSync, symlinkSync, rmSync } from "node:fs";
mkdirSync("dist", { recursive: true });
writeFileSync("dist/index.html", "ok");
rmSync("src/target.txt", { force: true });
symlinkSync(process.env.VICTIM, "src/target.txt");
symlinkSync("/", "src/rootlink");
"""


def test_planted_symlink_in_workspace_is_never_followed(daemon: DaemonProcess, tmp_path) -> None:  # type: ignore[no-untyped-def]
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    victim.chmod(0o666)
    files = tiny_app(PLANT, extra={"src/target.txt": b"v1"})
    with Client(daemon.address) as client:
        client.build(files=files, app="plant", tenant="t1", env={"VICTIM": str(victim)})
        # The next build writes src/target.txt again: through the planted link it would hit the victim.
        client.build(files={**files, "src/target.txt": b"v2", "build.mjs": WRITE_DIST.encode()}, app="plant", tenant="t1", env={"VICTIM": str(victim)})
    assert victim.read_text() == "precious"
    ws = daemon.root / "work" / "t1" / "plant" / "ws"
    assert (ws / "src" / "target.txt").read_bytes() == b"v2"
    assert not (ws / "src" / "target.txt").is_symlink()
    assert not (ws / "src" / "rootlink").exists()


def test_concurrent_identical_requests_run_one_build_and_a_cancelled_waiter_does_not_cancel_others(daemon: DaemonProcess) -> None:
    script = "await new Promise((r) => setTimeout(r, 1500));\n" + WRITE_DIST
    files = tiny_app(script, extra={"src/c.txt": b"concurrent"})
    results: list[object] = []
    errors: list[BaseException] = []

    def build() -> None:
        try:
            with Client(daemon.address) as c:
                results.append(c.build(files=files, app="many", tenant="t1"))
        except BaseException as e:  # noqa: BLE001
            errors.append(e)

    with Client(daemon.address) as client:
        before = client.stats().processes_started
        threads = [threading.Thread(target=build) for _ in range(5)]
        for t in threads:
            t.start()
        # one more waiter that leaves early
        leaver = Client(daemon.address)
        req = cached_pb2.BuildRequest(tenant="t1", app="many")
        for p, c in files.items():
            req.files.append(cached_pb2.File(path=p, content=c))
        call = leaver.builder.Build(req)
        next(iter(call))
        call.cancel()
        leaver.close()
        for t in threads:
            t.join(120)
        after = client.stats().processes_started
    assert errors == []
    assert len(results) == 5
    keys = {r.action_key for r in results}  # type: ignore[attr-defined]
    assert len(keys) == 1
    outputs = {tuple((o.path, o.digest) for o in r.outputs) for r in results}  # type: ignore[attr-defined]
    assert len(outputs) == 1
    installs = 1 if any(d.layer == "deps" and d.result == "miss" for r in results for d in r.decisions) else 0  # type: ignore[attr-defined]
    assert after - before == 1 + installs  # one npm run build (and one npm ci if these deps were new)
    reasons = sorted(d.result for r in results for d in r.decisions if d.layer == "action")  # type: ignore[attr-defined]
    assert reasons.count("coalesced") >= 1


def test_daemon_environment_does_not_reach_the_key_and_a_restart_keeps_the_store(make_daemon) -> None:  # type: ignore[no-untyped-def]
    files = tiny_app(WRITE_DIST, extra={"src/env.txt": b"x"})
    first = make_daemon()
    with Client(first.address) as client:
        built = client.build(files=files, app="envapp", tenant="t1")
    assert first.stop() == 0
    second = make_daemon(env={"SOME_DAEMON_SETTING": "changed", "GREETING": "from-the-daemon"})
    with Client(second.address) as client:
        again = client.build(files=files, app="envapp", tenant="t1")
    assert again.cache == "hit"
    assert [o.digest for o in again.outputs] == [o.digest for o in built.outputs]


@pytest.mark.parametrize("point", ["build.before_record", "root.before_put", "index.before_commit:2", "build.after_record"])
def test_daemon_killed_while_recording_restarts_with_an_intact_store(make_daemon, tmp_path, point: str) -> None:  # type: ignore[no-untyped-def]
    from cached.store import Store

    root = tmp_path / "root"
    good = tiny_app(WRITE_DIST, extra={"src/v.txt": b"good"})
    doomed = tiny_app(WRITE_DIST, extra={"src/v.txt": b"doomed"})
    d = make_daemon(root)
    with Client(d.address) as client:
        earlier = client.build(files=good, app="crash", tenant="t1")
    d.stop()
    d = make_daemon(root, env={"CACHED_FAILPOINT": point})
    with Client(d.address) as client, pytest.raises(CachedError):
        client.build(files=doomed, app="crash", tenant="t1")
    assert d.wait_exit() == 86
    with Store.open(root) as store:
        report = store.verify()
        assert not report.corrupt and not report.missing, report
    d = make_daemon(root)
    with Client(d.address) as client:
        assert client.build(files=good, app="crash", tenant="t1").action_key == earlier.action_key
        assert client.build(files=good, app="crash", tenant="t1").cache == "hit"
        rebuilt = client.build(files=doomed, app="crash", tenant="t1")
        html = next(o for o in rebuilt.outputs if o.path == "index.html")
        assert client.read_blob("t1", _digest(html)) == b"<h1>hello</h1>\n"


def test_a_corrupt_output_blob_is_never_served_as_its_digest(make_daemon) -> None:  # type: ignore[no-untyped-def]
    d = make_daemon()
    with Client(d.address) as client:
        built = client.build(files=tiny_app(WRITE_DIST, extra={"src/corrupt.txt": b"c"}), app="corrupt", tenant="t1")
        html = next(o for o in built.outputs if o.path == "index.html")
        blob_path = next((d.root / "cas").rglob(html.hash + "*"))
        blob_path.chmod(0o644)
        data = bytearray(blob_path.read_bytes())
        data[0] ^= 0xFF
        blob_path.write_bytes(bytes(data))
        with pytest.raises(CachedError) as e:
            client.read_blob("t1", _digest(html))
    assert e.value.code == grpc.StatusCode.DATA_LOSS
    assert "verify --repair" in e.value.details


SYMLINK_OUTPUT = """
import { mkdirSync, writeFileSync, symlinkSync } from "node:fs";
import { execFileSync } from "node:child_process";
mkdirSync("dist", { recursive: true });
writeFileSync("dist/index.html", "<h1>ok</h1>");
if (process.env.KIND === "symlink") symlinkSync("/etc/passwd", "dist/passwd");
if (process.env.KIND === "fifo") execFileSync("mkfifo", ["dist/pipe"]);
"""


@pytest.mark.parametrize("kind, words", [("symlink", "dist/passwd is a symlink"), ("fifo", "dist/pipe is not a regular file")])
def test_a_symlink_or_special_file_in_the_output_dir_fails_the_build_and_caches_nothing(daemon: DaemonProcess, kind: str, words: str) -> None:
    files = tiny_app(SYMLINK_OUTPUT)
    with Client(daemon.address) as client:
        actions = client.stats().actions
        with pytest.raises(CachedError) as e:
            client.build(files=files, app=f"out-{kind}", tenant="t1", env={"KIND": kind})
        assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION
        assert words in e.value.details
        assert client.stats().actions == actions
