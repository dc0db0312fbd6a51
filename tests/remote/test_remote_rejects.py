"""What a reader refuses: blobs and records changed in the bucket by hand, and records it has no reason to trust.

Each refusal is a miss (None), a warning and one count of ``rejected[reason]``; nothing raises.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from cached.digest import Hasher
from cached.remote.names import ac_kind
from cached.remote.tier import RemoteTier
from cached.v1 import remote_pb2
from remote_support import Keys, MotoS3

HASH = Hasher()
PREFIX = "team-cache"


def _rejected_once(tier: RemoteTier, reason: str) -> None:
    assert tier.stats.snapshot()["rejected"] == {reason: 1}


def test_a_blob_changed_in_the_bucket_is_rejected(make_tier: Callable[..., RemoteTier], s3_server: MotoS3, bucket: str,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    tier = make_tier()
    data = b"the real output"
    digest = HASH.bytes(data)
    tier.put_blob(digest, data)
    tier.flush(10)
    name = f"{PREFIX}/cas/blake3/{digest.hash}"
    s3_server.client().put_object(Bucket=bucket, Key=name, Body=b"the fake output")  # same length, other bytes

    with caplog.at_level(logging.WARNING, logger="cached.remote"):
        assert tier.get_blob(digest) is None
    _rejected_once(tier, "digest_mismatch")
    assert any(name in r.getMessage() and "digest_mismatch" in r.getMessage() for r in caplog.records)
    assert tier.get_blobs([digest]) == {}


def test_a_blob_of_the_wrong_size_is_refused_unread_and_not_counted_as_present(
        make_tier: Callable[..., RemoteTier], s3_server: MotoS3, bucket: str) -> None:
    tier = make_tier()
    digest = HASH.bytes(b"four")
    s3_server.client().put_object(Bucket=bucket, Key=f"{PREFIX}/cas/blake3/{digest.hash}", Body=b"a much longer body")
    assert tier.get_blob(digest) is None
    assert tier.has_blobs([digest]) == set()
    assert tier.missing([digest]) == [digest]
    assert tier.stats.rejected["size_mismatch"] == 3
    assert tier.stats.bytes_in == 0


def _stored(tier: RemoteTier, s3_server: MotoS3, bucket: str, kind: str, key: str, value: bytes) -> remote_pb2.SignedRecord:
    tier.put_record(kind, key, value)
    assert tier.flush(10)
    record = remote_pb2.SignedRecord()
    record.ParseFromString(s3_server.keys(bucket)[f"{PREFIX}/{kind}/{key}"])
    return record


def _put(s3_server: MotoS3, bucket: str, kind: str, key: str, body: bytes) -> None:
    s3_server.client().put_object(Bucket=bucket, Key=f"{PREFIX}/{kind}/{key}", Body=body)


def test_the_envelope_is_what_the_proto_says(make_tier: Callable[..., RemoteTier], s3_server: MotoS3, bucket: str) -> None:
    tier = make_tier()
    record = _stored(tier, s3_server, bucket, "deps", "k", b"value")
    assert (record.version, record.kind, record.key, record.value, record.key_id) == (1, "deps", "k", b"value", tier.key_id)
    assert record.value_digest.hash == HASH.bytes(b"value").hash and record.value_digest.size == 5
    assert len(record.signature) == 64


@pytest.mark.parametrize("change, reason", [
    ("value", "value_mismatch"),            # the value edited, its digest left
    ("value_and_digest", "bad_signature"),  # both edited consistently: the signature no longer covers them
    ("signature", "bad_signature"),
    ("no_signature", "unsigned"),
    ("no_key_id", "unsigned"),
    ("key_id", "unknown_key"),
    ("version", "version"),
    ("garbage", "malformed"),
])
def test_a_record_changed_in_the_bucket_is_rejected(make_tier: Callable[..., RemoteTier], s3_server: MotoS3, bucket: str,
                                                    change: str, reason: str) -> None:
    tier = make_tier()
    kind, key = ac_kind("acme"), "blake3:abc"
    record = _stored(tier, s3_server, bucket, kind, key, b"genuine result")
    assert tier.get_record(kind, key) == b"genuine result"
    if change == "value":
        record.value = b"poisoned result"
    elif change == "value_and_digest":
        record.value = b"poisoned result"
        record.value_digest.CopyFrom(HASH.bytes(b"poisoned result").to_proto())
    elif change == "signature":
        record.signature = bytes([record.signature[0] ^ 1]) + record.signature[1:]
    elif change == "no_signature":
        record.ClearField("signature")
    elif change == "no_key_id":
        record.ClearField("key_id")
    elif change == "key_id":
        record.key_id = "0" * 32
    elif change == "version":
        record.version = 2
    body = b"\xff\xff not a protobuf" if change == "garbage" else record.SerializeToString()
    _put(s3_server, bucket, kind, key, body)

    assert tier.get_record(kind, key) is None
    _rejected_once(tier, reason)


@pytest.mark.parametrize("rewrite_field", [False, True])
def test_a_record_copied_to_another_key_is_rejected(make_tier: Callable[..., RemoteTier], s3_server: MotoS3, bucket: str,
                                                    rewrite_field: bool) -> None:
    tier = make_tier()
    record = _stored(tier, s3_server, bucket, "deps", "key-one", b"manifest of one")
    if rewrite_field:
        record.key = "key-two"  # the envelope edited to match its new name: the signature still names key-one
    _put(s3_server, bucket, "deps", "key-two", record.SerializeToString())
    assert tier.get_record("deps", "key-two") is None
    _rejected_once(tier, "bad_signature" if rewrite_field else "key_mismatch")
    assert tier.get_record("deps", "key-one") == b"manifest of one"


@pytest.mark.parametrize("rewrite_field", [False, True])
def test_a_record_moved_to_another_kind_or_tenant_is_rejected(make_tier: Callable[..., RemoteTier], s3_server: MotoS3,
                                                              bucket: str, rewrite_field: bool) -> None:
    tier = make_tier()
    record = _stored(tier, s3_server, bucket, ac_kind("acme"), "k", b"acme's result")
    for kind in (ac_kind("victim"), "deps"):
        if rewrite_field:
            record.kind = kind
        _put(s3_server, bucket, kind, "k", record.SerializeToString())
        assert tier.get_record(kind, "k") is None
    assert tier.stats.snapshot()["rejected"] == {("bad_signature" if rewrite_field else "kind_mismatch"): 2}


def test_a_record_signed_by_an_untrusted_key_is_rejected(make_tier: Callable[..., RemoteTier], make_keys: Callable[[str], Keys],
                                                         caplog: pytest.LogCaptureFixture) -> None:
    stranger = make_tier(signing=make_keys("stranger").private)
    stranger.put_record("deps", "k", b"stranger's manifest")
    stranger.flush(10)
    assert stranger.get_record("deps", "k") == b"stranger's manifest"  # a writer trusts its own key

    reader = make_tier(signing=None)  # trusts the writer's key only
    with caplog.at_level(logging.WARNING, logger="cached.remote"):
        assert reader.get_record("deps", "k") is None
    _rejected_once(reader, "unknown_key")
    assert any("unknown_key" in r.getMessage() for r in caplog.records)


def test_a_reader_trusting_several_keys_accepts_each(make_tier: Callable[..., RemoteTier], make_keys: Callable[[str], Keys],
                                                     writer_keys: Keys, tmp_path: Path) -> None:
    second = make_keys("second")
    trusted = tmp_path / "trusted"
    trusted.write_text(writer_keys.public.read_text() + "\n# the second writer\n" + second.public.read_text())
    first, other = make_tier(), make_tier(signing=second.private)
    first.put_record("deps", "one", b"1")
    other.put_record("deps", "two", b"2")
    assert first.flush(10) and other.flush(10)
    reader = make_tier(signing=None, trusted=trusted)
    assert (reader.get_record("deps", "one"), reader.get_record("deps", "two")) == (b"1", b"2")
    assert reader.stats.snapshot()["rejected"] == {}
