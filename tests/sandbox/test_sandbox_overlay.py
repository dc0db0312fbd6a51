"""node_modules as an overlay: the lower (store) tree is never written."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from cached.sandbox import Overlay, Sandbox, SandboxError, SandboxSpec
from sbx_support import BASE_ENV, ListSink, run


def snapshot(top: Path) -> dict[str, tuple[str, int, int]]:
    """path -> (sha256, mode, uid) of every entry, to byte-compare a tree."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            st = p.lstat()
            digest = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else ""
            out[str(p.relative_to(top))] = (digest, st.st_mode, st.st_uid)
    return out


@pytest.fixture
def layers(tmp_path: Path) -> dict[str, Path]:
    store = tmp_path / "store"
    lower = store / "trees" / "depskey" / "node_modules"
    (lower / "react").mkdir(parents=True)
    (lower / "react" / "index.js").write_text("module.exports = 'react';\n")
    (lower / "react" / "index.js").chmod(0o444)  # like a store blob
    (lower / "shared.js").write_text("lower\n")
    (lower / "shared.js").chmod(0o666)  # writable by anyone: exercises copy-up
    (lower / ".bin").mkdir()
    scratch = store / "scratch" / "b1"
    ws = store / "work" / "t" / "a"
    ws.mkdir(parents=True)
    (ws / "package.json").write_text("{}\n")
    return {"store": store, "lower": lower, "upper": scratch / "upper", "work": scratch / "work", "ws": ws}


def overlay_spec(layers: dict[str, Path], script: str) -> SandboxSpec:
    return SandboxSpec(
        argv=["sh", "-c", script],
        workspace=layers["ws"],
        env=BASE_ENV,
        hide=[layers["store"]],
        overlay=Overlay(layers["lower"], layers["upper"], layers["work"], layers["ws"] / "node_modules"),
    )


def test_writes_land_in_upper_and_lower_is_unchanged(sandbox: Sandbox, layers, sink: ListSink) -> None:
    before = snapshot(layers["lower"])
    script = (
        "cat node_modules/react/index.js;"
        " mkdir -p node_modules/.vite-temp && echo cfg > node_modules/.vite-temp/vite.config.mjs;"
        " echo x >> node_modules/shared.js;"
        " echo x >> node_modules/react/index.js 2>/dev/null || echo append-refused;"
        " rm -f node_modules/react/index.js 2>/dev/null; rm node_modules/shared.js; ls node_modules/react | wc -l;"
        f" ls {layers['lower']} 2>&1; true"
    )
    result = run(sandbox.run(overlay_spec(layers, script), sink))
    out = sink.of("stdout")
    assert result.returncode == 0, result.tail
    assert out[0] == "module.exports = 'react';"
    assert out[1] == "append-refused"  # 0444 root-owned blob: EACCES for uid 65534
    assert snapshot(layers["lower"]) == before
    upper = layers["upper"]
    assert (upper / ".vite-temp" / "vite.config.mjs").read_text() == "cfg\n"
    assert (upper / ".vite-temp").stat().st_uid == 65534
    # shared.js was copied up, appended, then deleted: a whiteout in upper
    assert (upper / "shared.js").is_char_device()
    assert (layers["lower"] / "shared.js").read_text() == "lower\n"
    # the store path of the lower tree is hidden inside
    assert "No such file" in out[-1]


def test_copy_up_append_keeps_lower_bytes(sandbox: Sandbox, layers, sink: ListSink) -> None:
    before = (layers["lower"] / "shared.js").read_bytes()
    result = run(sandbox.run(overlay_spec(layers, "echo appended >> node_modules/shared.js; cat node_modules/shared.js"), sink))
    assert result.returncode == 0
    assert sink.of("stdout") == ["lower", "appended"]
    assert (layers["upper"] / "shared.js").read_text() == "lower\nappended\n"
    assert (layers["lower"] / "shared.js").read_bytes() == before


def test_upper_from_an_earlier_build_is_seen(sandbox: Sandbox, layers, sink: ListSink) -> None:
    """The Vite cache layer restores an upper dir (written as root)."""
    (layers["upper"] / ".tmp").mkdir(parents=True)
    (layers["upper"] / ".tmp" / "tsbuildinfo").write_text("old\n")
    script = "cat node_modules/.tmp/tsbuildinfo; echo new > node_modules/.tmp/tsbuildinfo"
    result = run(sandbox.run(overlay_spec(layers, script), sink))
    assert result.returncode == 0, result.tail
    assert sink.of("stdout") == ["old"]
    assert (layers["upper"] / ".tmp" / "tsbuildinfo").read_text() == "new\n"


def test_overlay_mount_failure_is_a_sandbox_error(sandbox: Sandbox, layers, sink: ListSink) -> None:
    """upper and work on different filesystems: overlayfs refuses; that is
    the daemon's problem, not a failed build."""
    spec = SandboxSpec(
        argv=["true"], workspace=layers["ws"], env=BASE_ENV,
        overlay=Overlay(layers["lower"], layers["upper"], Path("/dev/shm") / f"cached-sbx-{os.getpid()}",
                        layers["ws"] / "node_modules"),
    )
    try:
        with pytest.raises(SandboxError, match="overlay"):
            run(sandbox.run(spec, sink))
    finally:
        os.rmdir(Path("/dev/shm") / f"cached-sbx-{os.getpid()}")
