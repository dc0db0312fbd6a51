"""The deploy settings of a daemon, as the operator gives them (flags, files, environment).

Secrets come from files or the daemon's environment, never from a request:
the Cloudflare API token from ``token_file`` or ``$CLOUDFLARE_API_TOKEN``,
the R2 keys from ``r2_credentials_file`` (``ACCESS_KEY_ID:SECRET_ACCESS_KEY``
on one line) or ``$CACHED_R2_ACCESS_KEY_ID`` / ``$CACHED_R2_SECRET_ACCESS_KEY``.
These R2 credentials are the deploy's own, separate from the cache's shared
tier. Nothing here is ever logged.

The command line reads these defaults to declare `cached serve`'s options, so
this module must never import the deployer, the HTTP client or boto3 at the
top: ``settings()`` imports what it builds.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cached.deploy.deployer import DeploySettings

DEFAULT_BASE_URL = "https://api.cloudflare.com/client/v4"
TOKEN_ENV = "CLOUDFLARE_API_TOKEN"
R2_KEY_ENV = "CACHED_R2_ACCESS_KEY_ID"
R2_SECRET_ENV = "CACHED_R2_SECRET_ACCESS_KEY"


@dataclass
class DeployConfig:
    local_dir: Path | None = None          # local bundles; default ROOT/deploy
    api_base: str = DEFAULT_BASE_URL
    account_id: str = ""
    token_file: Path | None = None
    retry_base_s: float = 0.5
    retry_attempts: int = 5
    r2_endpoint: str = ""
    r2_bucket: str = ""
    r2_credentials_file: Path | None = None

    def settings(self, root: Path) -> DeploySettings:
        """Reads the token and keys; raises ValueError naming what is missing or unreadable."""
        from cached.deploy.cloudflare import RetryPolicy
        from cached.deploy.deployer import CloudflareSettings, DeploySettings
        from cached.deploy.r2 import R2Settings

        token = _read_secret(self.token_file, "Cloudflare API token") if self.token_file else os.environ.get(TOKEN_ENV, "").strip()
        cloudflare = None
        if self.account_id and token:
            cloudflare = CloudflareSettings(
                account_id=self.account_id, token=token, base_url=self.api_base,
                retry=RetryPolicy(attempts=self.retry_attempts, base_s=self.retry_base_s),
            )
        r2 = None
        if self.r2_endpoint or self.r2_bucket:
            if not (self.r2_endpoint and self.r2_bucket):
                raise ValueError("R2 needs both an endpoint and a bucket")
            if self.r2_credentials_file:
                key, sep, secret = _read_secret(self.r2_credentials_file, "R2 credentials").partition(":")
                if not sep:
                    raise ValueError(f"{self.r2_credentials_file}: expected ACCESS_KEY_ID:SECRET_ACCESS_KEY on one line")
            else:
                key, secret = os.environ.get(R2_KEY_ENV, ""), os.environ.get(R2_SECRET_ENV, "")
            if not (key and secret):
                raise ValueError(f"R2 credentials missing: give --r2-credentials-file or set ${R2_KEY_ENV} and ${R2_SECRET_ENV}")
            r2 = R2Settings(endpoint=self.r2_endpoint, bucket=self.r2_bucket, access_key_id=key.strip(), secret_access_key=secret.strip())
        return DeploySettings(local_dir=(self.local_dir or root / "deploy").resolve(), cloudflare=cloudflare, r2=r2)


def _read_secret(path: Path, what: str) -> str:
    try:
        value = path.read_text().strip()
    except OSError as e:
        raise ValueError(f"cannot read the {what} from {path}: {e.strerror}") from None
    if not value:
        raise ValueError(f"{path} is empty: expected the {what}")
    return value
