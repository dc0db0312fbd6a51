"""The resolution layer: a lockfile for an app sent without one.

``npm install --package-lock-only --ignore-scripts`` resolves package.json's
dependencies without installing them; the lockfile is kept, keyed by the
digest of the fields that decide it, for a TTL (new releases appear upstream,
so a resolution is not forever). The caller gets the lockfile back in the
Result, so it can store it and send it next time.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from cached.deps.shared import SharedDependencies
from cached.errors import BuildFailed
from cached.execution.events import FlightEvents, Phase
from cached.keys import PACKAGE_FIELDS, canonical, install_npmrc
from cached.request.spec import BuildSpec
from cached.execution.scratch import scratch_dir
from cached.execution.singleflight import Flight, SingleFlight
from cached.execution.steps import BuildLog, StepRunner
from cached.execution.toolchain import Toolchain
from cached.store import Store
from cached.v1 import cached_pb2, records_pb2

HIT = cached_pb2.CacheDecision.HIT
MISS = cached_pb2.CacheDecision.MISS
COALESCED = cached_pb2.CacheDecision.COALESCED
RESOLVE_COMMAND = ["npm", "install", "--package-lock-only", "--include=dev", "--ignore-scripts", "--no-audit", "--no-fund"]


class ResolutionLayer:
    def __init__(self, store: Store, steps: StepRunner, toolchain: Toolchain, root: Path, *, npm_cache: Path, ttl_s: float) -> None:
        self.store = store
        self.steps = steps
        self.toolchain = toolchain
        self.root = root
        self.npm_cache = npm_cache
        self.ttl_s = ttl_s
        self._flights: SingleFlight[bytes, Any] = SingleFlight()
        self.shared: SharedDependencies | None = None  # resolutions through the shared tier

    def key(self, spec: BuildSpec) -> str:
        package = json.loads(spec.text("package.json") or "{}")
        data = {
            "package": {k: package.get(k) for k in PACKAGE_FIELDS if k in package},
            "npmrc": install_npmrc(spec.text(".npmrc")),
            "node": self.toolchain.node, "npm": self.toolchain.npm, "command": RESOLVE_COMMAND,
        }
        return f"{self.store.hasher.function}:{self.store.hasher.bytes(canonical(data)).hash}"

    async def resolve(self, spec: BuildSpec, events: Any, deadline: float, env: dict[str, str]) -> bytes:
        key = self.key(spec)
        root = self.store.resolutions.get(key.encode())
        if root is None and self.shared is not None:
            shared = await asyncio.to_thread(self.shared.fetch_resolution, key)
            age = time.time() - shared.resolved_unix_ms / 1000 if shared is not None else 0.0
            if shared is not None and age <= self.ttl_s:
                await asyncio.wrap_future(self.store.resolutions.put(key.encode(), shared.SerializeToString(), owner=spec.owner))
                events.decision("resolution", HIT, "hit", f"lockfile resolved {age:.0f} s ago by another daemon (the shared tier)", "remote")
                return shared.lockfile
        if root is not None:
            record = records_pb2.ResolutionRecord.FromString(root.value)
            age = time.time() - record.resolved_unix_ms / 1000
            if age <= self.ttl_s:
                events.decision("resolution", HIT, "hit", f"lockfile resolved {age:.0f} s ago for the same dependencies")
                return record.lockfile
            events.decision("resolution", MISS, "expired", f"the lockfile resolved {age:.0f} s ago is past its TTL of {self.ttl_s:.0f} s")
        else:
            events.decision("resolution", MISS, "no_lockfile", "the app was sent without package-lock.json; resolving one")
        lockfile, coalesced = await self._flights.run(key, lambda flight: self._resolve(spec, key, flight, deadline, env), listener=lambda apply: apply(events))
        if coalesced:
            events.decision("resolution", COALESCED, "coalesced", "the same dependencies were being resolved for another build")
        return lockfile

    async def _resolve(self, spec: BuildSpec, key: str, flight: Flight[Any, Any], deadline: float, env: dict[str, str]) -> bytes:
        emit = FlightEvents(flight)
        with scratch_dir(self.root, "resolve") as scratch:
            package_json = spec.text("package.json")
            if package_json is not None:
                (scratch / "package.json").write_text(package_json)
            # Only the keys the key holds: a shared resolution depends on nothing else (as an install's .npmrc).
            (scratch / ".npmrc").write_text(install_npmrc(spec.text(".npmrc")))
            with Phase(emit, "resolve", 0.05, 0.1):  # type: ignore[arg-type]
                await self.steps.run(
                    RESOLVE_COMMAND, source="install", workspace=scratch, env=env, network=True, deadline=deadline,
                    emit=emit.log, build_log=BuildLog(), what="npm install --package-lock-only",
                    binds=[(self.npm_cache, self.npm_cache, True)],
                )
            lock_path = scratch / "package-lock.json"
            if not lock_path.is_file():
                raise BuildFailed("npm resolved the dependencies but wrote no package-lock.json", [])
            lockfile = await asyncio.to_thread(lock_path.read_bytes)
        record = records_pb2.ResolutionRecord(lockfile=lockfile, resolved_unix_ms=int(time.time() * 1000))
        await asyncio.wrap_future(self.store.resolutions.put(key.encode(), record.SerializeToString(), owner=spec.owner))
        if self.shared is not None:
            self.shared.publish_resolution(key, record)
        return lockfile
