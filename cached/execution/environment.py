"""The environment a child sees: the request's variables over a fixed base.

Nothing of the daemon's own environment is passed; the base is the same for
every build on a toolchain, so it is part of the action key through
``fingerprint``. npm's user and global configs are the daemon's (empty), so
a tenant's machine-level npm settings never leak into a build.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from cached.execution.toolchain import Toolchain


@dataclass(frozen=True)
class NpmSettings:
    """The daemon's npm configuration: where packages come from, never from the request."""

    cache_dir: str
    registry: str = ""
    cafile: str = ""
    extra_ca_certs: str = ""


def base_env(toolchain: Toolchain, npm: NpmSettings) -> dict[str, str]:
    node_dir = os.path.dirname(toolchain.node_path)
    npm_dir = os.path.dirname(toolchain.npm_path)
    path = ":".join(dict.fromkeys([node_dir, npm_dir, "/usr/local/bin", "/usr/bin", "/bin"]))
    env = {
        "PATH": path,
        "HOME": "/tmp",
        "TMPDIR": "/tmp",
        "LANG": "C.UTF-8",
        "TZ": "UTC",
        "CI": "true",
        "npm_config_userconfig": "/tmp/.npmrc-user",  # absent: the sandbox's /tmp is a fresh tmpfs
        "npm_config_globalconfig": "/tmp/.npmrc-global",
        "npm_config_cache": npm.cache_dir,
        "npm_config_logs_dir": "/tmp/npm-logs",
        "npm_config_update_notifier": "false",
        "npm_config_fund": "false",
        "npm_config_audit": "false",
        "npm_config_omit_lockfile_registry_resolved": "true",
    }
    if npm.registry:
        env["npm_config_registry"] = npm.registry
    if npm.cafile:
        env["npm_config_cafile"] = npm.cafile
    if npm.extra_ca_certs:
        env["NODE_EXTRA_CA_CERTS"] = npm.extra_ca_certs
    return env


def child_env(base: Mapping[str, str], request_env: Mapping[str, str], *, install: bool) -> dict[str, str]:
    env = dict(request_env)
    env.update(base)  # the base wins; request validation already refused its names
    if install:
        env["npm_config_ignore_scripts"] = "true"
    return env


def fingerprint(base: Mapping[str, str]) -> str:
    """The parts of the base that can change an output (not where the cache lives)."""
    stable = {k: v for k, v in base.items() if k not in ("npm_config_cache", "npm_config_cafile", "NODE_EXTRA_CA_CERTS", "npm_config_registry")}
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()[:16]
