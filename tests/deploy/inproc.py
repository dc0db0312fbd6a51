"""A Deployer in the test process, over an in-memory blob source: for API-failure tests that need no build."""

from __future__ import annotations

import io
import time
from pathlib import Path

from cached.deploy.cloudflare import RetryPolicy
from cached.deploy.deployer import CloudflareSettings, Deployer, DeploySettings, MemoryHistory
from cached.digest import Digest, Hasher
from cached.v1 import records_pb2, tree_pb2


class DictBlobs:
    def __init__(self) -> None:
        self.data: dict[Digest, bytes] = {}
        self.hasher = Hasher("blake3")

    def add(self, content: bytes) -> Digest:
        digest = self.hasher.bytes(content)
        self.data[digest] = content
        return digest

    def open(self, digest: Digest) -> io.BytesIO:
        return io.BytesIO(self.data[digest])


def record(blobs: DictBlobs, files: dict[str, bytes]) -> records_pb2.ActionRecord:
    tree = tree_pb2.Tree(files=[tree_pb2.FileNode(path=p, digest=blobs.add(c).to_proto()) for p, c in sorted(files.items())])
    return records_pb2.ActionRecord(outputs=tree, created_unix_ms=int(time.time() * 1000))


def deployer(base_url: str, account_id: str, token: str, local_dir: Path, blobs: DictBlobs, *, attempts: int = 3) -> Deployer:
    settings = DeploySettings(
        local_dir=local_dir,
        cloudflare=CloudflareSettings(account_id=account_id, token=token, base_url=base_url, retry=RetryPolicy(attempts=attempts, base_s=0.01)),
    )
    return Deployer(settings, blobs, MemoryHistory(), lambda tenant, key: None)
