"""Publishing one version on Cloudflare: assets, the worker, a version, a deployment.

The order follows wrangler's: the upload session lists only the hashes
Cloudflare lacks, those are sent in buckets (a few at once), the completion
token goes into the version's metadata. A worker that does not exist yet is
created with a placeholder that serves no app (a 503), so a first *preview*
never puts an unreviewed version live; the app is then uploaded as a version,
and only a production deploy makes a deployment of it at 100%.

Nothing is asked twice that this process already knows: a worker seen to
exist is not looked up again, and a version whose assets are those of the
version this publisher uploaded last (same paths, same hashes: a promotion, a
change of vars) sends ``keep_assets`` instead of opening an upload session.
That is checked against Cloudflare's version number: if the new version is not
the one right after ours, someone else uploaded in between, the kept assets may
be theirs, and the version is uploaded again with an upload session.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cached.deploy.assets import Asset, BlobSource, Manifest, base64_of
from cached.deploy.cloudflare import CloudflareApi
from cached.deploy.errors import DeployError
from cached.deploy.worker import MAIN_MODULE, placeholder_metadata, placeholder_module

log = logging.getLogger("cached.deploy.publish")

PARALLEL_BUCKETS = 3


@dataclass(frozen=True)
class Published:
    version_id: str
    urls: list[str]
    assets_uploaded: int
    created: bool  # the worker was created by this deploy
    kept_assets: bool = False  # the version kept the assets of the one before it (no upload session)


@dataclass(frozen=True)
class _Uploaded:
    """The version this publisher uploaded last for a worker, and its assets."""

    version_id: str
    number: int  # Cloudflare's version number (0: not known, so the next deploy does not keep assets)
    assets: str  # assets_fingerprint of its manifest


def assets_fingerprint(manifest: Manifest) -> str:
    """What a version's assets are: every path with its hash and size (the rules travel in the config)."""
    data = json.dumps(manifest.upload_manifest(), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(data).hexdigest()


class CloudflarePublisher:
    def __init__(self, api: CloudflareApi, blobs: BlobSource, *, parallel_buckets: int = PARALLEL_BUCKETS) -> None:
        self.api = api
        self.blobs = blobs
        self.parallel_buckets = parallel_buckets
        self._subdomain: str | None = None
        self._exists: set[str] = set()  # workers known to exist (created here or seen)
        self._latest: dict[str, _Uploaded] = {}  # worker -> the version uploaded last from here

    async def publish(
        self, name: str, manifest: Manifest, module: str, metadata_for: Callable[[str | None], dict[str, object]], *,
        production: bool, message: str,
    ) -> Published:
        """``metadata_for(jwt)``: the version's metadata; ``jwt`` None asks it to keep the previous version's assets."""
        try:
            return await self._publish(name, manifest, module, metadata_for, production=production, message=message)
        except DeployError as e:
            if name not in self._exists or not (e.status == 404 or e.code == 10007):
                raise
            # The worker was deleted behind this process's back: forget what was known of it, create it again.
            log.info("worker gone since it was last seen: created again", extra={"script": name})
            self._exists.discard(name)
            self._latest.pop(name, None)
            return await self._publish(name, manifest, module, metadata_for, production=production, message=message)

    async def _publish(
        self, name: str, manifest: Manifest, module: str, metadata_for: Callable[[str | None], dict[str, object]], *,
        production: bool, message: str,
    ) -> Published:
        created = await self.ensure_worker(name)
        fingerprint = assets_fingerprint(manifest)
        last = self._latest.get(name)
        version: dict[str, Any] | None = None
        uploaded, kept = 0, False
        if not created and last is not None and last.number and last.assets == fingerprint:
            try:
                version = await self.api.upload_version(name, metadata_for(None), {MAIN_MODULE: module})
            except DeployError as e:
                if e.status == 404 or e.code == 10007:
                    raise
                log.info("keep_assets refused: sending the assets' manifest instead", extra={"script": name, "error": str(e)})
                version = None
            else:
                number = _number(version)
                if number != last.number + 1:
                    log.info("another version was uploaded since this daemon's last one: sending the assets' manifest",
                             extra={"script": name, "expected": last.number + 1, "got": number})
                    version = None
                else:
                    kept = True
        if version is None:
            jwt, uploaded = await self.sync_assets(name, manifest)
            version = await self.api.upload_version(name, metadata_for(jwt), {MAIN_MODULE: module})
        version_id = str((version or {}).get("id") or "")
        if not version_id:
            raise DeployError(f"Cloudflare accepted a version of {name} but returned no version id")
        self._latest[name] = _Uploaded(version_id, _number(version), fingerprint)
        if production:
            await self.api.deploy_version(name, version_id, message=message)
        sub = await self.subdomain()
        preview = f"https://{version_id[:8]}-{name}.{sub}.workers.dev"
        urls = [f"https://{name}.{sub}.workers.dev", preview] if production else [preview]
        return Published(version_id, urls, uploaded, created, kept)

    async def rollback(self, name: str, version_id: str, *, force: bool, message: str) -> list[str]:
        await self.api.deploy_version(name, version_id, message=message, force=force)
        sub = await self.subdomain()
        return [f"https://{name}.{sub}.workers.dev", f"https://{version_id[:8]}-{name}.{sub}.workers.dev"]

    async def ensure_worker(self, name: str) -> bool:
        """Creates the worker (placeholder, workers.dev and previews on) unless it exists (known here, or looked up)."""
        if name in self._exists:
            return False
        if await self.api.worker_exists(name):
            self._exists.add(name)
            return False
        placeholder = await self.api.put_script(name, placeholder_metadata(), {MAIN_MODULE: placeholder_module()})
        await self.api.enable_subdomain(name)
        self._exists.add(name)
        self._latest[name] = _Uploaded(str((placeholder or {}).get("id") or ""), _number(placeholder), "")
        log.info("worker created", extra={"script": name})
        return True

    async def sync_assets(self, name: str, manifest: Manifest) -> tuple[str, int]:
        """Sends only what Cloudflare asks for; returns the completion token and how many files were sent."""
        jwt, buckets = await self.api.upload_session(name, manifest.upload_manifest())
        buckets = [b for b in buckets if b]
        if not buckets:
            return jwt, 0
        by_hash = manifest.by_hash()
        unknown = [h for b in buckets for h in b if h not in by_hash]
        if unknown:
            raise DeployError(f"Cloudflare asked for {len(unknown)} asset hashes that are not in the manifest (first: {unknown[0]})")
        gate = asyncio.Semaphore(self.parallel_buckets)

        async def send(bucket: list[str]) -> str | None:
            async with gate:
                parts = await asyncio.to_thread(self._parts, [by_hash[h] for h in bucket])
                return await self.api.upload_bucket(jwt, parts)

        tokens = await asyncio.gather(*(send(b) for b in buckets))
        completion = next((t for t in reversed(tokens) if t), None)
        if completion is None:
            raise DeployError(f"Cloudflare received every asset of {name} but returned no completion token")
        return completion, sum(len(b) for b in buckets)

    def _parts(self, assets: list[Asset]) -> list[tuple[str, bytes, str]]:
        return [(a.hash, base64_of(self.blobs, a.digest), a.content_type) for a in assets]

    async def subdomain(self) -> str:
        if self._subdomain is None:
            self._subdomain = await self.api.account_subdomain()
        return self._subdomain


def _number(version: dict[str, Any] | None) -> int:
    try:
        return int((version or {}).get("number") or 0)
    except (TypeError, ValueError):
        return 0
