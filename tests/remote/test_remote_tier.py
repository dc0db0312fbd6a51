"""Round trips through moto's S3 server: blobs and records land where the layout says, read back, and a reader never writes."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from cached.digest import Digest, Hasher
from cached.remote.errors import InvalidName, RemoteConfigError
from cached.remote.names import ac_kind
from cached.remote.stats import Observer
from cached.remote.tier import RemoteTier
from remote_support import MotoS3

HASH = Hasher()
PREFIX = "team-cache"


def test_blobs_round_trip_and_batches(make_tier: Callable[..., RemoteTier], s3_server: MotoS3, bucket: str) -> None:
    tier = make_tier()
    blobs = {HASH.bytes(b): b for b in (b"alpha" * 100, b"beta", b"")}
    absent = HASH.bytes(b"never uploaded")
    assert tier.missing([*blobs, absent]) == [*blobs, absent]
    for digest, data in blobs.items():
        assert tier.put_blob(digest, data)
    assert tier.flush(10)

    names = set(s3_server.keys(bucket))
    assert names == {f"{PREFIX}/cas/blake3/{d.hash}" for d in blobs}
    assert tier.has_blobs([*blobs, absent]) == set(blobs)
    assert tier.missing([absent, *blobs, absent]) == [absent]
    for digest, data in blobs.items():
        assert tier.get_blob(digest) == data
    assert tier.get_blobs([*blobs, absent]) == blobs
    assert tier.get_blob(absent) is None

    snap = tier.stats.snapshot()
    assert snap["bytes_out"] == sum(len(b) for b in blobs.values())
    assert snap["bytes_in"] == 2 * snap["bytes_out"]
    assert snap["written"]["put_blob"] == len(blobs)
    assert snap["misses"]["get_blob"] == 2
    assert snap["dropped"] == {} and snap["rejected"] == {} and snap["errors"] == {}
    assert tier.queue_depth == 0


def test_records_round_trip_under_each_kind(make_tier: Callable[..., RemoteTier], s3_server: MotoS3, bucket: str) -> None:
    tier = make_tier()
    records = {(ac_kind("acme"), "blake3:aa11"): b"action result", ("deps", "blake3:bb22"): b"manifest",
               ("packages", "react@19.3.1"): b"package", ("resolutions", "c0ffee"): b"\x00\x01binary"}
    for (kind, key), value in records.items():
        assert tier.put_record(kind, key, value)
    assert tier.flush(10)

    assert set(s3_server.keys(bucket)) == {f"{PREFIX}/{kind}/{key}" for kind, key in records}
    for (kind, key), value in records.items():
        assert tier.get_record(kind, key) == value
    # action results belong to their tenant: another tenant's name is another object
    assert tier.get_record(ac_kind("other"), "blake3:aa11") is None
    assert tier.get_record("deps", "blake3:unknown") is None
    assert tier.stats.snapshot()["misses"]["get_record"] == 2


def test_a_newer_record_value_wins(make_tier: Callable[..., RemoteTier]) -> None:
    tier = make_tier()
    tier.put_record("deps", "k1", b"first")
    tier.flush(10)
    tier.put_record("deps", "k1", b"second")
    tier.flush(10)
    assert tier.get_record("deps", "k1") == b"second"


def test_a_blob_whose_bytes_do_not_match_its_digest_is_not_uploaded(make_tier: Callable[..., RemoteTier], s3_server: MotoS3,
                                                                     bucket: str) -> None:
    tier = make_tier()
    assert tier.put_blob(HASH.bytes(b"claimed"), b"actual")  # queued: the hash is checked on the writer thread
    tier.flush(10)
    assert s3_server.keys(bucket) == {}
    assert tier.stats.dropped["bad_digest"] == 1


def test_a_read_only_tier_reads_and_never_writes(make_tier: Callable[..., RemoteTier], s3_server: MotoS3, bucket: str) -> None:
    writer = make_tier()
    blob = b"shared output"
    writer.put_blob(HASH.bytes(blob), blob)
    writer.put_record(ac_kind("acme"), "k", b"result")
    writer.flush(10)
    before = s3_server.keys(bucket)

    reader = make_tier(signing=None)
    assert not reader.writable and reader.key_id is None
    assert reader.get_record(ac_kind("acme"), "k") == b"result"
    assert reader.get_blob(HASH.bytes(blob)) == blob
    assert reader.put_blob(HASH.bytes(b"mine"), b"mine") is False
    assert reader.put_record(ac_kind("acme"), "k", b"forged") is False
    assert reader.put_record("deps", "new", b"x") is False
    assert reader.flush(1)
    with pytest.raises(RemoteConfigError, match="only a writer"):
        reader.collect(1.0)

    assert s3_server.keys(bucket) == before
    assert reader.stats.dropped["read_only"] == 3
    assert reader.get_record(ac_kind("acme"), "k") == b"result"


def test_unsupported_digests_stay_local(make_tier: Callable[..., RemoteTier], s3_server: MotoS3, bucket: str) -> None:
    tier = make_tier()
    weak = Hasher("xxh3_128").bytes(b"data")
    assert tier.put_blob(weak, b"data") is False
    assert tier.get_blob(weak) is None
    assert tier.has_blobs([weak]) == set()
    tier.flush(5)
    assert s3_server.keys(bucket) == {}
    assert tier.stats.dropped["unsupported"] == 1


@pytest.mark.parametrize("kind, key", [
    ("deps", "a/b"), ("deps", ".."), ("deps", "a..b"), ("deps", ""), ("deps", "x" * 256), ("deps", "-lead"),
    ("deps", "new\nline"), ("ac/", "k"), ("ac/a/b", "k"), ("ac/..", "k"), ("cas", "k"), ("other", "k"), ("ac/" + "t" * 129, "k"),
])
def test_names_that_cannot_be_one_segment_are_refused(kind: str, key: str) -> None:
    from cached.remote.names import Layout

    with pytest.raises(InvalidName):
        Layout("p").record(kind, key)


def test_the_tier_refuses_bad_names_before_queueing_or_reading(make_tier: Callable[..., RemoteTier]) -> None:
    tier = make_tier()
    with pytest.raises(InvalidName):
        tier.put_record("deps", "a/b", b"v")
    with pytest.raises(InvalidName):
        tier.get_record(ac_kind("acme").replace("acme", ".."), "k")
    assert tier.queue_depth == 0 and tier.stats.snapshot()["misses"] == {}


def test_a_malformed_blob_hash_is_refused() -> None:
    from cached.remote.names import Layout

    with pytest.raises(InvalidName):
        Layout("p").blob(Digest("../../ac/acme/k" + "0" * 49, 1))
    assert Layout("").blob(HASH.bytes(b"x")) == f"cas/blake3/{HASH.bytes(b'x').hash}"


class Recording(Observer):
    def __init__(self) -> None:
        self.events: list[tuple[object, ...]] = []

    def request(self, op: str, seconds: float, outcome: str) -> None:
        self.events.append(("request", op, outcome))

    def transferred(self, direction: str, n: int) -> None:
        self.events.append(("bytes", direction, n))

    def dropped(self, reason: str) -> None:
        self.events.append(("dropped", reason))

    def rejected(self, reason: str) -> None:
        self.events.append(("rejected", reason))


def test_the_observer_sees_requests_bytes_and_refusals(make_tier: Callable[..., RemoteTier], s3_server: MotoS3,
                                                       bucket: str) -> None:
    tier = make_tier()
    recording = Recording()
    tier.stats.observer = recording
    digest = HASH.bytes(b"seen")
    tier.put_blob(digest, b"seen")
    tier.flush(10)
    assert tier.get_blob(digest) == b"seen"
    assert tier.get_blob(HASH.bytes(b"absent")) is None
    s3_server.client().put_object(Bucket=bucket, Key=f"{PREFIX}/deps/k", Body=b"junk")
    assert tier.get_record("deps", "k") is None
    assert recording.events == [
        ("bytes", "out", 4), ("request", "put_blob", "ok"),
        ("bytes", "in", 4), ("request", "get_blob", "hit"),
        ("request", "get_blob", "miss"),
        ("bytes", "in", 4), ("rejected", "malformed"), ("request", "get_record", "rejected"),
    ]


def test_an_observer_that_raises_changes_nothing(make_tier: Callable[..., RemoteTier]) -> None:
    class Broken(Observer):
        def request(self, op: str, seconds: float, outcome: str) -> None:
            raise RuntimeError("metrics bug")

    tier = make_tier()
    tier.stats.observer = Broken()
    tier.put_record("deps", "k", b"v")
    assert tier.flush(10)
    assert tier.get_record("deps", "k") == b"v"
