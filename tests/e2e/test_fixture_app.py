"""The real fixture app through the daemon: real npm, real Vite, the real sandbox."""

from __future__ import annotations

import shutil
from pathlib import Path

from cached.v1 import tree_pb2
from cached_client import BuildResult, Client
from support import DaemonProcess, app_files


def outputs(client: Client, tenant: str, result: BuildResult) -> dict[str, bytes]:
    return {
        o.path: client.read_blob(tenant, tree_pb2.Digest(hash=o.hash, size=o.size, function=tree_pb2.BLAKE3))
        for o in result.outputs
    }


def action(result: BuildResult):  # type: ignore[no-untyped-def]
    return next(d for d in result.decisions if d.layer == "action")


def test_cold_build_equals_a_clean_npm_build_sourcemaps_included_and_repeats_as_a_hit(daemon: DaemonProcess, fixture_app: Path, clean_build: dict[str, bytes]) -> None:
    files = app_files(fixture_app)
    with Client(daemon.address) as client:
        cold = client.build(files=files, app="fixture", tenant="e2e")
        assert cold.cache == "miss"
        built = outputs(client, "e2e", cold)
        assert any(p.endswith(".js.map") for p in built)
        assert built == clean_build
        processes = client.stats().processes_started
        warm = client.build(files=files, app="fixture", tenant="e2e")
        assert client.stats().processes_started == processes
    assert warm.cache == "hit"
    assert [(o.path, o.digest) for o in warm.outputs] == [(o.path, o.digest) for o in cold.outputs]


def test_removed_files_leave_no_trace_and_a_changed_file_is_named(daemon: DaemonProcess, fixture_app: Path, clean_build: dict[str, bytes], tmp_path: Path) -> None:
    app = tmp_path / "app"
    shutil.copytree(fixture_app, app)
    (app / "src" / "unused.ts").write_text("export const unused = 1;\n")
    (app / "public" / "old.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 64)
    with Client(daemon.address) as client:
        with_extras = client.build(files=app_files(app), app="fixture-edit", tenant="e2e")
        assert "old.png" in {o.path for o in with_extras.outputs}
        (app / "src" / "unused.ts").unlink()
        (app / "public" / "old.png").unlink()
        # An env variable the app does not read makes this a miss with the pristine sources.
        without = client.build(files=app_files(app), app="fixture-edit", tenant="e2e", env={"UNREAD_SETTING": "1"})
        assert action(without).reason == "sources_changed"
        assert "public/old.png" in action(without).detail and "src/unused.ts" in action(without).detail
        assert outputs(client, "e2e", without) == clean_build

        app_tsx = app / "src" / "App.tsx"
        app_tsx.write_text(app_tsx.read_text().replace("</", "</", 1) + "\nexport const buildMarker = 'edited';\n")
        edited = client.build(files=app_files(app), app="fixture-edit", tenant="e2e", env={"UNREAD_SETTING": "1"})
    assert edited.cache == "miss"
    assert action(edited).reason == "sources_changed"
    assert "src/App.tsx" in action(edited).detail and "(1 file)" in action(edited).detail


def test_a_second_app_with_the_same_dependencies_never_runs_npm_and_builds_identically(daemon: DaemonProcess, fixture_app: Path, clean_build: dict[str, bytes], tmp_path: Path) -> None:
    import json

    app = tmp_path / "twin"
    shutil.copytree(fixture_app, app)
    for name in ("package.json", "package-lock.json"):
        data = json.loads((app / name).read_text())
        data["name"] = "a-different-app"
        if name == "package-lock.json":
            data["packages"][""]["name"] = "a-different-app"
        (app / name).write_text(json.dumps(data, indent=2) + "\n")
    with Client(daemon.address) as client:
        client.build(files=app_files(fixture_app), app="fixture", tenant="e2e")  # the dependencies are known (or become so)
        twin = client.build(files=app_files(app), app="twin", tenant="e2e", keep_events=True)
        assert outputs(client, "e2e", twin) == clean_build
    # npm never ran: no install phase, no line from an install step
    assert "install" not in twin.phases
    assert not [e for e in twin.events if e.WhichOneof("event") == "log" and e.log.source == "install"]
    deps = [d for d in twin.decisions if d.layer == "deps"]
    assert [d.result for d in deps] == ["hit"]
    assert twin.metrics.deps_method == "overlay" and twin.metrics.deps_files > 20000
