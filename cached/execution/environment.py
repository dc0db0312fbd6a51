"""The environment a child sees: the request's variables over a fixed base.

Nothing of the daemon's own environment is passed; the base is the same for
every build on a toolchain, so it is part of the action key through
``fingerprint``. npm's user and global configs are the daemon's (empty), so
a tenant's machine-level npm settings never leak into a build.

Only the build step sees the request's variables (they are in the action
key). Install and resolution steps see the fixed base alone: their results
are shared by every tenant with the same deps key, and the request's env is
not in that key, so ``NODE_ENV=production`` (npm then omits devDependencies),
``HTTPS_PROXY`` or ``NODE_TLS_REJECT_UNAUTHORIZED`` from one tenant must never
shape what another tenant gets.
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


def install_env(base: Mapping[str, str], registry: str = "") -> dict[str, str]:
    """What install, fetch and resolution steps see: the fixed base and nothing of any request.

    ``registry``: the app's own ``registry=`` line, which request validation
    accepted (the daemon's registry or an allowlisted one; it is in the deps
    key). npm reads its environment over a project ``.npmrc``, so the base's
    ``npm_config_registry`` would silently win over that line."""
    env = dict(base)
    if registry:
        env["npm_config_registry"] = registry
    env["npm_config_ignore_scripts"] = "true"
    env["npm_config_include"] = "dev"  # the command lines say --include=dev too; an app's .npmrc cannot drop them
    return env


def child_env(base: Mapping[str, str], request_env: Mapping[str, str], *, install: bool, registry: str = "") -> dict[str, str]:
    """The build step's env (the request's variables under the base), or with ``install`` the install env.

    With ``install=True`` the request's variables are ignored on purpose (see
    the module docstring): an install's result is shared under a key that
    does not hold them. ``registry``: as for ``install_env`` (installs only).
    """
    if install:
        return install_env(base, registry)
    env = dict(request_env)
    env.update(base)  # the base wins; request validation already refused its names
    return env


def fingerprint(base: Mapping[str, str], view: str = "") -> str:
    """The parts of the base that can change an output (not where the cache lives), and
    ``view``: the fingerprint of what the sandbox shows of the host (``cached/sandbox/view.py``)."""
    stable = {k: v for k, v in base.items() if k not in ("npm_config_cache", "npm_config_cafile", "NODE_EXTRA_CA_CERTS", "npm_config_registry")}
    if view:
        stable = {**stable, "\0view": view}  # no variable's name holds a NUL
    return hashlib.sha256(json.dumps(stable, sort_keys=True).encode()).hexdigest()[:16]
