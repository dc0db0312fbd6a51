"""The Worker's script name, derived from tenant and app alone (never from a request).

Readable form: ``enc(tenant) + "--" + enc(app)`` where ``enc`` keeps ``[a-z0-9]``
and writes ``-`` as ``-h`` and ``_`` as ``-u``. Inside ``enc`` every ``-`` is
followed by ``h`` or ``u``, so the first ``--`` is the separator and the
readable form decodes back to (tenant, app): it is injective. It is a valid DNS
label (workers.dev) with no underscore.

Cloudflare caps script names at 63 characters, and a preview URL's label is
``<8 chars>-<name>``, so names are kept to 54. Pairs whose readable form is
longer get ``<tenant prefix>-<app prefix>-<26 hex of BLAKE3(tenant/app)>``:
it never contains ``--`` (so it never equals a readable name), and two pairs
share it only through a BLAKE3 collision.
"""

from __future__ import annotations

import re

import blake3

MAX_NAME = 54
ID = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")


def _enc(text: str) -> str:
    return text.replace("-", "-h").replace("_", "-u")


def script_name(tenant: str, app: str) -> str:
    """The script name of (tenant, app); both must be valid ids (``^[a-z0-9][a-z0-9_-]{0,62}$``)."""
    for what, value in (("tenant", tenant), ("app", app)):
        if not ID.match(value):
            raise ValueError(f"{what} {value!r} is not a valid id")
    readable = f"{_enc(tenant)}--{_enc(app)}"
    if len(readable) <= MAX_NAME:
        return readable
    digest = blake3.blake3(f"{tenant}/{app}".encode()).hexdigest()[:26]
    short = lambda s: re.sub(r"[^a-z0-9]", "", s)[:12]  # noqa: E731 - non-empty: ids start with [a-z0-9]
    return f"{short(tenant)}-{short(app)}-{digest}"


def parse_script_name(name: str) -> tuple[str, str] | None:
    """(tenant, app) of a readable name, None for a hashed one: the inverse that makes it injective."""
    out: list[str] = []
    parts: list[str] = []
    i = 0
    while i < len(name):
        c = name[i]
        if c != "-":
            out.append(c)
            i += 1
            continue
        nxt = name[i + 1] if i + 1 < len(name) else ""
        if nxt == "h":
            out.append("-")
        elif nxt == "u":
            out.append("_")
        elif nxt == "-" and not parts:
            parts.append("".join(out))
            out = []
        else:
            return None
        i += 2
    if len(parts) != 1:
        return None
    return parts[0], "".join(out)
