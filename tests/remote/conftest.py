"""Shared-tier fixtures: one moto S3 server for the module's tests (a fresh bucket each), key pairs, and tiers closed at the end."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from cached.remote.settings import RemoteSettings
from cached.remote.signing import generate_keypair
from cached.remote.tier import RemoteTier
from remote_support import Keys, MotoS3, credentials_file


@pytest.fixture(scope="session", autouse=True)
def quiet_werkzeug() -> None:
    """moto's server logs every request at INFO; the tests' failures are easier to read without."""
    logging.getLogger("werkzeug").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoS3]:
    server = MotoS3().start()
    yield server
    server.stop()


@pytest.fixture
def bucket(s3_server: MotoS3) -> str:
    return s3_server.new_bucket()


@pytest.fixture
def make_keys(tmp_path: Path) -> Callable[[str], Keys]:
    def make(name: str) -> Keys:
        keys = Keys(tmp_path / f"{name}.key", tmp_path / f"{name}.pub")
        generate_keypair(keys.private, keys.public)
        return keys

    return make


@pytest.fixture
def writer_keys(make_keys: Callable[[str], Keys]) -> Keys:
    return make_keys("writer")


@pytest.fixture
def make_tier(tmp_path: Path, s3_server: MotoS3, bucket: str, writer_keys: Keys) -> Iterator[Callable[..., RemoteTier]]:
    """Tiers on the test's bucket: a writer by default (``signing=None`` for a reader trusting the writer's key)."""
    made: list[RemoteTier] = []
    creds = credentials_file(tmp_path)

    def make(*, signing: Path | None | str = "writer", trusted: Path | None = None, server: MotoS3 | None = None,
             url: str | None = None, **tunables: Any) -> RemoteTier:
        settings = RemoteSettings.load(
            url or f"s3://{bucket}/team-cache", endpoint=(server or s3_server).endpoint, credentials_file=str(creds),
            signing_key_file=str(writer_keys.private if signing == "writer" else signing or ""),
            trusted_keys_file=str(trusted or (writer_keys.public if signing is None else "")), **tunables)
        tier = RemoteTier(settings)
        made.append(tier)
        return tier

    yield make
    for tier in made:
        tier.close(timeout=5)
