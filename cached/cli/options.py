"""The options every client command shares: the daemon's address, the token, --json; how an app is named; `--env KEY=VALUE`.

A leaf of the command line: it imports nothing but the standard library and
no other module of ``cached.cli``, so every command group can use it.
"""

from __future__ import annotations

import argparse
import os

DEFAULT_ADDRESS = os.environ.get("CACHED_ADDRESS", "127.0.0.1:7878")


def add_daemon_options(p: argparse.ArgumentParser, *, token_help: str = "bearer token (default $CACHED_TOKEN)") -> None:
    """--server, --token and --json, for a command that talks to a running daemon.

    --server takes a comma-separated list as it is: the client splits it and routes each app
    (``cached_client.routing``), so every command gets the same routing without parsing it here.
    """
    p.add_argument("--server", default=DEFAULT_ADDRESS, metavar="ADDR[,ADDR...]",
                   help=f"daemon address (default {DEFAULT_ADDRESS}, or $CACHED_ADDRESS); several, separated by commas, "
                        "send each app to one of them (rendezvous hashing), the next when it is down")
    p.add_argument("--token", default=os.environ.get("CACHED_TOKEN"), help=token_help)
    p.add_argument("--json", action="store_true", help="print one JSON object")


def add_app_options(p: argparse.ArgumentParser) -> None:
    """What `build` and `watch` both send: the app directory, its names, mode, script and env."""
    p.add_argument("app_dir")
    add_app_name_options(p)
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


def add_app_name_options(p: argparse.ArgumentParser, *, required: bool = True,
                         tenant_help: str = "the app's tenant (or name it with --app TENANT/APP)") -> None:
    """--tenant T --app A, the one way every command names an app; `--app T/A` is shorthand for both.

    ``resolve_app_names`` (called once for every command by ``cached.cli.parse_args``) splits the
    shorthand, so a command reads ``args.tenant`` and ``args.app`` and never sees a slash.
    """
    p.add_argument("--tenant", default="", help=tenant_help)
    p.add_argument("--app", default="", metavar="APP|TENANT/APP", help="the app (TENANT/APP names its tenant too)")
    p.set_defaults(app_names_required=required)


def resolve_app_names(args: argparse.Namespace) -> str:
    """Splits `--app T/A` into args.tenant and args.app; returns a usage error ("" when fine).

    `--tenant x --app y/z` with x != y is an error naming both; with app names required,
    so is a missing tenant or app.
    """
    if not hasattr(args, "app_names_required"):
        return ""
    tenant, app = args.tenant or "", args.app or ""
    if "/" in app:
        named, _, app = app.partition("/")
        if not named or not app or "/" in app:
            return f"--app {args.app!r}: use APP with --tenant, or TENANT/APP"
        if tenant and tenant != named:
            return f"--tenant {tenant} and --app {args.app} name different tenants ({tenant!r} and {named!r})"
        tenant = named
    if app and not tenant:
        return f"--app {app} needs its tenant: --tenant TENANT --app {app}, or --app TENANT/{app}"
    if args.app_names_required and not (tenant and app):
        return "name the app: --tenant TENANT --app APP (or --app TENANT/APP)"
    args.tenant, args.app = tenant, app
    return ""
