"""Explain: what an app's keys are made of, and what changed since the build before.

The pipeline's AppRecord keeps the app's last build only, so this keeps a
small history record per app (the last two recorded builds, in the store's
``histories``) written when the app's record changes: on a miss, or on a
hit on another action than its last. The deps components are parsed from the
request then, and only when the deps key changed, so a hit pays nothing.

Explain shows names, digests and counts, never an env value or file content.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence

from cached.deps.layer import describe_package_changes, lockfile_packages
from cached.keys import DepsInputs, canonical, deps_inputs
from cached.reasons import diff_maps
from cached.request.spec import BuildSpec
from cached.execution.toolchain import Toolchain
from cached.digest import Digest
from cached.store import Store, Tombstones
from cached.v1 import admin_pb2, cached_pb2, operate_pb2, records_pb2

log = logging.getLogger("cached.operate.explain")

SHOWN = 10
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
MISS = cached_pb2.CacheDecision.MISS


def deps_components(hasher_digest: Callable[[bytes], str], key: str, inputs: DepsInputs) -> admin_pb2.DepsComponents:
    lock = inputs.lockfile if isinstance(inputs.lockfile, dict) else {}
    packages = lock.get("packages") if isinstance(lock.get("packages"), dict) else {}
    return admin_pb2.DepsComponents(
        deps_key=key,
        lockfile_digest=hasher_digest(canonical(inputs.lockfile)) if inputs.lockfile is not None else "",
        lockfile_packages=len([k for k in packages if k]),
        package_fields_digest=hasher_digest(canonical(inputs.package)),
        package_fields=sorted(inputs.package),
        install_scripts=sorted(inputs.scripts),
        npmrc={k: _USERINFO.sub("***@", v) for k, v in inputs.npmrc.items()},
        patches=sorted(inputs.patches),
        toolchain=inputs.toolchain,
        command=inputs.command,
    )


def action_decision(decisions: Sequence[cached_pb2.CacheDecision]) -> tuple[str, str]:
    """The reason the build gave for its action lookup: the miss when there was one, else the hit."""
    action = [d for d in decisions if d.layer == "action"]
    for d in action:
        if d.result == MISS:
            return d.reason, d.detail
    return (action[0].reason, action[0].detail) if action else ("", "")


def keys_from_record(record: records_pb2.AppRecord) -> admin_pb2.KeyComponents:
    """What an AppRecord alone tells (for builds recorded before any history was kept)."""
    return admin_pb2.KeyComponents(
        action_key=record.last_action_key, source_files=len(record.sources), deps=admin_pb2.DepsComponents(deps_key=record.deps_key),
        env_names=sorted(record.env), toolchain=record.toolchain, script=record.script, mode=record.mode,
        built_unix_ms=record.last_build_unix_ms,
    )


class AppHistory:
    """Writes an app's history when its record changes; reads it for explain."""

    def __init__(self, store: Store, toolchain: Toolchain, install_commands: Sequence[Sequence[str]]) -> None:
        self.store = store
        self.toolchain = toolchain
        self.commands = [" ".join(c) for c in install_commands]

    def load(self, owner: str) -> operate_pb2.AppHistory | None:
        return self.store.histories.get(owner)

    def recorded(self, spec: BuildSpec, sources: Digest, record: records_pb2.AppRecord,
                 previous: records_pb2.AppRecord | None, decisions: Sequence[cached_pb2.CacheDecision]) -> None:
        """Queues the new history record (does not wait for the write)."""
        old = self.load(spec.owner)
        last = old.last if old is not None and old.HasField("last") else None
        if last is not None and last.keys.deps.deps_key == record.deps_key:
            deps, packages = last.keys.deps, dict(last.packages)
        else:
            inputs = deps_inputs(spec, self.toolchain, self.commands)
            deps = deps_components(lambda b: str(self.store.hasher.bytes(b)), record.deps_key, inputs)
            lock = spec.by_path.get("package-lock.json")
            packages = lockfile_packages(lock.content if lock is not None else None)
        reason, detail = action_decision(decisions)
        keys = admin_pb2.KeyComponents(
            action_key=record.last_action_key, sources_digest=str(sources), source_files=len(record.sources), deps=deps,
            env_names=sorted(record.env), toolchain=record.toolchain, script=record.script, mode=record.mode,
            built_unix_ms=record.last_build_unix_ms, reason=reason, detail=detail,
        )
        snapshot = operate_pb2.AppSnapshot(keys=keys, record=record, packages=packages)
        if last is None and previous is not None:
            last = operate_pb2.AppSnapshot(keys=keys_from_record(previous), record=previous)
        history = operate_pb2.AppHistory(last=snapshot)
        if last is not None:
            history.before.CopyFrom(last)
        future = self.store.histories.put(spec.owner, history)
        future.add_done_callback(lambda f: f.exception() and log.warning("could not record the app's history", extra={"owner": spec.owner, "error": str(f.exception())}))


def differences(before: operate_pb2.AppSnapshot, last: operate_pb2.AppSnapshot) -> list[admin_pb2.Difference]:
    out: list[admin_pb2.Difference] = []
    b, a = before.record, last.record

    def add(component: str, changed: list[str], detail: str) -> None:
        out.append(admin_pb2.Difference(component=component, changed=changed[:SHOWN], count=len(changed), detail=detail))

    if b.toolchain != a.toolchain:
        add("toolchain", [], f"toolchain changed: {b.toolchain} -> {a.toolchain}")
    if b.deps_key != a.deps_key:
        parts = _deps_parts(before.keys.deps, last.keys.deps)
        add("deps", parts, "dependencies changed" + (f": {', '.join(parts)}" if parts else ""))
        if before.packages or last.packages:
            changed = diff_maps(dict(before.packages), dict(last.packages))
            if changed:
                add("packages", [k.rsplit("node_modules/", 1)[-1] for k in changed],
                    "packages changed: " + describe_package_changes(dict(before.packages), dict(last.packages)))
    sources = diff_maps(dict(b.sources), dict(a.sources))
    if sources:
        shown = ", ".join(sources[:SHOWN]) + (f" (and {len(sources) - SHOWN} more)" if len(sources) > SHOWN else "")
        add("sources", sources, f"sources changed: {shown} ({len(sources)} file{'s' if len(sources) != 1 else ''})")
    env = diff_maps(dict(b.env), dict(a.env))
    if env:
        add("env", env, f"env changed: {', '.join(env[:SHOWN])}")
    if b.script != a.script:
        add("script", [], f"build script changed: {b.script!r} -> {a.script!r}")
    if b.mode != a.mode:
        add("mode", [], f"build mode changed: {b.mode!r} -> {a.mode!r}")
    return out


def _deps_parts(before: admin_pb2.DepsComponents, last: admin_pb2.DepsComponents) -> list[str]:
    """Which inputs of the deps key differ (when both builds' components are known)."""
    if not before.package_fields_digest or not last.package_fields_digest:
        return []
    checks = (
        ("lockfile", before.lockfile_digest != last.lockfile_digest),
        ("package.json dependency fields", before.package_fields_digest != last.package_fields_digest),
        ("install scripts", list(before.install_scripts) != list(last.install_scripts)),
        (".npmrc", dict(before.npmrc) != dict(last.npmrc)),
        ("patches/", list(before.patches) != list(last.patches)),
        ("node/npm/platform", dict(before.toolchain) != dict(last.toolchain)),
        ("npm command", list(before.command) != list(last.command)),
    )
    return [name for name, differs in checks if differs]


class Explainer:
    def __init__(self, store: Store, history: AppHistory, tombstones: Tombstones) -> None:
        self.store = store
        self.history = history
        self.tombstones = tombstones

    def explain(self, tenant: str, app: str) -> admin_pb2.ExplainResponse:
        owner = f"{tenant}/{app}"
        if app.startswith("."):  # the daemon's own (a shadow check's cold rebuild): no caller's app
            return admin_pb2.ExplainResponse(found=False, state="absent", summary=f"{owner} is internal to the daemon, not an app")
        history = self.history.load(owner)
        current = self.store.apps.get(tenant, app)
        if history is None or not history.HasField("last"):
            if current is None:
                return admin_pb2.ExplainResponse(found=False, state="absent", summary=f"no build of {owner} is recorded")
            history = operate_pb2.AppHistory(last=operate_pb2.AppSnapshot(keys=keys_from_record(current), record=current))
        response = admin_pb2.ExplainResponse(found=True, last=history.last.keys)
        if history.HasField("before"):
            response.has_before = True
            response.before.CopyFrom(history.before.keys)
            response.differences.extend(differences(history.before, history.last))
        response.state = self.state(tenant, owner, history.last.keys.action_key)
        response.summary = self._summary(owner, response)
        return response

    def state(self, tenant: str, owner: str, action_key: str) -> str:
        """Whether the last action's result is in the store now (read without touching its LRU time)."""
        key = self.store.actions.key(tenant, action_key)
        entry = self.store.actions.peek(key)
        if entry is not None:
            return "purged" if entry.created_ns < self.store.watermarks.get(owner) else "cached"
        tomb = self.tombstones.lookup(self.store.actions.kind, key)
        return tomb.cause if tomb is not None else "absent"

    @staticmethod
    def _summary(owner: str, r: admin_pb2.ExplainResponse) -> str:
        head = f"{owner}: last action {r.last.action_key} ({r.state})"
        if r.last.reason:
            head += f"; its build: {r.last.reason}" + (f" ({r.last.detail})" if r.last.detail and r.last.reason != "hit" else "")
        if not r.has_before:
            return head + "; no earlier build recorded"
        if not r.differences:
            return head + "; same inputs as the build before"
        return head + "; since the build before: " + "; ".join(d.detail for d in r.differences)
