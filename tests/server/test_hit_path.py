"""What a full hit costs inside the daemon: one LMDB read transaction, no write, no file opened.

The daemon runs in this process (a tiny app, so npm is instant), so the test
can count what the index and the file system see while one hit is answered.
"""

from __future__ import annotations

import asyncio
import builtins
import io
import os
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from cached.server.daemon import Daemon, DaemonConfig
from cached.store import Store
from cached.store.index import Index
from cached.v1 import cached_pb2
from cached.warm import WarmSettings
from cached_client import AsyncClient, CachedError, digest_of
from support import WRITE_DIST, tiny_app

TENANT = "t1"


@dataclass
class Costs:
    reads: int = 0  # LMDB read transactions
    writes: int = 0  # write transactions committed
    submitted: int = 0  # writes queued for the writer thread
    opened: list[str] = field(default_factory=list)  # files opened (any mode, any way)


@contextmanager
def counting(store: Store, monkeypatch: pytest.MonkeyPatch) -> Iterator[Costs]:
    costs = Costs()
    index = store.index
    reads, writes = index.read_txn_count, index.write_txn_count
    real_open, real_os_open, real_submit = builtins.open, os.open, Index.submit

    def counted_open(file, *args, **kwargs):  # type: ignore[no-untyped-def]
        costs.opened.append(str(file))
        return real_open(file, *args, **kwargs)

    def counted_os_open(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        costs.opened.append(str(path))
        return real_os_open(path, *args, **kwargs)

    def counted_submit(self, fn, **kwargs):  # type: ignore[no-untyped-def]
        costs.submitted += 1
        return real_submit(self, fn, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(builtins, "open", counted_open)
        m.setattr(io, "open", counted_open)
        m.setattr(os, "open", counted_os_open)
        m.setattr(Index, "submit", counted_submit)
        yield costs
        costs.reads = index.read_txn_count - reads
        costs.writes = index.write_txn_count - writes


@pytest.fixture
def config(tmp_path: Path, npm_cache: Path, monkeypatch: pytest.MonkeyPatch) -> DaemonConfig:
    # The access-time flush (every 30 s) is the one write a hit causes, later and in a batch: out of the way here.
    open_store = Store.open.__func__  # type: ignore[attr-defined]
    monkeypatch.setattr(Store, "open", classmethod(lambda cls, root, **kw: open_store(cls, root, **{**kw, "flush_interval": 3600.0})))
    return DaemonConfig(root=tmp_path / "root", listen="127.0.0.1:0", npm_cache=npm_cache, warm=WarmSettings(max_builders=0))


@asynccontextmanager
async def running(config: DaemonConfig) -> AsyncIterator[tuple[Daemon, AsyncClient]]:
    daemon = Daemon(config)
    port = await daemon.start()
    client = AsyncClient(f"127.0.0.1:{port}")
    try:
        yield daemon, client
    finally:
        await client.close()
        await daemon.stop()


def request(app: str, files: dict[str, bytes], env: dict[str, str], *, inline_up_to: int) -> cached_pb2.BuildRequest:
    """Files up to ``inline_up_to`` bytes inline, the others by digest (uploaded before)."""
    message = cached_pb2.BuildRequest(tenant=TENANT, app=app, env=env)
    for path, content in sorted(files.items()):
        if len(content) <= inline_up_to:
            message.files.append(cached_pb2.File(path=path, content=content))
        else:
            message.files.append(cached_pb2.File(path=path, digest=digest_of(content)))
    return message


def test_a_full_hit_is_one_read_transaction_no_write_and_no_file_opened(config: DaemonConfig, monkeypatch: pytest.MonkeyPatch) -> None:
    files = tiny_app(WRITE_DIST, extra={"src/a.txt": b"one", "src/big.bin": os.urandom(2 << 20)})
    env = {"GREETING": "hi", "API_URL": "https://example.invalid"}

    async def main() -> None:
        async with running(config) as (daemon, client):
            store = daemon.store
            await client.upload_missing(TENANT, list(files.values()))
            inline_request = request("inline", files, env, inline_up_to=1 << 20)  # big.bin by digest
            digest_request = request("bydigest", files, env, inline_up_to=0)  # every file by digest, key files included
            first = await client.build_request(inline_request)
            assert first.cache == "miss"
            other = await client.build_request(digest_request)
            assert other.cache == "hit"  # another app of the tenant, same inputs: its first build records the app
            env_hashes: list[str] = []
            real_env_hash = daemon.pipeline._env_hash
            monkeypatch.setattr(daemon.pipeline, "_env_hash", lambda spec, value: env_hashes.append(value) or real_env_hash(spec, value))
            await asyncio.wrap_future(store.flush())  # what the builds before queued is committed: only the hit is counted

            with counting(store, monkeypatch) as inline:
                hit = await client.build_request(inline_request)
            await asyncio.wrap_future(store.flush())
            with counting(store, monkeypatch) as digests:
                hit_by_digest = await client.build_request(digest_request)

            assert hit.cache == "hit" and hit_by_digest.cache == "hit"
            assert [(o.path, o.digest) for o in hit.outputs] == [(o.path, o.digest) for o in first.outputs]
            for costs in (inline, digests):
                assert costs.reads == 1, costs
                assert costs.writes == 0 and costs.submitted == 0, costs
                assert costs.opened == [], costs
            assert env_hashes == []  # no AppRecord is made when the app's last action is this one

    asyncio.run(main())


def test_a_hit_on_another_action_than_the_apps_last_never_waits_for_the_write(config: DaemonConfig) -> None:
    one = tiny_app(WRITE_DIST, extra={"src/a.txt": b"one"})
    two = tiny_app(WRITE_DIST, extra={"src/a.txt": b"two"})

    async def main() -> None:
        async with running(config) as (daemon, client):
            a = await client.build(files=one, app="toggle", tenant=TENANT)
            b = await client.build(files=two, app="toggle", tenant=TENANT)
            assert (a.cache, b.cache) == ("miss", "miss")
            gate = threading.Event()
            blocker = daemon.store.index.submit(lambda txn: gate.wait(30))  # the writer thread is busy
            try:
                again = await asyncio.wait_for(client.build(files=one, app="toggle", tenant=TENANT), 10)
                assert again.cache == "hit" and again.action_key == a.action_key
                # The record is queued, not committed; the daemon already answers with it.
                assert daemon.pipeline.app_record(TENANT, "toggle").last_action_key == a.action_key  # type: ignore[union-attr]
                assert daemon.store.apps.get(TENANT, "toggle").last_action_key == b.action_key  # type: ignore[union-attr]
                back = await asyncio.wait_for(client.build(files=two, app="toggle", tenant=TENANT), 10)
                assert back.cache == "hit" and back.action_key == b.action_key
            finally:
                gate.set()
            await asyncio.wrap_future(blocker)
            await asyncio.wrap_future(daemon.store.flush())
            record = daemon.store.apps.get(TENANT, "toggle")
            assert record is not None and record.last_action_key == b.action_key and record.builds == 4

    asyncio.run(main())


def test_files_sent_by_digest_stay_the_tenants_own_when_the_hit_checks_them(config: DaemonConfig) -> None:
    files = tiny_app(WRITE_DIST, extra={"src/a.txt": b"mine"})

    async def main() -> None:
        async with running(config) as (daemon, client):
            await client.upload_missing(TENANT, list(files.values()))
            mine = request("owned", files, {}, inline_up_to=0)
            assert (await client.build_request(mine)).cache == "miss"
            assert (await client.build_request(mine)).cache == "hit"  # key files from memory, ownership in the lookup
            theirs = cached_pb2.BuildRequest()
            theirs.CopyFrom(mine)
            theirs.tenant = "t2"  # the same digests: t1's memory never answers for t2
            with pytest.raises(CachedError) as refused:
                await client.build_request(theirs)
            assert refused.value.code == grpc.StatusCode.FAILED_PRECONDITION and "not in the store for tenant t2" in refused.value.details
            # t1 loses a file it sent (its owner record gone, as a sweep would drop it): the hit's one read says so.
            gone = digest_of(files["src/a.txt"])
            key = f"blake3:{gone.hash}:{gone.size}".encode() + b"\x00" + TENANT.encode()
            owners = daemon.store.index.db("owners")
            await asyncio.wrap_future(daemon.store.index.submit(lambda txn: txn.delete(key, db=owners)))
            with pytest.raises(CachedError) as lost:
                await client.build_request(mine)
            assert lost.value.code == grpc.StatusCode.FAILED_PRECONDITION and "src/a.txt" in lost.value.details

    asyncio.run(main())
