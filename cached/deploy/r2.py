"""Files over the asset limit, put in R2 through its S3 API (boto3), once per content.

Objects live at ``<bucket>/<prefix>/<digest hash>`` (the prefix is the
script name, so it names tenant and app): the key is the content's address, so
an object that is already there holds the same bytes and is never sent again
(a HEAD comes first). boto3 1.36+ sends streaming CRC32 checksums that R2 has
rejected, hence ``when_required`` for both checksum settings. The credentials
are the deploy's own, separate from the cache's shared tier; never logged.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cached.deploy.assets import BlobSource, LargeFile
from cached.deploy.errors import DeployError

log = logging.getLogger("cached.deploy.r2")


@dataclass(frozen=True)
class R2Settings:
    endpoint: str        # https://<account id>.r2.cloudflarestorage.com
    bucket: str
    access_key_id: str
    secret_access_key: str
    region: str = "auto"

    def __repr__(self) -> str:  # never shows the secret
        return f"R2Settings(endpoint={self.endpoint!r}, bucket={self.bucket!r})"


class R2Uploader:
    """Puts large files into the deploy bucket; blocking (run it in a thread)."""

    def __init__(self, settings: R2Settings) -> None:
        self.settings = settings
        self.bucket = settings.bucket
        self._s3 = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.endpoint,
            region_name=settings.region,
            aws_access_key_id=settings.access_key_id,
            aws_secret_access_key=settings.secret_access_key,
            config=Config(
                signature_version="s3v4",
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
                retries={"max_attempts": 5, "mode": "standard"},
            ),
        )

    def exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self.bucket, Key=key)
        except ClientError as e:
            if e.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise DeployError(f"R2: HEAD {self.bucket}/{key} failed: {_describe(e)}") from None
        except BotoCoreError as e:
            raise DeployError(f"R2 unreachable at {self.settings.endpoint}: {type(e).__name__}") from None
        return True

    def ensure(self, key: str, blobs: BlobSource, f: LargeFile) -> bool:
        """Puts the file under ``key`` unless it is there already; True when it was sent."""
        if self.exists(key):
            return False
        try:
            with blobs.open(f.digest) as body:
                self._s3.put_object(
                    Bucket=self.bucket, Key=key, Body=body, ContentLength=f.digest.size, ContentType=f.content_type,
                )
        except ClientError as e:
            raise DeployError(f"R2: PUT {self.bucket}/{key} failed: {_describe(e)}") from None
        except BotoCoreError as e:
            raise DeployError(f"R2 unreachable at {self.settings.endpoint}: {type(e).__name__}") from None
        log.info("r2 object stored", extra={"bucket": self.bucket, "key": key, "bytes": f.digest.size})
        return True


def _describe(e: ClientError) -> str:
    err = e.response.get("Error", {})
    return f"{err.get('Code', '?')}: {err.get('Message', '')}".strip()
