"""`cached deploy` and `cached rollback` (the deploy options of `cached serve` are in serve.py).

Both commands go through the daemon (which holds the Cloudflare token and the
store); ``--serve`` then runs Miniflare on the local bundle the daemon wrote,
on 127.0.0.1, until Ctrl-C, SIGTERM or SIGHUP; Miniflare and workerd end
with the command, on SIGKILL too (see MiniflareServer). Secrets given as
``--secret NAME`` are read from the environment variable NAME, so they need
not appear on a command line.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from pathlib import Path

from cached.cli.options import add_app_name_options, add_daemon_options

TARGETS = ("cloudflare", "local")


def add_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    def common(p: argparse.ArgumentParser) -> None:
        add_app_name_options(p)
        p.add_argument("--target", default="cloudflare", choices=TARGETS)
        p.add_argument("--serve", action="store_true", help="local target: serve the bundle with Miniflare on 127.0.0.1 until Ctrl-C")
        p.add_argument("--port", type=int, default=0, help="with --serve (default: any free port)")
        add_daemon_options(p)

    deploy = sub.add_parser("deploy", help="deploy an app's build (its last one, or --action) without rebuilding")
    common(deploy)
    deploy.add_argument("--action", default="", help="action key to deploy (default: the app's last build)")
    env = deploy.add_mutually_exclusive_group()
    env.add_argument("--production", action="store_true", help="make it live (default: a preview)")
    env.add_argument("--preview", action="store_true", help="a version with its own URL, not live (the default)")
    deploy.add_argument("--var", action="append", default=[], metavar="NAME=VALUE", help="plain-text var (also served at /__cached/config)")
    deploy.add_argument("--secret", action="append", default=[], metavar="NAME[=VALUE]", help="secret binding; without =VALUE, read from $NAME")
    deploy.set_defaults(func=cmd_deploy)

    rollback = sub.add_parser("rollback", help="make an earlier version live again")
    common(rollback)
    rollback.add_argument("--to", type=int, default=0, metavar="SEQUENCE", help="the version to restore (default: the production version before the live one)")
    rollback.add_argument("--force", action="store_true", help="go ahead even if secrets changed since (Cloudflare code 10220)")
    rollback.set_defaults(func=cmd_rollback)


def _pairs(items: list[str], what: str, from_env: bool) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep:
            if not from_env:
                raise SystemExit(f"cached: --{what} takes NAME=VALUE, got {item!r}")
            if name not in os.environ:
                raise SystemExit(f"cached: --{what} {name}: ${name} is not set")
            value = os.environ[name]
        out[name] = value
    return out


def _call(args: argparse.Namespace, method: str, request):  # type: ignore[no-untyped-def]
    import grpc

    from cached.v1 import deploy_pb2_grpc

    metadata = [("authorization", f"Bearer {args.token}")] if args.token else None
    with grpc.insecure_channel(args.server) as channel:
        return getattr(deploy_pb2_grpc.DeployerStub(channel), method)(request, metadata=metadata, timeout=3600)


def cmd_deploy(args: argparse.Namespace) -> int:
    from cached.v1 import cached_pb2, deploy_pb2

    options = cached_pb2.DeployOptions(
        target=args.target, environment=cached_pb2.PRODUCTION if args.production else cached_pb2.PREVIEW,
        vars=_pairs(args.var, "var", False), secrets=_pairs(args.secret, "secret", True),
    )
    request = deploy_pb2.DeployRequest(tenant=args.tenant, app=args.app, action_key=args.action, options=options)
    return _finish(args, "Deploy", request)


def cmd_rollback(args: argparse.Namespace) -> int:
    from cached.v1 import deploy_pb2

    request = deploy_pb2.RollbackRequest(tenant=args.tenant, app=args.app, target=args.target, to_sequence=args.to, force=args.force)
    return _finish(args, "Rollback", request)


def _finish(args: argparse.Namespace, method: str, request) -> int:  # type: ignore[no-untyped-def]
    import grpc

    if args.serve and args.target != "local":
        print("cached: --serve needs --target local", file=sys.stderr)
        return 2
    try:
        response = _call(args, method, request)
    except grpc.RpcError as e:
        print(f"cached: {method.lower()} failed: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    r = response.result
    data = {
        "target": r.target, "environment": "production" if r.environment == 2 else "preview", "script_name": r.script_name,
        "sequence": r.sequence, "version_id": r.version_id, "action_key": r.action_key, "urls": list(r.urls),
        "assets_total": r.assets_total, "assets_uploaded": r.assets_uploaded, "large_files": r.large_files,
        "large_files_uploaded": r.large_files_uploaded, "bundle_dir": r.bundle_dir, "rolled_back": r.rolled_back,
    }
    if args.json and not args.serve:
        print(json.dumps(data, indent=2))
    else:
        verb = "rolled back" if r.rolled_back else "deployed"
        print(f"{verb} {args.tenant}/{args.app} version {r.sequence} ({data['environment']}) on {r.target}: {r.version_id}")
        if not r.rolled_back:
            print(f"assets: {r.assets_uploaded} of {r.assets_total} sent; large files: {r.large_files_uploaded} of {r.large_files} sent")
        for url in r.urls:
            print(f"  {url}")
    if args.serve:
        return _serve(Path(r.bundle_dir), args.port, data if args.json else None)
    return 0


def _serve(bundle: Path, port: int, data: dict[str, object] | None) -> int:
    from cached.deploy.errors import DeployError
    from cached.deploy.local import MiniflareServer

    server = MiniflareServer(bundle, port=port)
    previous = {sig: signal.signal(sig, _interrupt) for sig in STOP_SIGNALS[1:]}  # SIGTERM, SIGHUP: as Ctrl-C
    try:
        try:
            url = server.start()
        except DeployError as e:
            print(f"cached: {e}", file=sys.stderr)
            return 1
        if data is not None:
            print(json.dumps({**data, "serving": url}), flush=True)
        else:
            print(f"serving {bundle} at {url} (Ctrl-C to stop)", flush=True)
        server.wait()
    except KeyboardInterrupt:
        pass
    finally:
        for sig in STOP_SIGNALS:  # a second signal must not cut the stopping short
            previous.setdefault(sig, signal.getsignal(sig))
            signal.signal(sig, signal.SIG_IGN)
        try:
            server.stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
    return 0


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
