"""The client's typed results."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import grpc

from cached.v1 import cached_pb2

RESULT_NAMES = {cached_pb2.CacheDecision.HIT: "hit", cached_pb2.CacheDecision.MISS: "miss", cached_pb2.CacheDecision.COALESCED: "coalesced"}


class CachedError(Exception):
    """A failed call: ``code`` is the gRPC status, ``details`` the daemon's message."""

    def __init__(self, code: grpc.StatusCode, details: str) -> None:
        super().__init__(f"{code.name}: {details}")
        self.code = code
        self.details = details

    @classmethod
    def from_rpc(cls, error: grpc.RpcError) -> "CachedError":
        return cls(error.code(), error.details() or "")  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Decision:
    layer: str
    result: str
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


@dataclass
class BuildResult:
    action_key: str
    cache: str
    reason: str
    duration_ms: float
    phases: dict[str, float]
    decisions: list[Decision]
    outputs: list[OutputFile]
    lockfile: bytes = b""
    log_digest: Any = None
    output_tree: Any = None
    metrics: Any = None
    client_ms: float = 0.0
    events: list[cached_pb2.BuildEvent] = field(default_factory=list, repr=False)

    def as_json(self) -> dict[str, Any]:
        return {
            "cache": self.cache,
            "reason": self.reason,
            "action_key": self.action_key,
            "duration_ms": round(self.duration_ms, 3),
            "client_ms": round(self.client_ms, 3),
            "decisions": [vars(d) for d in self.decisions],
            "phases": {k: round(v, 3) for k, v in self.phases.items()},
            "output_files": [{"path": o.path, "digest": o.digest, "size": o.size, "executable": o.executable} for o in self.outputs],
        }
