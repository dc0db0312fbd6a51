"""An install reaches the daemon's registry and the allowlisted ones (`cached serve --allow-registry`), nothing else.

Real ``npm`` runs in the sandbox with the egress of a daemon that allowlists
a second registry, on the files an install is given: the ``.npmrc`` as
``install_npmrc`` writes it, the lockfile as ``registry_only`` rewrites it
with the app's accepted registries, the environment as ``install_env`` makes
it. Every address is on 127.0.0.1; a third registry stands for one nobody
allowed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from cached.deps.lockfile import registry_only
from cached.execution.environment import install_env
from cached.keys import install_npmrc
from cached.request.npmrc import tenant_registries
from cached.sandbox import Sandbox, SandboxSpec
from cached.sandbox.egress import EgressPolicy, EgressProxy
from egress_support import LocalRegistry, Trap
from sbx_support import BASE_ENV, ListSink, run
from support import integrity, npm_tarball


@pytest.fixture
def regs() -> Iterator[tuple[LocalRegistry, LocalRegistry, LocalRegistry]]:
    """The daemon's registry, an allowlisted one, and one nobody allowed."""
    made = (LocalRegistry(), LocalRegistry(), LocalRegistry())
    yield made
    for reg in made:
        reg.close()


def _publish(reg: LocalRegistry, name: str, version: str) -> bytes:
    tarball = npm_tarball(name, version, {"index.js": f"module.exports = {name!r};\n"})
    reg.publish(name, version, tarball)
    if name.startswith("@"):
        reg.packuments[name.replace("/", "%2f")] = reg.packuments[name]  # npm asks for a scoped packument by its encoded name
    return tarball


def _env(ws: Path, own: LocalRegistry, npmrc: str) -> dict[str, str]:
    """The install step's environment: the daemon's registry, over which the app's accepted registry= wins."""
    base = {
        **BASE_ENV, "HOME": "/tmp", "TMPDIR": "/tmp", "npm_config_cache": str(ws / ".npm-cache"),
        "npm_config_userconfig": "/tmp/.npmrc-user", "npm_config_globalconfig": "/tmp/.npmrc-global",
        "npm_config_update_notifier": "false", "npm_config_registry": own.url,
    }
    return install_env(base, tenant_registries(npmrc).get("", ""))


def _write_app(ws: Path, npmrc: str, dependencies: dict[str, str], lock: dict[str, object] | None, own: LocalRegistry) -> None:
    """The files an install sees, made as the dependency layer makes them."""
    (ws / "package.json").write_text(json.dumps({"name": "app", "version": "1.0.0", "dependencies": dependencies}))
    (ws / ".npmrc").write_text(install_npmrc(npmrc))
    if lock is not None:
        raw = json.dumps({"name": "app", "version": "1.0.0", "lockfileVersion": 3, "requires": True, "packages": lock}).encode()
        (ws / "package-lock.json").write_bytes(registry_only(raw, own.url, registries=tenant_registries(npmrc)))


def _policy(own: LocalRegistry, allowed: LocalRegistry) -> EgressPolicy:
    return EgressPolicy.for_registries(own.url, [allowed.url])


def test_npm_ci_fetches_a_scope_from_its_allowlisted_registry_and_the_rest_from_the_daemons(
    sandbox: Sandbox, ws: Path, regs: tuple[LocalRegistry, LocalRegistry, LocalRegistry]
) -> None:
    own, allowed, stranger = regs
    private, public = _publish(allowed, "@priv/pkg", "1.0.0"), _publish(own, "pub", "2.0.0")
    npmrc = f"@priv:registry={allowed.url}\n"
    lock = {
        "": {"name": "app", "version": "1.0.0", "dependencies": {"@priv/pkg": "1.0.0", "pub": "2.0.0"}},
        "node_modules/@priv/pkg": {"version": "1.0.0", "integrity": integrity(private)},
        "node_modules/pub": {"version": "2.0.0", "resolved": f"{stranger.url}pub/-/pub-2.0.0.tgz", "integrity": integrity(public)},
    }
    _write_app(ws, npmrc, {"@priv/pkg": "1.0.0", "pub": "2.0.0"}, lock, own)
    spec = SandboxSpec(argv=["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], workspace=ws, env=_env(ws, own, npmrc),
                       timeout=120, label="install", egress=_policy(own, allowed))
    sink = ListSink()
    result = run(sandbox.run(spec, sink))
    assert result.returncode == 0, result.tail
    assert (ws / "node_modules/@priv/pkg/index.js").read_text() == "module.exports = '@priv/pkg';\n"
    assert (ws / "node_modules/pub/index.js").read_text() == "module.exports = 'pub';\n"
    assert allowed.tarball_requests() == ["/@priv/pkg/-/pkg-1.0.0.tgz"]
    assert own.tarball_requests() == ["/pub/-/pub-2.0.0.tgz"]
    assert stranger.requests == []


def test_an_apps_accepted_registry_line_is_the_one_npm_resolves_against(
    sandbox: Sandbox, ws: Path, regs: tuple[LocalRegistry, LocalRegistry, LocalRegistry]
) -> None:
    """npm reads its environment over a project .npmrc: the install env must carry the app's registry=."""
    own, allowed, stranger = regs
    _publish(allowed, "onlythere", "1.0.0")
    npmrc = f"registry={allowed.url.upper().rstrip('/')}\n"  # another spelling of the same registry
    _write_app(ws, npmrc, {"onlythere": "^1.0.0"}, None, own)
    spec = SandboxSpec(argv=["npm", "install", "--package-lock-only", "--ignore-scripts", "--no-audit", "--no-fund"], workspace=ws,
                       env=_env(ws, own, npmrc), timeout=120, label="install", egress=_policy(own, allowed))
    sink = ListSink()
    result = run(sandbox.run(spec, sink))
    assert result.returncode == 0, result.tail
    assert json.loads((ws / "package-lock.json").read_text())["packages"]["node_modules/onlythere"]["version"] == "1.0.0"
    assert [p for p, _ in allowed.requests if not p.endswith(".tgz")] == ["/onlythere"]
    assert own.requests == [] and stranger.requests == []


PROBE = r"""
const net = require('net');
function ask(request) { return new Promise((done) => {
  const s = net.connect({ host: '127.0.0.1', port: +new URL(process.env.npm_config_proxy).port }); let data = '';
  s.setTimeout(5000);
  s.on('connect', () => s.write(request));
  s.on('data', (c) => { data += c; });
  s.on('close', () => done(data.split('\r\n')[0]));
  s.on('error', (e) => done('error ' + e.code));
  s.on('timeout', () => { s.destroy(); done('timeout'); });
}); }
(async () => {
  const out = {};
  out.get_allowed = await ask('GET http://127.0.0.1:ALLOWED/x HTTP/1.1\r\nConnection: close\r\n\r\n');
  out.get_stranger = await ask('GET http://127.0.0.1:STRANGER/x HTTP/1.1\r\n\r\n');
  out.connect_trap = await ask('CONNECT 127.0.0.1:TRAP HTTP/1.1\r\n\r\n');
  console.log(JSON.stringify(out));
})();
"""


def test_the_proxy_lets_allowlisted_origins_through_and_refuses_the_rest(
    sandbox: Sandbox, ws: Path, regs: tuple[LocalRegistry, LocalRegistry, LocalRegistry], trap: Trap
) -> None:
    own, allowed, stranger = regs
    script = PROBE.replace("ALLOWED", str(allowed.port)).replace("STRANGER", str(stranger.port)).replace("TRAP", str(trap.port))
    spec = SandboxSpec(argv=["node", "-e", script], workspace=ws, env=BASE_ENV, timeout=60, label="install", egress=_policy(own, allowed))
    sink = ListSink()
    result = run(sandbox.run(spec, sink))
    assert result.returncode == 0, result.tail
    out = json.loads(sink.of("stdout")[-1])
    assert out["get_allowed"] == "HTTP/1.1 404 Not Found", out  # answered by the allowlisted registry itself
    assert out["get_stranger"].startswith("HTTP/1.1 403") and out["connect_trap"].startswith("HTTP/1.1 403"), out
    assert [p for p, _ in allowed.requests] == ["/x"] and stranger.requests == [] and trap.connections == 0
    refused = [line for line in sink.of("stderr") if line.startswith("[cached] refused")]
    assert len(refused) == 2 and all(f"this step reaches only the registries (http://127.0.0.1:{own.port}, http://127.0.0.1:{allowed.port})" in line for line in refused), refused


async def _exchange(proxy: EgressProxy, request: bytes) -> bytes:
    import socket

    listener = socket.create_server(("127.0.0.1", 0))
    await proxy.serve(listener)
    try:
        reader, writer = await asyncio.open_connection(*listener.getsockname())
        writer.write(request)
        await writer.drain()
        data = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        return data
    finally:
        await proxy.close()


def test_a_kept_connection_stays_with_the_origin_of_its_first_request(regs: tuple[LocalRegistry, LocalRegistry, LocalRegistry]) -> None:
    """Both origins are allowed, but one connection has one upstream: a second origin on it is not forwarded there."""
    own, allowed, _ = regs
    own.tarballs["/a.tgz"] = b"from own"
    first = f"GET http://127.0.0.1:{own.port}/a.tgz HTTP/1.1\r\n\r\n".encode()
    second = f"GET http://127.0.0.1:{allowed.port}/b.tgz HTTP/1.1\r\n\r\n".encode()
    proxy = EgressProxy(_policy(own, allowed), None)
    answer = asyncio.run(_exchange(proxy, first + second))
    assert answer.startswith(b"HTTP/1.1 200") and b"from own" in answer
    assert proxy.stats.refused == 1 and [p for p, _ in own.requests] == ["/a.tgz"] and allowed.requests == []


def test_the_policy_holds_the_registry_and_the_allowlisted_origins() -> None:
    p = EgressPolicy.for_registries("http://127.0.0.1:4873/", ["HTTP://127.0.0.1:4874/npm/", "https://[::1]/", "http://127.0.0.1:4873/other/"])
    assert [o.origin for o in p.origins] == ["http://127.0.0.1:4873", "http://127.0.0.1:4874", "https://[::1]:443"]
    assert p.allows("127.0.0.1", 4874) and p.allows("::1", 443) and not p.allows("127.0.0.1", 4875)
    found = p.find("::1", 443)
    assert found is not None and found.tls
    assert EgressPolicy.for_registry("http://127.0.0.1:4873/").described == "the registry (http://127.0.0.1:4873)"
    with pytest.raises(ValueError):
        EgressPolicy.for_registries("http://127.0.0.1:4873/", ["ftp://127.0.0.1/"])
