"""Warm builders on the real fixture app: every warm result equals a cold build of the same inputs.

The daemon runs with ``--warm-shadow-share 1.0``: each warm result is rebuilt
cold in the background and the two output trees are compared (sourcemaps
included, the fixture builds with them). Edits are batched so the suite stays
within a few minutes on a loaded 2-core machine; the last state is also
compared explicitly with a forced cold build.
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

from cached.v1 import tree_pb2
from cached_client import BuildResult, Client
from support import DaemonProcess, app_files
from warm_support import fixture_with_sourcemaps, log_records, wait_shadows

TENANT = "warm"


def outputs(client: Client, result: BuildResult) -> dict[str, bytes]:
    return {o.path: client.read_blob(TENANT, tree_pb2.Digest(hash=o.hash, size=o.size, function=tree_pb2.BLAKE3)) for o in result.outputs}


def decision(result: BuildResult, layer: str):  # type: ignore[no-untyped-def]
    found = [d for d in result.decisions if d.layer == layer]
    return found[-1] if found else None


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def builder_pids(workspace_suffix: str) -> list[int]:
    """Node processes running the driver whose working directory is the app's workspace."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            cwd = os.readlink(f"/proc/{entry}/cwd")
        except OSError:
            continue
        if b"driver.mjs" in cmdline and cwd.endswith(workspace_suffix):
            found.append(int(entry))
    return found


def test_sequences_of_edits_build_warm_and_equal_cold_builds(warm_daemon: DaemonProcess, tmp_path: Path) -> None:
    app = fixture_with_sourcemaps(tmp_path / "app")
    src = app / "src"
    shadows = 0
    with Client(warm_daemon.address) as client:
        def build() -> BuildResult:
            nonlocal shadows
            result = client.build(files=app_files(app), app="seq", tenant=TENANT)
            assert result.cache == "miss"
            warm = decision(result, "warm")
            assert warm is not None, result.decisions
            if warm.reason != "fallback":
                shadows += 1
                checks = wait_shadows(warm_daemon, shadows)
                assert all(c["msg"] == "warm shadow check: identical" for c in checks), checks
            return result

        first = build()
        assert decision(first, "warm").reason == "started"  # type: ignore[union-attr]
        assert any(o.path.endswith(".js.map") for o in first.outputs)

        # 1. a component, a new module it imports, CSS, a public asset changed and one added, index.html
        edit(src / "components" / "dashboard" / "StatCard.tsx", 'className="', 'className="bg-[#123456] ')
        (src / "lib" / "extra.ts").write_text("export const extra = (n: number) => `extra ${n * 7}`;\n")
        edit(src / "App.tsx", "\n", "\nimport { extra } from \"@/lib/extra\";\nconsole.log(extra(6));\n")
        (src / "index.css").write_text((src / "index.css").read_text() + "\n.cached-warm-test { color: rgb(1, 2, 3); }\n")
        (app / "public" / "favicon.svg").write_text((app / "public" / "favicon.svg").read_text().replace("<svg", "<svg data-edit=\"1\"", 1))
        (app / "public" / "humans.txt").write_text("Team: Orbit\n")
        edit(app / "index.html", "<title>Orbit Dashboard</title>", "<title>Orbit Dashboard (edited)</title>")
        step1 = build()
        assert decision(step1, "warm").result == "hit" and decision(step1, "warm").reason == "reused"  # type: ignore[union-attr]
        assert "a fresh Vite build" in decision(step1, "warm").detail  # type: ignore[union-attr]  # the default
        built = outputs(client, step1)
        assert built["humans.txt"] == b"Team: Orbit\n" and b'data-edit="1"' in built["favicon.svg"]
        assert b"(edited)" in built["index.html"]
        css = next(v for k, v in built.items() if k.endswith(".css"))
        assert b"#123456" in css

        # 2. the module deleted again, the class removed (Tailwind must forget it), a public file removed,
        #    and a utility imported by many files changed
        (src / "lib" / "extra.ts").unlink()
        edit(src / "App.tsx", "\nimport { extra } from \"@/lib/extra\";\nconsole.log(extra(6));\n", "\n")
        edit(src / "components" / "dashboard" / "StatCard.tsx", 'className="bg-[#123456] ', 'className="')
        (app / "public" / "humans.txt").unlink()
        utils = src / "lib" / "utils.ts"
        utils.write_text(utils.read_text() + "\nexport const cachedWarmMarker = () => 'warm-marker';\n")
        edit(src / "App.tsx", "\n", "\nimport { cachedWarmMarker } from \"@/lib/utils\";\nconsole.log(cachedWarmMarker());\n")
        step2 = build()
        assert decision(step2, "warm").reason == "reused"  # type: ignore[union-attr]
        built = outputs(client, step2)
        assert "humans.txt" not in built and "robots.txt" in built
        assert b"#123456" not in next(v for k, v in built.items() if k.endswith(".css"))
        assert any(b"warm-marker" in v for k, v in built.items() if k.endswith(".js"))

        # 3. vite.config.ts and package.json (not its dependencies) changed: the builder is retired, a new one started
        edit(app / "vite.config.ts", "build: { sourcemap: true },", 'build: { sourcemap: true, assetsDir: "static" },')
        edit(app / "package.json", '"private": true,', '"private": true,\n  "description": "edited",')
        step3 = build()
        warm = decision(step3, "warm")
        assert warm.result == "miss" and warm.reason == "started"  # type: ignore[union-attr]
        assert "vite.config.ts" in warm.detail and "package.json" in warm.detail  # type: ignore[union-attr]
        assert decision(step3, "deps").result == "hit"  # type: ignore[union-attr]
        assert any(o.path.startswith("static/") for o in step3.outputs)

        # 4. the builder dies: the next build starts a new one (and says why)
        pids = builder_pids("/work/warm/seq/ws")
        assert len(pids) == 1, pids
        os.kill(pids[0], signal.SIGKILL)
        edit(src / "pages" / "NotFound.tsx", "\n", "\nexport const afterCrash = 1;\n")
        step4 = build()
        warm = decision(step4, "warm")
        assert warm.reason == "started" and "exited" in warm.detail  # type: ignore[union-attr]

        # The final state, compared by the test itself with a forced cold build of another app.
        cold = client.build(files=app_files(app), app="seq-cold", tenant=TENANT, force=True)
        assert decision(cold, "warm").reason == "forced"  # type: ignore[union-attr]
        assert outputs(client, cold) == outputs(client, step4)

        # 5. a plugin writes a file behind the bundle's back: doubt, so the build is cold and says so
        edit(app / "vite.config.ts", "plugins: [react(), tailwindcss()],",
             "plugins: [react(), tailwindcss(), { name: 'sneaky', closeBundle() { require('node:fs').writeFileSync('dist/sneaky.txt', 'x') } }],")
        edit(app / "vite.config.ts", 'import { defineConfig } from "vite";', 'import { defineConfig } from "vite";\nimport { createRequire } from "node:module";\nconst require = createRequire(import.meta.url);')
        step5 = client.build(files=app_files(app), app="seq", tenant=TENANT, keep_events=True)
        warm = decision(step5, "warm")
        assert warm.reason == "fallback" and "sneaky.txt" in warm.detail, step5.decisions  # type: ignore[union-attr]
        assert "sneaky.txt" in {o.path for o in step5.outputs}  # the cold build ingests its whole outDir
        assert any("building cold" in e.log.line for e in step5.events if e.HasField("log"))
    assert not log_records(warm_daemon, "warm shadow check: MISMATCH")


SESSION_REBUILD = "a rebuild of its watch session"
NEW_SESSION = "a new watch session"


def test_edits_of_known_files_rebuild_the_watch_session_and_equal_cold_builds(session_daemon: DaemonProcess, tmp_path: Path) -> None:
    """Edits that touch only files the last build read are rebuilt by the builder's
    watch session (Vite and Rolldown kept, the app's plugins made fresh); every
    result is rebuilt cold by the shadow check and must be identical, including
    Tailwind forgetting a class that was removed. A .env change or a new module
    starts a new session, and says so."""
    app = fixture_with_sourcemaps(tmp_path / "app")
    (app / ".env").write_text("VITE_GREETING=hello from env one\n")
    src = app / "src"
    card = src / "components" / "dashboard" / "StatCard.tsx"
    edit(src / "App.tsx", "\n", "\nconsole.log(import.meta.env.VITE_GREETING);\n")
    base = len(log_records(session_daemon, "warm shadow check"))
    with Client(session_daemon.address) as client:
        def build(how: str) -> dict[str, bytes]:
            result = client.build(files=app_files(app), app="session", tenant=TENANT)
            warm = decision(result, "warm")
            assert warm is not None and warm.result == "hit" and how in warm.detail, result.decisions
            checks = wait_shadows(session_daemon, base + build.count + 1)  # type: ignore[attr-defined]
            build.count += 1  # type: ignore[attr-defined]
            assert all(c["msg"] == "warm shadow check: identical" for c in checks), checks
            return outputs(client, result)
        build.count = 0  # type: ignore[attr-defined]

        first = client.build(files=app_files(app), app="session", tenant=TENANT)
        assert decision(first, "warm").reason == "started"  # type: ignore[union-attr]
        wait_shadows(session_daemon, base + 1)
        build.count = 1  # type: ignore[attr-defined]

        def css(built: dict[str, bytes]) -> bytes:
            return next(v for k, v in built.items() if k.endswith(".css"))

        def js(built: dict[str, bytes]) -> bytes:
            return b"".join(v for k, v in built.items() if k.endswith(".js"))

        # a component's text and a Tailwind class added
        edit(card, 'className="', 'className="bg-[#654321] ')
        edit(card, "\n", "\nexport const sessionMarker = () => 'session edit one';\n")
        built = build(SESSION_REBUILD)
        assert b"#654321" in css(built)

        # the class removed again (fresh Tailwind instances forget it), CSS and index.html changed
        edit(card, 'className="bg-[#654321] ', 'className="')
        (src / "index.css").write_text((src / "index.css").read_text() + "\n.cached-session-test { color: rgb(4, 5, 6); }\n")
        edit(app / "index.html", "<title>Orbit Dashboard</title>", "<title>Orbit Dashboard (session)</title>")
        built = build(SESSION_REBUILD)
        assert b"#654321" not in css(built) and b"cached-session-test" in css(built)
        assert b"(session)" in built["index.html"]

        # .env is read when a session resolves its config: a new session
        (app / ".env").write_text("VITE_GREETING=hello from env two\n")
        built = build(NEW_SESSION)
        assert b"hello from env two" in js(built) and b"hello from env one" not in js(built)

        # a new module: not in the last build's graph, so a new session; then edits rebuild again
        (src / "lib" / "session-extra.ts").write_text("export const sessionExtra = () => 'session extra';\n")
        edit(src / "App.tsx", "\n", "\nimport { sessionExtra } from \"@/lib/session-extra\";\nconsole.log(sessionExtra());\n")
        built = build(NEW_SESSION)
        assert b"session extra" in js(built)
        (src / "lib" / "session-extra.ts").write_text("export const sessionExtra = () => 'session extra, edited';\n")
        built = build(SESSION_REBUILD)
        assert b"session extra, edited" in js(built)
    assert not log_records(session_daemon, "warm shadow check: MISMATCH")
