"""The `cached` command: run the daemon, or talk to one.

Every command but `serve` goes through a running daemon (one daemon owns a
store root), so operators never race the daemon's writer.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
from pathlib import Path

DEFAULT_ADDRESS = os.environ.get("CACHED_ADDRESS", "127.0.0.1:7878")


def _default_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cached"


def cmd_serve(args: argparse.Namespace) -> int:
    from cached import logs
    from cached.cli.deploy import deploy_config
    from cached.cli.operate import operate_config
    from cached.request.spec import Limits
    from cached.server.daemon import Daemon, DaemonConfig
    from cached.store import StoreLockedError
    from cached.sandbox import SandboxUnavailable

    logs.configure(args.log_level)
    config = DaemonConfig(
        root=Path(args.root), listen=args.listen, digest_function=args.digest, sandbox=args.sandbox,
        npm_cache=Path(args.npm_cache) if args.npm_cache else None, drain_seconds=args.drain_seconds,
        deps_import=args.deps_import, resolution_ttl_s=args.resolution_ttl, vite_cache=not args.no_vite_cache,
        allow_install_scripts=tuple(p.strip() for p in args.allow_install_scripts.split(",") if p.strip()),
        limits=Limits(only_tenant=args.single_tenant),
    )
    if args.max_children:
        config.max_children = args.max_children
    config.deploy = deploy_config(args)
    from cached.warm import WarmSettings
    config.warm = WarmSettings(
        max_builders=args.warm_builders, max_memory_bytes=int(args.warm_memory_mb * (1 << 20)),
        idle_seconds=args.warm_idle, shadow_share=args.warm_shadow_share,
    )
    if args.token_file:
        config.token_file = Path(args.token_file)
    config.operate = operate_config(args)
    try:
        daemon = Daemon(config)
    except (StoreLockedError, SandboxUnavailable, RuntimeError, ValueError) as e:
        print(f"cached: {e}", file=sys.stderr)
        return 2
    asyncio.run(daemon.serve_until_signal(port_file=Path(args.port_file) if args.port_file else None))
    return 0


def parse_env(pairs: list[str]) -> dict[str, str]:
    """`--env KEY=VALUE` arguments as a dict (shared by `build` and `watch`)."""
    env: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"cached: --env takes KEY=VALUE, got {pair!r}")
        env[name] = value
    return env


def cmd_build(args: argparse.Namespace) -> int:
    from cached.progress import ProgressView
    from cached_client import CachedError, Client

    view = None if args.json and not args.progress else ProgressView(show_logs=not args.quiet)
    started = time.perf_counter()
    with Client(args.server, token=args.token) as client:
        try:
            result = client.build(
                args.app_dir, app=args.app, tenant=args.tenant, mode=args.mode or "", env=parse_env(args.env),
                script=args.script or "", force=args.force, timeout_s=args.timeout or 0.0, on_event=view,
            )
            out_dir = client.write_outputs(args.tenant, result, args.out) if args.out else None
        except CachedError as e:
            if view:
                view.done()
            print(f"cached: build failed: {e.code.name}: {e.details}", file=sys.stderr)
            return 1
    if view:
        view.done()
    total_ms = (time.perf_counter() - started) * 1000
    if args.json:
        data = result.as_json()
        data["total_ms"] = round(total_ms, 3)
        if out_dir is not None:
            data["output_dir"] = str(out_dir.resolve())
        print(json.dumps(data, indent=2))
    else:
        why = f" ({result.reason})" if result.reason else ""
        print(f"{result.cache}{why}: {len(result.outputs)} files, {result.duration_ms:.1f} ms in the daemon, {total_ms:.1f} ms in all; action {result.action_key}")
        if out_dir is not None:
            print(f"outputs written to {out_dir}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from cached.cli.deploy import add_commands, add_serve_options
    from cached.cli.operate import add_commands as add_operate_commands, add_serve_options as add_operate_options

    parser = argparse.ArgumentParser(prog="cached", description="A content-addressed build cache daemon for Vite apps")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the daemon until SIGTERM/SIGINT")
    serve.add_argument("--root", default=str(_default_root()), help="store root (default: $XDG_CACHE_HOME/cached)")
    serve.add_argument("--listen", default="127.0.0.1:7878", help="gRPC address (default 127.0.0.1:7878)")
    serve.add_argument("--digest", default="blake3", choices=["blake3", "xxh3_128"],
                       help="xxh3_128 only with --single-tenant: it is fast but not collision-resistant")
    serve.add_argument("--single-tenant", default="", metavar="TENANT", help="serve this tenant only (one trust domain)")
    serve.add_argument("--sandbox", default="auto", choices=["auto", "namespaces", "off"], help="'off' runs tenants' code unisolated: only for a single trusted user")
    serve.add_argument("--npm-cache", default="", help="npm's cache dir (default ROOT/npm-cache)")
    serve.add_argument("--max-children", type=int, default=0, help="child processes at once (default: CPU count)")
    serve.add_argument("--drain-seconds", type=float, default=30.0)
    serve.add_argument("--deps-import", default="auto", choices=["auto", "overlay", "hardlink", "copy", "symlink"],
                       help="how node_modules reaches a build (auto: overlay where it can be mounted, else hardlink; symlink changes sourcemap paths and needs --sandbox off)")
    serve.add_argument("--allow-install-scripts", default="", help="comma-separated packages whose install scripts may run (default: none)")
    serve.add_argument("--resolution-ttl", type=float, default=24 * 3600.0, help="seconds a lockfile resolved for an app without one is reused")
    serve.add_argument("--no-vite-cache", action="store_true", help="do not keep .vite/.vite-temp/.tmp between an app's builds")
    serve.add_argument("--warm-builders", type=int, default=4, help="warm builders (live Vite processes, one per recently built app) at most; 0 turns them off (default 4)")
    serve.add_argument("--warm-memory-mb", type=float, default=4096, help="total resident memory of the warm builders before the least recently used are stopped (default 4096)")
    serve.add_argument("--warm-idle", type=float, default=900.0, help="seconds a warm builder may stay unused before it is stopped (default 900)")
    serve.add_argument("--warm-shadow-share", type=float, default=0.1, help="share of warm results rebuilt cold in the background and compared; a difference turns warm builds off for that app (default 0.1)")
    serve.add_argument("--log-level", default="info")
    serve.add_argument("--token-file", default="", help="bearer tokens, one a line: 'build:TOKEN' (Builder, ContentStore) or 'admin:TOKEN' (everything); required to listen beyond loopback")
    serve.add_argument("--port-file", default="", help="write the bound port here once serving (for --listen 127.0.0.1:0)")
    add_operate_options(serve)
    add_serve_options(serve)
    serve.set_defaults(func=cmd_serve)

    def client_args(p: argparse.ArgumentParser) -> None:
        p.add_argument("--server", default=DEFAULT_ADDRESS, help=f"daemon address (default {DEFAULT_ADDRESS}, or $CACHED_ADDRESS)")
        p.add_argument("--token", default=os.environ.get("CACHED_TOKEN"), help="bearer token (default $CACHED_TOKEN)")
        p.add_argument("--json", action="store_true", help="print one JSON object")

    build = sub.add_parser("build", help="build an app directory through the daemon")
    build.add_argument("app_dir")
    build.add_argument("--app", required=True)
    build.add_argument("--tenant", required=True)
    build.add_argument("--mode", default="")
    build.add_argument("--script", default="", help="package.json script (default: build)")
    build.add_argument("--env", action="append", default=[], metavar="KEY=VALUE")
    build.add_argument("--out", default="", help="write the outputs to this directory")
    build.add_argument("--force", action="store_true", help="skip the action cache")
    build.add_argument("--timeout", type=float, default=0.0)
    build.add_argument("--quiet", action="store_true", help="no log lines")
    build.add_argument("--progress", action="store_true", help="show progress on stderr even with --json")
    client_args(build)
    build.set_defaults(func=cmd_build)

    from cached.watch import add_watch_command
    add_watch_command(sub, client_args)

    add_operate_commands(sub)  # stats, purge, gc, verify, explain
    add_commands(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
