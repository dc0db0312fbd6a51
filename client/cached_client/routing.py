"""Which daemon serves an app: rendezvous (highest random weight) hashing over the daemons' addresses.

Each daemon keeps a warm builder (a live Vite) per app it built recently, so
the same (tenant, app) should keep reaching the same daemon. Rendezvous
hashing gives every address a weight per key and sends the key to the
heaviest: adding or removing an address moves only the keys that win or
lose it, and every client that knows the same addresses agrees without
talking to the others.

The weight must be the same in every language, so it is spelled out here
and the Ruby client (``client/ruby/lib/cached/routing.rb``) computes it the
same way: the SHA-256 hex digest of ``"<tenant>/<app>\\n<address>"`` (UTF-8).
Addresses are ordered by that digest, highest first, ties (identical
addresses are removed beforehand, so none in practice) by the address.
Python's ``hash()`` or Ruby's ``String#hash`` are seeded per process, so
they could not be used.

This module must stay free of gRPC: it is plain data in, plain data out.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Union

ROUTE_METADATA = "x-cached-route"  # sent with every call about one app, for a ring-hash proxy in front

Addresses = Union[str, Sequence[str]]


def parse_addresses(addresses: Addresses) -> list[str]:
    """The daemon addresses of a list, or of a comma-separated string; blanks dropped, duplicates kept once, order kept."""
    items = addresses.split(",") if isinstance(addresses, str) else list(addresses)
    seen: dict[str, None] = {}
    for item in items:
        address = item.strip()
        if address:
            seen.setdefault(address, None)
    if not seen:
        raise ValueError("give at least one daemon address (host:port, or several separated by commas)")
    return list(seen)


def route_key(tenant: str, app: str) -> str:
    """The routing key of an app: ``tenant/app``, as in ``x-cached-route`` metadata."""
    return f"{tenant}/{app}"


def weight(key: str, address: str) -> str:
    """The key's weight on an address: a hex SHA-256, compared as a string (hex of equal length sorts as the number)."""
    return hashlib.sha256(f"{key}\n{address}".encode()).hexdigest()


def rendezvous_order(key: str, addresses: Sequence[str]) -> list[str]:
    """Every address, the key's daemon first, then where it goes when the ones before are down."""
    return sorted(addresses, key=lambda a: (_inverted(weight(key, a)), a))


def pick(key: str, addresses: Sequence[str]) -> str:
    """The key's daemon (the first of ``rendezvous_order``)."""
    return rendezvous_order(key, addresses)[0]


def route_metadata(key: str) -> list[tuple[str, str]]:
    """``x-cached-route: tenant/app``, or nothing when the key cannot travel as a metadata value.

    gRPC metadata values are printable ASCII; tenant and app ids always are
    (the daemon refuses anything else), so only a request the daemon will
    refuse anyway goes without the header.
    """
    if key.isascii() and key.isprintable():
        return [(ROUTE_METADATA, key)]
    return []


def _inverted(hex_digest: str) -> str:
    """Sorts highest first without reverse=True, so ties still sort by address ascending."""
    return hex_digest.translate(_INVERT)


_INVERT = str.maketrans("0123456789abcdef", "fedcba9876543210")
