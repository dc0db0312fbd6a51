"""Garbage collection of a bucket without a lifecycle rule: old objects go, new ones and other prefixes stay; writers only."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from cached.cli import main
from cached.digest import Hasher
from cached.remote.names import ac_kind
from cached.remote.tier import RemoteTier
from remote_support import Keys, MotoS3, credentials_file

HASH = Hasher()


def _write(tier: RemoteTier, tag: str) -> set[str]:
    data = f"blob {tag}".encode()
    tier.put_blob(HASH.bytes(data), data)
    tier.put_record(ac_kind("acme"), f"action-{tag}", b"r")
    tier.put_record("deps", f"deps-{tag}", b"d")
    assert tier.flush(10)
    p = "team-cache"
    return {f"{p}/cas/blake3/{HASH.bytes(data).hash}", f"{p}/ac/acme/action-{tag}", f"{p}/deps/deps-{tag}"}


def _cutoff_between_old_and_new(s3_server: MotoS3, bucket: str, old: set[str], new: set[str]) -> float:
    """A time that S3's own LastModified times put between the two sets (their resolution is a second); age = now - it."""
    times = {o["Key"]: o["LastModified"].timestamp() for o in s3_server.client().list_objects_v2(Bucket=bucket)["Contents"]}
    newest_old, oldest_new = max(times[k] for k in old), min(times[k] for k in new)
    assert newest_old < oldest_new
    return (newest_old + oldest_new) / 2


def test_collect_deletes_only_old_objects_of_the_tier(make_tier: Callable[..., RemoteTier], s3_server: MotoS3, bucket: str) -> None:
    tier = make_tier()
    client = s3_server.client()
    client.put_object(Bucket=bucket, Key="team-cache/notes/readme", Body=b"not the tier's")
    client.put_object(Bucket=bucket, Key="elsewhere/cas/blake3/x", Body=b"another prefix")
    old = _write(tier, "old")
    time.sleep(1.2)
    new = _write(tier, "new")
    cutoff = _cutoff_between_old_and_new(s3_server, bucket, old, new)

    dry = tier.collect(time.time() - cutoff, dry_run=True)
    assert (dry.deleted, dry.kept, dry.dry_run) == (3, 3, True)
    bodies = s3_server.keys(bucket)
    assert old <= set(bodies)

    result = tier.collect(time.time() - cutoff)
    assert (result.deleted, result.kept, result.failed) == (3, 3, [])
    assert result.bytes_deleted == sum(len(bodies[k]) for k in old) == dry.bytes_deleted
    assert set(s3_server.keys(bucket)) == new | {"team-cache/notes/readme", "elsewhere/cas/blake3/x"}
    assert tier.get_record("deps", "deps-new") == b"d"
    assert tier.get_record("deps", "deps-old") is None


def test_cached_gc_remote(tmp_path: Path, make_tier: Callable[..., RemoteTier], s3_server: MotoS3, bucket: str, writer_keys: Keys,
                          capsys: pytest.CaptureFixture[str]) -> None:
    old = _write(make_tier(), "old")
    time.sleep(1.2)
    new = _write(make_tier(), "new")
    cutoff = _cutoff_between_old_and_new(s3_server, bucket, old, new)
    flags = ["--remote", f"s3://{bucket}/team-cache", "--remote-endpoint", s3_server.endpoint,
             "--remote-credentials-file", str(credentials_file(tmp_path))]

    assert main(["gc", *flags, "--older-than", "1d"]) == 2  # no signing key: not a writer
    assert "--remote-signing-key" in capsys.readouterr().err
    assert main(["gc", *flags, "--remote-signing-key", str(writer_keys.private)]) == 2  # no age
    assert "--older-than" in capsys.readouterr().err
    assert set(s3_server.keys(bucket)) == old | new

    assert main(["gc", *flags, "--remote-signing-key", str(writer_keys.private), "--older-than", f"{time.time() - cutoff:.3f}s",
                 "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert (report["deleted"], report["kept"]) == (3, 3)
    assert set(s3_server.keys(bucket)) == new


def test_cached_gc_remote_reports_a_bucket_that_is_down(tmp_path: Path, writer_keys: Keys, capsys: pytest.CaptureFixture[str]) -> None:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed again: nothing listens there
    assert main(["gc", "--remote", "s3://bucket", "--remote-endpoint", f"http://127.0.0.1:{port}",
                 "--remote-credentials-file", str(credentials_file(tmp_path)), "--remote-signing-key", str(writer_keys.private),
                 "--older-than", "7d"]) == 1
    err = capsys.readouterr().err
    assert "remote gc on bucket bucket" in err and "remote-test-secret" not in err
