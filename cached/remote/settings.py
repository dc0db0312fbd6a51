"""The shared tier's settings: the bucket URL, endpoint, credentials and keys, checked once at startup.

``RemoteSettings.load`` turns what an operator typed into settings that can
work, or refuses with a message naming the flag or file and what is wrong
(never a secret: credentials and keys are read here and shown nowhere, not in
``repr`` either). ``add_remote_options`` declares the flags every command
that talks to the bucket shares, and ``from_args`` reads them back.

A tier is a writer exactly when it has a signing key; its own public key is
always among the trusted ones, so a writer reads what it wrote. Without a
credentials file boto3's usual chain applies (environment, ~/.aws, instance
role); the shared tier's credentials should be its own, not the deploy's.

Importing this module loads only the standard library, so the CLI can
declare the flags without loading boto3 or cryptography.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from cached.remote.errors import RemoteConfigError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")
MAX_PREFIX = 512


def parse_remote_url(url: str) -> tuple[str, str]:
    """``s3://BUCKET[/PREFIX]`` as (bucket, prefix); the prefix without leading or trailing ``/``."""
    if not url.startswith("s3://"):
        raise RemoteConfigError(f"--remote {url[:200]!r}: use s3://BUCKET or s3://BUCKET/PREFIX")
    rest = url[len("s3://"):]
    if "?" in rest or "#" in rest or "@" in rest:
        raise RemoteConfigError("--remote: s3://BUCKET[/PREFIX] takes no query, fragment or credentials "
                                "(credentials go in --remote-credentials-file)")
    bucket, _, prefix = rest.partition("/")
    if not _BUCKET.fullmatch(bucket) or ".." in bucket or _is_ip(bucket):
        raise RemoteConfigError(f"--remote {url[:200]!r}: bucket {bucket[:80]!r} is not a bucket name "
                                "(3-63 lowercase letters, digits, '.' and '-', starting and ending with a letter or digit)")
    prefix = prefix.rstrip("/")
    if prefix:
        segments = prefix.split("/")
        bad = next((s for s in segments if s in ("", ".", "..") or not _SEGMENT.fullmatch(s)), None)
        if bad is not None:
            raise RemoteConfigError(f"--remote {url[:200]!r}: prefix segment {bad!r} is not allowed "
                                    "(letters, digits, '.', '_' and '-'; no empty, '.' or '..' segments)")
        if len(prefix) > MAX_PREFIX:
            raise RemoteConfigError(f"--remote: the prefix is {len(prefix)} characters, at most {MAX_PREFIX}")
    return bucket, prefix


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def check_endpoint(url: str) -> str:
    """An ``http(s)://host[:port]`` endpoint, without a trailing slash; "" stays "" (the AWS default)."""
    if not url:
        return ""
    parts = urlsplit(url)
    if parts.username is not None or parts.password is not None:
        raise RemoteConfigError("--remote-endpoint: credentials in the URL are refused; use --remote-credentials-file")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise RemoteConfigError(f"--remote-endpoint {url[:200]!r}: use http(s)://HOST[:PORT]")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise RemoteConfigError(f"--remote-endpoint {url[:200]!r}: no path, query or fragment (the bucket goes in --remote)")
    try:
        parts.port
    except ValueError:
        raise RemoteConfigError(f"--remote-endpoint {url[:200]!r}: the port is not a number from 1 to 65535") from None
    return f"{parts.scheme}://{parts.netloc}"


def read_credentials(path: str | os.PathLike[str]) -> tuple[str, str]:
    """(access key id, secret) from a file of one line ``ACCESS_KEY_ID:SECRET``; errors never show the content."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as e:
        why = e.strerror if isinstance(e, OSError) and e.strerror else type(e).__name__
        raise RemoteConfigError(f"--remote-credentials-file {path}: cannot read it ({why})") from None
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    key_id, sep, secret = lines[0].partition(":") if len(lines) == 1 else ("", "", "")
    if not (sep and key_id and secret) or any(c.isspace() for c in key_id + secret):
        found = f"{len(lines)} non-empty lines" if len(lines) != 1 else "a line without the form"
        raise RemoteConfigError(f"--remote-credentials-file {path}: expected one line ACCESS_KEY_ID:SECRET ({found})")
    return key_id, secret


@dataclass(frozen=True)
class RemoteSettings:
    """Everything a RemoteTier needs; build it with ``load`` (or ``from_args``), which checks it."""

    bucket: str
    prefix: str = ""
    endpoint: str = ""                       # "" is AWS's default endpoint for the region
    region: str = "auto"                     # R2 takes "auto"; set one for AWS or MinIO
    access_key_id: str | None = field(default=None, repr=False)
    secret_access_key: str | None = field(default=None, repr=False)
    signing_key: "Ed25519PrivateKey | None" = field(default=None, repr=False)
    trusted: "tuple[Ed25519PublicKey, ...]" = field(default=(), repr=False)
    # Timeouts: a bucket that is down should make a read a miss in about a second, not stall a build.
    connect_timeout_s: float = 1.0
    read_timeout_s: float = 3.0
    max_attempts: int = 2                    # botocore's count, the first try included
    # The circuit breaker: after this many consecutive failures, no remote traffic for cooldown_s.
    failure_threshold: int = 5
    cooldown_s: float = 30.0
    # The write queue: past either bound a write is dropped (and counted), never waited for.
    queue_entries: int = 10_000
    queue_bytes: int = 256 << 20
    writer_threads: int = 4
    read_concurrency: int = 16               # parallel HEADs and GETs of one batch
    max_record_bytes: int = 64 << 20         # a larger object under a record name is refused unread

    @property
    def writer(self) -> bool:
        return self.signing_key is not None

    def __repr__(self) -> str:
        return (f"RemoteSettings(bucket={self.bucket!r}, prefix={self.prefix!r}, endpoint={self.endpoint!r}, "
                f"region={self.region!r}, writer={self.writer}, trusted_keys={len(self.trusted)})")

    @classmethod
    def load(cls, url: str, *, endpoint: str = "", credentials_file: str = "", signing_key_file: str = "",
             trusted_keys_file: str = "", region: str = "auto", **tunables: Any) -> "RemoteSettings":
        """Checked settings from the operator's URL, endpoint and files; RemoteConfigError naming what is wrong."""
        bucket, prefix = parse_remote_url(url)
        endpoint = check_endpoint(endpoint)
        key_id = secret = None
        if credentials_file:
            key_id, secret = read_credentials(credentials_file)
        signing_key = None
        trusted: list[Ed25519PublicKey] = []
        if signing_key_file or trusted_keys_file:
            from cached.remote.signing import load_private_key, load_trusted_keys

            if trusted_keys_file:
                trusted = load_trusted_keys(trusted_keys_file)
            if signing_key_file:
                signing_key = load_private_key(signing_key_file)
                trusted.insert(0, signing_key.public_key())
        if not trusted:
            raise RemoteConfigError("--remote: a reader needs --remote-trusted-keys (the writers' public keys) and a writer "
                                    "--remote-signing-key; with neither, no record could ever be accepted")
        settings = cls(bucket, prefix, endpoint, region or "auto", key_id, secret, signing_key, tuple(trusted), **tunables)
        settings.check()
        return settings

    def check(self) -> None:
        """Refuses tunables that cannot work (a zero queue, a negative timeout)."""
        positive = {"connect_timeout_s": self.connect_timeout_s, "read_timeout_s": self.read_timeout_s,
                    "max_attempts": self.max_attempts, "failure_threshold": self.failure_threshold,
                    "queue_entries": self.queue_entries, "queue_bytes": self.queue_bytes,
                    "writer_threads": self.writer_threads, "read_concurrency": self.read_concurrency,
                    "max_record_bytes": self.max_record_bytes}
        bad = [name for name, value in positive.items() if not value > 0]
        if bad or self.cooldown_s < 0:
            raise RemoteConfigError(f"remote settings: {', '.join(bad) or 'cooldown_s'} must be positive")

    @classmethod
    def from_args(cls, args: argparse.Namespace, **tunables: Any) -> "RemoteSettings | None":
        """The settings the flags of ``add_remote_options`` name; None without ``--remote``."""
        if not getattr(args, "remote", ""):
            return None
        cooldown = getattr(args, "remote_breaker_cooldown", None)
        if cooldown is not None:
            tunables.setdefault("cooldown_s", cooldown)
        return cls.load(args.remote, endpoint=args.remote_endpoint, credentials_file=args.remote_credentials_file,
                        signing_key_file=args.remote_signing_key, trusted_keys_file=getattr(args, "remote_trusted_keys", ""),
                        region=args.remote_region, **tunables)


def add_remote_options(p: argparse.ArgumentParser, *, readers: bool = True) -> None:
    """The flags naming the shared tier; ``readers=False`` leaves out the trusted keys (commands that only delete)."""
    g = p.add_argument_group("shared tier (an S3-compatible bucket)")
    g.add_argument("--remote", default="", metavar="s3://BUCKET[/PREFIX]", help="the bucket shared by several daemons")
    g.add_argument("--remote-endpoint", default="", metavar="URL", help="S3 API endpoint (R2, MinIO); default: AWS")
    g.add_argument("--remote-region", default="auto", metavar="REGION", help="signing region (default auto, as R2 wants)")
    g.add_argument("--remote-credentials-file", default="", metavar="FILE", help="one line ACCESS_KEY_ID:SECRET "
                   "(default: boto3's chain); the shared tier's own credentials, not the deploy's")
    g.add_argument("--remote-signing-key", default="", metavar="FILE", help="Ed25519 private key (PEM, hex or 32 raw bytes): "
                   "only a daemon with one writes to the bucket (make one with `cached keygen`)")
    g.add_argument("--remote-breaker-cooldown", type=float, default=None, metavar="SECONDS",
                   help="after 5 failures in a row, how long the bucket is left alone before one request tries it again (default 30)")
    if readers:
        g.add_argument("--remote-trusted-keys", default="", metavar="FILE", help="the writers' public keys, hex one a line "
                       "or PEM blocks; records signed by any other key are misses")
