"""Tarballs of the packages the store lacks: from npm's cache, else the shared tier, else the registry.

Only names, versions and integrities reach this module: it runs no tenant
code and reads no tenant file. A tarball's URL is made from the daemon's
registry (``<registry>/<name>/-/<base>-<version>.tgz``, the path registries
serve and npm's ``replace-registry-host`` keeps), never taken from a
lockfile's ``resolved``; redirects are followed only within the registry's
origin. npm's cache (cacache) keeps content by its sha512, so a tarball npm
fetched before is read from disk. Every tarball is checked against its
sha512 before anyone sees a byte of it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import hashlib
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from cached.errors import BuildFailed
from cached.packages.integrity import sri_path

log = logging.getLogger("cached.packages.fetch")

MAX_TARBALL = 512 << 20
ATTEMPTS = 3
MAX_REDIRECTS = 3


@dataclass(frozen=True)
class Want:
    key: str      # sha512 hex
    name: str
    version: str

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


@dataclass(frozen=True)
class Fetched:
    want: Want
    tarball: bytes
    source: str  # "npm cache", "shared tier" or "registry"


def tarball_url(registry: str, name: str, version: str) -> str:
    return f"{registry.rstrip('/')}/{name}/-/{name.rsplit('/', 1)[-1]}-{version}.tgz"


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or (443 if parts.scheme == "https" else 80)


class SharedPackages:
    """Package tarballs in the shared tier, as signed records of kind ``packages`` keyed by their sha512.

    The sha512 is checked on every read as well as the signature: the key
    names the bytes, so nothing but those bytes is ever taken."""

    KIND = "packages"

    def __init__(self, tier: Any, threads: int = 8) -> None:
        self.tier = tier
        # Its own threads: bucket reads block for a round trip each, and must not hold up the
        # default executor's threads, where the packages that arrived are being unpacked.
        self.pool = concurrent.futures.ThreadPoolExecutor(threads, thread_name_prefix="cached-shared-packages")

    def get(self, want: Want) -> bytes | None:
        data = self.tier.get_record(self.KIND, want.key)
        if data is None:
            return None
        if hashlib.sha512(data).hexdigest() != want.key:
            log.warning("a shared package does not match its integrity", extra={"package": want.label})
            return None
        return data

    def put(self, fetched: "Fetched") -> None:
        if self.tier.writable:
            self.tier.put_record(self.KIND, fetched.want.key, fetched.tarball)


class TarballFetcher:
    def __init__(self, registry: str, npm_cache: Path | None, *, cafile: str = "", concurrency: int = 16, timeout_s: float = 60.0) -> None:
        if not registry:
            raise ValueError("the package store fetches from the daemon's registry; none is configured")
        self.registry = registry
        self.npm_cache = npm_cache
        self.shared: SharedPackages | None = None  # the shared tier, between npm's cache and the registry
        self.concurrency = concurrency
        self.timeout_s = timeout_s
        self.verify: str | bool = cafile or True

    async def fetch(self, wants: list[Want], on_fetched: Callable[[Fetched], object]) -> None:
        """Fetches every wanted tarball, ``concurrency`` at a time, handing each over as it arrives.

        Raises BuildFailed naming the first package that could not be had."""
        if not wants:
            return
        queue: asyncio.Queue[Want] = asyncio.Queue()
        for want in wants:
            queue.put_nowait(want)
        limits = httpx.Limits(max_connections=self.concurrency, max_keepalive_connections=self.concurrency)
        async with httpx.AsyncClient(timeout=self.timeout_s, follow_redirects=False, trust_env=False, verify=self.verify, limits=limits) as client:

            async def worker() -> None:
                while not queue.empty():
                    want = queue.get_nowait()
                    fetched = await self._one(client, want)
                    result = on_fetched(fetched)
                    if asyncio.iscoroutine(result):
                        await result

            workers = [asyncio.create_task(worker()) for _ in range(min(self.concurrency, len(wants)))]
            try:
                await asyncio.gather(*workers)
            finally:
                for task in workers:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)

    async def _one(self, client: httpx.AsyncClient, want: Want) -> Fetched:
        fetched = await self._fetch_one(client, want)
        if self.shared is not None and fetched.source != "shared tier":
            self.shared.put(fetched)  # queued: the next daemon without it takes it from the bucket
        return fetched

    async def _fetch_one(self, client: httpx.AsyncClient, want: Want) -> Fetched:
        cached = await asyncio.to_thread(self._from_npm_cache, want)
        if cached is not None:
            return Fetched(want, cached, "npm cache")
        if self.shared is not None:
            shared = await asyncio.get_running_loop().run_in_executor(self.shared.pool, self.shared.get, want)
            if shared is not None:
                return Fetched(want, shared, "shared tier")
        url = tarball_url(self.registry, want.name, want.version)
        error = ""
        for attempt in range(ATTEMPTS):
            try:
                data = await self._get(client, url, want)
            except httpx.TransportError as e:
                error = f"{type(e).__name__}: {e}"
                await asyncio.sleep(0.2 * (attempt + 1))
                continue
            if hashlib.sha512(data).hexdigest() != want.key:
                raise BuildFailed(
                    f"the registry's tarball of {want.label} does not match the lockfile's integrity: the lockfile names "
                    "other bytes than the registry serves. Regenerate package-lock.json against the registry. Nothing was stored.", [],
                )
            return Fetched(want, data, "registry")
        raise BuildFailed(f"could not fetch {want.label} from the registry ({error}); try again, or ask the operator to check the daemon's registry", [])

    async def _get(self, client: httpx.AsyncClient, url: str, want: Want) -> bytes:
        origin = _origin(self.registry)
        for _ in range(MAX_REDIRECTS + 1):
            async with client.stream("GET", url, headers={"Accept": "application/octet-stream"}) as response:
                if response.is_redirect and "location" in response.headers:
                    target = urljoin(url, response.headers["location"])
                    if _origin(target) != origin:
                        raise BuildFailed(f"the registry redirected the tarball of {want.label} to another origin, which installs never reach", [])
                    url = target
                    continue
                if response.status_code == 404:
                    raise BuildFailed(f"{want.label} is not on the registry (404): fix the version in package-lock.json and send the app again", [])
                if response.status_code >= 500 or response.status_code == 429:
                    raise httpx.TransportError(f"registry answered {response.status_code}")
                if response.status_code != 200:
                    raise BuildFailed(f"the registry answered {response.status_code} for {want.label}", [])
                chunks: list[bytes] = []
                size = 0
                async for chunk in response.aiter_bytes():
                    size += len(chunk)
                    if size > MAX_TARBALL:
                        raise BuildFailed(f"the tarball of {want.label} is larger than {MAX_TARBALL >> 20} MiB", [])
                    chunks.append(chunk)
                return b"".join(chunks)
        raise BuildFailed(f"the registry redirected the tarball of {want.label} more than {MAX_REDIRECTS} times", [])

    def _from_npm_cache(self, want: Want) -> bytes | None:
        if self.npm_cache is None:
            return None
        path = os.path.join(self.npm_cache, "_cacache", sri_path(want.key))
        try:
            with open(path, "rb") as f:
                data = f.read(MAX_TARBALL + 1)
        except OSError:
            return None
        if len(data) > MAX_TARBALL or hashlib.sha512(data).hexdigest() != want.key:
            log.warning("npm's cache holds a damaged tarball; fetching it again", extra={"package": want.label})
            return None
        return data
