"""`cached serve`: run the daemon until SIGTERM/SIGINT, with every option of every subsystem it starts.

The options are declared here in one group per subsystem (daemon, store,
sandbox, dependencies, warm builders, operations, deploy), and each group is
turned into that subsystem's settings (``DaemonConfig``, ``WarmSettings``,
``OperateConfig``, ``DeployConfig``) by ``daemon_config``. Declaring the
options imports only light settings modules; the daemon (gRPC server, LMDB
store, deployer) is imported when the command runs.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cached.server.daemon import DaemonConfig


def default_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "cached"


def add_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    serve = sub.add_parser("serve", help="run the daemon until SIGTERM/SIGINT")
    _daemon_options(serve)
    _store_options(serve)
    _sandbox_options(serve)
    _dependency_options(serve)
    _warm_options(serve)
    _operate_options(serve)
    _deploy_options(serve)
    serve.set_defaults(func=cmd_serve)


def _daemon_options(serve: argparse.ArgumentParser) -> None:
    g = serve.add_argument_group("daemon", "where it listens, who may call it, how it stops")
    g.add_argument("--root", default=str(default_root()), help="store root (default: $XDG_CACHE_HOME/cached)")
    g.add_argument("--listen", default="127.0.0.1:7878", help="gRPC address (default 127.0.0.1:7878)")
    g.add_argument("--token-file", default="", help="bearer tokens, one a line: 'build:TENANT:TOKEN' (Builder, ContentStore, Deployer for that tenant), 'build:*:TOKEN' (for every tenant) or 'admin:TOKEN' (everything); required to listen beyond loopback or on a host name")
    g.add_argument("--port-file", default="", help="write the bound port here once serving (for --listen 127.0.0.1:0)")
    g.add_argument("--drain-seconds", type=float, default=30.0)
    g.add_argument("--log-level", default="info")


def _store_options(serve: argparse.ArgumentParser) -> None:
    g = serve.add_argument_group("store", "how content is named, and for whom")
    g.add_argument("--digest", default="blake3", choices=["blake3", "xxh3_128"],
                   help="xxh3_128 only with --single-tenant: it is fast but not collision-resistant")
    g.add_argument("--single-tenant", default="", metavar="TENANT", help="serve this tenant only (one trust domain)")


def _sandbox_options(serve: argparse.ArgumentParser) -> None:
    g = serve.add_argument_group("sandbox", "how tenants' code runs")
    g.add_argument("--sandbox", default="auto", choices=["auto", "namespaces", "off"], help="'off' runs tenants' code unisolated: only for a single trusted user")
    g.add_argument("--max-children", type=int, default=0, help="child processes at once (default: CPU count)")
    g.add_argument("--build-memory", default="2GiB", metavar="SIZE", help="memory of each install, build and warm builder, its cgroup's limit (default 2GiB)")
    g.add_argument("--build-pids", type=int, default=512, help="processes and threads of each install, build and warm builder, pids.max (default 512)")
    g.add_argument("--build-cpu-shares", type=int, default=1024, help="CPU weight of each install, build and warm builder, cpu.shares (default 1024)")
    g.add_argument("--build-tmp-size", default="512MiB", metavar="SIZE", help="size of the RAM-backed /tmp and /dev/shm of each sandbox (default 512MiB)")
    g.add_argument("--build-write-size", default="1GiB", metavar="SIZE", help="bytes a build may write into its workspace and node_modules together, the size of the RAM-backed mount they live on; 0: no cap, plain directories (default 1GiB)")
    g.add_argument("--workspaces-kept", type=int, default=256, help="app workspaces kept mounted under --build-write-size; the least recently used beyond are dropped and rewritten by their next build (default 256)")


def _dependency_options(serve: argparse.ArgumentParser) -> None:
    g = serve.add_argument_group("dependencies", "npm, node_modules and the Vite cache")
    g.add_argument("--npm-cache", default="", help="npm's cache dir (default ROOT/npm-cache)")
    g.add_argument("--registry", default="", metavar="URL", help="the npm registry packages come from, the one origin installs can reach (default: npm's `registry` setting for the daemon's user)")
    g.add_argument("--allow-registry", action="append", default=[], metavar="URL",
                   help="another registry an app's .npmrc may name (registry= or @scope:registry=), which installs may then reach; "
                        "repeatable. Tenants' credentials, proxies and TLS settings are refused whatever is allowed (default: none)")
    g.add_argument("--deps-import", default="auto", choices=["auto", "overlay", "hardlink", "copy", "symlink"],
                   help="how node_modules reaches a build (auto: overlay where it can be mounted, else hardlink; symlink changes sourcemap paths and needs --sandbox off)")
    g.add_argument("--allow-install-scripts", default="", help="comma-separated packages whose install scripts may run (default: none)")
    g.add_argument("--resolution-ttl", type=float, default=24 * 3600.0, help="seconds a lockfile resolved for an app without one is reused")
    g.add_argument("--no-vite-cache", action="store_true", help="do not keep .vite/.vite-temp/.tmp between an app's builds")
    g.add_argument("--no-package-store", action="store_true", help="install every new lockfile with npm ci instead of laying it out from stored packages")


def _warm_options(serve: argparse.ArgumentParser) -> None:
    g = serve.add_argument_group("warm builders", "live Vite processes, one per recently built app")
    g.add_argument("--warm-builders", type=int, default=4, help="warm builders (live Vite processes, one per recently built app) at most; 0 turns them off (default 4)")
    g.add_argument("--warm-memory-mb", type=float, default=4096, help="total resident memory of the warm builders before the least recently used are stopped (default 4096)")
    g.add_argument("--warm-idle", type=float, default=900.0, help="seconds a warm builder may stay unused before it is stopped (default 900)")
    g.add_argument("--warm-shadow-share", type=float, default=0.1, help="share of warm results rebuilt cold in the background and compared; a difference turns warm builds off for that app (default 0.1)")
    g.add_argument("--warm-rebuild", choices=("fresh", "session"), default="fresh", help="how a warm builder rebuilds an edit: 'fresh' runs a new Vite build each time; 'session' keeps one Vite watch session and Rolldown's bundler, with the app's plugins made fresh each time (default fresh: measured no faster here, see the README)")


def _operate_options(serve: argparse.ArgumentParser) -> None:
    g = serve.add_argument_group("operations", "metrics, disk cap and what garbage collection protects")
    g.add_argument("--metrics-listen", default="", metavar="HOST:PORT", help="serve Prometheus metrics over HTTP here (a bare PORT stays on 127.0.0.1; default: off)")
    g.add_argument("--max-size", default="0", metavar="SIZE", help="keep the store under this size (e.g. 20GB): above it, evict least-recently-used entries (default 0: no cap)")
    g.add_argument("--gc-low-watermark", type=float, default=0.9, metavar="FRACTION", help="collect down to this fraction of --max-size (at most 0.9; default 0.9)")
    g.add_argument("--gc-interval", type=float, default=60.0, metavar="SECONDS", help="how often the cap is checked (builds that store bytes check sooner; default 60)")
    g.add_argument("--lease-seconds", type=float, default=600.0, help="a result just served is kept this long whatever GC or purge do (default 600)")
    g.add_argument("--gc-grace-seconds", type=float, default=60.0, help="blobs younger than this are never swept (default 60)")


def _deploy_options(serve: argparse.ArgumentParser) -> None:
    from cached.deploy.config import DEFAULT_BASE_URL

    g = serve.add_argument_group("deploy", "where `deploy` sends apps; the token and keys come from files or the environment, never from a request")
    g.add_argument("--deploy-dir", default="", help="local-target bundles (default ROOT/deploy)")
    g.add_argument("--cloudflare-account-id", default=os.environ.get("CLOUDFLARE_ACCOUNT_ID", ""), help="default $CLOUDFLARE_ACCOUNT_ID")
    g.add_argument("--cloudflare-token-file", default="", help="file holding the API token (default: $CLOUDFLARE_API_TOKEN)")
    g.add_argument("--cloudflare-api-base", default=DEFAULT_BASE_URL, help=f"API base URL (default {DEFAULT_BASE_URL})")
    g.add_argument("--cloudflare-retry-base", type=float, default=0.5, help="first retry backoff in seconds (doubles each retry)")
    g.add_argument("--cloudflare-retry-attempts", type=int, default=5, help="tries per API call, the first included")
    g.add_argument("--r2-endpoint", default="", help="R2's S3 endpoint for files over the asset limit (https://ACCOUNT.r2.cloudflarestorage.com)")
    g.add_argument("--r2-bucket", default="", help="R2 bucket for files over the asset limit")
    g.add_argument("--r2-credentials-file", default="", help="ACCESS_KEY_ID:SECRET on one line (default: $CACHED_R2_ACCESS_KEY_ID, $CACHED_R2_SECRET_ACCESS_KEY)")

    from cached.remote.settings import add_remote_options

    add_remote_options(serve)  # the shared tier: --remote, --remote-endpoint, credentials, signing and trusted keys


def daemon_config(args: argparse.Namespace) -> DaemonConfig:
    """The parsed options as the settings of each subsystem; SystemExit on a value no subsystem takes."""
    from cached.deploy.config import DeployConfig
    from cached.operate.config import OperateConfig, parse_size
    from cached.request.spec import Limits
    from cached.sandbox.spec import RunLimits
    from cached.server.daemon import DaemonConfig
    from cached.warm import WarmSettings

    config = DaemonConfig(
        root=Path(args.root), listen=args.listen, digest_function=args.digest, sandbox=args.sandbox,
        npm_cache=Path(args.npm_cache) if args.npm_cache else None, drain_seconds=args.drain_seconds,
        deps_import=args.deps_import, resolution_ttl_s=args.resolution_ttl, vite_cache=not args.no_vite_cache, package_store=not args.no_package_store,
        allow_install_scripts=tuple(p.strip() for p in args.allow_install_scripts.split(",") if p.strip()),
        limits=Limits(only_tenant=args.single_tenant), registry=args.registry,
        allow_registries=tuple(args.allow_registry),
    )
    if args.max_children:
        config.max_children = args.max_children
    if args.token_file:
        config.token_file = Path(args.token_file)
    config.warm = WarmSettings(
        max_builders=args.warm_builders, max_memory_bytes=int(args.warm_memory_mb * (1 << 20)),
        idle_seconds=args.warm_idle, shadow_share=args.warm_shadow_share, rebuild=args.warm_rebuild,
    )
    try:
        config.run_limits = RunLimits(
            memory_bytes=parse_size(args.build_memory), pids=args.build_pids,
            cpu_shares=args.build_cpu_shares, tmp_bytes=parse_size(args.build_tmp_size),
            write_bytes=parse_size(args.build_write_size),
        )
        if args.workspaces_kept < 1:
            raise ValueError("--workspaces-kept must be at least 1")
        config.workspaces_kept = args.workspaces_kept
        config.run_limits.check()
        config.operate = OperateConfig(
            metrics_listen=args.metrics_listen, max_bytes=parse_size(args.max_size), low_watermark=args.gc_low_watermark,
            gc_interval_s=args.gc_interval, lease_seconds=args.lease_seconds, grace_seconds=args.gc_grace_seconds,
        )
    except ValueError as e:
        raise SystemExit(f"cached: {e}") from None
    config.deploy = DeployConfig(
        local_dir=Path(args.deploy_dir) if args.deploy_dir else None,
        api_base=args.cloudflare_api_base, account_id=args.cloudflare_account_id,
        token_file=Path(args.cloudflare_token_file) if args.cloudflare_token_file else None,
        retry_base_s=args.cloudflare_retry_base, retry_attempts=args.cloudflare_retry_attempts,
        r2_endpoint=args.r2_endpoint, r2_bucket=args.r2_bucket,
        r2_credentials_file=Path(args.r2_credentials_file) if args.r2_credentials_file else None,
    )
    from cached.remote.errors import RemoteConfigError
    from cached.remote.settings import RemoteSettings

    try:
        config.remote = RemoteSettings.from_args(args)
    except RemoteConfigError as e:
        raise SystemExit(f"cached: {e}") from None
    return config


def cmd_serve(args: argparse.Namespace) -> int:
    from cached import logs
    from cached.sandbox import SandboxUnavailable
    from cached.server.daemon import Daemon
    from cached.store import StoreLockedError

    logs.configure(args.log_level)
    config = daemon_config(args)
    try:
        daemon = Daemon(config)
    except (StoreLockedError, SandboxUnavailable, RuntimeError, ValueError) as e:
        print(f"cached: {e}", file=sys.stderr)
        return 2
    asyncio.run(daemon.serve_until_signal(port_file=Path(args.port_file) if args.port_file else None))
    return 0
