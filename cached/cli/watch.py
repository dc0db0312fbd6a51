"""`cached watch APP_DIR`: the command; the watching itself is ``cached/watch.py``.

It turns the arguments into a ``WatchSettings``, makes SIGTERM and SIGHUP
stop the watcher as Ctrl-C does (a second one at once), and runs it. The
watcher (and watchfiles with it) is imported only when the command runs.

`--server a,b,c` is handed to the watcher in the app's rendezvous order: the
watcher uploads a save's files to the first daemon that answers and then
builds, and a build goes to the first daemon of its app's order that
answers, so both reach the same daemon (the next one too, when it is down).
"""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from cached.cli.options import add_app_options, add_daemon_options, parse_env


def add_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    watch = sub.add_parser("watch", help="rebuild an app directory through the daemon on every save")
    add_app_options(watch)
    watch.add_argument("--debounce-ms", type=int, default=150, help="wait this long for a burst of saves to end (default 150)")
    watch.add_argument("--deploy", choices=["local"], default=None,
                       help="deploy each build to the daemon's local target and serve it with Miniflare on 127.0.0.1")
    watch.add_argument("--port", type=int, default=0, help="with --deploy local: Miniflare's port (default: any free one, kept across restarts)")
    watch.add_argument("--max-builds", type=int, default=0, help=argparse.SUPPRESS)  # tests: stop after N builds
    add_daemon_options(watch)
    watch.set_defaults(func=cmd_watch)


def cmd_watch(args: argparse.Namespace) -> int:
    from cached.watch import Watcher, WatchSettings

    if not Path(args.app_dir).is_dir():
        print(f"cached: {args.app_dir} is not a directory", file=sys.stderr)
        return 2
    watcher = Watcher(WatchSettings(
        app_dir=Path(args.app_dir), tenant=args.tenant, app=args.app, server=_servers_in_route_order(args), token=args.token,
        mode=args.mode, script=args.script, env=parse_env(args.env), deploy_local=args.deploy == "local",
        port=args.port, debounce_ms=args.debounce_ms, max_builds=args.max_builds, json=args.json,
    ))

    def stop(signum: int, frame: object) -> None:
        if watcher.stop_event.is_set():  # a second one: stop now, even in the middle of a build
            raise KeyboardInterrupt
        watcher.stop_event.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGHUP, stop)  # the terminal went away: Miniflare and workerd must not stay
    return watcher.run()


def _servers_in_route_order(args: argparse.Namespace) -> str:
    """--server with its addresses in the app's rendezvous order (the order of the list does not change the routing)."""
    from cached_client.routing import parse_addresses, rendezvous_order, route_key

    return ",".join(rendezvous_order(route_key(args.tenant, args.app), parse_addresses(args.server)))
