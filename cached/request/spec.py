"""A build request, validated: ids, paths, sizes, env and script, before anything is written.

Validation never touches the workspace or the index, so a refused request
leaves the store exactly as it was.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Callable

from cached.errors import InvalidRequest, PreconditionFailed
from cached.request.npmrc import check_npmrc
from cached.request.paths import check_tree
from cached.digest import Digest, Hasher
from cached.v1 import cached_pb2

# Matched with fullmatch: `$` alone also matches before a trailing newline ("t1\n").
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")
MODE_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
SCRIPT_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9:_.-]{0,63}$")
# Names the fixed base environment owns, and names that would let a request
# reach into Node or npm from outside the sources (they are refused, not dropped,
# so a caller learns that its variable had no effect).
RESERVED_ENV = {"PATH", "HOME", "TMPDIR", "LANG", "TZ", "CI", "NODE_OPTIONS", "NODE_PATH", "USER", "SHELL"}
RESERVED_ENV_PREFIXES = ("npm_config_", "npm_package_", "npm_lifecycle_", "LD_", "CACHED_")
# The kernel's limit on one argv or environ string (MAX_ARG_STRLEN: 32 pages of
# 4 KiB), counted as "NAME=value" plus its NUL: one byte more and execve fails
# with E2BIG, so such a variable could never reach a build.
MAX_ENV_STRING_BYTES = 131072


@dataclass(frozen=True)
class Limits:
    max_files: int = 20_000
    max_total_bytes: int = 512 << 20
    max_inline_bytes: int = 1 << 20
    max_env_vars: int = 256
    max_env_bytes: int = 256 << 10
    default_timeout_s: float = 900.0
    max_timeout_s: float = 3600.0
    only_tenant: str = ""  # set when the store serves one trust domain (a non-cryptographic digest)
    # Registries an app's .npmrc may name (normalised, ``npmrc.normalise_registry``): the daemon's
    # own and those allowlisted with `cached serve --allow-registry`; empty: none at all.
    registries: tuple[str, ...] = ()

    def check_tenant(self, tenant: str) -> str:
        check_id("tenant", tenant)
        if self.only_tenant and tenant != self.only_tenant:
            raise InvalidRequest("tenant", f"this daemon serves only tenant {self.only_tenant!r} (its digest function is not collision-resistant)")
        return tenant


@dataclass(frozen=True)
class SourceFile:
    path: str
    digest: Digest
    executable: bool
    content: bytes | None  # None: the content is a blob already in the store


@dataclass(frozen=True)
class BuildSpec:
    tenant: str
    app: str
    files: tuple[SourceFile, ...]
    env: dict[str, str]
    mode: str
    script: str
    force: bool
    timeout_s: float
    deploy: cached_pb2.DeployOptions | None = None
    by_path: dict[str, SourceFile] = field(default_factory=dict, compare=False, repr=False)

    @property
    def owner(self) -> str:
        return f"{self.tenant}/{self.app}"

    def text(self, path: str) -> str | None:
        """The content of a small inline file (package.json, lockfile) as text, or None if absent."""
        f = self.by_path.get(path)
        if f is None or f.content is None:
            return None
        return f.content.decode("utf-8", errors="replace")


def is_key_file(path: str) -> bool:
    """Files whose content the deps key reads."""
    return path in ("package.json", "package-lock.json", ".npmrc") or path.startswith("patches/")


def check_id(field_name: str, value: str) -> str:
    if not ID_PATTERN.fullmatch(value):
        raise InvalidRequest(field_name, f"{value!r} is not a valid id (lowercase letters, digits, '-' and '_', 1-63 characters, starting with a letter or digit)")
    return value


def check_env(env: dict[str, str], limits: Limits) -> dict[str, str]:
    if len(env) > limits.max_env_vars:
        raise InvalidRequest("env", f"{len(env)} variables; at most {limits.max_env_vars}")
    total = 0
    for name, value in env.items():
        if not ENV_NAME.fullmatch(name):
            raise InvalidRequest(f"env[{name!r}]", "not a valid variable name")
        if name in RESERVED_ENV or any(name.startswith(p) or name.lower().startswith(p.lower()) for p in RESERVED_ENV_PREFIXES):
            raise InvalidRequest(f"env[{name!r}]", "reserved: the build environment sets it, or it would change how Node or npm run")
        if "\x00" in value:
            raise InvalidRequest(f"env[{name!r}]", "value contains NUL")
        size = len(name) + 1 + len(value.encode()) + 1
        if size > MAX_ENV_STRING_BYTES:
            raise InvalidRequest(
                f"env[{name!r}]",
                f"{name}=value is {size} bytes with its NUL; the kernel passes at most {MAX_ENV_STRING_BYTES} bytes (128 KiB) "
                "per variable: put large data in a file of the app instead",
            )
        total += len(name) + len(value.encode())
    if total > limits.max_env_bytes:
        raise InvalidRequest("env", f"{total} bytes; at most {limits.max_env_bytes}")
    return dict(env)


def parse_request(
    request: cached_pb2.BuildRequest,
    hasher: Hasher,
    limits: Limits,
    blob_known: Callable[[str, Digest], bool],
    read_blob: Callable[[Digest], bytes],
) -> BuildSpec:
    """Turns a BuildRequest into a BuildSpec or raises InvalidRequest / PreconditionFailed.

    ``read_blob`` loads the key files (package.json, lockfile, .npmrc, patches/)
    sent by digest. ``blob_known(tenant, digest)`` says whether a file sent by digest was uploaded
    by (or produced for) this tenant; a tenant cannot build from another's blobs.
    """
    tenant = limits.check_tenant(request.tenant)
    app = check_id("app", request.app)
    if len(request.files) > limits.max_files:
        raise InvalidRequest("files", f"{len(request.files)} files; at most {limits.max_files}")
    check_tree((f.path for f in request.files))
    files: list[SourceFile] = []
    total = 0
    for f in request.files:
        which = f.WhichOneof("source")
        if which == "digest":
            digest = Digest.from_proto(f.digest, field=f"files[{f.path!r}].digest")
            if digest.function != hasher.function:
                raise InvalidRequest(f"files[{f.path!r}]", f"digest function {digest.function}; this daemon uses {hasher.function}")
            if not blob_known(tenant, digest):
                raise PreconditionFailed(f"files[{f.path!r}]: blob {digest} is not in the store for tenant {tenant}; upload it with ContentStore.UploadBlobs first")
            # The few files that keys are made of are read now; the rest stay in the store.
            content = read_blob(digest) if is_key_file(f.path) else None
            files.append(SourceFile(f.path, digest, f.executable, content))
        else:
            content = f.content
            if len(content) > limits.max_inline_bytes:
                raise InvalidRequest(f"files[{f.path!r}]", f"{len(content)} bytes inline; files over {limits.max_inline_bytes} bytes go through ContentStore.UploadBlobs")
            files.append(SourceFile(f.path, hasher.bytes(content), f.executable, content))
        total += files[-1].digest.size
    if total > limits.max_total_bytes:
        raise InvalidRequest("files", f"{total} bytes in all; at most {limits.max_total_bytes}")
    files.sort(key=lambda s: s.path)
    by_path = {s.path: s for s in files}

    mode = request.mode or "production"
    if not MODE_PATTERN.fullmatch(mode):
        raise InvalidRequest("mode", f"{mode!r} is not a valid build mode")
    script = request.build_script or "build"
    if not SCRIPT_PATTERN.fullmatch(script):
        raise InvalidRequest("build_script", f"{script!r} is not a valid script name")
    env = check_env(dict(request.env), limits)
    timeout = request.timeout_seconds or limits.default_timeout_s
    if timeout < 0 or timeout > limits.max_timeout_s:
        raise InvalidRequest("timeout_seconds", f"must be between 0 and {limits.max_timeout_s}")

    spec = BuildSpec(
        tenant=tenant, app=app, files=tuple(files), env=env, mode=mode, script=script,
        force=request.force, timeout_s=timeout,
        deploy=request.deploy if request.HasField("deploy") else None, by_path=by_path,
    )
    _check_package_json(spec)
    check_npmrc(spec.text(".npmrc"), limits.registries)  # no registry, credential or proxy of the tenant's own
    return spec


def _check_package_json(spec: BuildSpec) -> None:
    if "package.json" not in spec.by_path:
        raise InvalidRequest("files", "package.json is missing: the app's root must hold one")
    text = spec.text("package.json") or ""
    try:
        package = json.loads(text)
    except ValueError as e:
        raise InvalidRequest("files['package.json']", f"not valid JSON: {e}") from None
    scripts = package.get("scripts") if isinstance(package, dict) else None
    if not isinstance(scripts, dict) or spec.script not in scripts:
        raise InvalidRequest("build_script", f"package.json has no script {spec.script!r}")
