"""The warm layer's rules without Node: eligibility, retirement keys, outputs, the pool, shadow checks."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from cached.request.spec import BuildSpec, SourceFile
from cached.warm import WarmError, WarmPool, WarmSettings, collect_outputs, is_config_file, plain_vite_build, protocol
from cached.warm.builder import Outcome
from cached.warm.layer import WarmLayer, builder_key
from cached.digest import Digest
from cached.v1 import records_pb2, tree_pb2


def package(scripts: dict[str, str]) -> str:
    return json.dumps({"name": "x", "version": "1.0.0", "scripts": scripts})


def spec(files: dict[str, bytes], env: dict[str, str] | None = None, mode: str = "production") -> BuildSpec:
    sources = tuple(SourceFile(p, Digest("blake3", str(hash(c)), len(c)), False, c) for p, c in sorted(files.items()))
    return BuildSpec("t", "a", sources, env or {}, mode, "build", False, 60.0, None, {f.path: f for f in sources})


def test_only_a_plain_vite_build_is_eligible() -> None:
    assert plain_vite_build(package({"build": "vite build"}), "build") == ("vite build", "")
    assert plain_vite_build(package({"build": "  vite   build "}), "build")[0] is not None
    for scripts, why in [
        ({"build": "tsc -b && vite build"}, "not a plain"),
        ({"build": "vite build --outDir x"}, "not a plain"),
        ({"build": "vite build", "prebuild": "node gen.js"}, "prebuild"),
        ({"build": "vite build", "postbuild": "node after.js"}, "postbuild"),
        ({"dev": "vite"}, "no 'build' script"),
    ]:
        command, reason = plain_vite_build(package(scripts), "build")
        assert command is None and why in reason


def test_config_files_are_the_top_level_ones_but_index_html_env_and_docs() -> None:
    for path in ("vite.config.ts", "tsconfig.app.json", "package.json", "postcss.config.js", "tailwind.config.ts", ".npmrc"):
        assert is_config_file(path)
    for path in ("index.html", ".env", ".env.production", "README.md", "src/main.tsx", "public/favicon.svg", "src/vite.config.ts"):
        assert not is_config_file(path)


def test_the_builder_key_changes_with_config_deps_env_mode_but_not_with_sources() -> None:
    base = {"package.json": package({"build": "vite build"}).encode(), "vite.config.ts": b"export default {}", "src/a.ts": b"1", "index.html": b"<p>"}
    key, config = builder_key(spec(base), "deps1", "vite build", "tc")
    assert set(config) == {"package.json", "vite.config.ts"}
    assert builder_key(spec({**base, "src/a.ts": b"2", "index.html": b"<b>", ".env": b"A=1"}), "deps1", "vite build", "tc")[0] == key
    for changed in (
        builder_key(spec({**base, "vite.config.ts": b"export default {x:1}"}), "deps1", "vite build", "tc"),
        builder_key(spec({**base, "tsconfig.json": b"{}"}), "deps1", "vite build", "tc"),
        builder_key(spec(base), "deps2", "vite build", "tc"),
        builder_key(spec(base, env={"VITE_X": "1"}), "deps1", "vite build", "tc"),
        builder_key(spec(base, mode="staging"), "deps1", "vite build", "tc"),
    ):
        assert changed[0] != key


def test_why_a_builder_is_retired_is_named() -> None:
    base = {"package.json": package({"build": "vite build"}).encode(), "vite.config.ts": b"export default {}"}
    key, config = builder_key(spec(base), "deps1", "vite build", "tc")
    old = type("B", (), {"deps_key": "deps1", "config": config})()
    layer = WarmLayer(WarmPool(WarmSettings()), None, Path("/nonexistent"), "node", "tc", open_blob=lambda d: None)  # type: ignore[arg-type]
    with_dependency = json.dumps({"name": "x", "scripts": {"build": "vite build"}, "dependencies": {"left-pad": "1.3.0"}}).encode()
    _key, new_config = builder_key(spec({**base, "package.json": with_dependency}), "deps2", "vite build", "tc")
    assert layer._changed(old, "deps2", new_config) == ("deps_changed", "the dependencies changed")  # type: ignore[arg-type]
    label, why = layer._changed(old, "deps1", {**config, "tsconfig.json": "d"})  # type: ignore[arg-type]
    assert label == "config_changed" and "tsconfig.json" in why
    assert layer._changed(old, "deps1", config)[0] == "settings_changed"  # type: ignore[arg-type]


def test_protocol_lines() -> None:
    assert protocol.parse('{"ev":"end","id":3,"ms":5}') == protocol.Event("end", 3, {"ev": "end", "id": 3, "ms": 5})
    assert protocol.parse("vite v8 building...") is None
    assert protocol.parse('{"id":1}') is None
    assert protocol.parse('{"ev":"start","id":"x"}').id == -1  # type: ignore[union-attr]
    assert json.loads(protocol.build_request(7)) == {"op": "build", "id": 7, "changed": [], "removed": []}
    assert json.loads(protocol.build_request(8, ["src/a.ts"], ["dist"])) == {
        "op": "build", "id": 8, "changed": ["src/a.ts"], "removed": ["dist"]}


def outcome(ws: Path, files: list[str], public: bool = True) -> Outcome:
    return Outcome(files=[str(ws / "dist" / f) for f in files], public_dir=str(ws / "public") if public else "",
                   public_out=str(ws / "dist"), out_dir=str(ws / "dist"), driver_ms=1.0, wall_ms=1.0)


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    (ws / "dist" / "assets").mkdir(parents=True)
    (ws / "public").mkdir()
    (ws / "public" / "robots.txt").write_text("r")
    (ws / "dist" / "robots.txt").write_text("r")
    (ws / "dist" / "index.html").write_text("<html>")
    (ws / "dist" / "assets" / "a.js").write_text("js")
    return ws


def test_outputs_are_the_reported_files_and_the_copied_public_dir(ws: Path, tmp_path: Path) -> None:
    dest = tmp_path / "out"
    assert collect_outputs(outcome(ws, ["index.html", "assets/a.js"]), ws, dest) == "dist"
    assert sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file()) == ["assets/a.js", "index.html", "robots.txt"]
    assert (dest / "assets" / "a.js").stat().st_ino != (ws / "dist" / "assets" / "a.js").stat().st_ino  # copied, never linked


@pytest.mark.parametrize("case", ["unreported", "missing", "symlink", "outside", "outdir_outside", "symlinked_dir"])
def test_any_doubt_about_outputs_is_an_error(ws: Path, tmp_path: Path, case: str) -> None:
    files = ["index.html", "assets/a.js"]
    result = outcome(ws, files)
    if case == "unreported":
        (ws / "dist" / "stale-old-chunk.js").write_text("old")
    elif case == "missing":
        result = outcome(ws, [*files, "assets/gone.js"])
    elif case == "symlink":
        (ws / "dist" / "assets" / "a.js").unlink()
        os.symlink("/etc/passwd", ws / "dist" / "assets" / "a.js")
    elif case == "outside":
        result = outcome(ws, [*files, "../src/x.ts"])
    elif case == "outdir_outside":
        result = Outcome([], "", "", str(tmp_path), 1.0, 1.0)
    elif case == "symlinked_dir":
        (ws / "dist" / "assets" / "a.js").unlink()
        (ws / "dist" / "assets").rmdir()
        (tmp_path / "elsewhere").mkdir()
        (tmp_path / "elsewhere" / "a.js").write_text("secret")
        os.symlink(tmp_path / "elsewhere", ws / "dist" / "assets")
    with pytest.raises(WarmError) as err:
        collect_outputs(result, ws, tmp_path / "out")
    assert err.value.reason == "outputs"


class FakeProc:
    def __init__(self) -> None:
        self.returncode: int | None = None


class FakeBuilder:
    """What the pool uses of a builder: no process."""

    def __init__(self, owner: str, rss: int = 100) -> None:
        self.owner, self.rss, self.busy, self.builds = owner, rss, False, 0
        self.alive, self.stopped = True, False
        self.proc = FakeProc()
        self.started = self.last_used = time.monotonic()

    def rss_bytes(self) -> int:
        return self.rss

    async def stop(self) -> None:
        self.stopped, self.alive = True, False


def test_the_pool_evicts_the_least_recently_used_idle_builder_and_bounds_memory() -> None:
    async def scenario() -> None:
        pool = WarmPool(WarmSettings(max_builders=2, max_memory_bytes=1000, idle_seconds=3600))
        a, b, c = FakeBuilder("t/a"), FakeBuilder("t/b"), FakeBuilder("t/c")
        await pool.add(a)  # type: ignore[arg-type]
        await pool.add(b)  # type: ignore[arg-type]
        assert pool.get("t/a") is a  # a is now the most recently used
        b.busy = True
        await pool.add(c)  # type: ignore[arg-type]
        assert pool.owners() == ["t/b", "t/c"] and a.stopped  # b is busy: a goes although it was used last
        b.busy = False
        c.rss = 950
        await pool.enforce_memory(keep="t/c")
        assert pool.owners() == ["t/c"] and b.stopped
        c.rss = 2000  # alone over the bound: retired after its build
        await pool.enforce_memory(keep="t/c")
        assert len(pool) == 0 and c.stopped
        assert pool.metrics().retired == {"pool_full": 1, "memory": 2}
        await pool.stop()

    asyncio.run(scenario())


def test_idle_and_crashed_builders_are_reaped() -> None:
    async def scenario() -> None:
        pool = WarmPool(WarmSettings(max_builders=4, idle_seconds=0.3))
        idle, crashed, busy = FakeBuilder("t/idle"), FakeBuilder("t/crashed"), FakeBuilder("t/busy")
        for b in (idle, crashed, busy):
            await pool.add(b)  # type: ignore[arg-type]
        busy.busy = True
        crashed.alive = False
        await asyncio.sleep(1.0)
        assert pool.owners() == ["t/busy"] and idle.stopped and crashed.stopped
        m = pool.metrics()
        assert m.crashes == 1 and m.retired == {"idle": 1, "crashed": 1}
        await pool.stop()
        assert busy.stopped

    asyncio.run(scenario())


def tree(files: dict[str, str]) -> records_pb2.ActionRecord:
    record = records_pb2.ActionRecord()
    for path, h in sorted(files.items()):
        record.outputs.files.add(path=path, digest=tree_pb2.Digest(hash=h, size=1))
    record.output_tree.CopyFrom(tree_pb2.Digest(hash="".join(sorted(files.values())), size=1))
    return record


def test_a_shadow_mismatch_disables_warm_builds_for_the_app_and_counts() -> None:
    async def scenario() -> None:
        pool = WarmPool(WarmSettings(shadow_share=1.0))
        cold_results = iter([tree({"index.html": "h1", "a.js": "j1"}), tree({"index.html": "h1", "a.js": "DIFFERENT"})])
        seen: list[str] = []

        async def cold_build(shadow_spec: BuildSpec) -> records_pb2.ActionRecord:
            seen.append(shadow_spec.app)
            assert shadow_spec.force and shadow_spec.tenant == "t"
            return next(cold_results)

        layer = WarmLayer(pool, None, Path("/nonexistent"), "node", "tc", open_blob=lambda d: None, cold_build=cold_build)  # type: ignore[arg-type]
        s = spec({"package.json": package({"build": "vite build"}).encode()})
        warm = tree({"index.html": "h1", "a.js": "j1"})
        await layer._shadow(s, warm)
        assert pool.shadow_checks == 1 and pool.shadow_mismatches == 0 and not pool.disabled
        await layer._shadow(s, warm)
        assert pool.shadow_mismatches == 1 and "a.js" in pool.disabled["t/a"]
        assert seen == [".shadow-a", ".shadow-a"]
        reason, detail, command = layer._eligible(s, "overlay", package({"build": "vite build"}))
        assert command is None and reason == "disabled" and "a.js" in detail
        assert pool.metrics().shadow_mismatches == 1 and pool.metrics().disabled_apps == 1

    asyncio.run(scenario())
