"""purge --package and explain --package on a bare store: exactly the trees holding the package, the results
built on them, the package records; tombstones for the next misses; explain's apps, versions and counts."""

from __future__ import annotations

import base64
import hashlib
import os

import pytest

from cached.operate.metrics import BuildMetrics
from cached.operate.package_explain import PackageExplainer
from cached.operate.package_purge import PackagePurger
from cached.operate.packages import PackageSelector, integrity_key, version_order
from cached.store import Store
from cached.v1 import records_pb2

BAD_PAD = b"left-pad 1.3.0 tarball"
BAD_INTEGRITY = "sha512-" + base64.b64encode(hashlib.sha512(BAD_PAD).digest()).decode()


def _ref(path: str, name: str, version: str, integrity: str = "") -> records_pb2.PackageRef:
    return records_pb2.PackageRef(path=path, name=name, version=version, integrity=integrity)


def _blob(store: Store, size: int) -> object:
    return store.blobs.put_bytes(os.urandom(size))


def _tree(store: Store, key: str, refs: list[records_pb2.PackageRef], *, owner: str = "t/first", size: int = 1000) -> None:
    record = records_pb2.DepsRecord(refs=refs, packages={r.path: r.version for r in refs}, method="npm ci")
    store.deps.put(key.encode(), record.SerializeToString(), blobs=[_blob(store, size)], owner=owner).result()  # type: ignore[list-item]


def _action(store: Store, tenant: str, app: str, action_key: str, deps_key: str, size: int = 100) -> None:
    record = records_pb2.ActionRecord(deps_key=deps_key, tenant=tenant, app=app)
    store.actions.put(store.actions.key(tenant, action_key), record.SerializeToString(), blobs=[_blob(store, size)],  # type: ignore[list-item]
                      owner=f"{tenant}/{app}").result()


def _vite(store: Store, tenant: str, app: str, deps_key: str, size: int = 10) -> None:
    record = records_pb2.ViteCacheRecord(deps_key=deps_key)
    store.vitecache.put(store.vitecache.key(tenant, app), record.SerializeToString(), blobs=[_blob(store, size)],  # type: ignore[list-item]
                        owner=f"{tenant}/{app}").result()


def _package(store: Store, integrity: str, name: str, version: str, size: int = 50) -> bytes:
    key = integrity_key(integrity)
    assert key is not None
    record = records_pb2.PackageRecord(name=name, version=version, files=1, bytes=size)
    store.packages.put(key, record.SerializeToString(), blobs=[_blob(store, size)]).result()  # type: ignore[list-item]
    return key


def _app(store: Store, tenant: str, app: str, deps_key: str, built_ms: int = 1) -> None:
    store.apps.put(tenant, app, records_pb2.AppRecord(last_action_key=f"{app}-key", deps_key=deps_key, last_build_unix_ms=built_ms)).result()


def _keys(store: Store) -> set[str]:
    return {f"{e.kind}/{e.key.decode()}" for e in store.iter_roots()}


def _populate(store: Store) -> bytes:
    """Three trees hold left-pad: 1.3.0 at the top, 1.3.0 nested under an alias, 1.2.0; one tree holds none."""
    _tree(store, "dk-top", [_ref("node_modules/react", "react", "19.0.0"), _ref("node_modules/left-pad", "left-pad", "1.3.0", BAD_INTEGRITY)])
    _tree(store, "dk-alias", [_ref("node_modules/a", "a", "1.0.0"), _ref("node_modules/a/node_modules/pad", "left-pad", "1.3.0", BAD_INTEGRITY)])
    _tree(store, "dk-old", [_ref("node_modules/left-pad", "left-pad", "1.2.0")])
    _tree(store, "dk-clean", [_ref("node_modules/react", "react", "19.0.0"), _ref("node_modules/left-pad-ish", "left-pad-ish", "1.3.0")])
    _action(store, "acme", "shop", "k1", "dk-top")
    _action(store, "acme", "blog", "k2", "dk-alias")
    _action(store, "bars", "w1", "k3", "dk-top")
    _action(store, "bars", "w2", "k4", "dk-old")
    _action(store, "bars", "w3", "k5", "dk-clean")
    _vite(store, "acme", "shop", "dk-top")
    _vite(store, "bars", "w3", "dk-clean")
    key = _package(store, BAD_INTEGRITY, "left-pad", "1.3.0")
    _package(store, "sha512-" + base64.b64encode(hashlib.sha512(b"1.2.0").digest()).decode(), "left-pad", "1.2.0")
    return key


def test_a_selector_names_a_package_and_an_exact_version() -> None:
    assert PackageSelector.parse("left-pad@1.3.0", version_required=True) == PackageSelector("left-pad", "1.3.0")
    assert PackageSelector.parse("@scope/name@2.0.0-rc.1", version_required=True) == PackageSelector("@scope/name", "2.0.0-rc.1")
    assert PackageSelector.parse("@scope/name", version_required=False) == PackageSelector("@scope/name", "")
    assert PackageSelector.parse("JSONStream", version_required=False).name == "JSONStream"
    for bad, says in (("left-pad", "give the version"), ("@1.3.0", "not a package name"), ("", "the name is empty"),
                      ("left-pad@", "version after '@' is empty"), ("left-pad@^1.3.0", "not an exact version"),
                      ("left-pad@latest", "not an exact version"), ("../x@1.0.0", "not a package name"),
                      ("a b@1.0.0", "not a package name")):
        with pytest.raises(ValueError) as e:
            PackageSelector.parse(bad, version_required=True)
        assert says in str(e.value) and "NAME@VERSION" in str(e.value), (bad, str(e.value))


def test_integrity_keys_and_version_order() -> None:
    assert integrity_key(BAD_INTEGRITY) == hashlib.sha512(BAD_PAD).hexdigest().encode()
    assert integrity_key("sha1-AAAA " + BAD_INTEGRITY) == hashlib.sha512(BAD_PAD).hexdigest().encode()
    assert integrity_key("sha1-AAAA") is None and integrity_key("") is None and integrity_key("sha512-!!") is None
    assert sorted(["1.10.0", "1.9.0", "1.10.0-rc.1", "0.1.0"], key=version_order) == ["0.1.0", "1.9.0", "1.10.0-rc.1", "1.10.0"]


def test_purge_removes_exactly_what_was_made_with_the_version(store: Store) -> None:
    bad_key = _populate(store)
    before = _keys(store)
    purger = PackagePurger(store, store.tombstones, metrics := BuildMetrics())
    dry = purger.purge(PackageSelector("left-pad", "1.3.0"), dry_run=True)
    assert _keys(store) == before and dry.entries == 7
    report = purger.purge(PackageSelector("left-pad", "1.3.0"))
    gone = {"deps/dk-top", "deps/dk-alias", "actions/acme/k1", "actions/acme/k2", "actions/bars/k3", "vitecache/acme/shop",
            f"packages/{bad_key.decode()}"}
    assert _keys(store) == before - gone  # 1.2.0's tree and record, the clean tree and what was built on them stay
    assert {k: (t.entries, t.bytes) for k, t in report.by_kind.items()} == {
        "deps": (2, 2000), "actions": (3, 300), "vitecache": (1, 10), "packages": (1, 50)}
    assert (report.entries, report.bytes, report.late_entries) == (7, 2360, 0)
    assert set(report.keys) == gone and report.apps == ["acme/blog", "acme/shop", "bars/w1"]
    assert report.blobs_deleted == 7 and report.bytes_freed == 2360  # no lease, no grace in this store
    for kind, key in (("deps", b"dk-top"), ("deps", b"dk-alias"), ("actions", b"acme/k1"), ("vitecache", b"acme/shop"), ("packages", bad_key)):
        assert store.tombstones.reason(kind, key)[0] == "purged", (kind, key)  # type: ignore[index]
    assert store.tombstones.reason("actions", b"bars/k5") is None
    assert store.tombstones.deps_reason("dk-top")[0] == "purged"  # type: ignore[index]
    assert "dependency tree" in store.tombstones.deps_reason("dk-alias")[1]  # type: ignore[index]
    assert store.tombstones.deps_reason("dk-clean") is None
    assert metrics.registry.get_sample_value("cached_purged_entries_total", {"selector": "package"}) == 7
    again = purger.purge(PackageSelector("left-pad", "1.3.0"))
    assert again.entries == 0 and not again.by_kind


def test_a_package_record_is_found_by_the_lockfile_integrity_too(store: Store) -> None:
    _tree(store, "dk", [_ref("node_modules/left-pad", "left-pad", "1.3.0", BAD_INTEGRITY)])
    key = _package(store, BAD_INTEGRITY, "left-pad", "")  # a record that does not say its version
    report = PackagePurger(store, store.tombstones, BuildMetrics()).purge(PackageSelector("left-pad", "1.3.0"))
    assert report.by_kind["packages"].entries == 1 and store.packages.peek(key) is None


def test_a_result_committed_on_a_purged_tree_during_the_purge_goes_too(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """A build that was running on the tree commits its action after the first pass looked."""
    _tree(store, "dk", [_ref("node_modules/left-pad", "left-pad", "1.3.0")])
    _action(store, "acme", "shop", "k1", "dk")
    purger = PackagePurger(store, store.tombstones, BuildMetrics())
    first_remove = purger._remove
    calls: list[int] = []

    def remove_then_a_build_commits(entries):  # type: ignore[no-untyped-def]
        first_remove(entries)
        if not calls:
            _action(store, "acme", "late", "k9", "dk")
        calls.append(len(entries))

    monkeypatch.setattr(purger, "_remove", remove_then_a_build_commits)
    report = purger.purge(PackageSelector("left-pad", "1.3.0"))
    assert calls == [2, 1] and report.late_entries == 1 and report.entries == 3
    assert _keys(store) == set() and "acme/late" in report.apps


def test_explain_lists_the_apps_whose_last_build_used_it(store: Store) -> None:
    _populate(store)
    _app(store, "acme", "shop", "dk-top", 10)
    _app(store, "acme", "blog", "dk-alias", 20)
    _app(store, "bars", "w1", "dk-top", 30)
    _app(store, "bars", "w2", "dk-old", 40)
    _app(store, "bars", "w3", "dk-clean", 50)
    _app(store, "bars", "gone", "dk-evicted", 60)
    _app(store, "bars", ".shadow-w1", "dk-top", 70)
    explainer = PackageExplainer(store)

    r = explainer.explain(PackageSelector("left-pad", "1.3.0"))
    assert [(u.tenant, u.app, u.deps_key, list(u.versions), list(u.paths)) for u in r.uses] == [
        ("acme", "blog", "dk-alias", ["1.3.0"], ["node_modules/a/node_modules/pad"]),
        ("acme", "shop", "dk-top", ["1.3.0"], ["node_modules/left-pad"]),
        ("bars", "w1", "dk-top", ["1.3.0"], ["node_modules/left-pad"]),
    ]
    assert (r.apps, list(r.tenants), list(r.versions), r.trees, r.package_records, r.apps_unknown, r.truncated) == (
        3, ["acme", "bars"], ["1.3.0"], 2, 1, 1, False)
    assert r.uses[1].last_build_unix_ms == 10
    assert "3 apps in 2 tenants" in r.summary and "1 app not known" in r.summary

    every = explainer.explain(PackageSelector("left-pad"))
    assert [f"{u.tenant}/{u.app}" for u in every.uses] == ["acme/blog", "acme/shop", "bars/w1", "bars/w2"]
    assert list(every.versions) == ["1.2.0", "1.3.0"] and every.trees == 3 and every.package_records == 2

    bounded = explainer.explain(PackageSelector("left-pad"), limit=2)
    assert [u.app for u in bounded.uses] == ["blog", "shop"] and bounded.apps == 4 and bounded.truncated

    none = explainer.explain(PackageSelector("left-pad-ish", "9.9.9"))
    assert not none.uses and none.apps == 0 and "no stored tree" in none.summary


def test_a_tree_recorded_before_refs_is_searched_by_its_paths(store: Store) -> None:
    record = records_pb2.DepsRecord(packages={"node_modules/@scope/x": "2.0.0", "node_modules/y": "1.0.0"})
    store.deps.put(b"dk-legacy", record.SerializeToString(), blobs=[_blob(store, 10)]).result()  # type: ignore[list-item]
    _app(store, "acme", "legacy", "dk-legacy")
    r = PackageExplainer(store).explain(PackageSelector("@scope/x", "2.0.0"))
    assert [(u.app, list(u.paths)) for u in r.uses] == [("legacy", ["node_modules/@scope/x"])]
    assert PackagePurger(store, store.tombstones, BuildMetrics()).purge(PackageSelector("@scope/x", "2.0.0")).by_kind["deps"].entries == 1
