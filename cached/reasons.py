"""Why an action missed, in a word for metrics and in a sentence for people.

The app's previous build is the reference: its record keeps the digest of
each source file, a keyed hash of each env value (never the value), the deps
key, the toolchain and the build config.
"""

from __future__ import annotations

from dataclasses import dataclass

from cached.v1 import records_pb2

MAX_NAMED = 5


@dataclass(frozen=True)
class MissReason:
    reason: str
    detail: str


def _names(changed: list[str]) -> str:
    shown = ", ".join(changed[:MAX_NAMED])
    more = len(changed) - MAX_NAMED
    return f"{shown} (and {more} more)" if more > 0 else shown


def diff_maps(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """Names whose value was added, removed or changed, sorted."""
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def explain_miss(previous: records_pb2.AppRecord | None, current: records_pb2.AppRecord) -> MissReason:
    """Compares two app records; the first difference in a fixed order of importance wins."""
    if previous is None:
        return MissReason("new_app", "first build of this app")
    if previous.toolchain != current.toolchain:
        return MissReason("toolchain_changed", f"toolchain changed: {previous.toolchain} -> {current.toolchain}")
    if previous.deps_key != current.deps_key:
        return MissReason("deps_changed", "dependencies changed (package.json, lockfile, .npmrc or patches/)")
    changed = diff_maps(dict(previous.sources), dict(current.sources))
    if changed:
        return MissReason("sources_changed", f"sources changed: {_names(changed)} ({len(changed)} file{'s' if len(changed) != 1 else ''})")
    env = diff_maps(dict(previous.env), dict(current.env))
    if env:
        return MissReason("env_changed", f"env changed: {_names(env)}")
    if previous.script != current.script or previous.mode != current.mode:
        return MissReason("config_changed", f"build config changed: script {previous.script!r} -> {current.script!r}, mode {previous.mode!r} -> {current.mode!r}")
    if previous.last_action_key == current.last_action_key:
        return MissReason("evicted", "the previous result of these same inputs is no longer in the store")
    return MissReason("sources_changed", "inputs changed")
