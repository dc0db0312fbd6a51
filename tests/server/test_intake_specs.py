"""Intake keeps the spec of an all-inline request: an identical request is not validated again.

What is kept must be exactly what validation would give again, and never
serve another request: another tenant, another byte, a request with files by
digest or a deploy each go through validation.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from cached.errors import InvalidRequest
from cached.pipeline import intake as intake_module
from cached.pipeline.intake import Intake, SpecMemory
from cached.request.spec import Limits
from cached.store import Store
from cached.v1 import cached_pb2
from cached_client import digest_of

PACKAGE = json.dumps({"name": "a", "version": "1.0.0", "scripts": {"build": "node b.js"}}).encode()


def request(tenant: str = "t1", extra: bytes = b"one", app: str = "a", **fields: object) -> cached_pb2.BuildRequest:
    message = cached_pb2.BuildRequest(tenant=tenant, app=app, env={"B": "2", "A": "1"}, **fields)  # type: ignore[arg-type]
    message.files.append(cached_pb2.File(path="package.json", content=PACKAGE))
    message.files.append(cached_pb2.File(path="src/a.txt", content=extra))
    return message


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = Store.open(tmp_path / "root")
    yield s
    s.close()


def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = intake_module.parse_request

    def parse(request, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(request.tenant)
        return real(request, *args, **kwargs)

    monkeypatch.setattr(intake_module, "parse_request", parse)
    return calls


def test_an_identical_request_gets_the_kept_spec_without_validation(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = counted(monkeypatch)
    intake = Intake(store, Limits())
    first, by_digest = asyncio.run(intake.parse(request()))
    again, again_by_digest = asyncio.run(intake.parse(cached_pb2.BuildRequest.FromString(request().SerializeToString())))
    assert again is first and by_digest == again_by_digest == ()
    assert calls == ["t1"]
    # another tenant, or another byte of a file, is another request
    other_tenant, _ = asyncio.run(intake.parse(request(tenant="t2")))
    other_file, _ = asyncio.run(intake.parse(request(extra=b"two")))
    assert other_tenant.tenant == "t2" and other_file.by_path["src/a.txt"].content == b"two"
    assert calls == ["t1", "t2", "t1"]


def test_only_an_equal_request_gets_the_kept_spec(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = counted(monkeypatch)
    intake = Intake(store, Limits())
    base = request(extra=b"x" * 100_000 + b"a")
    asyncio.run(intake.parse(base))
    last_byte = request(extra=b"x" * 100_000 + b"b")
    executable = request(extra=b"x" * 100_000 + b"a")
    executable.files[1].executable = True
    env = request(extra=b"x" * 100_000 + b"a")
    env.env["A"] = "other"
    mode = request(extra=b"x" * 100_000 + b"a", mode="staging")
    for variant in (last_byte, executable, env, mode):
        spec, _ = asyncio.run(intake.parse(variant))
        again, _ = asyncio.run(intake.parse(base))  # each variant replaced it: validated again
        assert spec != again
    assert len(calls) == 9
    # equal, though the map was filled in another order and the message parsed from other bytes
    reordered = cached_pb2.BuildRequest(tenant="t1", app="a", env={"A": "1", "B": "2"})
    reordered.files.extend(base.files)
    assert asyncio.run(intake.parse(reordered))[0] is asyncio.run(intake.parse(base))[0]
    assert len(calls) == 9


def test_requests_with_files_by_digest_or_a_deploy_and_refused_ones_are_validated_each_time(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    calls = counted(monkeypatch)
    intake = Intake(store, Limits())
    deploy = request(deploy=cached_pb2.DeployOptions())
    by_digest = request()
    by_digest.files.append(cached_pb2.File(path="src/big.bin", digest=digest_of(b"big")))
    bad = request()
    bad.app = "Not An Id"
    for _ in range(2):
        asyncio.run(intake.parse(deploy))
        _, left = asyncio.run(intake.parse(by_digest))
        assert [path for path, _ in left] == ["src/big.bin"]  # its ownership is still the lookup's to check
        with pytest.raises(InvalidRequest):
            asyncio.run(intake.parse(bad))
    assert len(calls) == 6


def test_kept_specs_are_bounded_in_bytes_least_recently_used_first_out(store: Store) -> None:
    specs = SpecMemory(max_bytes=2 * (len(PACKAGE) + 1) + 5)  # room for one request of two files and its spec
    intake = Intake(store, Limits(), specs=specs)
    one, two = request(app="one"), request(app="two")
    asyncio.run(intake.parse(one))
    asyncio.run(intake.parse(two))
    assert specs.get(one) is None  # the older went when the newer came
    assert specs.get(two) is not None
    assert specs.bytes <= specs.max_bytes
