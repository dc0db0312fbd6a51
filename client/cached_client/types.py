"""The client's typed results and errors.

Results are dataclasses built from the daemon's protobuf messages; errors are
``CachedError`` subclasses, one per gRPC status the daemon uses, each carrying
the status (``code``) and the daemon's message (``details``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import grpc

from cached.v1 import cached_pb2, tree_pb2

if TYPE_CHECKING:  # only in annotations: a build never loads admin.proto's descriptors
    from cached.v1 import admin_pb2

RESULT_NAMES = {cached_pb2.CacheDecision.HIT: "hit", cached_pb2.CacheDecision.MISS: "miss", cached_pb2.CacheDecision.COALESCED: "coalesced"}
FUNCTION_NAMES = {tree_pb2.DIGEST_FUNCTION_UNSPECIFIED: "blake3", tree_pb2.BLAKE3: "blake3", tree_pb2.XXH3_128: "xxh3_128"}
FUNCTIONS = {"blake3": tree_pb2.BLAKE3, "xxh3_128": tree_pb2.XXH3_128}
ENVIRONMENT_NAMES = {cached_pb2.PREVIEW: "preview", cached_pb2.PRODUCTION: "production"}
ENVIRONMENTS = {"preview": cached_pb2.PREVIEW, "production": cached_pb2.PRODUCTION}
LOG_TAIL_MARKER = "Last lines:\n"

# ------------------------------------------------------------------ errors


class CachedError(Exception):
    """A failed call: ``code`` is the gRPC status, ``details`` the daemon's message."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details

    @classmethod
    def from_rpc(cls, error: grpc.RpcError) -> "CachedError":
        code = error.code() if hasattr(error, "code") else grpc.StatusCode.UNKNOWN  # type: ignore[attr-defined]
        details = (error.details() if hasattr(error, "details") else str(error)) or ""  # type: ignore[attr-defined]
        return ERRORS.get(code, CachedError)(code, details)


class InvalidRequest(CachedError):
    """INVALID_ARGUMENT: a bad path, id or field; nothing was written."""


class BuildFailed(CachedError):
    """FAILED_PRECONDITION: the build (or install) failed; ``log_tail`` holds the last lines of its log."""

    @property
    def log_tail(self) -> list[str]:
        _, marker, tail = self.details.partition(LOG_TAIL_MARKER)
        return tail.splitlines() if marker else []


class BuildTimeout(CachedError):
    """DEADLINE_EXCEEDED: the build ran past its deadline (or the call's); its processes were killed."""


class NotFound(CachedError):
    """NOT_FOUND: a blob this tenant does not have."""


class ResourceExhausted(CachedError):
    """RESOURCE_EXHAUSTED: the daemon's disk is full or a limit was reached."""


class Unauthenticated(CachedError):
    """UNAUTHENTICATED: no token, or one the daemon does not know."""


class PermissionDenied(CachedError):
    """PERMISSION_DENIED: the token may not make this call (a build token calling Admin)."""


class Unavailable(CachedError):
    """UNAVAILABLE: the daemon is not reachable or is shutting down; retrying may help."""


class Cancelled(CachedError):
    """CANCELLED: the call was cancelled (by this client)."""


class DataLoss(CachedError):
    """DATA_LOSS: a stored blob no longer matches its digest (the daemon refuses to serve it)."""


ERRORS: dict[grpc.StatusCode, type[CachedError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequest,
    grpc.StatusCode.FAILED_PRECONDITION: BuildFailed,
    grpc.StatusCode.DEADLINE_EXCEEDED: BuildTimeout,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.CANCELLED: Cancelled,
    grpc.StatusCode.DATA_LOSS: DataLoss,
}

# ------------------------------------------------------------------ results


@dataclass(frozen=True)
class Digest:
    """A content address: ``function:hash/size``."""

    hash: str
    size: int
    function: str = "blake3"

    @classmethod
    def from_proto(cls, d: tree_pb2.Digest) -> "Digest":
        return cls(d.hash, d.size, FUNCTION_NAMES.get(d.function, "blake3"))

    def to_proto(self) -> tree_pb2.Digest:
        return tree_pb2.Digest(hash=self.hash, size=self.size, function=FUNCTIONS[self.function])

    def __str__(self) -> str:
        return f"{self.function}:{self.hash}/{self.size}"


@dataclass(frozen=True)
class Decision:
    layer: str
    result: str  # hit, miss, coalesced
    tier: str
    reason: str
    detail: str

    @classmethod
    def from_proto(cls, d: cached_pb2.CacheDecision) -> "Decision":
        return cls(d.layer, RESULT_NAMES.get(d.result, "unknown"), d.tier, d.reason, d.detail)


@dataclass(frozen=True)
class OutputFile:
    path: str
    digest: str  # "function:hash/size"
    hash: str
    size: int
    executable: bool
    function: str = "blake3"

    @property
    def digest_ref(self) -> Digest:
        return Digest(self.hash, self.size, self.function)

    @classmethod
    def from_proto(cls, o: cached_pb2.OutputFile) -> "OutputFile":
        d = Digest.from_proto(o.digest)
        return cls(o.path, str(d), d.hash, d.size, o.executable, d.function)


@dataclass(frozen=True)
class Metrics:
    decisions: list[Decision]
    phase_ms: dict[str, float]
    output_files: int
    output_bytes: int
    bytes_ingested: int
    bytes_restored: int
    duration_ms: float
    deps_method: str = ""
    deps_files: int = 0
    deps_bytes: int = 0
    deps_ms: float = 0.0
    packages_reused: int = 0
    packages_fetched: int = 0
    package_bytes_downloaded: int = 0

    @classmethod
    def from_proto(cls, m: cached_pb2.Metrics) -> "Metrics":
        return cls(
            [Decision.from_proto(d) for d in m.decisions], dict(m.phase_ms), m.output_files, m.output_bytes,
            m.bytes_ingested, m.bytes_restored, m.duration_ms, m.deps_method, m.deps_files, m.deps_bytes, m.deps_ms,
            m.packages_reused, m.packages_fetched, m.package_bytes_downloaded,
        )


@dataclass(frozen=True)
class DeployOptions:
    """What to do after a successful build: ``target`` "cloudflare" or "local", ``environment`` "preview" or "production"."""

    target: str
    environment: str = "preview"
    vars: dict[str, str] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict, repr=False)

    def to_proto(self) -> cached_pb2.DeployOptions:
        if self.environment not in ENVIRONMENTS:
            raise ValueError(f"deploy environment {self.environment!r}: use 'preview' or 'production'")
        return cached_pb2.DeployOptions(target=self.target, environment=ENVIRONMENTS[self.environment], vars=self.vars, secrets=self.secrets)


@dataclass(frozen=True)
class DeployResult:
    target: str
    environment: str
    version_id: str
    urls: list[str]
    script_name: str = ""
    sequence: int = 0
    error: str = ""
    bundle_dir: str = ""

    @classmethod
    def from_proto(cls, d: cached_pb2.DeployResult) -> "DeployResult":
        return cls(d.target, ENVIRONMENT_NAMES.get(d.environment, ""), d.version_id, list(d.urls), d.script_name, d.sequence, d.error, d.bundle_dir)


@dataclass
class BuildResult:
    action_key: str
    cache: str  # "hit" or "miss" of the action layer
    reason: str
    duration_ms: float
    phases: dict[str, float]
    decisions: list[Decision]
    outputs: list[OutputFile]
    lockfile: bytes = b""
    log_digest: Digest | None = None
    output_tree: Digest | None = None
    metrics: Metrics | None = None
    deploy: DeployResult | None = None
    client_ms: float = 0.0
    events: list[cached_pb2.BuildEvent] = field(default_factory=list, repr=False)
    server: str = ""  # the address of the daemon that answered: its store holds the outputs
    app: str = ""  # the app it was built for: reading its outputs through a ring-hash proxy routes on tenant/app

    @property
    def hit(self) -> bool:
        return self.cache == "hit"

    def decision(self, layer: str = "action") -> Decision | None:
        return next((d for d in self.decisions if d.layer == layer), None)

    def as_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "cache": self.cache,
            "reason": self.reason,
            "action_key": self.action_key,
            "duration_ms": round(self.duration_ms, 3),
            "client_ms": round(self.client_ms, 3),
            "decisions": [vars(d) for d in self.decisions],
            "phases": {k: round(v, 3) for k, v in self.phases.items()},
            "output_files": [{"path": o.path, "digest": o.digest, "size": o.size, "executable": o.executable} for o in self.outputs],
        }
        if self.deploy is not None:
            data["deploy"] = {"target": self.deploy.target, "environment": self.deploy.environment, "version_id": self.deploy.version_id, "urls": self.deploy.urls, "error": self.deploy.error}
        return data


@dataclass(frozen=True)
class AppStats:
    tenant: str
    app: str
    last_action_key: str
    last_build_unix_ms: int
    bytes: int = 0
    entries: int = 0
    builds: int = 0
    action_hits: int = 0
    hit_rate: float = 0.0
    builds_failed: int = 0

    @classmethod
    def from_proto(cls, a: admin_pb2.AppStats) -> "AppStats":
        return cls(a.tenant, a.app, a.last_action_key, a.last_build_unix_ms, a.bytes, a.entries, a.builds, a.action_hits, a.hit_rate, a.builds_failed)


@dataclass(frozen=True)
class TenantStats:
    tenant: str
    bytes: int
    entries: int
    apps: int
    builds: int
    action_hits: int
    hit_rate: float
    last_build_unix_ms: int


@dataclass(frozen=True)
class Stats:
    blobs: int
    bytes: int
    actions: int
    apps: int
    app_stats: list[AppStats]
    digest_function: str
    root: str
    processes_started: int
    builds: int
    action_hits: int
    entries: dict[str, int] = field(default_factory=dict)  # cache entries by kind
    tenant_stats: list[TenantStats] = field(default_factory=list)
    hit_rate: float = 0.0
    builds_failed: int = 0
    evictions: int = 0
    max_bytes: int = 0
    metrics_address: str = ""

    @classmethod
    def from_proto(cls, s: admin_pb2.StatsResponse) -> "Stats":
        return cls(
            s.blobs, s.bytes, s.actions, s.apps, [AppStats.from_proto(a) for a in s.app_stats],
            s.digest_function, s.root, s.processes_started, s.builds, s.action_hits, dict(s.entries),
            [TenantStats(t.tenant, t.bytes, t.entries, t.apps, t.builds, t.action_hits, t.hit_rate, t.last_build_unix_ms) for t in s.tenant_stats],
            s.hit_rate, s.builds_failed, s.evictions, s.max_bytes, s.metrics_address,
        )
