"""Helpers of the deploy tests: the S3 endpoint the R2 tests talk to.

A module of its own (not the conftest) so that tests of several directories can run in one pytest call."""

from __future__ import annotations

from dataclasses import dataclass

import boto3
from botocore.config import Config

R2_BUCKET = "cached-deploy-test"
R2_KEY, R2_SECRET = "testing-access-key", "testing-secret-key"


@dataclass
class S3Server:
    endpoint: str
    bucket: str

    def client(self, region: str = "auto"):  # type: ignore[no-untyped-def]
        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name=region, aws_access_key_id=R2_KEY, aws_secret_access_key=R2_SECRET,
            config=Config(signature_version="s3v4", request_checksum_calculation="when_required", response_checksum_validation="when_required"),
        )
