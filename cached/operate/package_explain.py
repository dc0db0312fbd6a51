"""Explain one package: which apps' last builds used it, where it sat in their trees, how much holds it.

For an operator weighing a compromised release before purging it. An app's
last build is its ``AppRecord``; its ``deps_key`` names the tree the build
used, whose refs say which packages the tree holds and where. An app whose
last tree is no longer stored (evicted, purged) cannot be answered for; it is
counted as unknown rather than guessed. The daemon's own apps (a shadow
check's ``.shadow-*``) are left out, as stats leaves them out.

Reads only (no lease, no access time); the output is sorted and bounded.
"""

from __future__ import annotations

from cached.operate.packages import PackageSelector, TreeMatch, matching_package_records, matching_trees, version_order
from cached.store import Store
from cached.v1 import admin_pb2

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
SHOWN_PATHS = 20


class PackageExplainer:
    def __init__(self, store: Store) -> None:
        self.store = store

    def explain(self, selector: PackageSelector, limit: int = 0) -> admin_pb2.ExplainPackageResponse:
        """Blocking (it reads every tree and app record): run it in a thread."""
        limit = min(limit, MAX_LIMIT) if limit > 0 else DEFAULT_LIMIT
        trees: dict[str, TreeMatch] = {t.deps_key: t for t in matching_trees(self.store, selector)}
        records = list(matching_package_records(self.store, selector))
        versions = {r.version for t in trees.values() for r in t.refs} | {p.version for _, p in records}
        uses: list[admin_pb2.PackageUse] = []
        unknown = 0
        stored: dict[str, bool] = {}
        for owner, app_record in sorted(self.store.apps.all().items()):
            tenant, _, app = owner.partition("/")
            if app.startswith(".") or not app_record.deps_key:
                continue
            match = trees.get(app_record.deps_key)
            if match is None:
                if app_record.deps_key not in stored:
                    stored[app_record.deps_key] = self.store.deps.peek(app_record.deps_key.encode()) is not None
                unknown += int(not stored[app_record.deps_key])
                continue
            uses.append(admin_pb2.PackageUse(
                tenant=tenant, app=app, deps_key=app_record.deps_key,
                versions=sorted({r.version for r in match.refs}, key=version_order),
                paths=sorted({r.path for r in match.refs})[:SHOWN_PATHS], last_build_unix_ms=app_record.last_build_unix_ms,
            ))
        response = admin_pb2.ExplainPackageResponse(
            name=selector.name, version=selector.version, uses=uses[:limit], apps=len(uses),
            tenants=sorted({u.tenant for u in uses}), versions=sorted(versions, key=version_order), trees=len(trees),
            package_records=len(records), apps_unknown=unknown, truncated=len(uses) > limit,
        )
        response.summary = summary(selector, response)
        return response


def summary(selector: PackageSelector, r: admin_pb2.ExplainPackageResponse) -> str:
    """One line: how many apps and tenants, which versions, how many trees and package records."""
    if not r.apps and not r.trees and not r.package_records:
        head = f"{selector}: no stored tree or package record holds it"
    else:
        versions = f" (versions {', '.join(r.versions)})" if r.versions and not selector.version else ""
        head = (f"{selector}{versions}: the last build of {r.apps} app{'s' if r.apps != 1 else ''} in "
                f"{len(r.tenants)} tenant{'s' if len(r.tenants) != 1 else ''} used it; {r.trees} stored "
                f"tree{'s' if r.trees != 1 else ''} and {r.package_records} package record{'s' if r.package_records != 1 else ''} hold it")
    if r.apps_unknown:
        head += f"; {r.apps_unknown} app{'s' if r.apps_unknown != 1 else ''} not known (their last tree is no longer stored)"
    return head


__all__ = ["PackageExplainer", "summary"]
