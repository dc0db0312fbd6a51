"""Bad requests get the right status, name what is wrong, and leave the store unchanged."""

from __future__ import annotations

import grpc
import pytest

from cached.v1 import cached_pb2, cached_pb2_grpc, tree_pb2
from cached_client import CachedError, Client
from support import WRITE_DIST, DaemonProcess, tiny_app


def _request(files: dict[str, bytes], **kw: object) -> cached_pb2.BuildRequest:
    req = cached_pb2.BuildRequest(tenant=kw.pop("tenant", "t1"), app=kw.pop("app", "bad"), **kw)  # type: ignore[arg-type]
    for path, content in files.items():
        req.files.append(cached_pb2.File(path=path, content=content))
    return req


def _snapshot(client: Client) -> tuple[int, int, int, int]:
    s = client.stats()
    return (s.blobs, s.bytes, s.actions, s.apps)


BAD_CASES = [
    ("dotdot", lambda f: {**f, "../x": b"x"}, {}, grpc.StatusCode.INVALID_ARGUMENT, "../x"),
    ("absolute", lambda f: {**f, "/etc/x": b"x"}, {}, grpc.StatusCode.INVALID_ARGUMENT, "/etc/x"),
    ("node_modules", lambda f: {**f, "node_modules/a.js": b"x"}, {}, grpc.StatusCode.INVALID_ARGUMENT, "node_modules"),
    ("tenant", lambda f: f, {"tenant": "Bad Tenant"}, grpc.StatusCode.INVALID_ARGUMENT, "tenant"),
    ("app", lambda f: f, {"app": "../etc"}, grpc.StatusCode.INVALID_ARGUMENT, "app"),
    ("node_options", lambda f: f, {"env": {"NODE_OPTIONS": "--require /x"}}, grpc.StatusCode.INVALID_ARGUMENT, "NODE_OPTIONS"),
    ("npm_config", lambda f: f, {"env": {"npm_config_registry": "http://127.0.0.1:9"}}, grpc.StatusCode.INVALID_ARGUMENT, "npm_config_registry"),
    ("no_package_json", lambda f: {"build.mjs": f["build.mjs"]}, {}, grpc.StatusCode.INVALID_ARGUMENT, "package.json"),
    ("no_script", lambda f: f, {"build_script": "deploy"}, grpc.StatusCode.INVALID_ARGUMENT, "deploy"),
    ("bad_json", lambda f: {**f, "package.json": b"{"}, {}, grpc.StatusCode.INVALID_ARGUMENT, "JSON"),
    ("inline_too_big", lambda f: {**f, "public/big.bin": b"x" * ((1 << 20) + 1)}, {}, grpc.StatusCode.INVALID_ARGUMENT, "UploadBlobs"),
    # One byte over the kernel's per-string limit (MAX_ARG_STRLEN, "NAME=value" and its NUL): execve could never pass it.
    ("env_value_over_128k", lambda f: f, {"env": {"HUGE_VALUE": "x" * (131072 - len("HUGE_VALUE="))}}, grpc.StatusCode.INVALID_ARGUMENT, "HUGE_VALUE"),
]


@pytest.mark.parametrize("name,files,extra,code,needle", BAD_CASES, ids=[c[0] for c in BAD_CASES])
def test_bad_input_gets_its_status_and_changes_nothing(daemon: DaemonProcess, name, files, extra, code, needle) -> None:  # type: ignore[no-untyped-def]
    with Client(daemon.address) as client:
        before = _snapshot(client)
        with pytest.raises(CachedError) as e:
            client.build_request(_request(files(tiny_app(WRITE_DIST)), **extra))
        assert e.value.code == code, e.value
        assert needle in e.value.details
        assert _snapshot(client) == before


def test_file_by_unknown_digest_is_refused(daemon: DaemonProcess) -> None:
    req = _request(tiny_app(WRITE_DIST))
    req.files.append(cached_pb2.File(path="public/x.bin", digest=tree_pb2.Digest(hash="ab" * 32, size=3, function=tree_pb2.BLAKE3)))
    with Client(daemon.address) as client, pytest.raises(CachedError) as e:
        client.build_request(req)
    assert e.value.code == grpc.StatusCode.FAILED_PRECONDITION
    assert "UploadBlobs" in e.value.details


def test_an_env_value_at_the_kernels_limit_reaches_the_build(daemon: DaemonProcess) -> None:
    value = "v" * (131072 - len("AT_LIMIT=") - 1)  # exactly MAX_ARG_STRLEN with its NUL
    files = tiny_app("""
import { mkdirSync, writeFileSync } from "node:fs";
mkdirSync("dist", { recursive: true });
writeFileSync("dist/index.html", String(process.env.AT_LIMIT.length));
""")
    with Client(daemon.address) as client:
        result = client.build(files=files, app="env-limit", tenant="t1", env={"AT_LIMIT": value})
        (out,) = result.outputs
        assert client.read_blob("t1", out.digest_ref) == str(len(value)).encode()


def test_an_unknown_digest_function_is_invalid_argument_naming_the_field_and_the_known_functions(daemon: DaemonProcess) -> None:
    unknown = tree_pb2.Digest(hash="ab" * 32, size=3, function=7)  # proto3 enums are open: any number arrives

    def check(error: grpc.RpcError, field: str) -> None:
        assert error.code() == grpc.StatusCode.INVALID_ARGUMENT, error
        assert field in error.details() and "unknown digest function 7" in error.details()
        assert "BLAKE3 (1)" in error.details() and "XXH3_128 (2)" in error.details()

    req = _request(tiny_app(WRITE_DIST))
    req.files.append(cached_pb2.File(path="public/x.bin", digest=unknown))
    with grpc.insecure_channel(daemon.address) as channel:
        with pytest.raises(grpc.RpcError) as e:
            list(cached_pb2_grpc.BuilderStub(channel).Build(req))
        check(e.value, "files['public/x.bin'].digest.function")
        content = cached_pb2_grpc.ContentStoreStub(channel)
        with pytest.raises(grpc.RpcError) as e:
            content.FindMissingBlobs(cached_pb2.FindMissingBlobsRequest(tenant="t1", digests=[unknown]))
        check(e.value, "digest.function")
        with pytest.raises(grpc.RpcError) as e:
            list(content.ReadBlob(cached_pb2.ReadBlobRequest(tenant="t1", digest=unknown)))
        check(e.value, "digest.function")
        with pytest.raises(grpc.RpcError) as e:
            content.UploadBlobs(iter([cached_pb2.UploadChunk(tenant="t1", digest=unknown, data=b"abc")]))
        check(e.value, "digest.function")


def test_digest_from_proto_refuses_unknown_functions() -> None:
    from cached.digest import Digest, UnknownDigestFunction
    from cached.errors import InvalidRequest

    assert Digest.from_proto(tree_pb2.Digest(hash="AB", size=1)).function == "blake3"  # unspecified reads as BLAKE3
    assert Digest.from_proto(tree_pb2.Digest(hash="ab", size=1, function=tree_pb2.XXH3_128)).function == "xxh3_128"
    with pytest.raises(UnknownDigestFunction) as e:
        Digest.from_proto(tree_pb2.Digest(hash="ab", size=1, function=99), field="files['a'].digest")
    assert isinstance(e.value, InvalidRequest) and isinstance(e.value, ValueError)
    assert e.value.field == "files['a'].digest.function" and e.value.value == 99
