"""A run with egress has its own network namespace whose one way out is the daemon's proxy to the registry.

Every address here is on 127.0.0.1: a "registry" (plain HTTP) and a trap
listener standing for any other port of the host (the daemon's gRPC port, a
database, a metadata service).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cached.sandbox import Sandbox, SandboxSpec
from cached.sandbox.egress import (
    PROXY_PORT,
    EgressPolicy,
    EgressProxy,
    RequestHead,
    absolute_target,
    parse_authority,
)
from egress_support import LocalRegistry, Trap
from sbx_support import BASE_ENV, ListSink, run


@pytest.fixture
def registry() -> Iterator[LocalRegistry]:
    reg = LocalRegistry()
    reg.tarballs["/pkg/-/pkg-1.0.0.tgz"] = b"tarball bytes"
    yield reg
    reg.close()


# Node: each probe prints one JSON line {name: outcome}; bounded by socket timeouts.
PROBE = r"""
const net = require('net');
const out = {};
function tcp(name, host, port) { return new Promise((done) => {
  const s = net.connect({ host, port }); s.setTimeout(3000);
  s.on('connect', () => { out[name] = 'connected'; s.destroy(); done(); });
  s.on('error', (e) => { out[name] = 'error ' + e.code; done(); });
  s.on('timeout', () => { out[name] = 'timeout'; s.destroy(); done(); });
}); }
function viaProxy(name, request) { return new Promise((done) => {
  const s = net.connect({ host: '127.0.0.1', port: PROXY }); let data = ''; s.setTimeout(5000);
  const finish = (what) => { if (!(name in out)) out[name] = what; s.destroy(); done(); };
  s.on('connect', () => s.write(request));
  s.on('data', (c) => { data += c; const end = data.indexOf('\r\n\r\n'); if (end < 0) return;
    const length = /content-length: *(\d+)/i.exec(data.slice(0, end));  // wait for the whole body
    if (!length || data.length - end - 4 >= Number(length[1])) finish(data.split('\r\n')[0] + ' ' + data.slice(end + 4, end + 40)); });
  s.on('error', (e) => finish('error ' + e.code));
  s.on('timeout', () => finish('timeout'));
  s.on('close', () => finish('closed ' + data));
}); }
(async () => {
  await tcp('trap', '127.0.0.1', TRAP);
  await tcp('registry_direct', '127.0.0.1', REG);
  await tcp('metadata', '169.254.169.254', 80);
  await viaProxy('connect_trap', `CONNECT 127.0.0.1:${TRAP} HTTP/1.1\r\nHost: 127.0.0.1:${TRAP}\r\n\r\n`);
  await viaProxy('connect_registry_host_other_port', `CONNECT 127.0.0.1:${REG + 1} HTTP/1.1\r\n\r\n`);
  await viaProxy('get_trap', `GET http://127.0.0.1:${TRAP}/x.tgz HTTP/1.1\r\nHost: 127.0.0.1:${TRAP}\r\n\r\n`);
  await viaProxy('origin_form', `GET /pkg HTTP/1.1\r\nHost: 127.0.0.1:${TRAP}\r\n\r\n`);
  await viaProxy('get_registry', `GET http://127.0.0.1:${REG}/pkg/-/pkg-1.0.0.tgz HTTP/1.1\r\nHost: 127.0.0.1:${TRAP}\r\n\r\n`);
  await viaProxy('connect_registry', `CONNECT 127.0.0.1:${REG} HTTP/1.1\r\n\r\n`);
  console.log(JSON.stringify(out));
})();
"""


def _probe(registry: LocalRegistry, trap: Trap) -> str:
    return PROBE.replace("PROXY", str(PROXY_PORT)).replace("TRAP", str(trap.port)).replace("REG", str(registry.port))


def test_an_egress_run_reaches_the_registry_through_the_proxy_and_nothing_else(
    sandbox: Sandbox, ws: Path, sink: ListSink, registry: LocalRegistry, trap: Trap
) -> None:
    spec = SandboxSpec(
        argv=["node", "-e", _probe(registry, trap)], workspace=ws, env=BASE_ENV, timeout=60, label="install",
        egress=EgressPolicy.for_registry(registry.url),
    )
    result = run(sandbox.run(spec, sink))
    assert result.returncode == 0, result.tail
    out = json.loads(sink.of("stdout")[-1])
    # no route to the host's loopback, nor anywhere else
    assert out["trap"] == "error ECONNREFUSED" and out["registry_direct"] == "error ECONNREFUSED", out
    assert out["metadata"].startswith("error"), out
    # through the proxy: the registry's origin only
    for name in ("connect_trap", "connect_registry_host_other_port", "get_trap"):
        assert out[name].startswith("HTTP/1.1 403 Forbidden"), (name, out)
    assert out["origin_form"].startswith("HTTP/1.1 403"), out
    assert out["get_registry"].startswith("HTTP/1.1 200") and "tarball bytes" in out["get_registry"], out
    assert out["connect_registry"] == "HTTP/1.1 200 Connection established ", out
    assert trap.connections == 0
    # the registry was asked for its own path, with its own Host
    assert ("/pkg/-/pkg-1.0.0.tgz", f"127.0.0.1:{registry.port}") in registry.requests
    # what was refused is in the run's output (hence the build's log)
    refused = [line for line in sink.of("stderr") if line.startswith("[cached] refused")]
    assert any(f"CONNECT 127.0.0.1:{trap.port}" in line for line in refused), refused
    assert len(refused) == 4, refused


def test_the_proxy_variables_are_set_and_win_over_the_callers(
    sandbox: Sandbox, ws: Path, sink: ListSink, registry: LocalRegistry
) -> None:
    env = {**BASE_ENV, "npm_config_proxy": "http://127.0.0.1:9", "npm_config_https_proxy": "http://127.0.0.1:9"}
    spec = SandboxSpec(
        argv=["sh", "-c", "echo $npm_config_proxy $npm_config_https_proxy"], workspace=ws, env=env,
        egress=EgressPolicy.for_registry(registry.url),
    )
    assert run(sandbox.run(spec, sink)).returncode == 0
    assert sink.of("stdout") == [f"http://127.0.0.1:{PROXY_PORT} http://127.0.0.1:{PROXY_PORT}"]


def test_without_egress_a_run_has_no_loopback_at_all(sandbox: Sandbox, ws: Path, sink: ListSink) -> None:
    script = "require('net').connect(PORT,'127.0.0.1').on('connect',()=>console.log('connected')).on('error',e=>console.log(e.code))"
    spec = SandboxSpec(argv=["node", "-e", script.replace("PORT", str(PROXY_PORT))], workspace=ws, env=BASE_ENV, timeout=20)
    assert run(sandbox.run(spec, sink)).returncode == 0
    assert sink.of("stdout") == ["ENETUNREACH"]  # lo is down: not even the sandbox's own loopback


def test_egress_needs_its_own_namespace(ws: Path) -> None:
    from cached.sandbox.spec import validate

    with pytest.raises(ValueError, match="network must be False"):
        validate(SandboxSpec(argv=["true"], workspace=ws, env={}, network=True, egress=EgressPolicy("127.0.0.1", 1, False)))


def test_sandbox_off_still_sends_npm_through_the_proxy(ws: Path, sink: ListSink, registry: LocalRegistry, trap: Trap) -> None:
    """Without namespaces nothing is confined, but npm's own fetches still go to the registry only."""
    script = (
        "const u=new URL(process.env.npm_config_proxy);const s=require('net').connect(+u.port,u.hostname);let d='';"
        "s.on('connect',()=>s.write('CONNECT 127.0.0.1:TRAP HTTP/1.1\\r\\n\\r\\n'));"
        "s.on('data',c=>{d+=c;if(d.includes('\\r\\n')){console.log(d.split('\\r\\n')[0]);s.destroy()}})"
    ).replace("TRAP", str(trap.port))
    spec = SandboxSpec(argv=["node", "-e", script], workspace=ws, env=BASE_ENV, timeout=20, egress=EgressPolicy.for_registry(registry.url))
    result = run(Sandbox("off").run(spec, sink))
    assert result.returncode == 0, result.tail
    assert sink.of("stdout") == ["HTTP/1.1 403 Forbidden"]
    assert trap.connections == 0


# -- the policy and the proxy's parsing, without processes ----------------------------------------


def test_the_policy_is_the_registrys_origin() -> None:
    p = EgressPolicy.for_registry("https://Registry.Example:8443/npm/")
    assert (p.host, p.port, p.tls, p.origin) == ("registry.example", 8443, True, "https://registry.example:8443")
    assert EgressPolicy.for_registry("http://127.0.0.1:4873").port == 4873
    assert EgressPolicy.for_registry("https://[::1]/").authority == "[::1]:443"
    assert p.allows("REGISTRY.example", 8443) and not p.allows("registry.example", 443)
    for bad in ("ftp://x/", "registry.example", "https://u:p@r.example/", "https://r.example:99999/"):
        with pytest.raises(ValueError):
            EgressPolicy.for_registry(bad)


def test_targets_are_parsed_strictly() -> None:
    assert parse_authority("r.example:443") == ("r.example", 443)
    assert parse_authority("[::1]:80") == ("::1", 80)
    for bad in ("r.example", "r.example:", ":443", "r.example:0", "r.example:65536", "a@b:1", "::1:80", "r.example:44x"):
        assert parse_authority(bad) is None, bad
    assert absolute_target("http://127.0.0.1:4873/pkg?write=true") == ("127.0.0.1", 4873, "/pkg?write=true")
    assert absolute_target("http://127.0.0.1") == ("127.0.0.1", 80, "/")
    for bad in ("/pkg", "https://127.0.0.1/pkg", "http://user@127.0.0.1/", "http:///pkg"):
        assert absolute_target(bad) is None, bad
    head = RequestHead.parse(b"GET http://h:1/p HTTP/1.1\r\nHost: evil\r\nProxy-Authorization: x\r\nAccept: */*\r\n\r\n")
    assert head.origin_form("h:1", "/p") == b"GET /p HTTP/1.1\r\nHost: h:1\r\nAccept: */*\r\n\r\n"


async def _exchange(proxy: EgressProxy, request: bytes) -> bytes:
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    await proxy.serve(listener)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return data
    finally:
        await proxy.close()


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NOT HTTP\r\n\r\n", b"400"),
        (b"GET http://127.0.0.1:1/ HTTP/1.1\r\n folded: header\r\n\r\n", b"400"),
        (b"GET http://127.0.0.1:1/ HTTP/1.1\r\nX: " + b"a" * (40 << 10) + b"\r\n\r\n", b"400"),
        (b"CONNECT 127.0.0.1:2 HTTP/1.1\r\n\r\n", b"403"),
    ],
)
def test_bad_or_foreign_requests_get_an_answer_and_nothing_else(request_bytes: bytes, status: bytes) -> None:
    proxy = EgressProxy(EgressPolicy("127.0.0.1", 1, False), None)
    answer = asyncio.run(_exchange(proxy, request_bytes))
    assert answer.startswith(b"HTTP/1.1 " + status), answer[:100]
    assert proxy.stats.allowed == 0


def test_a_chunked_body_or_a_second_origin_on_a_kept_connection_is_not_forwarded(registry: LocalRegistry, trap: Trap) -> None:
    policy = EgressPolicy.for_registry(registry.url)
    first = f"GET http://127.0.0.1:{registry.port}/pkg/-/pkg-1.0.0.tgz HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    second = f"GET http://127.0.0.1:{trap.port}/steal HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    proxy = EgressProxy(policy, None)
    answer = asyncio.run(_exchange(proxy, first + second))
    assert answer.startswith(b"HTTP/1.1 200") and b"tarball bytes" in answer
    assert proxy.stats.refused == 1 and [p for p, _ in registry.requests] == ["/pkg/-/pkg-1.0.0.tgz"]
    chunked = f"POST http://127.0.0.1:{registry.port}/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n".encode()
    proxy = EgressProxy(policy, None)
    assert asyncio.run(_exchange(proxy, chunked)).startswith(b"HTTP/1.1 403")
    assert (proxy.stats.refused, proxy.stats.allowed) == (1, 0) and len(registry.requests) == 1
    assert trap.connections == 0


def test_closing_the_proxy_ends_every_tunnel_it_opened() -> None:
    """A run's end (its proxy's close) closes the upstream side too, even of a tunnel both ends keep open."""
    import socket

    async def scenario() -> bytes:
        upstream = socket.create_server(("127.0.0.1", 0))
        upstream.setblocking(False)
        loop = asyncio.get_running_loop()
        proxy = EgressProxy(EgressPolicy("127.0.0.1", upstream.getsockname()[1], True), None)
        listener = socket.create_server(("127.0.0.1", 0))
        await proxy.serve(listener)
        reader, writer = await asyncio.open_connection(*listener.getsockname())
        writer.write(f"CONNECT 127.0.0.1:{upstream.getsockname()[1]} HTTP/1.1\r\n\r\n".encode())
        assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).startswith(b"HTTP/1.1 200")
        conn, _ = await asyncio.wait_for(loop.sock_accept(upstream), 10)
        writer.write(b"hello")
        assert await asyncio.wait_for(loop.sock_recv(conn, 5), 10) == b"hello"
        await proxy.close()  # the client still holds its end open
        end = await asyncio.wait_for(loop.sock_recv(conn, 5), 10)
        writer.close()
        conn.close()
        upstream.close()
        return end

    assert asyncio.run(scenario()) == b""
