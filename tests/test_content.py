"""ContentStore on a bare store: answers scoped to the tenant, uploads re-hashed, reads re-hashed."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from cached.content import VERIFY_FIRST_BYTES, ContentStore
from cached.digest import Digest
from cached.errors import DataLoss, InvalidRequest, NotFound
from cached.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store.open(tmp_path / "root", flush_interval=0.05) as s:
        yield s


def _upload(content: ContentStore, tenant: str, blobs: list[tuple[Digest, bytes]]) -> list[Digest]:
    async def run() -> list[Digest]:
        async with content.upload(tenant) as upload:
            for digest, data in blobs:
                await upload.start(digest)
                await upload.write(data)
            return await upload.commit()
    return asyncio.run(run())


def _read(content: ContentStore, tenant: str, digest: Digest) -> bytes:
    async def run() -> bytes:
        return b"".join([chunk async for chunk in content.read(tenant, digest)])
    return asyncio.run(run())


def test_a_blob_is_missing_for_every_tenant_but_the_one_that_uploaded_it(store: Store) -> None:
    content = ContentStore(store)
    data = b"hello"
    digest = store.hasher.bytes(data)
    assert _upload(content, "t1", [(digest, data)]) == [digest]
    assert content.find_missing("t1", [digest]) == []
    assert content.find_missing("t2", [digest]) == [digest]
    assert _read(content, "t1", digest) == data
    with pytest.raises(NotFound):
        _read(content, "t2", digest)


def test_an_upload_that_does_not_hash_to_its_digest_is_not_kept(store: Store) -> None:
    content = ContentStore(store)
    announced = store.hasher.bytes(b"abcde")
    with pytest.raises(InvalidRequest, match="nothing was stored"):
        _upload(content, "t1", [(announced, b"abcdX")])
    assert content.find_missing("t1", [announced]) == [announced]
    assert not os.listdir(store.root / "tmp")


def test_an_upload_past_its_announced_size_or_limit_fails(store: Store) -> None:
    content = ContentStore(store, max_blob_bytes=8)
    with pytest.raises(InvalidRequest, match="more bytes"):
        _upload(content, "t1", [(store.hasher.bytes(b"ab"), b"abc")])
    with pytest.raises(InvalidRequest, match="at most 8"):
        _upload(content, "t1", [(store.hasher.bytes(b"0123456789"), b"0123456789")])
    assert not os.listdir(store.root / "tmp")


def test_a_blob_of_unknown_digest_is_kept_under_the_digest_it_hashes_to(store: Store) -> None:
    content = ContentStore(store, max_blob_bytes=8)
    known = store.hasher.bytes(b"known")
    stored = _upload(content, "t1", [(None, b"abc"), (known, b"known"), (None, b"")])  # type: ignore[list-item]
    assert stored == [store.hasher.bytes(b"abc"), known, store.hasher.bytes(b"")]
    assert content.find_missing("t1", stored) == []
    assert content.find_missing("t2", stored) == stored
    assert _read(content, "t1", stored[0]) == b"abc"
    with pytest.raises(InvalidRequest, match="more than 8 bytes"):
        _upload(content, "t1", [(None, b"0123456789")])  # type: ignore[list-item]
    assert not os.listdir(store.root / "tmp")


def test_bytes_before_a_digest_are_refused(store: Store) -> None:
    async def run() -> None:
        async with ContentStore(store).upload("t1") as upload:
            await upload.write(b"data")
    with pytest.raises(InvalidRequest, match="must carry its digest"):
        asyncio.run(run())


def test_a_digest_of_another_function_or_malformed_is_invalid(store: Store) -> None:
    content = ContentStore(store)
    with pytest.raises(InvalidRequest, match="this daemon uses"):
        content.find_missing("t1", [Digest("0" * 32, 1, "xxh3_128")])
    with pytest.raises(InvalidRequest, match="not a valid digest"):
        content.find_missing("t1", [Digest("zz" * 32, 1)])


@pytest.mark.parametrize("size", [100, VERIFY_FIRST_BYTES + 1], ids=["small", "large"])
def test_a_corrupt_blob_ends_its_read_with_data_loss(store: Store, size: int) -> None:
    content = ContentStore(store)
    data = os.urandom(size)
    digest = store.hasher.bytes(data)
    _upload(content, "t1", [(digest, data)])
    for path in store.blobs.files_of(digest):
        path.chmod(0o644)
        with open(path, "r+b") as f:
            f.seek(size // 2)
            f.write(b"\0" if data[size // 2] else b"\1")

    async def run() -> list[bytes]:
        chunks: list[bytes] = []
        with pytest.raises(DataLoss, match="corrupt"):
            async for chunk in content.read("t1", digest):
                chunks.append(chunk)
        return chunks

    received = asyncio.run(run())
    if size <= VERIFY_FIRST_BYTES:
        assert received == []  # checked before its first byte leaves
