"""A tenant's .npmrc may not choose the registry, credentials, a proxy or TLS trust.

Refusals are checked through the real gRPC API (INVALID_ARGUMENT naming the
key and its line, nothing written, never a credential's value); the reading
of the file as npm reads it, the normalised registry URLs and the lockfile's
treatment of accepted registries are checked as plain functions.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator

import grpc
import pytest

from cached.deps.lockfile import ForeignSource, registry_only
from cached.errors import InvalidRequest
from cached.keys import install_npmrc
from cached.request.npmrc import accepted_registries, check_npmrc, normalise_registry, parse_npmrc, tenant_registries
from cached_client import CachedError, Client
from egress_support import LocalRegistry, Trap
from support import DaemonProcess, dev_tool_app, integrity, npm_tarball, tiny_app

SECRET = "s3cr3t-" + uuid.uuid4().hex  # a credential's value: it must appear in no answer and no log
OWN = "http://127.0.0.1:4873/"
ALLOWED = (OWN, "http://127.0.0.1:4874/npm/")

# (line, the key the refusal names) for every kind that is always refused
ALWAYS_REFUSED = [
    (f"//127.0.0.1:4873/:_authToken={SECRET}", "//127.0.0.1:4873/:_authToken"),
    (f"//127.0.0.1:4873/npm/:_password={SECRET}", "//127.0.0.1:4873/npm/:_password"),
    (f"_auth={SECRET}", "_auth"),
    (f"_authToken={SECRET}", "_authToken"),
    (f"_password={SECRET}", "_password"),
    (f"username={SECRET}", "username"),
    (f"password={SECRET}", "password"),
    (f"email={SECRET}", "email"),
    (f"certfile={SECRET}", "certfile"),
    (f"keyfile={SECRET}", "keyfile"),
    (f"cert={SECRET}", "cert"),
    (f"key={SECRET}", "key"),
    (f"proxy=http://127.0.0.1:9/{SECRET}", "proxy"),
    (f"https-proxy=http://127.0.0.1:9/{SECRET}", "https-proxy"),
    (f"http-proxy=http://127.0.0.1:9/{SECRET}", "http-proxy"),
    (f"noproxy={SECRET}", "noproxy"),
    (f"no-proxy={SECRET}", "no-proxy"),
    (f"ca={SECRET}", "ca"),
    (f"cafile=/tmp/{SECRET}", "cafile"),
    ("strict-ssl=false", "strict-ssl"),
    # spellings npm reads as the same key (or that we refuse as if it did)
    (f"HTTPS_PROXY=http://127.0.0.1:9/{SECRET}", "HTTPS_PROXY"),
    (f"Strict_SSL=false ; {SECRET}", "Strict_SSL"),
    (f'"_authToken" = "{SECRET}"', "_authToken"),
    (f"_authToken;comment={SECRET}", "_authToken"),
    (f"ca[]={SECRET}", "ca"),
    ("strict-ssl", "strict-ssl"),  # a bare key is `true` to npm
]


def _refusal(text: str, allowed: tuple[str, ...] = ALLOWED) -> str:
    with pytest.raises(InvalidRequest) as refused:
        check_npmrc(text, allowed)
    return str(refused.value)


# -- the policy as plain functions ------------------------------------------------------------------


@pytest.mark.parametrize(("line", "key"), ALWAYS_REFUSED)
def test_credentials_proxies_and_tls_keys_are_refused_naming_the_key_never_the_value(line: str, key: str) -> None:
    message = _refusal(f"legacy-peer-deps=true\n{line}\n")
    assert f"line 2 sets {key!r}" in message, message
    assert "remove it" in message
    assert SECRET not in message


def test_the_registry_is_read_the_way_npm_reads_it() -> None:
    """npm's ini: a key ends at ';' or '#', quoted keys are unquoted, key[] is key; we refuse any case."""
    for line in ("registry;x=http://127.0.0.1:9/", '"registry"=http://127.0.0.1:9/', "REGISTRY=http://127.0.0.1:9/",
                 "registry[]=http://127.0.0.1:9/", "@Evil:registry=http://127.0.0.1:9/", "  registry = 'http://127.0.0.1:9/'"):
        message = _refusal(line)
        assert "http://127.0.0.1:9/" in message and "--allow-registry URL" in message, (line, message)
        assert "packages come from the registry the daemon is configured with" in message
    lines = parse_npmrc("a=1\r\n\r\n# c\n; c\n[section]\nb = 'x;y'\nc=\"q#r\"\nd\n")
    assert [(n.number, n.key, n.value) for n in lines] == [(1, "a", "1"), (6, "b", "x;y"), (7, "c", "q#r"), (8, "d", "true")]


def test_a_registry_is_accepted_when_it_is_the_daemons_or_allowlisted_in_any_spelling() -> None:
    text = "registry=HTTP://127.0.0.1:4873\n@Own:registry=http://127.0.0.1:4874/npm\n@b:registry=http://127.0.0.1:80/\n"
    assert _refusal(text).startswith("files['.npmrc']: line 3 sets '@b:registry' to http://127.0.0.1/")
    accepted = {"registry": OWN, "@own:registry": "http://127.0.0.1:4874/npm/"}
    assert check_npmrc(text.rsplit("@b", 1)[0], ALLOWED) == {"": OWN, "@own": "http://127.0.0.1:4874/npm/"}
    assert tenant_registries(text) == {"": OWN, "@own": "http://127.0.0.1:4874/npm/", "@b": "http://127.0.0.1/"}
    assert tenant_registries(None) == {} and tenant_registries("legacy-peer-deps=true\n") == {}
    # what the install's npm reads: the accepted registry lines, normalised, with the deps-key settings
    assert install_npmrc(text.rsplit("@b", 1)[0] + "loglevel=silly\n") == "".join(f"{k}={v}\n" for k, v in accepted.items())
    # another path on the same origin is another registry
    assert "to http://127.0.0.1:4874/other/," in _refusal("registry=http://127.0.0.1:4874/other/")
    assert "no registry URL" in _refusal("registry=ftp://127.0.0.1/") and "no registry URL" in _refusal("registry=http://u:p@127.0.0.1:4873/")


def test_registry_urls_are_normalised() -> None:
    assert normalise_registry("HTTPS://Host.Test:443/a") == "https://host.test/a/"
    assert normalise_registry("http://[::1]:4873") == "http://[::1]:4873/"
    assert accepted_registries("http://127.0.0.1:4873", ["http://127.0.0.1:4874/npm"]) == ALLOWED
    for bad in ("127.0.0.1:4873", "http:///x", "http://127.0.0.1/?q=1", "http://127.0.0.1:99999/"):
        with pytest.raises(ValueError):
            normalise_registry(bad)
    with pytest.raises(ValueError, match="--allow-registry"):
        accepted_registries(OWN, ["file:///etc"])


def _lock(entries: dict[str, dict[str, object]]) -> bytes:
    return json.dumps({"lockfileVersion": 3, "packages": {"": {}, **entries}}).encode()


def test_the_install_lockfile_treats_an_accepted_registry_as_that_registrys() -> None:
    own, other = OWN, "http://127.0.0.1:4874/npm/"
    lock = _lock({
        "node_modules/@priv/a": {"version": "1.0.0", "integrity": "sha512-a"},
        "node_modules/@priv/b": {"version": "1.0.0", "resolved": "http://127.0.0.1:9/@priv/b/-/b-1.0.0.tgz", "integrity": "sha512-b"},
        "node_modules/@priv/c": {"version": "1.0.0", "resolved": f"{other}@priv/c/-/c-1.0.0.tgz"},
        "node_modules/pub": {"version": "2.0.0", "integrity": "sha512-p"},
        "node_modules/alias": {"name": "@priv/d", "version": "1.0.0", "integrity": "sha512-d"},
    })
    out = json.loads(registry_only(lock, own, registries={"@priv": other}))["packages"]
    assert out["node_modules/@priv/a"]["resolved"] == f"{other}@priv/a/-/a-1.0.0.tgz"
    assert out["node_modules/@priv/b"]["resolved"] == f"{other}@priv/b/-/b-1.0.0.tgz"
    assert out["node_modules/@priv/c"]["resolved"] == f"{other}@priv/c/-/c-1.0.0.tgz"  # kept as it was
    assert out["node_modules/pub"]["resolved"] == f"{own}pub/-/pub-2.0.0.tgz"
    assert out["node_modules/alias"]["resolved"] == f"{other}@priv/d/-/d-1.0.0.tgz"
    # the app's registry= is the default for unscoped entries
    out = json.loads(registry_only(lock, own, registries={"": other}))["packages"]
    assert out["node_modules/pub"]["resolved"] == f"{other}pub/-/pub-2.0.0.tgz"
    # without registries, as the dependency layer calls it: everything belongs to the daemon's registry
    out = json.loads(registry_only(lock, own))["packages"]
    assert out["node_modules/@priv/a"]["resolved"] == f"{own}@priv/a/-/a-1.0.0.tgz"
    assert out["node_modules/@priv/c"]["resolved"] == f"{own}@priv/c/-/c-1.0.0.tgz"
    with pytest.raises(ForeignSource, match=r"reach only the registries \(http://127.0.0.1:4873/, http://127.0.0.1:4874/npm/\)"):
        registry_only(_lock({"node_modules/x": {"version": "1.0.0", "resolved": "http://127.0.0.1:9/x.tgz"}}), own, registries={"@priv": other})


# -- through the real gRPC API ----------------------------------------------------------------------


def _with_npmrc(text: str) -> dict[str, bytes]:
    return {**dev_tool_app(), ".npmrc": text.encode()}


def test_every_refused_key_is_invalid_argument_through_the_api_and_nothing_is_written(daemon: DaemonProcess) -> None:
    tenant = "npmrc-" + uuid.uuid4().hex[:8]
    with Client(daemon.address) as client:
        before = client.stats_response()
        for line, key in ALWAYS_REFUSED:
            with pytest.raises(CachedError) as refused:
                client.build(files=_with_npmrc(f"# mine\n{line}\n"), app="npmrc", tenant=tenant)
            assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT, (line, refused.value.details)
            assert f"line 2 sets {key!r}" in refused.value.details, refused.value.details
            assert SECRET not in refused.value.details
        for line in ("registry=http://127.0.0.1:9/", "@scope:registry=http://127.0.0.1:9/"):
            with pytest.raises(CachedError) as refused:
                client.build(files=_with_npmrc(line), app="npmrc", tenant=tenant)
            assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
            assert "cached serve --allow-registry URL" in refused.value.details
        after = client.stats_response()
    assert (after.blobs, after.actions, after.builds) == (before.blobs, before.actions, before.builds)
    assert tenant not in {t.tenant for t in after.tenant_stats}
    assert not (daemon.root / "work" / tenant).exists()
    assert SECRET not in daemon.log()


def test_npm_config_in_the_request_env_is_refused_too(daemon: DaemonProcess) -> None:
    """The request's env never reaches an install, and npm_config_* is refused outright, in any case."""
    with Client(daemon.address) as client:
        for name in ("npm_config_registry", "NPM_CONFIG_REGISTRY", "npm_config__authToken", "npm_config_https_proxy"):
            with pytest.raises(CachedError) as refused:
                client.build(files=dev_tool_app(), app="npmrc-env", tenant="t1", env={name: f"http://127.0.0.1:9/{SECRET}"})
            assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT and name in refused.value.details
            assert SECRET not in refused.value.details


@pytest.fixture(scope="module")
def registries() -> Iterator[tuple[LocalRegistry, LocalRegistry, LocalRegistry]]:
    """The daemon's registry, one the operator allowlists, and one nobody allowed."""
    regs = (LocalRegistry(), LocalRegistry(), LocalRegistry())
    yield regs
    for reg in regs:
        reg.close()


@pytest.fixture(scope="module")
def allowing_daemon(tmp_path_factory: pytest.TempPathFactory, registries: tuple[LocalRegistry, LocalRegistry, LocalRegistry]) -> Iterator[DaemonProcess]:
    own, allowed, _ = registries
    base = tmp_path_factory.mktemp("npmrc-allow")
    proc = DaemonProcess(base / "root", base / "npm-cache", args=["--registry", own.url, "--allow-registry", allowed.url.upper()]).start()
    yield proc
    proc.stop()


COPY = """
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
mkdirSync("dist", { recursive: true });
writeFileSync("dist/out.txt", readFileSync("node_modules/@priv/pkg/index.js"));
"""


def _scoped_app(allowed: LocalRegistry, version: str, *, lockfile: bytes | None) -> dict[str, bytes]:
    files = tiny_app(COPY)
    package = json.loads(files["package.json"])
    package["dependencies"] = {"@priv/pkg": version}
    files["package.json"] = json.dumps(package).encode()
    files[".npmrc"] = f"@priv:registry={allowed.url.rstrip('/')}\n".encode()
    if lockfile is None:
        del files["package-lock.json"]
    else:
        files["package-lock.json"] = lockfile
    return files


def test_a_registry_nobody_allowed_is_refused_and_never_reached(
    allowing_daemon: DaemonProcess, registries: tuple[LocalRegistry, LocalRegistry, LocalRegistry], trap: Trap
) -> None:
    _, _, stranger = registries
    with Client(allowing_daemon.address) as client:
        for url in (stranger.url, f"http://127.0.0.1:{trap.port}/"):
            with pytest.raises(CachedError) as refused:
                client.build(files=_scoped_app(stranger, "1.0.0", lockfile=None) | {".npmrc": f"registry={url}\n".encode()}, app="stranger", tenant="t1")
            assert refused.value.code == grpc.StatusCode.INVALID_ARGUMENT
            assert f"line 1 sets 'registry' to {url}" in refused.value.details
    assert stranger.requests == [] and trap.connections == 0


def test_an_allowlisted_scoped_registry_is_reached_by_the_install_steps(
    allowing_daemon: DaemonProcess, registries: tuple[LocalRegistry, LocalRegistry, LocalRegistry]
) -> None:
    """Resolving (no lockfile) asks the allowlisted registry for the scope's packument, through the egress proxy."""
    own, allowed, stranger = registries
    tarball = npm_tarball("@priv/pkg", "1.0.0", {"index.js": "module.exports = 'private';\n"})
    for reg in (allowed, own):  # own too, until the dependency layer passes the app's registries to its lockfile copy
        reg.publish("@priv/pkg", "1.0.0", tarball)
        reg.packuments["@priv%2fpkg"] = reg.packuments["@priv/pkg"]  # npm asks for a scoped packument by its encoded name
    with Client(allowing_daemon.address) as client:
        result = client.build(files=_scoped_app(allowed, "^1.0.0", lockfile=None), app="scoped", tenant="t1")
    assert json.loads(result.lockfile)["packages"]["node_modules/@priv/pkg"]["version"] == "1.0.0"
    assert any(path.lower().startswith("/@priv%2fpkg") for path, _ in allowed.requests), allowed.requests
    assert stranger.requests == []


def test_an_allowlisted_registry_serves_the_install_its_lockfile_names(
    allowing_daemon: DaemonProcess, registries: tuple[LocalRegistry, LocalRegistry, LocalRegistry]
) -> None:
    _, allowed, _ = registries
    tarball = npm_tarball("@priv/pkg", "2.0.0", {"index.js": "module.exports = 'only there';\n"})
    url = allowed.publish("@priv/pkg", "2.0.0", tarball)
    lock = {
        "lockfileVersion": 3, "requires": True,
        "packages": {"": {"dependencies": {"@priv/pkg": "2.0.0"}}, "node_modules/@priv/pkg": {"version": "2.0.0", "resolved": url, "integrity": integrity(tarball)}},
    }
    with Client(allowing_daemon.address) as client:
        client.build(files=_scoped_app(allowed, "2.0.0", lockfile=json.dumps(lock).encode()), app="scoped-lock", tenant="t1")
    assert "/@priv/pkg/-/pkg-2.0.0.tgz" in allowed.tarball_requests()
