"""The asset manifest: Cloudflare's documented hash, extensions, content types, the 25 MiB split; script names."""

from __future__ import annotations

import base64
import itertools
import re

import blake3
import pytest

from inproc import DictBlobs, record

from cached.deploy.assets import ASSET_LIMIT, AssetHasher, asset_hash
from cached.deploy.mime import content_type, extension
from cached.deploy.names import parse_script_name, script_name

# (path, bytes, base64 of the bytes + extension, as the documented algorithm hashes it)
VECTORS = [
    ("index.html", b"<h1>hello</h1>\n", "PGgxPmhlbGxvPC9oMT4K" + "html"),
    ("a.tar.gz", b"\x1f\x8b\x08\x00", "H4sIAA==" + "gz"),
    (".env", b"KEY=value\n", "S0VZPXZhbHVlCg==" + ""),
    ("LICENSE", b"MIT\n", "TUlUCg==" + ""),
    ("Photo.PNG", b"\x89PNG", "iVBORw==" + "PNG"),
    ("assets/empty.js", b"", "" + "js"),
]


@pytest.mark.parametrize(("path", "data", "hashed"), VECTORS)
def test_asset_hash_is_blake3_of_base64_plus_extension_truncated_to_32_hex(path: str, data: bytes, hashed: str) -> None:
    assert base64.b64encode(data).decode() + extension(path) == hashed
    expected = blake3.blake3(hashed.encode()).hexdigest()[:32]
    assert asset_hash(data, path) == expected
    assert re.fullmatch(r"[0-9a-f]{32}", expected)


def test_known_hash_values() -> None:
    assert asset_hash(b"<h1>hello</h1>\n", "index.html") == blake3.blake3(b"PGgxPmhlbGxvPC9oMT4Khtml").hexdigest()[:32]
    # the same bytes under another extension hash differently; with none, like .env
    assert asset_hash(b"x", "a.js") != asset_hash(b"x", "a.css")
    assert asset_hash(b"x", ".env") == asset_hash(b"x", "Makefile") == blake3.blake3(b"eA==").hexdigest()[:32]


def test_extension_follows_node_extname() -> None:
    assert [extension(p) for p in ["index.html", "a.tar.gz", ".env", "LICENSE", "dir.v2/file", "x/.hidden", "..env", "a."]] == [
        "html", "gz", "", "", "", "", "env", ""]


def test_content_types_are_fixed_and_text_has_charset() -> None:
    assert content_type("index.html") == "text/html; charset=utf-8"
    assert content_type("assets/index-1.js") == "text/javascript; charset=utf-8"
    assert content_type("a.CSS") == "text/css; charset=utf-8"
    assert content_type("logo.svg") == "image/svg+xml"
    assert content_type("data.bin") == content_type(".env") == "application/octet-stream"


def test_files_over_the_limit_are_large_files_not_assets() -> None:
    blobs = DictBlobs()
    rec = record(blobs, {"index.html": b"<p>", "at_limit.bin": b"a" * ASSET_LIMIT, "over.bin": b"b" * (ASSET_LIMIT + 1)})
    manifest = AssetHasher(blobs).manifest(rec.outputs)
    assert [a.path for a in manifest.assets] == ["at_limit.bin", "index.html"]
    assert [f.path for f in manifest.large] == ["over.bin"]
    assert manifest.upload_manifest()["/index.html"] == {"hash": asset_hash(b"<p>", "index.html"), "size": 3}


IDS = ["a", "a-b", "a_b", "a-h", "a-u", "ab", "b", "b-c", "h", "u", "0", "a--b", "a__b", "x_-y", "-"[:0] + "z9"]


def test_script_names_are_injective_dns_labels_and_decode_back() -> None:
    names: dict[str, tuple[str, str]] = {}
    for tenant, app in itertools.product(IDS, IDS):
        name = script_name(tenant, app)
        assert re.fullmatch(r"[a-z0-9]([a-z0-9-]*[a-z0-9])?", name) and len(name) <= 54, name
        assert names.setdefault(name, (tenant, app)) == (tenant, app), f"{name} for two pairs"
        assert parse_script_name(name) == (tenant, app)


def test_long_pairs_get_a_hashed_name_that_never_equals_a_readable_one() -> None:
    long_a, long_b = "t" * 40, "a" * 40
    name = script_name(long_a, long_b)
    assert len(name) <= 54 and "--" not in name and parse_script_name(name) is None
    assert name != script_name(long_a, long_b[:-1] + "b")
    with pytest.raises(ValueError):
        script_name("Bad", "app")
