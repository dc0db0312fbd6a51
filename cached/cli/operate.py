"""`cached stats`, `purge`, `gc`, `verify` and `explain`, also by package (the operations options of `cached serve` are in serve.py).

Every command calls the running daemon's Admin service (which owns the
store), so it works while builds run; with tokens configured it needs the
admin token (--token or $CACHED_TOKEN).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from cached.cli.options import add_app_name_options, add_daemon_options
from cached.operate.config import format_bytes, parse_age, parse_size
from cached.remote.settings import add_remote_options


def add_commands(sub: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    def common(p: argparse.ArgumentParser) -> None:
        add_daemon_options(p, token_help="admin token (default $CACHED_TOKEN)")

    stats = sub.add_parser("stats", help="store totals, and bytes, entries, last build and hit rate per tenant and app")
    common(stats)
    stats.set_defaults(func=cmd_stats)

    purge = sub.add_parser("purge", help="clear one app, one tenant, one dependency tree, one package version, old entries or everything")
    add_app_name_options(purge, required=False, tenant_help="alone: remove the tenant's results and Vite caches; with --app: the app's next build "
                         "misses (reason purged), apps sharing its results still hit")
    which = purge.add_mutually_exclusive_group()
    which.add_argument("--deps", default="", metavar="KEY", help="remove one dependency tree (see `cached explain`)")
    which.add_argument("--older-than", default="", metavar="AGE", help="remove entries unused for this long (e.g. 7d, 12h)")
    which.add_argument("--package", default="", metavar="NAME@VERSION", help="remove every tree holding this package version "
                       "(aliases too), the results and Vite caches built on them and its package records, for every tenant")
    which.add_argument("--all", action="store_true", help="remove every entry")
    purge.add_argument("--dry-run", action="store_true", help="print what would go and how many bytes; change nothing")
    common(purge)
    purge.set_defaults(func=cmd_purge)

    gc = sub.add_parser("gc", help="evict least-recently-used entries until the store fits, then reclaim unreferenced blobs")
    gc.add_argument("--max-size", default="", metavar="SIZE", help="e.g. 20GB (default: only reclaim what nothing references)")
    gc.add_argument("--dry-run", action="store_true")
    gc.add_argument("--older-than", default="", metavar="AGE", help="with --remote: delete the bucket's objects written longer ago "
                    "(e.g. 30d), for buckets without a lifecycle rule; talks to the bucket, not the daemon")
    common(gc)
    add_remote_options(gc, readers=False)
    gc.set_defaults(func=cmd_gc)

    verify = sub.add_parser("verify", help="re-hash every blob; exit 1 when any is corrupt or missing")
    verify.add_argument("--repair", action="store_true", help="quarantine corrupt blobs and drop the entries naming them (their next build is clean)")
    common(verify)
    verify.set_defaults(func=cmd_verify)

    explain = sub.add_parser("explain", help="what an app's last keys are made of and what changed since the build before; "
                             "or, with --package, which apps' last builds used a package")
    add_app_name_options(explain, required=False)
    explain.add_argument("--package", default="", metavar="NAME[@VERSION]", help="the tenants and apps whose last build used "
                         "this package (every version without @VERSION), where it sits, and how many trees hold it")
    explain.add_argument("--limit", type=int, default=0, help="with --package: apps listed at most (default 100)")
    common(explain)
    explain.set_defaults(func=cmd_explain)


def _call(args: argparse.Namespace, fn: Callable[[Any], Any]) -> Any:
    from cached_client import CachedError, Client

    with Client(args.server, token=args.token) as client:
        try:
            return fn(client)
        except CachedError as e:
            print(f"cached: {args.command} failed: {e.code.name}: {e.details}", file=sys.stderr)
            raise SystemExit(1) from None


def _when(unix_ms: int) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(unix_ms / 1000)) + " UTC" if unix_ms else "never"


def _message(m: Any) -> dict[str, Any]:
    from google.protobuf.json_format import MessageToDict

    return MessageToDict(m, preserving_proto_field_name=True, always_print_fields_with_no_presence=True, unquote_int64_if_possible=True)


def cmd_stats(args: argparse.Namespace) -> int:
    s = _call(args, lambda c: c.stats_response())
    apps = [{"tenant": a.tenant, "app": a.app, "last_action_key": a.last_action_key, "last_build_unix_ms": a.last_build_unix_ms,
             "bytes": a.bytes, "entries": a.entries, "builds": a.builds, "action_hits": a.action_hits,
             "hit_rate": round(a.hit_rate, 4), "builds_failed": a.builds_failed} for a in s.app_stats]
    tenants = [{"tenant": t.tenant, "bytes": t.bytes, "entries": t.entries, "apps": t.apps, "builds": t.builds,
                "action_hits": t.action_hits, "hit_rate": round(t.hit_rate, 4), "last_build_unix_ms": t.last_build_unix_ms,
                "shadow": {"builds": t.shadow_builds, "bytes": t.shadow_bytes, "entries": t.shadow_entries}} for t in s.tenant_stats]
    data = {
        "root": s.root, "digest_function": s.digest_function, "blobs": s.blobs, "bytes": s.bytes, "actions": s.actions,
        "apps": s.apps, "entries": dict(s.entries), "max_bytes": s.max_bytes, "builds": s.builds, "action_hits": s.action_hits,
        "hit_rate": round(s.hit_rate, 4), "builds_failed": s.builds_failed, "evictions": s.evictions,
        "processes_started": s.processes_started, "metrics_address": s.metrics_address, "per_tenant": tenants, "per_app": apps,
        "shadow": {"builds": s.shadow_builds, "bytes": s.shadow_bytes, "entries": s.shadow_entries},
    }
    r = s.remote if s.HasField("remote") else None
    if r is not None:
        data["remote"] = {"bucket": r.bucket, "prefix": r.prefix, "writer": r.writer, "queue_depth": r.queue_depth,
                          "queued_bytes": r.queued_bytes, "circuit_open": r.circuit_open, "bytes_in": r.bytes_in,
                          "bytes_out": r.bytes_out, "counters": dict(sorted(r.counters.items()))}
    if args.json:
        print(json.dumps(data, indent=2))
        return 0
    cap = f" of {format_bytes(s.max_bytes)} allowed" if s.max_bytes else ""
    entries = ", ".join(f"{n} {k}" for k, n in sorted(s.entries.items())) or "no entries"
    print(f"store {s.root} ({s.digest_function}): {format_bytes(s.bytes)}{cap} in {s.blobs} blobs; {entries}")
    print(f"since start: {s.builds} builds, {s.action_hits} action hits ({s.hit_rate:.0%}), {s.builds_failed} failed, "
          f"{s.evictions} entries evicted, {s.processes_started} child processes")
    if s.shadow_builds or s.shadow_entries:
        print(f"shadow checks (cold rebuilds comparing warm output): {s.shadow_builds} builds, "
              f"{format_bytes(s.shadow_bytes)} in {s.shadow_entries} entries")
    if s.metrics_address:
        print(f"metrics: http://{s.metrics_address}/metrics")
    if r is not None:
        counters = ", ".join(f"{k} {n}" for k, n in sorted(r.counters.items()) if n) or "nothing yet"
        print(f"shared tier s3://{r.bucket}/{r.prefix} ({'writer' if r.writer else 'read-only'}"
              f"{', circuit OPEN: the bucket is failing, builds are local-only' if r.circuit_open else ''}): "
              f"{format_bytes(r.bytes_in)} in, {format_bytes(r.bytes_out)} out, {r.queue_depth} writes queued; {counters}")
    for t in tenants:
        print(f"tenant {t['tenant']}: {format_bytes(t['bytes'])} in {t['entries']} entries, {t['apps']} apps, "
              f"{t['builds']} builds ({t['hit_rate']:.0%} hits), last build {_when(t['last_build_unix_ms'])}"
              + (f"; shadow checks: {t['shadow']['builds']} builds, {format_bytes(t['shadow']['bytes'])}" if t["shadow"]["builds"] or t["shadow"]["entries"] else ""))
        for a in (a for a in apps if a["tenant"] == t["tenant"]):
            print(f"  {a['app']}: {format_bytes(a['bytes'])} in {a['entries']} entries, {a['builds']} builds "
                  f"({a['hit_rate']:.0%} hits), last build {_when(a['last_build_unix_ms'])}")
    return 0


def cmd_purge(args: argparse.Namespace) -> int:
    try:
        older = parse_age(args.older_than) if args.older_than else 0.0
    except ValueError as e:
        print(f"cached: {e}", file=sys.stderr)
        return 2
    if (bool(args.tenant) + bool(args.deps) + bool(args.older_than) + bool(args.package) + bool(args.all)) != 1:
        print("cached: purge takes one of --tenant T [--app A], --deps KEY, --package NAME@VERSION, --older-than AGE, --all", file=sys.stderr)
        return 2
    if args.package:
        return _purge_package(args)
    app = f"{args.tenant}/{args.app}" if args.app else ""
    r = _call(args, lambda c: c.purge(app=app, tenant="" if app else args.tenant, deps_key=args.deps, older_than_s=older,
                                      all=args.all, dry_run=args.dry_run))
    if args.json:
        print(json.dumps(_message(r), indent=2))
        return 0
    kinds = ", ".join(f"{n} {k}" for k, n in sorted(r.by_kind.items())) or "none"
    if r.dry_run:
        verb = "would hide" if args.app else "would remove"
        print(f"{verb} {r.entries} entries naming {format_bytes(r.bytes)} ({kinds}); nothing was changed")
    elif args.app:
        print(f"purged {app}: its next build misses (reason purged); {r.entries} entries it made ({format_bytes(r.bytes)}) "
              f"stay for apps sharing them; freed {format_bytes(r.bytes_freed)}")
    else:
        print(f"removed {r.entries} entries naming {format_bytes(r.bytes)} ({kinds}); the sweep freed "
              f"{format_bytes(r.bytes_freed)} in {r.blobs_deleted} blobs; store now {format_bytes(r.bytes_after)}")
    _print_held(r)
    for key in r.keys:
        print(f"  {key}")
    if r.entries > len(r.keys):
        print(f"  ... and {r.entries - len(r.keys)} more")
    return 0


def _purge_package(args: argparse.Namespace) -> int:
    r = _call(args, lambda c: c.purge_package(args.package, dry_run=args.dry_run))
    if args.json:
        print(json.dumps(_message(r), indent=2))
        return 0
    package = f"{r.name}@{r.version}"
    kinds = ", ".join(f"{t.entries} {k} ({format_bytes(t.bytes)})" for k, t in sorted(r.by_kind.items())) or "none"
    if not r.entries:
        print(f"{package}: no stored tree, result or package record holds it; nothing to remove")
        return 0
    if r.dry_run:
        print(f"would remove {r.entries} entries made with {package}, naming {format_bytes(r.bytes)} ({kinds}); nothing was changed")
    else:
        late = f", {r.late_entries} of them committed by builds while it ran" if r.late_entries else ""
        print(f"removed {r.entries} entries made with {package}, naming {format_bytes(r.bytes)} ({kinds}{late}); the sweep freed "
              f"{format_bytes(r.bytes_freed)} in {r.blobs_deleted} blobs; store now {format_bytes(r.bytes_after)}")
    if r.apps_count:
        verb = "would rebuild" if r.dry_run else "rebuild"
        print(f"{r.apps_count} apps {verb} on their next build (reason purged): {', '.join(r.apps)}"
              + (f" and {r.apps_count - len(r.apps)} more" if r.apps_count > len(r.apps) else ""))
        if not r.dry_run:
            print(f"  their lockfiles still name {package}: update them, or the next install fetches it again")
    _print_held(r)
    for key in r.keys:
        print(f"  {key}")
    if r.entries > len(r.keys):
        print(f"  ... and {r.entries - len(r.keys)} more")
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    if args.remote or args.older_than:
        return _gc_remote(args)
    try:
        max_bytes = parse_size(args.max_size) if args.max_size else None
    except ValueError as e:
        print(f"cached: {e}", file=sys.stderr)
        return 2
    r = _call(args, lambda c: c.collect_garbage(max_bytes, dry_run=args.dry_run))
    if args.json:
        print(json.dumps(_message(r), indent=2))
        return 0
    verb = "would evict" if r.dry_run else "evicted"
    print(f"{verb} {r.roots_evicted} entries and {'would delete' if r.dry_run else 'deleted'} {r.blobs_deleted} blobs "
          f"({format_bytes(r.bytes_freed)}); store {format_bytes(r.bytes_before)} -> {format_bytes(r.bytes_after)}"
          f"{f'; {r.blobs_kept_protected} blobs kept (in use or too new)' if r.blobs_kept_protected else ''}")
    if max_bytes is not None and r.bytes_after > max_bytes:
        print(f"still over {format_bytes(max_bytes)}: what is left cannot be freed yet")
    _print_held(r)
    return 0


def _gc_remote(args: argparse.Namespace) -> int:
    """`gc --remote URL --older-than AGE`: straight to the bucket with the writer's settings (the daemon is not involved)."""
    from cached.remote.errors import RemoteConfigError, RemoteUnavailable
    from cached.remote.gc import collect
    from cached.remote.settings import RemoteSettings

    if not (args.remote and args.older_than) or args.max_size:
        print("cached: gc --remote s3://BUCKET[/PREFIX] needs --older-than AGE (and takes no --max-size)", file=sys.stderr)
        return 2
    if not args.remote_signing_key:
        print("cached: gc --remote deletes objects: only a writer may; give it --remote-signing-key", file=sys.stderr)
        return 2
    try:
        r = collect(RemoteSettings.from_args(args), parse_age(args.older_than), dry_run=args.dry_run)  # type: ignore[arg-type]
    except (RemoteConfigError, ValueError) as e:
        print(f"cached: gc: {e}", file=sys.stderr)
        return 2
    except RemoteUnavailable as e:
        print(f"cached: gc: {e}", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(vars(r), indent=2))
    else:
        verb = "would delete" if r.dry_run else "deleted"
        print(f"{verb} {r.deleted} objects ({format_bytes(r.bytes_deleted)}) older than {args.older_than} from {args.remote}; "
              f"kept {r.kept} ({format_bytes(r.bytes_kept)})" + (f"; {len(r.failed)} could not be deleted" if r.failed else ""))
    return 1 if r.failed else 0


def _print_held(r: Any) -> None:
    """What a collection or a purge's sweep could not free yet, per reason, and when it can."""
    if r.held:
        print(f"not freed yet: {format_bytes(r.bytes_held)}")
    for h in r.held:
        print(f"  {format_bytes(h.bytes)} in {h.blobs} blobs: {h.detail}")


def cmd_verify(args: argparse.Namespace) -> int:
    r = _call(args, lambda c: c.verify(repair=args.repair))
    if args.json:
        print(json.dumps(_message(r), indent=2))
    elif r.ok:
        print(f"checked {r.files_checked} blob files in {r.seconds:.1f} s: all intact")
    else:
        print(f"checked {r.files_checked} blob files: {len(r.corrupt)} corrupt, {len(r.missing)} missing")
        for path in r.corrupt:
            print(f"  corrupt: {path}")
        for digest in r.missing:
            print(f"  missing: {digest}")
        if args.repair:
            print(f"repaired: {r.quarantined} quarantined, {r.roots_deleted} entries dropped (their next build is a clean miss), {r.trees_removed} trees removed")
        else:
            print("run `cached verify --repair` to quarantine them and drop the entries that name them")
    return 0 if r.ok else 1


def cmd_explain(args: argparse.Namespace) -> int:
    if args.package:
        if args.app or args.tenant:
            print("cached: explain takes --package NAME[@VERSION] or --tenant T --app A, not both", file=sys.stderr)
            return 2
        return _explain_package(args)
    if not (args.tenant and args.app):
        print("cached: explain needs the app (--tenant TENANT --app APP, or --app TENANT/APP) or --package NAME[@VERSION]", file=sys.stderr)
        return 2
    r = _call(args, lambda c: c.explain(args.tenant, args.app))
    if args.json:
        print(json.dumps(_message(r), indent=2))
        return 0
    print(r.summary)
    print(f"last build ({_when(r.last.built_unix_ms)}):")
    _print_keys(r.last)
    if r.has_before:
        print(f"build before ({_when(r.before.built_unix_ms)}): action {r.before.action_key}")
        for d in r.differences:
            print(f"  {d.detail}")
        if not r.differences:
            print("  same inputs")
    return 0


def _explain_package(args: argparse.Namespace) -> int:
    r = _call(args, lambda c: c.explain_package(args.package, limit=args.limit))
    if args.json:
        print(json.dumps(_message(r), indent=2))
        return 0
    print(r.summary)
    for u in r.uses:
        print(f"  {u.tenant}/{u.app}: {', '.join(u.versions)} at {', '.join(u.paths)} (last build {_when(u.last_build_unix_ms)}, deps {u.deps_key})")
    if r.truncated:
        print(f"  ... and {r.apps - len(r.uses)} more apps (--limit N lists more)")
    if r.apps and r.version:
        print(f"remove them with `cached purge --package {r.name}@{r.version}`")
    return 0


def _print_keys(k: Any) -> None:
    d = k.deps
    print(f"  action     {k.action_key}")
    print(f"  sources    {k.sources_digest or '?'} ({k.source_files} files)")
    print(f"  deps       {d.deps_key}")
    if d.package_fields_digest:
        print(f"    lockfile {d.lockfile_digest or 'none'} ({d.lockfile_packages} packages); package.json fields {', '.join(d.package_fields) or 'none'}")
        print(f"    install scripts {', '.join(d.install_scripts) or 'none'}; .npmrc {', '.join(f'{a}={b}' for a, b in sorted(d.npmrc.items())) or 'none'}; patches {len(d.patches)}")
        print(f"    {' '.join(f'{a} {b}' for a, b in sorted(d.toolchain.items()))}; {' && '.join(d.command)}")
    print(f"  env        {', '.join(k.env_names) or 'none'}")
    print(f"  toolchain  {k.toolchain}")
    print(f"  script     {k.script or 'build'}, mode {k.mode or 'production'}")
