"""The `cached` command: run the daemon, or talk to one.

Every command but `serve` goes through a running daemon (one daemon owns a
store root), so operators never race the daemon's writer.

One module per command group, each with ``add_commands(sub)`` that declares
its subcommands: ``serve`` (the daemon and every subsystem's options),
``build``, ``watch``, ``operate`` (stats, purge, gc, verify, explain),
``deploy`` (deploy, rollback) and ``keygen``; ``options`` holds what the
client commands share. Those modules import ``options`` and nothing else of
this package, and this one imports them only inside ``build_parser``, so
there is no import cycle.

A cold `cached build` is the command run most, from a fresh interpreter each
time, so parsing a command imports only the group that declares it
(``COMMAND_GROUPS``): ``serve`` pulls in asyncio and every subsystem's
settings, ``operate`` the store's size parsing and the shared tier's options,
and a build needs none of them. Without a known command (`cached --help`, a
typo) every group is declared, so the help lists every command and an unknown
one is answered with the full list. A cold build never loads the gRPC server,
LMDB, httpx or boto3.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# The command groups, in the order `cached --help` lists them, and the commands each one declares.
# tests/test_cli.py checks this against what each group's add_commands really declares.
GROUPS: dict[str, tuple[str, ...]] = {
    "serve": ("serve",),
    "build": ("build",),
    "watch": ("watch",),
    "operate": ("stats", "purge", "gc", "verify", "explain"),
    "deploy": ("deploy", "rollback"),
    "keygen": ("keygen",),
}
COMMAND_GROUPS: dict[str, str] = {command: group for group, commands in GROUPS.items() for command in commands}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser: every command, or, given a known ``command``, only its group's.

    Declaring one group is what keeps a cold `cached build` from importing the
    others. Should the table name the wrong group for a command, the full
    parser is returned, so a stale table costs time, never correctness.
    """
    group = COMMAND_GROUPS.get(command or "")
    parser = argparse.ArgumentParser(prog="cached", description="A content-addressed build cache daemon for Vite apps")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in [group] if group else GROUPS:
        importlib.import_module(f"cached.cli.{name}").add_commands(sub)
    if group and command not in sub.choices:
        return build_parser()
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The parsed command line, its app named as --tenant T --app A (`--app T/A` split); a usage error exits 2.

    The top-level parser takes no option but --help, so the command, when
    there is one, is the first argument.
    """
    from cached.cli.options import resolve_app_names

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(argv[0] if argv else None)
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
