"""The toolchain a build runs with, probed once at startup: part of every key.

A change of node or npm version, of the platform, or of the daemon's key
version makes every key different, so nothing built by another toolchain is
ever returned.
"""

from __future__ import annotations

import hashlib
import json
import platform
import shutil
import subprocess
from dataclasses import asdict, dataclass

# Bump when the meaning of a key changes (what goes into it, or how outputs are made).
KEY_VERSION = "1"


@dataclass(frozen=True)
class Toolchain:
    node: str
    npm: str
    node_path: str
    npm_path: str
    os: str
    arch: str
    libc: str
    key_version: str = KEY_VERSION

    @property
    def fingerprint(self) -> str:
        """A short stable id of everything here but the paths (a moved binary is the same toolchain)."""
        data = {k: v for k, v in asdict(self).items() if not k.endswith("_path")}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]

    def describe(self) -> dict[str, str]:
        return {"node": self.node, "npm": self.npm, "os": self.os, "arch": self.arch, "libc": self.libc, "key_version": self.key_version}


def _version(argv: list[str]) -> str:
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=True)
    return out.stdout.strip().lstrip("v")


def probe_toolchain(node: str | None = None, npm: str | None = None) -> Toolchain:
    """Finds node and npm and asks their versions. Raises RuntimeError saying what to install."""
    node_path = node or shutil.which("node")
    npm_path = npm or shutil.which("npm")
    if not node_path or not npm_path:
        raise RuntimeError("node and npm must be on PATH (Node.js 20 or newer); install them and restart the daemon")
    libc_name, libc_version = platform.libc_ver()
    return Toolchain(
        node=_version([node_path, "--version"]),
        npm=_version([npm_path, "--version"]),
        node_path=node_path,
        npm_path=npm_path,
        os=platform.system().lower(),
        arch=platform.machine(),
        libc=f"{libc_name}-{libc_version}" if libc_name else "unknown",
    )
