"""`cached build APP_DIR`: one build through the running daemon, its decision printed, its outputs optionally written.

This is the command a cold shell runs most, so it must stay light: at import
it loads only the standard library and ``cached.cli.options``; the client
(gRPC and the Builder and ContentStore stubs) is imported when the command
runs, the progress view only when it shows anything, and never the server,
the store (LMDB), the deployer (httpx, boto3), the watcher, the other command
groups or admin.proto. On a hit of an app of small files the client hashes
nothing: files up to 1 MiB travel inline and the daemon digests them.

`--server a,b,c` names several daemons: the client sends the app to its own
(rendezvous hashing on tenant/app) and to the next one when that is down, and
the outputs are read from the daemon that built them (``result.server``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from cached.cli.options import add_app_options, add_daemon_options, parse_env


def add_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    build = sub.add_parser("build", help="build an app directory through the daemon")
    add_app_options(build)
    build.add_argument("--out", default="", help="write the outputs to this directory")
    build.add_argument("--force", action="store_true", help="skip the action cache")
    build.add_argument("--timeout", type=float, default=0.0)
    build.add_argument("--quiet", action="store_true", help="no log lines")
    build.add_argument("--progress", action="store_true", help="show progress on stderr even with --json")
    add_daemon_options(build)
    build.set_defaults(func=cmd_build)


def cmd_build(args: argparse.Namespace) -> int:
    from cached_client import CachedError, Client

    view = None
    if not args.json or args.progress:
        from cached.progress import ProgressView

        view = ProgressView(show_logs=not args.quiet)
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
        data["server"] = result.server
        if out_dir is not None:
            data["output_dir"] = str(out_dir.resolve())
        print(json.dumps(data, indent=2))
    else:
        why = f" ({result.reason})" if result.reason else ""
        print(f"{result.cache}{why}: {len(result.outputs)} files, {result.duration_ms:.1f} ms in the daemon, {total_ms:.1f} ms in all; action {result.action_key}")
        if len(client.addresses) > 1:
            print(f"built on {result.server}")
        if out_dir is not None:
            print(f"outputs written to {out_dir}")
    return 0
