"""The static-assets manifest: which output files Cloudflare serves, under which content hash.

Cloudflare's asset hash (wrangler's, see cloudflare-workers.md) is
``blake3(base64(bytes) + ext).hexdigest()[:32]``: it differs from the store's
digest, so it is computed here from the blob's bytes, once per (digest, ext)
per process. Files over the 25 MiB asset limit are not assets: they go to R2
and the Worker serves them. This module reads blobs and never writes anything.
"""

from __future__ import annotations

import base64
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import BinaryIO, Protocol

import blake3

from cached.deploy.errors import DeployInvalid
from cached.deploy.mime import content_type, extension
from cached.digest import Digest
from cached.v1 import tree_pb2

ASSET_LIMIT = 25 << 20          # bytes per asset file
MAX_ASSET_FILES = 20_000        # files per version on the free plan (100,000 paid)
_MEMO_SIZE = 65_536
# Read by Cloudflare from the assets directory and never served as files (wrangler sends
# their text in the version's assets config; Miniflare parses them from the directory).
EDGE_RULE_FILES = ("_headers", "_redirects")
EDGE_RULE_LIMIT = 1 << 20


class BlobSource(Protocol):
    """What the deployer needs of a store: read a blob by digest."""

    def open(self, digest: Digest) -> BinaryIO: ...


def asset_hash(data: bytes, path: str) -> str:
    """Cloudflare's asset hash of a file's bytes; ``path`` gives the extension (case kept)."""
    return blake3.blake3(base64.b64encode(data) + extension(path).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Asset:
    path: str          # relative, forward slashes (the manifest key is "/" + path)
    digest: Digest     # the store's digest, to read the bytes back
    hash: str          # Cloudflare's asset hash
    content_type: str

    @property
    def key(self) -> str:
        return "/" + self.path


@dataclass(frozen=True)
class LargeFile:
    """A file over the asset limit: served from R2 under ``<prefix>/<digest hash>``."""

    path: str
    digest: Digest
    content_type: str


@dataclass
class Manifest:
    assets: list[Asset] = field(default_factory=list)
    large: list[LargeFile] = field(default_factory=list)
    rules: dict[str, str] = field(default_factory=dict)  # "_headers" / "_redirects" at the output's root -> text

    def upload_manifest(self) -> dict[str, dict[str, object]]:
        """The ``manifest`` body of the upload session: ``{"/path": {"hash", "size"}}``."""
        return {a.key: {"hash": a.hash, "size": a.digest.size} for a in self.assets}

    def by_hash(self) -> dict[str, Asset]:
        return {a.hash: a for a in self.assets}


class AssetHasher:
    """Computes asset hashes from blobs, remembering them by (digest, extension)."""

    def __init__(self, blobs: BlobSource, *, limit: int = ASSET_LIMIT, max_files: int = MAX_ASSET_FILES) -> None:
        self.blobs = blobs
        self.limit = limit
        self.max_files = max_files
        self._memo: OrderedDict[tuple[Digest, str], str] = OrderedDict()
        self._lock = threading.Lock()

    def manifest(self, tree: tree_pb2.Tree) -> Manifest:
        """Splits the outputs into assets and large files. Symlinks are refused (outputs have none)."""
        if tree.symlinks:
            raise DeployInvalid(f"the outputs hold symlinks ({tree.symlinks[0].path}); assets must be regular files")
        result = Manifest()
        for node in sorted(tree.files, key=lambda n: n.path):
            digest = Digest.from_proto(node.digest)
            kind = content_type(node.path)
            if node.path in EDGE_RULE_FILES:
                if digest.size > EDGE_RULE_LIMIT:
                    raise DeployInvalid(f"{node.path} is {digest.size} bytes; the deployer takes a rules file of at most {EDGE_RULE_LIMIT >> 20} MiB")
                try:
                    result.rules[node.path] = self.read(digest).decode("utf-8")
                except UnicodeDecodeError:
                    raise DeployInvalid(f"{node.path} is not UTF-8 text") from None
            elif digest.size > self.limit:
                result.large.append(LargeFile(node.path, digest, kind))
            else:
                result.assets.append(Asset(node.path, digest, self.hash_of(digest, node.path), kind))
        if len(result.assets) > self.max_files:
            raise DeployInvalid(f"{len(result.assets)} asset files; a Worker version holds at most {self.max_files}")
        return result

    def hash_of(self, digest: Digest, path: str) -> str:
        key = (digest, extension(path))
        with self._lock:
            if key in self._memo:
                self._memo.move_to_end(key)
                return self._memo[key]
        value = asset_hash(self.read(digest), path)
        with self._lock:
            self._memo[key] = value
            while len(self._memo) > _MEMO_SIZE:
                self._memo.popitem(last=False)
        return value

    def read(self, digest: Digest) -> bytes:
        with self.blobs.open(digest) as f:
            return f.read()


def base64_of(blobs: BlobSource, digest: Digest) -> bytes:
    with blobs.open(digest) as f:
        return base64.b64encode(f.read())


def missing(manifest: Manifest, hashes: Iterable[str]) -> list[Asset]:
    by_hash = manifest.by_hash()
    return [by_hash[h] for h in hashes if h in by_hash]
