"""`cached keygen`: a new Ed25519 key pair for the shared tier.

A daemon given the private key (``--remote-signing-key``) writes to the
bucket; every daemon given the public key (``--remote-trusted-keys``) accepts
what it wrote. The private file is created exclusively with mode 0600, so an
existing key is never overwritten.
"""

from __future__ import annotations

import argparse
import sys


def add_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    keygen = sub.add_parser("keygen", help="write a new key pair for signing shared-tier records")
    keygen.add_argument("--private", required=True, metavar="FILE", help="the private key (PEM, created with mode 0600)")
    keygen.add_argument("--public", required=True, metavar="FILE", help="the public key (one hex line: append it to the "
                        "readers' trusted-keys file)")
    keygen.set_defaults(func=cmd_keygen)


def cmd_keygen(args: argparse.Namespace) -> int:
    from cached.remote.errors import RemoteConfigError
    from cached.remote.signing import generate_keypair

    try:
        kid = generate_keypair(args.private, args.public)
    except RemoteConfigError as e:
        print(f"cached: keygen: {e}", file=sys.stderr)
        return 1
    print(f"key {kid}: private key in {args.private} (mode 0600), public key in {args.public}")
    return 0
