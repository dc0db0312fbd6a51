"""Maps domain errors to gRPC status codes: the one place that knows both."""

from __future__ import annotations

import grpc

from cached.deploy.errors import DeployConflict, DeployError, DeployInvalid, DeployNotFound, DeployUnavailable
from cached.errors import (
    BuildError, BuildTimeout, DataLoss, InvalidRequest, LimitExceeded, NotFound, PreconditionFailed, ShuttingDown,
)

_CODES: list[tuple[type[BaseException], grpc.StatusCode]] = [
    (InvalidRequest, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (DataLoss, grpc.StatusCode.DATA_LOSS),
    (PreconditionFailed, grpc.StatusCode.FAILED_PRECONDITION),
    (BuildTimeout, grpc.StatusCode.DEADLINE_EXCEEDED),
    (LimitExceeded, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (ShuttingDown, grpc.StatusCode.UNAVAILABLE),
    (DeployInvalid, grpc.StatusCode.INVALID_ARGUMENT),
    (DeployNotFound, grpc.StatusCode.NOT_FOUND),
    (DeployUnavailable, grpc.StatusCode.FAILED_PRECONDITION),
    (DeployConflict, grpc.StatusCode.FAILED_PRECONDITION),
]


def status_for(error: BaseException) -> tuple[grpc.StatusCode, str]:
    for kind, code in _CODES:
        if isinstance(error, kind):
            return code, str(error)
    if isinstance(error, DeployError):
        return _deploy_code(error), str(error)
    if isinstance(error, OSError) and error.errno == 28:  # ENOSPC
        return grpc.StatusCode.RESOURCE_EXHAUSTED, f"the store's disk is full ({error}); free space or lower the cache's size cap"
    if isinstance(error, BuildError):
        return grpc.StatusCode.INTERNAL, str(error)
    return grpc.StatusCode.INTERNAL, f"internal error: {type(error).__name__}: {error}; see the daemon's log"


def _deploy_code(error: DeployError) -> grpc.StatusCode:
    """A deploy error that is none of the kinds above: by what the target's API answered."""
    if error.status in (401, 403) or error.code == 10000:
        return grpc.StatusCode.PERMISSION_DENIED
    if error.status == 429 or error.status >= 500 or error.status == 0:
        return grpc.StatusCode.UNAVAILABLE
    return grpc.StatusCode.FAILED_PRECONDITION
