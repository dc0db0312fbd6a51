"""Metrics over HTTP, the Metrics event, stats, explain and the admin token, on one daemon with tokens."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from cached_client import CachedError, Client
from cached.v1 import cached_pb2
from operate_support import ADMIN_TOKEN, BUILD_TOKEN, run_cli, sample, scrape
from support import WRITE_DIST, DaemonProcess, tiny_app


@pytest.fixture(scope="module")
def ops_daemon(tmp_path_factory: pytest.TempPathFactory, npm_cache: Path) -> Iterator[DaemonProcess]:
    base = tmp_path_factory.mktemp("ops")
    tokens = base / "tokens"
    tokens.write_text(f"build:*:{BUILD_TOKEN}\nadmin:{ADMIN_TOKEN}\n")
    proc = DaemonProcess(base / "root", npm_cache, args=["--token-file", str(tokens), "--metrics-listen", "127.0.0.1:0"]).start()
    yield proc
    proc.stop()


@pytest.fixture(scope="module")
def metrics_address(ops_daemon: DaemonProcess) -> str:
    with Client(ops_daemon.address, token=ADMIN_TOKEN) as client:
        address = client.stats_response().metrics_address
    assert address.startswith("127.0.0.1:")
    return address


def with_engines(files: dict[str, bytes], node: str) -> dict[str, bytes]:
    """The same tiny app with another deps key (package.json's engines is one of its inputs)."""
    package = json.loads(files["package.json"])
    package["engines"] = {"node": node}
    return {**files, "package.json": json.dumps(package).encode()}


COUNTED = [
    ("cached_builds_total", {"cache": "miss"}), ("cached_builds_total", {"cache": "hit"}),
    ("cached_lookups_total", {"layer": "action", "result": "miss", "tier": "local"}),
    ("cached_lookups_total", {"layer": "action", "result": "hit", "tier": "local"}),
    ("cached_lookups_total", {"layer": "deps", "result": "miss", "tier": "local"}),
    ("cached_lookups_total", {"layer": "deps", "result": "hit", "tier": "local"}),
    *[("cached_misses_total", {"layer": "action", "reason": r}) for r in ("new_app", "sources_changed", "deps_changed", "purged", "env_changed")],
    ("cached_builds_failed_total", {"error": "build_failed"}),
    ("cached_phase_seconds_count", {"phase": "build"}), ("cached_phase_seconds_count", {"phase": "lookup"}),
    ("cached_purged_entries_total", {"selector": "app"}),
]


def test_metric_values_after_a_scripted_sequence(ops_daemon: DaemonProcess, metrics_address: str) -> None:
    files = tiny_app(WRITE_DIST, extra={"src/a.txt": b"one"})
    before = scrape(metrics_address)
    with Client(ops_daemon.address, token=ADMIN_TOKEN) as client:
        cold = client.build(files=files, app="seq", tenant="m1")
        hit = client.build(files=files, app="seq", tenant="m1", keep_events=True)
        changed = {**files, "src/a.txt": b"two"}
        client.build(files=changed, app="seq", tenant="m1")
        new_deps = with_engines(changed, ">=18")
        client.build(files=new_deps, app="seq", tenant="m1")
        client.purge(app="m1/seq")
        rebuilt = client.build(files=new_deps, app="seq", tenant="m1")
        with pytest.raises(CachedError):
            client.build(files=tiny_app("process.exit(3)"), app="seq-broken", tenant="m1")
        stats = client.stats_response()
    after = scrape(metrics_address)
    delta = {(name, tuple(sorted(labels.items()))): sample(after, name, **labels) - sample(before, name, **labels) for name, labels in COUNTED}

    def d(name: str, **labels: str) -> float:
        return delta[(name, tuple(sorted(labels.items())))]

    assert (cold.cache, hit.cache, rebuilt.cache, rebuilt.reason) == ("miss", "hit", "miss", "purged")
    assert d("cached_builds_total", cache="miss") == 4 and d("cached_builds_total", cache="hit") == 1
    assert d("cached_lookups_total", layer="action", result="miss", tier="local") == 5  # the failed build looked up too
    assert d("cached_lookups_total", layer="action", result="hit", tier="local") == 1  # one hit, not one per output blob
    assert d("cached_lookups_total", layer="deps", result="miss", tier="local") == 2  # cold and the deps change
    assert d("cached_lookups_total", layer="deps", result="hit", tier="local") == 3  # source change, purged rebuild, failed build
    assert [d("cached_misses_total", layer="action", reason=r) for r in ("new_app", "sources_changed", "deps_changed", "purged", "env_changed")] == [2, 1, 1, 1, 0]
    assert d("cached_builds_failed_total", error="build_failed") == 1
    assert d("cached_phase_seconds_count", phase="build") == 5 and d("cached_phase_seconds_count", phase="lookup") == 6
    assert d("cached_purged_entries_total", selector="app") == 3  # the action entries it made: cold, source change, deps change
    assert sample(after, "cached_store_bytes") == stats.bytes > 0 and sample(after, "cached_store_blobs") == stats.blobs
    # The hit's outputs (this app's node_modules is empty: its deps hits restore nothing).
    assert sample(after, "cached_bytes_restored_total") - sample(before, "cached_bytes_restored_total") == len(b"<h1>hello</h1>\n")

    kinds = [e.WhichOneof("event") for e in hit.events]
    assert kinds.count("metrics") == 1 and kinds.index("metrics") < kinds.index("result")
    metrics = hit.events[kinds.index("metrics")].metrics
    assert [(x.layer, x.result) for x in metrics.decisions] == [("action", cached_pb2.CacheDecision.HIT)]
    assert metrics.bytes_restored == metrics.output_bytes > 0
    lines = [json.loads(line) for line in ops_daemon.log().splitlines() if line.startswith("{") and '"msg": "build"' in line]
    logged = [line["metrics"] for line in lines if line["metrics"]["action_key"] == rebuilt.action_key]
    assert logged[-1]["cache"] == "miss" and logged[-1]["reason"] == "purged"
    assert logged[-1]["decisions"][0] == {"layer": "action", "result": "miss", "tier": "local", "reason": "purged"}


def test_the_metrics_event_precedes_the_result_and_every_deploy_event(ops_daemon: DaemonProcess) -> None:
    files = tiny_app(WRITE_DIST, extra={"src/deploy.txt": b"d"})
    deploy = cached_pb2.DeployOptions(target="local", environment=cached_pb2.PREVIEW)
    with Client(ops_daemon.address, token=BUILD_TOKEN) as client:
        for _ in range(2):  # a miss, then a hit
            result = client.build(files=files, app="order", tenant="m1", deploy=deploy, keep_events=True)
            kinds = [e.WhichOneof("event") for e in result.events]
            assert kinds.count("metrics") == 1
            later = [i for i, k in enumerate(kinds) if k in ("result", "deploy_result") or (k == "phase" and result.events[i].phase.name == "deploy")]
            assert "result" in kinds and kinds.index("metrics") < min(later), kinds
            if "deploy_result" in kinds:  # where the daemon deploys
                assert result.deploy is not None and not result.deploy.error, result.deploy


def test_stats_per_tenant_and_app(ops_daemon: DaemonProcess) -> None:
    files = tiny_app(WRITE_DIST, extra={"src/s.txt": b"stats"})
    with Client(ops_daemon.address, token=ADMIN_TOKEN) as client:
        client.build(files=files, app="one", tenant="st")
        client.build(files=files, app="one", tenant="st")
        client.build(files=files, app="two", tenant="st")  # shares one's action entry: a hit
    done = run_cli("stats", "--server", ops_daemon.address, "--json", token=ADMIN_TOKEN)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    apps = {(a["tenant"], a["app"]): a for a in data["per_app"]}
    one, two = apps[("st", "one")], apps[("st", "two")]
    assert (one["builds"], one["action_hits"], one["hit_rate"]) == (2, 1, 0.5)
    assert (two["builds"], two["action_hits"], two["entries"], two["bytes"]) == (1, 1, 0, 0)
    assert one["entries"] == 1 and one["bytes"] > 0 and one["last_build_unix_ms"] > 0
    (tenant,) = [t for t in data["per_tenant"] if t["tenant"] == "st"]
    assert (tenant["apps"], tenant["builds"], tenant["action_hits"], tenant["entries"]) == (2, 3, 2, 1)
    assert data["entries"]["actions"] == data["actions"] >= 1 and data["bytes"] > 0
    text = run_cli("stats", "--server", ops_daemon.address, token=ADMIN_TOKEN)
    assert text.returncode == 0 and "tenant st:" in text.stdout and "  two:" in text.stdout


def test_explain_shows_the_key_components_and_what_changed(ops_daemon: DaemonProcess) -> None:
    files = tiny_app(WRITE_DIST, extra={"src/a.txt": b"a", "src/b.txt": b"b"})
    with Client(ops_daemon.address, token=BUILD_TOKEN) as client:
        client.build(files=files, app="why", tenant="ex", env={"GREETING": "hi", "API_KEY": "s3cret-value"})
        last = client.build(files=with_engines({**files, "src/b.txt": b"B", "src/c.txt": b"c"}, ">=18"), app="why", tenant="ex",
                            env={"GREETING": "hello", "API_KEY": "s3cret-value"})
    done = run_cli("explain", "--app", "ex/why", "--server", ops_daemon.address, "--json", token=ADMIN_TOKEN)
    assert done.returncode == 0, done.stderr
    assert "s3cret-value" not in done.stdout and "hello" not in done.stdout
    r = json.loads(done.stdout)
    assert r["state"] == "cached" and r["last"]["action_key"] == last.action_key and r["has_before"]
    assert r["last"]["source_files"] == 6 and r["last"]["sources_digest"].startswith("blake3:")
    assert r["last"]["env_names"] == ["API_KEY", "GREETING"] and r["last"]["reason"] == "deps_changed"
    assert r["last"]["deps"]["package_fields"] == ["engines"] and r["last"]["deps"]["command"][0].startswith("npm ci")
    assert r["last"]["deps"]["toolchain"]["node"] and r["before"]["deps"]["package_fields"] == []
    diffs = {x["component"]: x for x in r["differences"]}
    assert set(diffs) == {"deps", "sources", "env"}
    assert diffs["sources"]["changed"] == ["package.json", "src/b.txt", "src/c.txt"] and diffs["sources"]["count"] == 3
    assert diffs["env"]["changed"] == ["GREETING"]
    assert diffs["deps"]["changed"] == ["package.json dependency fields"]
    text = run_cli("explain", "--app", "ex/why", "--server", ops_daemon.address, token=ADMIN_TOKEN)
    assert text.returncode == 0 and "sources changed: package.json, src/b.txt, src/c.txt" in text.stdout
    with Client(ops_daemon.address, token=ADMIN_TOKEN) as client, pytest.raises(CachedError) as e:
        client.explain("ex", "nobody")
    assert e.value.code == grpc.StatusCode.NOT_FOUND


def test_admin_calls_need_the_admin_token(ops_daemon: DaemonProcess) -> None:
    with Client(ops_daemon.address, token=BUILD_TOKEN) as client:
        calls = [client.stats_response, lambda: client.purge(all=True, dry_run=True), lambda: client.collect_garbage(None, dry_run=True),
                 client.verify, lambda: client.explain("m1", "seq")]
        for call in calls:
            with pytest.raises(CachedError) as e:
                call()
            assert e.value.code == grpc.StatusCode.PERMISSION_DENIED
    refused = run_cli("purge", "--all", "--server", ops_daemon.address, token=BUILD_TOKEN)
    assert refused.returncode == 1 and "PERMISSION_DENIED" in refused.stderr
    with Client(ops_daemon.address, token=ADMIN_TOKEN) as client:
        assert client.purge(all=True, dry_run=True).dry_run
        with pytest.raises(CachedError) as e:
            client.purge(tenant="m1", all=True)
        assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
