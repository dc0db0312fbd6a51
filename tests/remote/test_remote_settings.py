"""Settings and keys: what operators give the tier is checked at startup, with messages that name the problem and no secret."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cached.cli import main
from cached.remote.errors import RemoteConfigError
from cached.remote.settings import RemoteSettings, check_endpoint, parse_remote_url, read_credentials
from cached.remote.signing import generate_keypair, key_id, load_private_key, load_trusted_keys

SECRET = "very-secret-value-1234"


def test_keygen_writes_a_pair_that_loads_and_verifies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    private, public = tmp_path / "k", tmp_path / "k.pub"
    assert main(["keygen", "--private", str(private), "--public", str(public)]) == 0
    assert stat.S_IMODE(private.stat().st_mode) == 0o600
    key = load_private_key(private)
    [trusted] = load_trusted_keys(public)
    trusted.verify(key.sign(b"message"), b"message")  # raises when the pair does not match
    assert key_id(trusted) in capsys.readouterr().out

    assert main(["keygen", "--private", str(private), "--public", str(tmp_path / "other.pub")]) == 1
    assert "exists" in capsys.readouterr().err
    assert load_private_key(private).public_key() == trusted  # not overwritten
    assert not (tmp_path / "other.pub").exists()


def test_keygen_leaves_nothing_when_the_public_file_exists(tmp_path: Path) -> None:
    (tmp_path / "taken.pub").write_text("x")
    with pytest.raises(RemoteConfigError, match="exists"):
        generate_keypair(tmp_path / "new", tmp_path / "taken.pub")
    assert not (tmp_path / "new").exists()


def test_keygen_private_file_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        generate_keypair(tmp_path / "k", tmp_path / "k.pub")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "k").stat().st_mode) == 0o600


def test_signing_keys_load_as_raw_hex_or_pem(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    raw = key.private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption())
    forms = {"raw": raw, "hex": raw.hex().encode() + b"\n",
             "pem": key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())}
    for name, data in forms.items():
        (tmp_path / name).write_bytes(data)
        assert load_private_key(tmp_path / name).public_key() == key.public_key(), name


def test_trusted_keys_files_take_hex_lines_pem_blocks_and_comments(tmp_path: Path) -> None:
    a, b = Ed25519PrivateKey.generate().public_key(), Ed25519PrivateKey.generate().public_key()
    pem = b.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo).decode()
    raw = a.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    path = tmp_path / "trusted"
    path.write_text(f"# the team's writers\n\n{raw}  # ci\n{pem}")
    assert sorted(key_id(k) for k in load_trusted_keys(path)) == sorted([key_id(a), key_id(b)])


@pytest.mark.parametrize("content, message", [
    (b"short", "expected an Ed25519 private key"),
    (b"z" * 64, "expected an Ed25519 private key"),
    (b"-----BEGIN PRIVATE KEY-----\nnope\n-----END PRIVATE KEY-----\n", "not a readable PEM"),
])
def test_bad_signing_keys_are_refused_by_name(tmp_path: Path, content: bytes, message: str) -> None:
    path = tmp_path / "bad.key"
    path.write_bytes(content)
    with pytest.raises(RemoteConfigError, match=message) as e:
        load_private_key(path)
    assert str(path) in str(e.value)


def test_a_non_ed25519_pem_key_is_refused(tmp_path: Path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    path = tmp_path / "ec.key"
    path.write_bytes(ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    with pytest.raises(RemoteConfigError, match="not Ed25519"):
        load_private_key(path)


def test_bad_trusted_keys_name_the_line(tmp_path: Path) -> None:
    path = tmp_path / "trusted"
    path.write_text("# ok\n" + "ab" * 32 + "\nnot-a-key\n")
    with pytest.raises(RemoteConfigError, match="line 3"):
        load_trusted_keys(path)
    path.write_text("-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n")
    with pytest.raises(RemoteConfigError, match="not closed"):
        load_trusted_keys(path)


@pytest.mark.parametrize("url, expected", [
    ("s3://bucket", ("bucket", "")), ("s3://my.bucket-1/", ("my.bucket-1", "")),
    ("s3://bucket/team/cache/", ("bucket", "team/cache")),
])
def test_remote_urls(url: str, expected: tuple[str, str]) -> None:
    assert parse_remote_url(url) == expected


@pytest.mark.parametrize("url, message", [
    ("bucket", "use s3://BUCKET"), ("https://bucket", "use s3://BUCKET"), ("s3://", "not a bucket name"),
    ("s3://Bucket", "not a bucket name"), ("s3://ab", "not a bucket name"), ("s3://a..b", "not a bucket name"),
    ("s3://127.0.0.1", "not a bucket name"), ("s3://bucket//x", "prefix segment ''"), ("s3://bucket/../x", "prefix segment '..'"),
    ("s3://bucket/a b", "prefix segment"), ("s3://bucket?x=1", "no query"), ("s3://key:secret@bucket", "credentials"),
])
def test_bad_remote_urls_are_refused(url: str, message: str) -> None:
    with pytest.raises(RemoteConfigError, match=message):
        parse_remote_url(url)


def test_endpoints() -> None:
    assert check_endpoint("http://127.0.0.1:9000/") == "http://127.0.0.1:9000"
    assert check_endpoint("") == ""
    for bad, message in [("ftp://127.0.0.1", "http"), ("127.0.0.1:9000", "http"), ("http://127.0.0.1/bucket", "no path"),
                         ("http://127.0.0.1:99999", "port")]:
        with pytest.raises(RemoteConfigError, match=message):
            check_endpoint(bad)
    with pytest.raises(RemoteConfigError) as e:
        check_endpoint(f"http://user:{SECRET}@127.0.0.1:9000")
    assert SECRET not in str(e.value)


def test_credentials_files_and_their_errors_never_show_the_secret(tmp_path: Path) -> None:
    path = tmp_path / "creds"
    path.write_text(f"AKID:{SECRET}\n")
    assert read_credentials(path) == ("AKID", SECRET)
    for content in (f"{SECRET}\n", f"AKID:{SECRET}\nAKID2:{SECRET}\n", "", f"AKID: {SECRET}", f":{SECRET}"):
        path.write_text(content)
        with pytest.raises(RemoteConfigError, match="ACCESS_KEY_ID:SECRET") as e:
            read_credentials(path)
        assert SECRET not in str(e.value) and str(path) in str(e.value)
    with pytest.raises(RemoteConfigError, match="cannot read"):
        read_credentials(tmp_path / "absent")


def test_settings_load_and_never_show_secrets(tmp_path: Path) -> None:
    creds = tmp_path / "creds"
    creds.write_text(f"AKID:{SECRET}\n")
    generate_keypair(tmp_path / "k", tmp_path / "k.pub")
    writer = RemoteSettings.load("s3://bucket/p", endpoint="http://127.0.0.1:9000", credentials_file=str(creds),
                                 signing_key_file=str(tmp_path / "k"))
    assert (writer.bucket, writer.prefix, writer.writer, len(writer.trusted)) == ("bucket", "p", True, 1)
    assert writer.trusted[0] == load_private_key(tmp_path / "k").public_key()  # a writer trusts itself
    assert SECRET not in repr(writer) and "AKID" not in repr(writer)

    reader = RemoteSettings.load("s3://bucket", trusted_keys_file=str(tmp_path / "k.pub"))
    assert not reader.writer and reader.access_key_id is None
    with pytest.raises(RemoteConfigError, match="trusted-keys"):
        RemoteSettings.load("s3://bucket")
    with pytest.raises(RemoteConfigError, match="must be positive"):
        RemoteSettings.load("s3://bucket", signing_key_file=str(tmp_path / "k"), queue_entries=0)
    with pytest.raises(RemoteConfigError, match="cannot read"):
        RemoteSettings.load("s3://bucket", signing_key_file=str(tmp_path / "absent"))
