"""Errors of the deployer: each says what failed and what to do, with Cloudflare's code when there is one."""

from __future__ import annotations


class DeployError(Exception):
    """A deploy that did not happen. ``str(e)`` is a sentence an operator can act on."""

    def __init__(self, message: str, *, code: int = 0, status: int = 0) -> None:
        super().__init__(message)
        self.code = code      # Cloudflare's error code, 0 when none
        self.status = status  # the HTTP status, 0 when none


class DeployInvalid(DeployError):
    """The deploy request breaks a rule (target, environment, names, limits). -> INVALID_ARGUMENT"""


class DeployNotFound(DeployError):
    """The action or the version to deploy is unknown for this tenant and app. -> NOT_FOUND"""


class DeployUnavailable(DeployError):
    """The target is not configured on this daemon (no account, no token, no R2). -> FAILED_PRECONDITION"""


class DeployConflict(DeployError):
    """Cloudflare refused a rollback because secrets changed since that version (10220). -> FAILED_PRECONDITION"""
