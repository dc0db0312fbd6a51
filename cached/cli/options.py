"""The options every client command shares: the daemon's address, the token, --json; and `--env KEY=VALUE`.

A leaf of the command line: it imports nothing but the standard library and
no other module of ``cached.cli``, so every command group can use it.
"""

from __future__ import annotations

import argparse
import os

DEFAULT_ADDRESS = os.environ.get("CACHED_ADDRESS", "127.0.0.1:7878")


def add_daemon_options(p: argparse.ArgumentParser, *, token_help: str = "bearer token (default $CACHED_TOKEN)") -> None:
    """--server, --token and --json, for a command that talks to a running daemon."""
    p.add_argument("--server", default=DEFAULT_ADDRESS, help=f"daemon address (default {DEFAULT_ADDRESS}, or $CACHED_ADDRESS)")
    p.add_argument("--token", default=os.environ.get("CACHED_TOKEN"), help=token_help)
    p.add_argument("--json", action="store_true", help="print one JSON object")


def add_app_options(p: argparse.ArgumentParser) -> None:
    """What `build` and `watch` both send: the app directory, its names, mode, script and env."""
    p.add_argument("app_dir")
    p.add_argument("--app", required=True)
    p.add_argument("--tenant", required=True)
    p.add_argument("--mode", default="")
    p.add_argument("--script", default="", help="package.json script (default: build)")
    p.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")


def parse_env(pairs: list[str]) -> dict[str, str]:
    """`--env KEY=VALUE` arguments as a dict (shared by `build` and `watch`)."""
    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"cached: --env takes KEY=VALUE, got {pair!r}")
        env[name] = value
    return env
