"""Maps domain errors to gRPC status codes: the one place that knows both."""

from __future__ import annotations

import grpc

from cached.errors import (
    BuildError, BuildTimeout, InvalidRequest, LimitExceeded, PreconditionFailed, ShuttingDown,
)

_CODES: list[tuple[type[BaseException], grpc.StatusCode]] = [
    (InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (PreconditionFailed, grpc.StatusCode.FAILED_PRECONDITION),
    (BuildTimeout, grpc.StatusCode.DEADLINE_EXCEEDED),
    (LimitExceeded, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (ShuttingDown, grpc.StatusCode.UNAVAILABLE),
]


def status_for(error: BaseException) -> tuple[grpc.StatusCode, str]:
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code, str(error)
    if isinstance(error, OSError) and error.errno == 28:  # ENOSPC
        return grpc.StatusCode.RESOURCE_EXHAUSTED, f"the store's disk is full ({error}); free space or lower the cache's size cap"
    if isinstance(error, BuildError):
        return grpc.StatusCode.INTERNAL, str(error)
    return grpc.StatusCode.INTERNAL, f"internal error: {type(error).__name__}: {error}; see the daemon's log"
