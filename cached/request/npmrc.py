"""What a tenant's ``.npmrc`` may say: the policy on registries, credentials, proxies and TLS trust.

Installs share what they fetch: the npm cache, the package store (by
integrity) and the dependency trees (by deps key) serve every tenant. So a
tenant's ``.npmrc`` must not choose where packages come from nor how they are
fetched:

- a registry (``registry=``, ``@scope:registry=``) is accepted only when it
  is the daemon's own or one the operator allowlisted (``cached serve
  --allow-registry URL``); the install's egress reaches exactly those;
- credentials (``//host/path/:_authToken`` and every other ``//`` key,
  ``_auth``, ``username``, ``certfile``...) are always refused: a tenant's
  token would fetch packages that the store then shares with every tenant,
  and an allowlisted private registry gets its credentials from the daemon;
- proxies and TLS trust (``proxy``, ``ca``, ``strict-ssl``...) are always
  refused: the install's one way out is the daemon's egress proxy, and npm
  trusts the CA the daemon's npm config names.

The file is read the way npm reads it (npm's ``ini`` parser: a key ends at an
unescaped ``;`` or ``#``, quoted keys are unquoted, ``key[]`` is ``key``), so
``registry;x=URL`` or ``"registry"=URL`` is seen as the ``registry`` it is.
Keys are matched case-insensitively and with ``_`` and ``-`` alike, which
refuses more than npm would read, never less. A refusal names the key and
its line, never a value: a credential's value must not reach an error or a log.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from cached.errors import InvalidRequest

if TYPE_CHECKING:
    from cached.request.spec import BuildSpec

FIELD = "files['.npmrc']"
_SECTION = re.compile(r"^\[([^\]]*)\]\s*$")
_SCOPED_REGISTRY = re.compile(r"^(@[^:/\s]+):registry$")

CREDENTIAL_KEYS = frozenset({
    "_auth", "_authtoken", "_password", "username", "password", "email", "certfile", "keyfile", "cert", "key", "otp",
})
PROXY_KEYS = frozenset({"proxy", "https-proxy", "http-proxy", "noproxy", "no-proxy"})
TLS_KEYS = frozenset({"ca", "cafile", "strict-ssl"})

REMOVE_CREDENTIAL = (
    "remove it: a tenant's .npmrc may not hold credentials (packages fetched with them would be shared with every tenant); "
    "a private registry the operator allowlists gets its credentials from the daemon's own npm config"
)
REMOVE_PROXY = "remove it: installs reach the registry only through the daemon's own egress proxy"
REMOVE_TLS = "remove it: installs trust the certificates the daemon's npm config names, and always verify them"


@dataclass(frozen=True)
class NpmrcLine:
    """One setting of an ``.npmrc`` as npm reads it."""

    number: int  # 1-based, counted as npm splits lines
    key: str  # unquoted, comment cut, ``[]`` dropped; case as written
    value: str  # "true" for a bare key, as npm reads it

    @property
    def name(self) -> str:
        """The key compared with the policy's names: lower case, ``_`` as ``-`` (except a leading ``_``)."""
        lowered = self.key.lower()
        head = "_" if lowered.startswith("_") else ""
        return head + lowered[len(head):].replace("_", "-")


def parse_npmrc(text: str | None) -> list[NpmrcLine]:
    """Every setting of ``text``, in order, read as npm's ``ini`` parser reads it (sections included)."""
    lines: list[NpmrcLine] = []
    for number, raw in enumerate(_split(text or ""), start=1):
        if not raw.strip() or raw.lstrip()[:1] in (";", "#") or _SECTION.match(raw):
            continue
        key_part, sep, value_part = raw.partition("=")
        key = _ini_unsafe(key_part)
        if key.endswith("[]") and len(key) > 2:
            key = key[:-2]
        if not key:
            continue
        lines.append(NpmrcLine(number, key, _ini_unsafe(value_part) if sep else "true"))
    return lines


def _split(text: str) -> Iterator[str]:
    """Lines numbered as an editor shows them: each CR LF, CR or LF ends one (npm's ``ini`` splits
    on CR and LF only, not on the other separators Python's ``splitlines`` knows)."""
    yield from re.split(r"\r\n|\r|\n", text)


def _ini_unsafe(text: str) -> str:
    """npm's ``ini`` reading of a key or value: a quoted string is unquoted (JSON), else an
    unescaped ``;`` or ``#`` starts a comment and ``\\;``, ``\\#``, ``\\\\`` are unescaped."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        inner = text[1:-1] if text[0] == "'" else text
        try:
            value = json.loads(inner)
        except ValueError:
            return inner
        return value if isinstance(value, str) else inner
    out: list[str] = []
    escaped = False
    for c in text:
        if escaped:
            out.append(c if c in "\\;#" else "\\" + c)
            escaped = False
        elif c in ";#":
            break
        elif c == "\\":
            escaped = True
        else:
            out.append(c)
    if escaped:
        out.append("\\")
    return "".join(out).strip()


def normalise_registry(url: str) -> str:
    """A registry URL in one spelling: scheme, lower-case host, port (dropped when the scheme's
    default), path ending in ``/``. ValueError when it is no http(s) URL, or holds credentials,
    a query or a fragment."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError as e:
        raise ValueError(f"not a URL ({e})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("not an http:// or https:// URL with a host")
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ValueError("a registry URL may not hold credentials")
    if parts.query or parts.fragment:
        raise ValueError("a registry URL has no query or fragment")
    host = parts.hostname.lower()
    host = f"[{host}]" if ":" in host else host
    default = 443 if scheme == "https" else 80
    authority = host if port in (None, default) else f"{host}:{port}"
    path = parts.path or "/"
    return f"{scheme}://{authority}{path if path.endswith('/') else path + '/'}"


def registry_scope(line: NpmrcLine) -> str | None:
    """``""`` for ``registry``, ``@scope`` (lower case) for ``@scope:registry``, None for any other key."""
    name = line.key.lower()
    if name == "registry":
        return ""
    match = _SCOPED_REGISTRY.match(name)
    return match.group(1) if match else None


def refusal(line: NpmrcLine) -> str | None:
    """Why npm must never read ``line`` from a tenant, whatever the allowlist; None when it may."""
    name = line.name
    if line.key.startswith("//"):
        return REMOVE_CREDENTIAL  # per-registry settings: _authToken, _auth, username, certfile...
    if "${" in line.key:
        return "npm replaces ${VARIABLE} in keys: write the setting's name as it is"
    if name in CREDENTIAL_KEYS or name.startswith(("_auth", "_password")):
        return REMOVE_CREDENTIAL
    if name in PROXY_KEYS:
        return REMOVE_PROXY
    if name in TLS_KEYS:
        return REMOVE_TLS
    return None


def check_npmrc(text: str | None, allowed: Iterable[str]) -> dict[str, str]:
    """The accepted registries of ``text`` (scope or "" -> normalised URL); InvalidRequest naming
    the first refused key and its line. ``allowed``: the normalised URLs of the daemon's registry
    and of those the operator allowlisted."""
    accepted = set(allowed)
    registries: dict[str, str] = {}
    for line in parse_npmrc(text):
        why = refusal(line)
        if why is not None:
            raise InvalidRequest(FIELD, f"line {line.number} sets {line.key!r}: {why}")
        scope = registry_scope(line)
        if scope is None:
            continue
        registries[scope] = _accepted_registry(line, accepted)
    return registries


def _accepted_registry(line: NpmrcLine, accepted: set[str]) -> str:
    try:
        url = normalise_registry(line.value)
    except ValueError as e:
        raise InvalidRequest(FIELD, f"line {line.number} sets {line.key!r} to a value that is no registry URL: {e}") from None
    if url not in accepted:
        raise InvalidRequest(
            FIELD,
            f"line {line.number} sets {line.key!r} to {url}, a registry this daemon does not fetch from: "
            "remove it (packages come from the registry the daemon is configured with), "
            "or ask the operator to allowlist that registry with `cached serve --allow-registry URL`",
        )
    return url


def tenant_registries(npmrc_text: str | None) -> dict[str, str]:
    """Scope (or "" for ``registry``) -> normalised URL of every registry line of an ``.npmrc``
    that request validation accepted; the last line of a scope wins, as in npm. Lines whose URL
    is unreadable are left out (validation refused them already)."""
    registries: dict[str, str] = {}
    for line in parse_npmrc(npmrc_text):
        scope = registry_scope(line)
        if scope is None or refusal(line) is not None:
            continue
        try:
            registries[scope] = normalise_registry(line.value)
        except ValueError:
            continue
    return registries


def install_lines(npmrc_text: str | None, keys: Iterable[str]) -> dict[str, str]:
    """The settings an install sees: ``keys`` (as written, matched exactly) and the registry lines;
    never a credential, proxy or TLS key. The last line of a key wins, as in npm."""
    wanted = set(keys) - {"registry"}
    kept: dict[str, str] = {}
    for line in parse_npmrc(npmrc_text):
        if refusal(line) is not None:
            continue
        if line.key in wanted:
            kept[line.key] = line.value
        elif registry_scope(line) is not None:
            try:
                kept[_registry_key(line)] = normalise_registry(line.value)
            except ValueError:
                continue
    return kept


def _registry_key(line: NpmrcLine) -> str:
    scope = registry_scope(line)
    return "registry" if not scope else f"{scope}:registry"


def app_registry(spec: "BuildSpec") -> str:
    """The app's own accepted ``registry=`` URL, or "" (its installs then use the daemon's)."""
    return tenant_registries(spec.text(".npmrc")).get("", "")


def accepted_registries(registry: str, allowed: Iterable[str]) -> tuple[str, ...]:
    """The normalised URLs an app's registry lines may name: the daemon's ``registry`` and the
    ``allowed`` ones (``cached serve --allow-registry``); ValueError naming a URL that is not one."""
    out: dict[str, None] = {}
    for url, what in ((registry, "--registry"), *((u, "--allow-registry") for u in allowed)):
        try:
            out[normalise_registry(url)] = None
        except ValueError as e:
            raise ValueError(f"{what} {url!r}: {e}") from None
    return tuple(out)
