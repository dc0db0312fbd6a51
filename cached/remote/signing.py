"""Ed25519 keys of the shared tier: loading them, naming them, making a pair.

Writers sign every record with their private key; readers hold the public
keys they trust and verify. A key is named by its id, the first 16 bytes of
the BLAKE3 of its raw public key in hex: short enough for every record,
and a forged id gains nothing, since verification uses the trusted key itself.

Key files may be a raw 32-byte key, its hex (64 characters), or PEM (PKCS#8
private keys, SubjectPublicKeyInfo public keys). Errors name the file and
what is wrong, never its content.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import blake3
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from cached.remote.errors import RemoteConfigError

RAW_LENGTH = 32
_HEX_KEY = re.compile(rb"[0-9a-fA-F]{64}")
_PEM_BLOCK = re.compile(r"-----BEGIN ([A-Z ]+)-----.*?-----END \1-----", re.S)


def raw_public(public: Ed25519PublicKey) -> bytes:
    return public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def key_id(public: Ed25519PublicKey) -> str:
    """The name of a public key in records: hex of the first 16 bytes of BLAKE3(raw key)."""
    return blake3.blake3(raw_public(public)).hexdigest()[:32]


def parse_private_key(data: bytes, source: str) -> Ed25519PrivateKey:
    """A private key from PEM, 64 hex characters or 32 raw bytes; RemoteConfigError naming ``source``."""
    if data.lstrip().startswith(b"-----BEGIN"):
        try:
            key = serialization.load_pem_private_key(data, password=None)
        except TypeError:
            raise RemoteConfigError(f"signing key {source}: encrypted PEM keys are not supported; store it unencrypted, mode 0600") from None
        except (ValueError, UnsupportedAlgorithm):
            raise RemoteConfigError(f"signing key {source}: not a readable PEM private key") from None
        if not isinstance(key, Ed25519PrivateKey):
            raise RemoteConfigError(f"signing key {source}: a {type(key).__name__.removeprefix('_')} key, not Ed25519")
        return key
    if _HEX_KEY.fullmatch(data.strip()):
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(data.strip().decode()))
    if len(data) == RAW_LENGTH:
        return Ed25519PrivateKey.from_private_bytes(data)
    raise RemoteConfigError(f"signing key {source}: expected an Ed25519 private key: 32 raw bytes, 64 hex characters "
                            f"or a PEM block (the file has {len(data)} bytes)")


def parse_public_key(text: str, source: str) -> Ed25519PublicKey:
    """One public key: 64 hex characters or a PEM block."""
    text = text.strip()
    if text.startswith("-----BEGIN"):
        try:
            key = serialization.load_pem_public_key(text.encode())
        except (ValueError, UnsupportedAlgorithm):
            raise RemoteConfigError(f"{source}: not a readable PEM public key") from None
        if not isinstance(key, Ed25519PublicKey):
            raise RemoteConfigError(f"{source}: a {type(key).__name__.removeprefix('_')} key, not Ed25519")
        return key
    if _HEX_KEY.fullmatch(text.encode()):
        return Ed25519PublicKey.from_public_bytes(bytes.fromhex(text))
    raise RemoteConfigError(f"{source}: expected an Ed25519 public key as 64 hex characters or a PEM block")


def parse_public_keys(text: str, source: str) -> list[Ed25519PublicKey]:
    """Every key of a trusted-keys file: PEM blocks, and hex keys one a line; blank lines and ``#`` comments skipped."""
    keys = [parse_public_key(m.group(0), f"trusted keys {source} (PEM block {i + 1})") for i, m in enumerate(_PEM_BLOCK.finditer(text))]
    rest = _PEM_BLOCK.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    if "-----BEGIN" in rest or "-----END" in rest:
        raise RemoteConfigError(f"trusted keys {source}: a PEM block is not closed")
    for n, line in enumerate(rest.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if line:
            keys.append(parse_public_key(line, f"trusted keys {source} line {n}"))
    return keys


def _read(path: str | os.PathLike[str], what: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as e:
        raise RemoteConfigError(f"{what} {path}: cannot read it ({e.strerror or type(e).__name__})") from None


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    return parse_private_key(_read(path, "signing key"), str(path))


def load_trusted_keys(path: str | os.PathLike[str]) -> list[Ed25519PublicKey]:
    data = _read(path, "trusted keys")
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError:
        raise RemoteConfigError(f"trusted keys {path}: not a text file (hex keys one a line, or PEM blocks)") from None
    return parse_public_keys(text, str(path))


@dataclass(frozen=True)
class Keyring:
    """The public keys a reader trusts, by id: verification looks the key up, then checks the signature."""

    keys: dict[str, Ed25519PublicKey] = field(default_factory=dict)

    @classmethod
    def of(cls, publics: list[Ed25519PublicKey]) -> "Keyring":
        return cls({key_id(k): k for k in publics})

    def __contains__(self, kid: object) -> bool:
        return kid in self.keys

    def __len__(self) -> int:
        return len(self.keys)

    def verify(self, kid: str, signature: bytes, message: bytes) -> bool:
        key = self.keys.get(kid)
        if key is None:
            return False
        try:
            key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


def _create_exclusive(path: Path, mode: int) -> int:
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    except FileExistsError:
        raise RemoteConfigError(f"{path} exists; keygen never overwrites a key (remove it, or choose another path)") from None
    except OSError as e:
        raise RemoteConfigError(f"{path}: cannot create it ({e.strerror or type(e).__name__})") from None
    os.fchmod(fd, mode)  # the umask may only have removed bits; say exactly what we mean
    return fd


def generate_keypair(private_path: str | os.PathLike[str], public_path: str | os.PathLike[str]) -> str:
    """Writes a new key pair and returns its key id.

    The private key is PEM (PKCS#8) in a file created exclusively with mode
    0600, so an existing key is never overwritten and never readable by others
    even for a moment; the public key is one hex line with a comment naming
    its id, so public files can be concatenated into a trusted-keys file.
    Both files are created before either is written: on an error neither is left.
    """
    private_path, public_path = Path(private_path), Path(public_path)
    if private_path.resolve() == public_path.resolve():
        raise RemoteConfigError("keygen: --private and --public name the same file")
    key = Ed25519PrivateKey.generate()
    public = key.public_key()
    kid = key_id(public)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    private_fd = _create_exclusive(private_path, 0o600)
    try:
        public_fd = _create_exclusive(public_path, 0o644)
    except BaseException:
        os.close(private_fd)
        private_path.unlink(missing_ok=True)
        raise
    try:
        with os.fdopen(private_fd, "wb") as private_file, os.fdopen(public_fd, "w") as public_file:
            private_file.write(pem)
            public_file.write(f"# cached shared-tier public key, id {kid}\n{raw_public(public).hex()}\n")
            private_file.flush()
            os.fsync(private_file.fileno())
    except BaseException:
        private_path.unlink(missing_ok=True)
        public_path.unlink(missing_ok=True)
        raise
    return kid
