"""The boto3 client of the shared tier, tuned to fail fast.

Short connect and read timeouts and few attempts: the shared tier only ever
saves work, so a slow or absent bucket must turn into a miss within about a
second rather than hold a build. boto3 1.36+ sends streaming CRC32 checksums
some S3-compatible stores reject (R2 did), hence ``when_required``. boto3
clients are thread-safe; one is shared by readers and writer threads.
"""

from __future__ import annotations

from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cached.remote.settings import RemoteSettings

NOT_FOUND_CODES = frozenset({"404", "NoSuchKey", "NotFound"})


def make_client(settings: RemoteSettings) -> Any:
    config = Config(
        signature_version="s3v4",
        connect_timeout=settings.connect_timeout_s,
        read_timeout=settings.read_timeout_s,
        retries={"max_attempts": settings.max_attempts, "mode": "standard"},
        max_pool_connections=max(settings.read_concurrency, settings.writer_threads) + 2,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        s3={"addressing_style": "path"},
    )
    return boto3.session.Session().client(
        "s3", endpoint_url=settings.endpoint or None, region_name=settings.region,
        aws_access_key_id=settings.access_key_id, aws_secret_access_key=settings.secret_access_key, config=config,
    )


def is_not_found(error: BaseException) -> bool:
    return isinstance(error, ClientError) and str(error.response.get("Error", {}).get("Code")) in NOT_FOUND_CODES


def describe(error: BaseException) -> str:
    """A short, secret-free account of a failed request: the S3 error code and HTTP status, or the exception's class."""
    if isinstance(error, ClientError):
        err = error.response.get("Error", {})
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return f"{err.get('Code', '?')} (HTTP {status})"
    if isinstance(error, BotoCoreError):
        return type(error).__name__
    return f"{type(error).__name__}"
