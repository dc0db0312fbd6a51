"""Clients that route each app to its daemon: rendezvous order, real daemons, failover, x-cached-route, Ruby agreeing with Python."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent import futures
from pathlib import Path

import grpc
import pytest

from cached.v1 import cached_pb2, cached_pb2_grpc
from cached_client import AsyncClient, Client, Unavailable, parse_addresses, rendezvous_order, route_key
from cached_client.routing import ROUTE_METADATA, pick, weight
from support import REPO, WRITE_DIST, DaemonProcess, tiny_app

ADDRESSES = ["127.0.0.1:7001", "127.0.0.1:7002", "127.0.0.1:7003"]
TENANT = "routes"
RUBY_LIB = REPO / "client" / "ruby" / "lib"
BUILD_TOKEN = "routing-build-token-0123456789"


# ------------------------------------------------------------------ the order itself


def test_the_weight_is_the_documented_sha256_so_other_languages_can_compute_it() -> None:
    assert weight("acme/shop", "127.0.0.1:7001") == hashlib.sha256(b"acme/shop\n127.0.0.1:7001").hexdigest()
    by_hand = sorted(ADDRESSES, key=lambda a: hashlib.sha256(f"acme/shop\n{a}".encode()).digest(), reverse=True)
    assert rendezvous_order("acme/shop", ADDRESSES) == by_hand


def test_the_order_is_stable_across_processes_and_input_order() -> None:
    keys = [route_key(TENANT, f"app{i}") for i in range(50)]
    here = [rendezvous_order(k, ADDRESSES) for k in keys]
    assert here == [rendezvous_order(k, list(reversed(ADDRESSES))) for k in keys]
    code = "import json, sys; from cached_client import rendezvous_order; print(json.dumps([rendezvous_order(k, sys.argv[2:]) for k in json.loads(sys.argv[1])]))"
    for seed in ("1", "2"):  # str hashing is seeded per process: the order must not depend on it
        out = subprocess.run([sys.executable, "-c", code, json.dumps(keys), *ADDRESSES], capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONHASHSEED": seed}, timeout=60)
        assert json.loads(out.stdout) == here


def test_keys_spread_over_the_addresses() -> None:
    counts = Counter(pick(route_key(TENANT, f"app{i}"), ADDRESSES) for i in range(600))
    assert set(counts) == set(ADDRESSES)
    assert min(counts.values()) >= 150, counts  # 200 each expected; a skewed hash would leave one far behind


def test_removing_an_address_moves_only_the_keys_it_served() -> None:
    keys = [route_key(TENANT, f"app{i}") for i in range(300)]
    gone = ADDRESSES[1]
    rest = [a for a in ADDRESSES if a != gone]
    before = {k: rendezvous_order(k, ADDRESSES) for k in keys}
    after = {k: pick(k, rest) for k in keys}
    moved = {k for k in keys if after[k] != before[k][0]}
    assert moved == {k for k in keys if before[k][0] == gone} and moved
    assert all(after[k] == before[k][1] for k in moved)  # each goes where its failover would have sent it


def test_addresses_come_as_a_list_or_a_comma_separated_string() -> None:
    assert parse_addresses(" 127.0.0.1:1, 127.0.0.1:2,,127.0.0.1:1 ") == ["127.0.0.1:1", "127.0.0.1:2"]
    assert parse_addresses(["127.0.0.1:2", "127.0.0.1:1"]) == ["127.0.0.1:2", "127.0.0.1:1"]
    with pytest.raises(ValueError):
        parse_addresses(" , ")


# ------------------------------------------------------------------ a fake daemon that records what reaches it


class Recorder(grpc.ServerInterceptor):
    """Records (method, x-cached-route) of every call that reaches the server."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str | None]] = []
        self.lock = threading.Lock()

    def intercept_service(self, continuation, handler_call_details):  # type: ignore[no-untyped-def]
        route = dict(handler_call_details.invocation_metadata or ()).get(ROUTE_METADATA)
        with self.lock:
            self.calls.append((handler_call_details.method, route))
        return continuation(handler_call_details)


class FlakyBuilder(cached_pb2_grpc.BuilderServicer, cached_pb2_grpc.ContentStoreServicer):
    """Refuses every call with UNAVAILABLE (a draining daemon), or streams one event of a build and then drops it."""

    def __init__(self, stream_first: bool) -> None:
        self.stream_first = stream_first

    def Build(self, request, context):  # type: ignore[no-untyped-def]
        if self.stream_first:
            yield cached_pb2.BuildEvent(phase=cached_pb2.Phase(name="lookup", state=cached_pb2.Phase.STARTED))
        context.abort(grpc.StatusCode.UNAVAILABLE, "going away")

    def FindMissingBlobs(self, request, context):  # type: ignore[no-untyped-def]
        context.abort(grpc.StatusCode.UNAVAILABLE, "going away")

    def ReadBlob(self, request, context):  # type: ignore[no-untyped-def]
        context.abort(grpc.StatusCode.UNAVAILABLE, "going away")
        yield  # pragma: no cover - abort raises


@pytest.fixture
def fake_daemon() -> Iterator[Callable[[bool], tuple[str, Recorder]]]:
    servers: list[grpc.Server] = []

    def start(stream_first: bool = False) -> tuple[str, Recorder]:
        recorder = Recorder()
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), interceptors=[recorder])
        servicer = FlakyBuilder(stream_first)
        cached_pb2_grpc.add_BuilderServicer_to_server(servicer, server)
        cached_pb2_grpc.add_ContentStoreServicer_to_server(servicer, server)
        port = server.add_insecure_port("127.0.0.1:0")
        server.start()
        servers.append(server)
        return f"127.0.0.1:{port}", recorder

    yield start
    for server in servers:
        server.stop(grace=None)


def _app_routed_first_to(address: str, addresses: list[str], prefix: str = "app") -> str:
    """An app name whose rendezvous order starts with address (found by trying names: each has a fair chance)."""
    return next(f"{prefix}{i}" for i in range(1000) if pick(route_key(TENANT, f"{prefix}{i}"), addresses) == address)


def _refused_address() -> str:
    """A loopback port nothing listens on (bound, then closed): connecting to it is refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"127.0.0.1:{s.getsockname()[1]}"


def _apps_on(daemon: DaemonProcess) -> dict[str, int]:
    """The apps of TENANT this daemon built, with its build count for each."""
    with Client(daemon.address) as client:
        return {a.app: a.builds for a in client.stats_response().app_stats if a.tenant == TENANT}


def _files(app: str) -> dict[str, bytes]:
    return tiny_app(WRITE_DIST, extra={"src/name.txt": app.encode()})


# ------------------------------------------------------------------ real daemons


@pytest.fixture
def three(make_daemon: Callable[..., DaemonProcess], tmp_path: Path) -> list[DaemonProcess]:
    return [make_daemon(tmp_path / f"d{i}") for i in range(3)]


def test_an_app_always_reaches_its_daemon_apps_spread_and_a_stopped_daemon_fails_over(three: list[DaemonProcess]) -> None:
    by_address = {d.address: d for d in three}
    addresses = list(by_address)
    apps = [f"app{i}" for i in range(6)]
    expected = {app: pick(route_key(TENANT, app), addresses) for app in apps}
    assert len(set(expected.values())) >= 2, expected  # the names below would not show a spread otherwise

    with Client(",".join(addresses)) as client:
        for app in apps:
            results = [client.build(files=_files(app), app=app, tenant=TENANT, force=True) for _ in range(2)]
            assert [r.server for r in results] == [expected[app]] * 2
    for address, daemon in by_address.items():
        assert _apps_on(daemon) == {app: 2 for app in apps if expected[app] == address}

    app = apps[0]
    order = rendezvous_order(route_key(TENANT, app), addresses)
    assert by_address[order[0]].stop() == 0
    with Client(list(reversed(addresses))) as client:  # the order of the list does not matter either
        result = client.build(files=_files(app), app=app, tenant=TENANT)
        assert result.server == order[1] and result.outputs
        out = client.write_outputs(TENANT, result, by_address[order[1]].root.parent / "out")  # read from the daemon that built it
    assert (out / "index.html").read_text() == "<h1>hello</h1>\n"
    assert _apps_on(by_address[order[1]]).get(app) == 1


def test_the_cli_routes_and_fails_over_the_same_way(three: list[DaemonProcess], tmp_path: Path) -> None:
    addresses = [d.address for d in three]
    app = "cli-app"
    app_dir = tmp_path / "src"
    for path, content in _files(app).items():
        (app_dir / path).parent.mkdir(parents=True, exist_ok=True)
        (app_dir / path).write_bytes(content)

    def cli_build() -> dict[str, object]:
        out = subprocess.run([sys.executable, "-m", "cached", "build", str(app_dir), "--app", f"{TENANT}/{app}", "--server", ",".join(addresses),
                              "--json", "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=120, cwd=REPO)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    order = rendezvous_order(route_key(TENANT, app), addresses)
    assert cli_build()["server"] == order[0]
    next(d for d in three if d.address == order[0]).stop()
    data = cli_build()
    assert data["server"] == order[1] and data["cache"] == "miss"
    assert (tmp_path / "out" / "index.html").is_file()


def test_unavailable_before_any_event_goes_to_the_next_daemon_with_the_route_metadata(make_daemon: Callable[..., DaemonProcess], fake_daemon, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """The fake daemon refuses with UNAVAILABLE and records what reached it; the real one (tokens on) accepts the header and builds."""
    tokens = tmp_path / "tokens"
    tokens.write_text(f"build:{TENANT}:{BUILD_TOKEN}\n")
    tokens.chmod(0o600)
    real = make_daemon(args=["--token-file", str(tokens)])
    fake, recorder = fake_daemon(False)
    addresses = [real.address, fake]
    app = _app_routed_first_to(fake, addresses)
    with Client(addresses, token=BUILD_TOKEN) as client:
        result = client.build(files=_files(app), app=app, tenant=TENANT)
        big = client.build(files={**_files(app), "public/big.bin": os.urandom(3 << 20)}, app=app, tenant=TENANT)
        page = client.read_blob(TENANT, result.outputs[0], app=app)  # a proxy would route it to the app's daemon
    assert result.server == real.address and big.server == real.address and page == b"<h1>hello</h1>\n"
    assert recorder.calls == [
        ("/cached.v1.Builder/Build", f"{TENANT}/{app}"),
        ("/cached.v1.ContentStore/FindMissingBlobs", f"{TENANT}/{app}"),  # the uploads of a build are routed with it
        ("/cached.v1.ContentStore/ReadBlob", f"{TENANT}/{app}"),
    ]
    assert big.outputs and result.outputs


def test_a_build_that_streamed_events_is_not_replayed_elsewhere(make_daemon: Callable[..., DaemonProcess], fake_daemon) -> None:  # type: ignore[no-untyped-def]
    real = make_daemon()
    fake, recorder = fake_daemon(True)
    addresses = [real.address, fake]
    app = _app_routed_first_to(fake, addresses, prefix="streamed")
    seen: list[str] = []
    with Client(addresses) as client, pytest.raises(Unavailable):
        client.build(files=_files(app), app=app, tenant=TENANT, on_event=lambda e: seen.append(e.WhichOneof("event")))
    assert seen == ["phase"]
    assert recorder.calls == [("/cached.v1.Builder/Build", f"{TENANT}/{app}")]
    assert app not in _apps_on(real)


def test_each_address_is_tried_once_and_calls_not_about_an_app_take_the_first_that_answers(make_daemon: Callable[..., DaemonProcess], fake_daemon) -> None:  # type: ignore[no-untyped-def]
    real = make_daemon()
    fake, recorder = fake_daemon(False)
    dead = _refused_address()
    with Client([dead, real.address]) as client:
        assert client.stats().root == str(real.root)
        assert client.stats(address=real.address).root == str(real.root)
    with Client([dead, fake]) as client, pytest.raises(Unavailable) as e:
        client.build(files=_files("nowhere"), app="nowhere", tenant=TENANT)
    assert dead in e.value.details and fake in e.value.details
    assert recorder.calls == [("/cached.v1.Builder/Build", f"{TENANT}/nowhere")]


def test_the_async_client_routes_and_fails_over(make_daemon: Callable[..., DaemonProcess], tmp_path: Path) -> None:
    import asyncio

    real = make_daemon()
    dead = _refused_address()
    addresses = [dead, real.address]
    app = _app_routed_first_to(dead, addresses, prefix="async")

    async def run() -> str:
        async with AsyncClient(",".join(addresses)) as client:
            return (await client.build(files=_files(app), app=app, tenant=TENANT)).server

    assert asyncio.run(run()) == real.address
    assert _apps_on(real) == {app: 1}


# ------------------------------------------------------------------ Ruby


def _ruby() -> str:
    path = shutil.which("ruby")
    if path is None:
        pytest.fail("ruby is missing: `make deps` installs Debian's ruby and ruby-grpc")
    return path


RUBY_ORDERS = """
require "json"
require "cached"
keys, addresses = JSON.parse(ARGV[0])
puts JSON.generate(keys.map { |k| Cached::Routing.order(k, addresses) })
"""


def test_ruby_picks_the_same_daemon_as_python() -> None:
    keys = [route_key(TENANT, f"app{i}") for i in range(200)] + [route_key("acme", "shop"), "t/caf\u00e9"]
    addresses = ADDRESSES + ["[::1]:7878", "10.0.0.9:443"]
    out = subprocess.run([_ruby(), f"-I{RUBY_LIB}", "-e", RUBY_ORDERS, json.dumps([keys, addresses])], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == [rendezvous_order(k, addresses) for k in keys]


RUBY_BUILD = """
require "json"
require "cached"
addresses, tenant, apps, files = JSON.parse(ARGV[0])
client = Cached::Client.new(addresses.join(","), token: nil)
puts JSON.generate(apps.map { |app| client.build(app_id: app, tenant: tenant, files: files).server })
"""


def test_the_ruby_client_builds_on_the_daemon_python_would_pick_and_fails_over(make_daemon: Callable[..., DaemonProcess], tmp_path: Path) -> None:
    daemons = [make_daemon(tmp_path / f"d{i}") for i in range(2)]
    dead = _refused_address()
    addresses = [dead, *(d.address for d in daemons)]
    apps = [_app_routed_first_to(dead, addresses, prefix="rb-dead"), *(_app_routed_first_to(d.address, addresses, prefix="rb") for d in daemons)]
    files = {k: v.decode() for k, v in _files("ruby").items()}
    env = {k: v for k, v in os.environ.items() if k not in ("CACHED_TOKEN", "CACHED_ADDRESS")}
    out = subprocess.run([_ruby(), f"-I{RUBY_LIB}", "-e", RUBY_BUILD, json.dumps([addresses, TENANT, apps, files])],
                         capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr
    servers = json.loads(out.stdout)
    assert servers[1:] == [d.address for d in daemons]
    assert servers[0] == rendezvous_order(route_key(TENANT, apps[0]), addresses)[1]
    assert _apps_on(daemons[0]).get(apps[1]) == 1 and apps[1] not in _apps_on(daemons[1])


# ------------------------------------------------------------------ cached watch


def test_watch_uploads_and_builds_on_the_apps_daemon(make_daemon: Callable[..., DaemonProcess], tmp_path: Path) -> None:
    """The watcher sends files by digest after uploading them: both must reach the daemon its app routes to."""
    daemons = [make_daemon(tmp_path / f"d{i}") for i in range(2)]
    addresses = [d.address for d in daemons]
    app = _app_routed_first_to(addresses[1], addresses, prefix="watched")  # not the first of the list
    app_dir = tmp_path / app
    for path, content in _files(app).items():
        (app_dir / path).parent.mkdir(parents=True, exist_ok=True)
        (app_dir / path).write_bytes(content)
    proc = subprocess.Popen([sys.executable, "-m", "cached", "watch", str(app_dir), "--app", f"{TENANT}/{app}", "--server", ",".join(addresses),
                             "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    guard = threading.Timer(120, proc.kill)  # bounded even if the watcher never prints
    guard.start()
    try:
        first = json.loads(next(line for line in proc.stdout if line.startswith("{")))  # type: ignore[union-attr]
    finally:
        guard.cancel()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
    assert first["event"] == "built", (first, proc.stderr.read() if proc.stderr else "")  # type: ignore[union-attr]
    assert _apps_on(daemons[1]) == {app: 1} and _apps_on(daemons[0]) == {}
