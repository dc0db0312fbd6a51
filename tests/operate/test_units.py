"""The operations objects on a bare store: purge forms, tombstones, GC, verify, counting, explain's diff."""

from __future__ import annotations

import os
import time

import pytest

from cached.operate.config import OperateConfig, metrics_address, parse_age, parse_size
from cached.operate.explain import differences
from cached.operate.gc import GarbageCollector
from cached.operate.metrics import BuildMetrics, counted_decisions
from cached.operate.purge import PurgeSelector, Purger
from cached.operate.verify import Verifier
from cached.store import Removed, Store, Tombstones
from cached.v1 import admin_pb2, cached_pb2, operate_pb2, records_pb2

HIT, MISS, COALESCED = cached_pb2.CacheDecision.HIT, cached_pb2.CacheDecision.MISS, cached_pb2.CacheDecision.COALESCED


def _d(layer: str, result: int, reason: str = "") -> cached_pb2.CacheDecision:
    return cached_pb2.CacheDecision(layer=layer, result=result, reason=reason, tier="local")


def _counted(decisions: list[cached_pb2.CacheDecision]) -> list[tuple[str, int, str]]:
    return [(d.layer, d.result, d.reason) for d in counted_decisions(decisions)]


def test_each_decision_counts_once_in_the_build_that_made_it() -> None:
    leader = [_d("action", MISS, "sources_changed"), _d("deps", HIT, "hit"), _d("vite", MISS, "new_app")]
    assert _counted(leader) == [("action", MISS, "sources_changed"), ("deps", HIT, "hit"), ("vite", MISS, "new_app")]
    # A waiter on the same action received the leader's deps and vite decisions: they are not its own.
    waiter = [_d("resolution", HIT, "hit"), _d("action", MISS, "sources_changed"), _d("deps", HIT, "hit"),
              _d("vite", MISS, "new_app"), _d("action", COALESCED, "coalesced")]
    assert _counted(waiter) == [("resolution", HIT, "hit"), ("action", COALESCED, "coalesced")]
    # Two different actions sharing one install: the second's deps lookup coalesced.
    shared = [_d("action", MISS, "new_app"), _d("deps", MISS, "new_deps"), _d("deps", COALESCED, "coalesced")]
    assert _counted(shared) == [("action", MISS, "new_app"), ("deps", COALESCED, "coalesced")]


def test_metrics_count_a_failed_build_and_its_decisions() -> None:
    from cached.errors import BuildFailed

    m = BuildMetrics()
    m.observe_build("t/a", [_d("action", MISS, "new_app")], {"build": 120.0}, None, error=BuildFailed("boom", []))
    assert m.registry.get_sample_value("cached_builds_failed_total", {"error": "build_failed"}) == 1
    assert m.registry.get_sample_value("cached_misses_total", {"layer": "action", "reason": "new_app"}) == 1
    assert m.registry.get_sample_value("cached_phase_seconds_count", {"phase": "build"}) == 1
    assert m.app_counters()["t/a"].failed == 1


def test_sizes_ages_and_addresses() -> None:
    assert parse_size("20GB") == 20 * 10**9 and parse_size("1.5MiB") == int(1.5 * 2**20) and parse_size("0") == 0
    assert parse_size("300k") == 300_000 and parse_size("512b") == 512
    assert parse_age("7d") == 7 * 86400 and parse_age("90s") == 90 and parse_age("12h") == 43200
    assert metrics_address("9464") == ("127.0.0.1", 9464) and metrics_address("0.0.0.0:1") == ("0.0.0.0", 1)
    for bad in ("20 parsecs", "-1", "", "GB"):
        with pytest.raises(ValueError):
            parse_size(bad)
    for bad in ("7", "7 days", "d"):
        with pytest.raises(ValueError):
            parse_age(bad)
    with pytest.raises(ValueError):
        OperateConfig(low_watermark=0.95)


def _root(store: Store, kind: str, key: str, owner: str, size: int = 1000) -> None:
    blob = store.blobs.put_bytes(os.urandom(size))
    store.put_root(kind, key.encode(), b"v", blobs=[blob], owner=owner).result()


def _populate(store: Store) -> None:
    _root(store, "actions", "t1/k1", "t1/a")
    _root(store, "actions", "t1/k2", "t1/b")
    _root(store, "actions", "t2/k3", "t2/c")
    _root(store, "deps", "dk1", "t1/a")
    _root(store, "vitecache", "t1/a", "t1/a")


def _keys(store: Store) -> set[str]:
    return {f"{e.kind}/{e.key.decode()}" for e in store.iter_roots()}


def test_purge_forms(store: Store) -> None:
    tombs = store.tombstones
    purger = Purger(store, tombs, BuildMetrics())
    _populate(store)
    everything = _keys(store)
    dry = purger.purge(PurgeSelector(all=True), dry_run=True)
    assert dry.entries == 5 and dry.bytes == 5000 and _keys(store) == everything and store.stats().blobs == 5

    app = purger.purge(PurgeSelector(app="t1/a"))
    assert app.watermark_set and store.purge_watermark("t1/a") > 0 and store.purge_watermark("t1/b") == 0
    assert app.entries == 2 and app.by_kind == {"actions": 1, "vitecache": 1}  # its action entry is hidden, its Vite cache goes
    assert _keys(store) == everything - {"vitecache/t1/a"}
    assert tombs.reason("vitecache", b"t1/a")[0] == "purged"  # type: ignore[index]

    tenant = purger.purge(PurgeSelector(tenant="t1"))
    assert tenant.entries == 2 and _keys(store) == {"actions/t2/k3", "deps/dk1"}
    assert tombs.reason("actions", b"t1/k2")[0] == "purged"  # type: ignore[index]

    purger.purge(PurgeSelector(deps_key="dk1"))
    assert _keys(store) == {"actions/t2/k3"}

    _root(store, "actions", "t2/k4", "t2/d")
    time.sleep(0.05)
    store.get_root("actions", b"t2/k4")  # used just now: stays
    old = purger.purge(PurgeSelector(older_than_s=0.04))
    assert old.entries == 1 and _keys(store) == {"actions/t2/k4"}

    gone = purger.purge(PurgeSelector(all=True))
    assert gone.entries == 1 and _keys(store) == set()
    assert store.stats().blobs == 0 and store.stats().bytes == 0


def test_a_purge_needs_exactly_one_valid_selector() -> None:
    for bad in ({}, {"all": True, "tenant": "t1"}, {"app": "no-slash"}, {"app": "T1/x"}, {"tenant": "../x"}):
        with pytest.raises(ValueError):
            PurgeSelector(**bad)  # type: ignore[arg-type]


def test_eviction_and_repair_leave_tombstones_naming_the_cause(store: Store) -> None:
    tombs = store.tombstones
    metrics = BuildMetrics(store.stats)
    _root(store, "actions", "t1/old", "t1/a")
    time.sleep(0.01)
    _root(store, "actions", "t1/new", "t1/a")
    report = GarbageCollector(store, tombs, metrics).collect(1500)
    assert report.evicted == [("actions", b"t1/old")]
    assert tombs.reason("actions", b"t1/old")[0] == "evicted"  # type: ignore[index]
    assert tombs.lookup("actions", b"t1/new") is None
    assert metrics.registry.get_sample_value("cached_evictions_total", {"kind": "actions"}) == 1
    assert metrics.registry.get_sample_value("cached_store_bytes") == store.stats().bytes == 1000

    (entry,) = store.iter_roots()
    path = store.blobs.path_for(entry.blobs[0])
    os.chmod(path, 0o644)
    with open(path, "r+b") as f:
        first = f.read(1)
        f.seek(0)
        f.write(bytes([first[0] ^ 0xFF]))
    verifier = Verifier(store, tombs, metrics)
    found = verifier.verify(repair=False)
    assert len(found.corrupt) == 1 and list(store.iter_roots())
    repaired = verifier.verify(repair=True)
    assert repaired.roots_deleted == 1 and not list(store.iter_roots())
    assert tombs.reason("actions", b"t1/new")[0] == "corrupt"  # type: ignore[index]
    assert verifier.verify().ok


def test_tombstones_are_bounded_dropping_the_oldest(store: Store) -> None:
    tombs = Tombstones(store.index, limit=3)
    for i in range(5):
        tombs.record([Removed("actions", f"t/{i}".encode(), "t/a")], "evicted").result()
        time.sleep(0.002)
    assert tombs.count() == 3
    assert tombs.lookup("actions", b"t/0") is None and tombs.lookup("actions", b"t/4") is not None


def _snapshot(sources: dict[str, str], env: dict[str, str], deps_key: str, packages: dict[str, str], lock: str) -> operate_pb2.AppSnapshot:
    record = records_pb2.AppRecord(sources=sources, env=env, deps_key=deps_key, toolchain="tc", script="build", mode="production")
    keys = admin_pb2.KeyComponents(deps=admin_pb2.DepsComponents(deps_key=deps_key, lockfile_digest=lock, package_fields_digest="p"))
    return operate_pb2.AppSnapshot(keys=keys, record=record, packages=packages)


def test_differences_name_files_env_names_and_packages_never_values() -> None:
    before = _snapshot({"a.ts": "1", "b.ts": "2"}, {"API": "h1", "OLD": "h2"}, "d1", {"node_modules/react": "19.0.0"}, "L1")
    after = _snapshot({"a.ts": "1", "b.ts": "3", "c.ts": "4"}, {"API": "h9"}, "d2", {"node_modules/react": "19.3.1"}, "L2")
    diffs = {d.component: d for d in differences(before, after)}
    assert set(diffs) == {"deps", "packages", "sources", "env"}
    assert list(diffs["sources"].changed) == ["b.ts", "c.ts"] and diffs["sources"].count == 2
    assert list(diffs["env"].changed) == ["API", "OLD"] and "h9" not in diffs["env"].detail
    assert "react 19.0.0 -> 19.3.1" in diffs["packages"].detail
    assert list(diffs["deps"].changed) == ["lockfile"]
    assert differences(after, after) == []


def test_stats_never_list_internal_apps_and_count_shadow_checks_apart(store: Store) -> None:
    from cached.operate.explain import Explainer
    from cached.operate.stats import collect_stats
    from cached.server.admin_service import stats_response

    store.apps.put("bars", "w1", records_pb2.AppRecord(last_action_key="a1", builds=3)).result()
    store.apps.put("bars", ".shadow-w1", records_pb2.AppRecord(last_action_key="a1", builds=2)).result()
    store.vitecache.put(store.vitecache.key("bars", ".shadow-w1"), b"v", owner="bars/.shadow-w1").result()
    store.vitecache.put(store.vitecache.key("bars", "w1"), b"v", owner="bars/w1").result()
    stats = collect_stats(store, BuildMetrics(), builds=0, action_hits=0, max_bytes=0)
    assert [(a.tenant, a.app) for a in stats.app_stats] == [("bars", "w1")]
    assert stats.apps == 1
    (tenant,) = stats.tenant_stats
    assert (tenant.apps, tenant.entries, tenant.shadow_builds, tenant.shadow_entries) == (1, 1, 2, 1)
    assert (stats.shadow_builds, stats.shadow_entries) == (2, 1)
    response = stats_response(stats, root="r", processes_started=0)
    assert [a.app for a in response.app_stats] == ["w1"]
    assert (response.shadow_builds, response.tenant_stats[0].shadow_builds, response.tenant_stats[0].shadow_entries) == (2, 2, 1)
    explained = Explainer(store, None, store.tombstones).explain("bars", ".shadow-w1")  # type: ignore[arg-type]
    assert not explained.found and "internal" in explained.summary
