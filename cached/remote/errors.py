"""Errors of the shared tier's configuration and operator commands.

The tier itself never raises to a build (a bucket problem is a miss or a
dropped write); these are for settings that cannot work (refused at startup,
so an operator learns at once) and for the CLI's direct bucket operations.
Messages name files and flags, never a secret or key material.
"""

from __future__ import annotations


class RemoteConfigError(ValueError):
    """Settings, a key file or a credentials file that cannot be used; the message says which and why."""


class InvalidName(ValueError):
    """A tenant, kind or key that cannot be an object name (a ``/``, ``..``, a control character, too long)."""


class RemoteUnavailable(RuntimeError):
    """An operator command (``cached gc --remote``) could not talk to the bucket."""
