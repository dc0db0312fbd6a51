"""The generated stubs in the package are what the protos say (run `make proto` when this fails)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from support import REPO, DaemonProcess



def test_generated_stubs_are_fresh(tmp_path: Path) -> None:
    protos = sorted(str(p.relative_to(REPO)) for p in (REPO / "proto").rglob("*.proto"))
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", "-Iproto", f"--python_out={tmp_path}", f"--grpc_python_out={tmp_path}", *protos],
        cwd=REPO, check=True,
    )
    generated = [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.py")]
    with_services = {p.removesuffix(".proto") for p in protos if "\nservice " in (REPO / p).read_text()}
    expected = [g for g in generated if not g.endswith("_grpc.py") or "proto/" + g.removesuffix("_pb2_grpc.py") in with_services]
    assert len(expected) >= 5
    stale = [name for name in expected if not (REPO / name).exists() or (tmp_path / name).read_bytes() != (REPO / name).read_bytes()]
    assert stale == [], f"stale generated code: {stale}; run `make proto`"


def test_reflection_lists_the_services(daemon: DaemonProcess) -> None:
    with grpc.insecure_channel(daemon.address) as channel:
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name for r in responses for s in r.list_services_response.service}
    assert {"cached.v1.Builder", "cached.v1.ContentStore", "cached.v1.Admin", "grpc.health.v1.Health"} <= names


def test_health_reports_serving(daemon: DaemonProcess) -> None:
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(daemon.address) as channel:
        status = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service="cached.v1.Builder")).status
    assert status == health_pb2.HealthCheckResponse.SERVING
