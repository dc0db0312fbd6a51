"""Domain errors of the build pipeline. The gRPC layer maps each to one status code."""

from __future__ import annotations


class BuildError(Exception):
    """Base class: ``str(e)`` is a sentence a caller can act on."""


class InvalidRequest(BuildError):
    """The request breaks a rule (path, id, size, env): nothing was written. -> INVALID_ARGUMENT"""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


class PreconditionFailed(BuildError):
    """The request is well-formed but cannot be built as sent. -> FAILED_PRECONDITION"""


class BuildFailed(PreconditionFailed):
    """A child process failed: ``tail`` carries the end of its log. Nothing was cached."""

    def __init__(self, message: str, tail: list[str]) -> None:
        super().__init__(message)
        self.tail = tail


class BuildTimeout(BuildError):
    """The build ran past its deadline; its process tree was killed. -> DEADLINE_EXCEEDED"""


class LimitExceeded(BuildError):
    """Disk full or a configured limit reached. -> RESOURCE_EXHAUSTED

    ``limit`` names it ("memory", "pids", "tmp"... or "" when not one of a
    build's limits); ``tail`` carries the end of the child's log, as for
    ``BuildFailed``."""

    def __init__(self, message: str, limit: str = "", tail: list[str] | None = None) -> None:
        super().__init__(message)
        self.limit = limit
        self.tail = tail or []


class ShuttingDown(BuildError):
    """The daemon is draining and takes no new builds. -> UNAVAILABLE"""


class NotFound(BuildError):
    """What the request names is not in the store for this tenant (a blob, an action). -> NOT_FOUND"""


class DataLoss(BuildError):
    """A blob in the store no longer matches its digest: nothing of it passes for that digest. -> DATA_LOSS"""
