"""What a sandboxed run sees of the host's filesystem: a minimal, fixed view.

``minimal_view`` computes it once (the daemon, at start); every spec the
daemon builds carries it (``SandboxSpec.view``) and ``enter.py`` applies it in
the run's mount namespace, after the fresh ``/proc`` and the overlay:

- the system as the host has it, read-only: ``/usr``, ``/bin``, ``/sbin``,
  ``/lib``, ``/lib32``, ``/lib64``, ``/libx32`` (``KEEP``), and the
  toolchain wherever it lives: node, npm and npm's own files outside those
  are bound back read-only at their paths (a node install's prefix, npm's
  package directory), and the symlinks met on the way
  (``/usr/local/bin/npm -> ../lib/node_modules/npm/bin/npm-cli.js``) are made
  again;
- every other entry of ``/`` covered, found at each run (a directory made on
  the host after the daemon started is hidden too): a directory by an empty
  read-only tmpfs, a file by ``/dev/null``. That hides the checkout, home
  directories, ``/root``, ``/var`` (the daemon's log, npm caches), ``/srv``,
  ``/opt``, ``/mnt``, ``/media``, ``/run``, ``/boot``, the host's ``/tmp``, and
  every config and credential file of the daemon. ``hide`` adds what must go
  under the kept roots: the daemon's own code when it is installed there, the
  directories of its credential files;
- ``/etc``: an empty tmpfs with only what node and npm read (``ETC``):
  ``passwd``, ``group`` and ``hosts`` written by the view (root, nobody and the
  sandbox's own user; localhost), and from the host, read-only, the
  resolver's and the dynamic linker's configuration, the time zone and the
  CA certificates npm verifies the registry with;
- ``/dev``: a tmpfs with the host's ``null``, ``zero``, ``full``, ``random``,
  ``urandom`` and ``tty`` bound in, ``fd``, ``stdin``, ``stdout``,
  ``stderr`` (links into ``/proc/self/fd``) and ``shm`` (the spec's
  size-capped tmpfs);
- ``/sys``: an empty tmpfs but for the run's own cgroup directories,
  read-only: node sizes its heap by the memory limit it reads there (libuv's
  constrained memory), so it must see its own limit and nothing else;
- ``/proc`` (the pid namespace's own), the spec's tmpfs mounts (``/tmp``), the
  workspace, its node_modules overlay and the spec's binds (an install's npm
  cache, which is the daemon's own).

The view is part of what every build sees, so ``fingerprint`` (the kept
roots, the names of ``/etc`` and ``/dev``, the written files) goes into the
action key with the base environment (``BuildPipeline``); the host's paths of
the toolchain do not (as in ``Toolchain.fingerprint``).

This module must never start a process; ``minimal_view`` only looks at paths.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

# Bump when what a view shows changes (the action keys of every build change with it).
VIEW_VERSION = "1"

# Top-level entries of / shown as the host has them (read-only), where they exist.
KEEP = ("bin", "lib", "lib32", "lib64", "libx32", "sbin", "usr")

# /etc, from the host (where present), read-only. passwd, group and hosts are written instead.
ETC = (
    "nsswitch.conf", "host.conf", "resolv.conf", "gai.conf",    # the resolver (glibc's getaddrinfo)
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d",                # the dynamic linker
    "localtime", "timezone",                                    # the time zone
    "ssl/certs", "ssl/openssl.cnf",                             # TLS: the CA bundle, OpenSSL's config
)
ETC_WRITTEN = ("passwd", "group", "hosts")

# /dev: the host's nodes bound in (where present), links into /proc, the spec's tmpfs (shm).
DEV_NODES = ("null", "zero", "full", "random", "urandom", "tty")
DEV_LINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"))

_MAX_LINKS = 40  # symlinks followed resolving one path, as the kernel's limit


@dataclass(frozen=True)
class View:
    keep: tuple[str, ...]                  # names of / shown as on the host (every other entry is covered)
    hide: tuple[str, ...] = ()             # under the kept roots, covered anyway (a dir by a tmpfs, a file by /dev/null)
    binds: tuple[tuple[str, str], ...] = ()  # (host path, path in the view), read-only, into the covered parts
    files: tuple[tuple[str, bytes], ...] = ()  # written into the covered parts (mode 0644)
    links: tuple[tuple[str, str], ...] = ()    # (path, target): symlinks made in the covered parts
    # the run's own cgroup directories, bound back read-only under the covered /sys
    own_cgroups: bool = True
    fingerprint: str = ""

    def payload(self) -> dict:
        """For the launcher (``launch.spec_payload``; marshal: plain types only)."""
        return {
            "keep": list(self.keep),
            "hide": list(self.hide),
            "binds": [(s, d) for s, d in self.binds],
            "files": [(p, bytes(c)) for p, c in self.files],
            "links": [(p, t) for p, t in self.links],
            "own_cgroups": self.own_cgroups,
        }

    def paths(self) -> list[str]:
        """Every path the view names, for ``spec.validate``."""
        return [*self.hide, *(p for b in self.binds for p in b), *(p for p, _ in self.files), *(p for p, _ in self.links)]


def _under(path: str, top: str) -> bool:
    return path == top or path.startswith(top.rstrip("/") + "/")


def _kept(path: str) -> bool:
    """On a kept root of /, as the sandbox sees it (a kept root may itself be a link: /bin -> usr/bin)."""
    parts = path.strip("/").split("/", 1)
    return bool(parts[0]) and parts[0] in KEEP


def _resolve(path: str) -> tuple[str, list[tuple[str, str]]]:
    """``os.path.realpath`` that also returns each symlink it met, as (link path, its target)."""
    met: list[tuple[str, str]] = []
    todo = [p for p in os.path.abspath(path).split("/") if p]
    done = "/"
    while todo:
        part = todo.pop(0)
        if part == "..":
            done = os.path.dirname(done)
            continue
        if part == ".":
            continue
        candidate = os.path.join(done, part)
        if os.path.islink(candidate):
            if len(met) >= _MAX_LINKS:
                raise OSError(f"too many levels of symbolic links resolving {path}")
            target = os.readlink(candidate)
            met.append((candidate, target))
            todo = [p for p in target.split("/") if p] + todo
            if target.startswith("/"):
                done = "/"
            continue
        done = candidate
    return done, met


def _install_dir(real: str) -> str:
    """What to show of a tool at ``real``: its install prefix when it sits in a ``bin``
    (``<prefix>/bin/node``, npm's ``<package>/bin/npm-cli.js``), else its directory."""
    parent = os.path.dirname(real)
    return os.path.dirname(parent) if os.path.basename(parent) == "bin" and parent != "/bin" else parent


class _Plan:
    def __init__(self) -> None:
        self.binds: dict[str, str] = {}  # target -> source
        self.links: dict[str, str] = {}

    def visible(self, path: str) -> bool:
        return _kept(path) or any(_under(path, t) for t in self.binds) or path in self.links

    def expose(self, path: str, *, whole_install: bool) -> None:
        """Make ``path`` resolve in the view as on the host: its links made again, the
        file (or with ``whole_install`` its install dir) it ends at bound read-only."""
        real, met = _resolve(path)
        if not os.path.exists(real):
            return
        if not self.visible(real):
            top = _install_dir(real) if whole_install else real
            if top != "/":
                self.binds[top] = top
        for link, target in met:
            if not self.visible(link):
                self.links[link] = target


def _etc(plan: _Plan) -> None:
    for name in ETC:
        path = f"/etc/{name}"
        if not os.path.lexists(path):
            continue
        real, met = _resolve(path)
        if not os.path.exists(real):
            continue
        if met and met[0][0] == path and plan.visible(real) and all(plan.visible(link) for link, _ in met[1:]):
            plan.links[path] = met[0][1]  # localtime -> /usr/share/zoneinfo/Etc/UTC: the link's name is the zone's
        else:
            plan.binds[path] = real  # a file, or a link into a covered part (resolv.conf -> /run/...): its file


def _written(uid: int, gid: int) -> tuple[tuple[str, bytes], ...]:
    users = ["root:x:0:0:root:/root:/usr/sbin/nologin", "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin"]
    groups = ["root:x:0:", "nogroup:x:65534:"]
    if uid not in (0, 65534):
        users.append(f"sandbox:x:{uid}:{gid}:sandbox:/tmp:/usr/sbin/nologin")
    if gid not in (0, 65534):
        groups.append(f"sandbox:x:{gid}:")
    hosts = "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"
    return (
        ("/etc/passwd", ("\n".join(users) + "\n").encode()),
        ("/etc/group", ("\n".join(groups) + "\n").encode()),
        ("/etc/hosts", hosts.encode()),
    )


def daemon_code() -> str:
    """The daemon's code: its checkout (with ``.git`` or ``pyproject.toml``), else the ``cached`` package."""
    package = Path(__file__).resolve().parents[1]
    checkout = package.parent
    return str(checkout if (checkout / ".git").exists() or (checkout / "pyproject.toml").exists() else package)


def minimal_view(
    *, node_path: str = "", npm_path: str = "", uid: int = 65534, gid: int = 65534,
    files: Iterable[str] = (), private: Iterable[str] = (),
) -> View:
    """The view for runs of this toolchain (see the module docstring).

    ``files``: host files a run must read where they are (npm's ``cafile``,
    ``NODE_EXTRA_CA_CERTS``), bound read-only unless already in view;
    ``private``: the daemon's own files (its token files), whose directories
    are covered even under a kept root."""
    plan = _Plan()
    _etc(plan)
    for name in DEV_NODES:
        path = f"/dev/{name}"
        try:
            if stat.S_ISCHR(os.stat(path).st_mode):
                plan.binds[path] = path
        except OSError:
            continue
    for name, target in DEV_LINKS:
        plan.links[f"/dev/{name}"] = target
    for tool in (node_path, npm_path):
        if tool:
            plan.expose(tool, whole_install=True)
    for path in files:
        if path:
            plan.expose(path, whole_install=False)
    hide = [daemon_code(), *(os.path.dirname(os.path.abspath(p)) for p in private if p)]
    hide = sorted({h for h in hide if _kept(os.path.realpath(h)) and h != "/"})
    written = _written(uid, gid)
    fingerprint = hashlib.sha256(json.dumps({
        "version": VIEW_VERSION, "keep": KEEP, "etc": ETC, "dev": DEV_NODES, "dev_links": DEV_LINKS,
        "written": [(p, c.decode()) for p, c in written], "own_cgroups": True,
    }, sort_keys=True).encode()).hexdigest()[:16]
    return View(
        keep=KEEP, hide=tuple(hide), binds=tuple((src, dst) for dst, src in sorted(plan.binds.items())),
        files=written, links=tuple(sorted(plan.links.items())), own_cgroups=True, fingerprint=fingerprint,
    )
