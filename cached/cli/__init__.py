"""The `cached` command: run the daemon, or talk to one.

Every command but `serve` goes through a running daemon (one daemon owns a
store root), so operators never race the daemon's writer.

One module per command group, each with ``add_commands(sub)`` that declares
its subcommands: ``serve`` (the daemon and every subsystem's options),
``build``, ``watch``, ``operate`` (stats, purge, gc, verify, explain) and
``deploy`` (deploy, rollback); ``options`` holds what the client commands
share. Those modules import ``options`` and nothing else of this package, and
this one imports them only inside ``build_parser``, so there is no import
cycle. Declaring a command imports only the standard library and light
settings modules: a cold `cached build` never loads the gRPC server, LMDB,
httpx or boto3.
"""

from __future__ import annotations

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from cached.cli import build, deploy, keygen, operate, serve, watch

    parser = argparse.ArgumentParser(prog="cached", description="A content-addressed build cache daemon for Vite apps")
    sub = parser.add_subparsers(dest="command", required=True)
    for group in (serve, build, watch, operate, deploy, keygen):
        group.add_commands(sub)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The parsed command line, its app named as --tenant T --app A (`--app T/A` split); a usage error exits 2."""
    from cached.cli.options import resolve_app_names

    parser = build_parser()
    args = parser.parse_args(argv)
    error = resolve_app_names(args)
    if error:
        parser.error(f"{args.command}: {error}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
