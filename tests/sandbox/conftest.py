"""Fixtures for the sandbox tests: real namespaces, real processes."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cached.sandbox import Sandbox, SandboxCapabilities, probe_sandbox
from sbx_support import ListSink

@pytest.fixture(scope="session")
def capabilities() -> SandboxCapabilities:
    return probe_sandbox()


@pytest.fixture(scope="session")
def sandbox(capabilities: SandboxCapabilities) -> Sandbox:
    if not capabilities.namespaces:
        pytest.skip(f"no namespaces here: {capabilities.detail}")
    if not capabilities.root:
        pytest.skip("these tests expect root (as CI); the user-namespace mode has its own test")
    return Sandbox("namespaces", capabilities=capabilities)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    path = tmp_path / "ws"
    path.mkdir()
    return path


@pytest.fixture
def marker() -> str:
    return f"cached-sbx-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def sink() -> Iterator[ListSink]:
    yield ListSink()
