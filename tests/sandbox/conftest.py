"""Fixtures for the sandbox tests: real namespaces, real processes."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from cached.sandbox import Cgroups, CgroupsUnavailable, Sandbox, SandboxCapabilities, probe_sandbox
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


@pytest.fixture(scope="module")
def cgroups() -> Iterator[Cgroups]:
    """Real cgroups, under a parent of the module's own, removed after its last test."""
    try:
        groups = Cgroups.open(f"test-{uuid.uuid4().hex[:12]}")
    except CgroupsUnavailable as e:
        pytest.skip(f"no usable cgroups here: {e}")
    yield groups
    groups.reclaim()
    for parent in groups.parents.values():
        os.rmdir(parent)


@pytest.fixture(scope="module")
def limited(capabilities: SandboxCapabilities, cgroups: Cgroups) -> Sandbox:
    """The namespace sandbox with the module's cgroups: every run in a group of its own."""
    if not capabilities.namespaces or not capabilities.root:
        pytest.skip(f"these tests expect root and namespaces: {capabilities.detail}")
    return Sandbox("namespaces", capabilities=capabilities, cgroups=cgroups)


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
