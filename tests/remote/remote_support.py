"""Helpers of the shared-tier tests: moto's S3 server on 127.0.0.1 that can be stopped and started again, and tiers on it.

A module of its own (not the conftest) so tests of several directories can run in one pytest call.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config
from moto.server import ThreadedMotoServer

ACCESS_KEY, SECRET = "remote-test-access-key", "remote-test-secret-do-not-log"


class MotoS3:
    """moto's S3 in server mode on 127.0.0.1. Its data lives in this process, so a restart on the same port keeps the buckets."""

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self._server: ThreadedMotoServer | None = None

    def start(self) -> "MotoS3":
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        self.port = self._server.get_host_and_port()[1]
        return self

    def stop(self) -> None:
        """Stops serving and closes the listening socket (ThreadedMotoServer.stop leaves it open), so connections are refused."""
        if self._server is not None:
            self._server.stop()
            self._server._server.server_close()  # type: ignore[union-attr]
            self._server = None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self) -> Any:
        """A plain boto3 client, for what the tests do by hand (list, tamper); the tier makes its own."""
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET,
            config=Config(request_checksum_calculation="when_required", response_checksum_validation="when_required",
                          retries={"max_attempts": 1}),
        )

    def new_bucket(self) -> str:
        name = f"remote-{uuid.uuid4().hex[:16]}"
        self.client().create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str) -> dict[str, bytes]:
        """Every object of the bucket: name -> body."""
        s3 = self.client()
        names = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in page.get("Contents", [])]
        return {n: s3.get_object(Bucket=bucket, Key=n)["Body"].read() for n in names}


@dataclass
class Keys:
    private: Path
    public: Path


def credentials_file(directory: Path) -> Path:
    path = directory / "remote-credentials"
    path.write_text(f"{ACCESS_KEY}:{SECRET}\n")
    return path
