"""What the child can and cannot see or do."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from cached.sandbox import Sandbox, SandboxSpec
from sbx_support import BASE_ENV, ListSink, run


def test_runs_as_unprivileged_uid_without_capabilities(sandbox: Sandbox, ws: Path, sink: ListSink) -> None:
    script = "id -u; id -g; id -G; grep -E '^(NoNewPrivs|CapEff|CapPrm|CapBnd|CapAmb|CapInh):' /proc/self/status"
    result = run(sandbox.run(SandboxSpec(argv=["sh", "-c", script], workspace=ws, env=BASE_ENV), sink))
    assert result.returncode == 0
    out = sink.of("stdout")
    assert out[:3] == ["65534", "65534", "65534"]
    status = dict(line.split(":\t") for line in out[3:])
    assert status["NoNewPrivs"] == "1"
    for cap in ("CapEff", "CapPrm", "CapBnd", "CapAmb", "CapInh"):
        assert int(status[cap], 16) == 0, cap


def test_custom_uid(sandbox: Sandbox, ws: Path, sink: ListSink) -> None:
    spec = SandboxSpec(argv=["sh", "-c", "id -u; id -g; touch f"], workspace=ws, env=BASE_ENV, uid=4321, gid=4322)
    assert run(sandbox.run(spec, sink)).returncode == 0
    assert sink.of("stdout") == ["4321", "4322"]
    assert (ws / "f").stat().st_uid == 4321


@pytest.fixture
def store(tmp_path: Path) -> Path:
    """A hidden root with a canary, and a workspace inside it written by root."""
    root = tmp_path / "store"
    (root / "cas").mkdir(parents=True)
    (root / "cas" / "canary").write_text("STORE-CANARY\n")
    (root / "canary").write_text("STORE-CANARY\n")
    ws = root / "work" / "t" / "a"
    (ws / "src").mkdir(parents=True)
    (ws / "src" / "main.ts").write_text("export const a = 1;\n")
    return root


def test_hidden_dir_is_invisible_but_workspace_under_it_is_writable(
    sandbox: Sandbox, store: Path, sink: ListSink
) -> None:
    ws = store / "work" / "t" / "a"
    script = (
        f"cat {store}/canary {store}/cas/canary; ls -A {store}; ls -A {store}/work/t;"
        " cat src/main.ts; echo '// edited' >> src/main.ts; mkdir -p dist/assets; echo built > dist/assets/x.js"
    )
    spec = SandboxSpec(argv=["sh", "-c", script], workspace=ws, env=BASE_ENV, hide=[store])
    result = run(sandbox.run(spec, sink))
    out = sink.of("stdout")
    assert "STORE-CANARY" not in "\n".join(result.tail)
    assert len([e for e in sink.of("stderr") if "No such file" in e]) == 2
    assert out[:2] == ["work", "a"]  # only the path down to the workspace exists
    assert "export const a = 1;" in out
    assert result.returncode == 0
    assert (ws / "dist" / "assets" / "x.js").read_text() == "built\n"
    assert (ws / "src" / "main.ts").read_text().endswith("// edited\n")
    assert (store / "canary").read_text() == "STORE-CANARY\n"


def test_daemon_process_is_invisible(sandbox: Sandbox, ws: Path, sink: ListSink, monkeypatch) -> None:
    monkeypatch.setenv("CACHED_PROC_CANARY", "proc-canary-5678")
    me = os.getpid()
    script = f"ls /proc | grep -E '^[0-9]+$' | wc -l; cat /proc/{me}/environ; cat /proc/*/environ 2>/dev/null | tr '\\0' '\\n'; true"
    result = run(sandbox.run(SandboxSpec(argv=["sh", "-c", script], workspace=ws, env=BASE_ENV), sink))
    assert result.returncode == 0
    assert "proc-canary-5678" not in "\n".join(t for _s, t in sink.lines)
    assert int(sink.of("stdout")[0]) < 10  # only the sandbox's own few processes


def test_host_is_read_only_and_tmp_is_private(sandbox: Sandbox, ws: Path, tmp_path: Path, sink: ListSink) -> None:
    """/var/tmp is world-writable on the host: only the read-only remount stops
    uid 65534 from writing there (or leaving files for another tenant)."""
    host_tmp_file = Path("/tmp") / f"cached-sbx-host-{os.getpid()}"
    private = f"cached-sbx-private-{os.getpid()}"
    host_tmp_file.write_text("host\n")
    try:
        script = (
            f"touch /var/tmp/cached-sbx-probe-{os.getpid()} 2>&1; "
            f"cat {host_tmp_file} 2>&1; echo private > /tmp/{private} && cat /tmp/{private}; ls -A /dev/shm | wc -l"
        )
        result = run(sandbox.run(SandboxSpec(argv=["sh", "-c", script], workspace=ws, env=BASE_ENV), sink))
        out = sink.of("stdout")
        assert "Read-only file system" in out[0]
        assert "No such file" in out[1]
        assert out[2:] == ["private", "0"]
        assert result.returncode == 0
        assert not Path(f"/var/tmp/cached-sbx-probe-{os.getpid()}").exists()
        assert not Path(f"/tmp/{private}").exists()
    finally:
        host_tmp_file.unlink()


def test_binds_rw_and_ro(sandbox: Sandbox, store: Path, tmp_path: Path, sink: ListSink) -> None:
    cache = store / "npm-cache"
    cache.mkdir()
    cache.chmod(0o777)
    ro_src = tmp_path / "config"
    ro_src.mkdir()
    (ro_src / "npmrc").write_text("registry=x\n")
    ro_src.chmod(0o755)
    target_ro = store / "etc"
    ws = store / "work" / "t" / "a"
    script = (
        f"echo c > {cache}/entry && cat {cache}/entry; cat {target_ro}/npmrc; "
        f"touch {target_ro}/new 2>&1; cat {store}/canary 2>&1; true"
    )
    spec = SandboxSpec(
        argv=["sh", "-c", script], workspace=ws, env=BASE_ENV, hide=[store],
        binds=[(cache, cache, True), (ro_src, target_ro, False)],
    )
    result = run(sandbox.run(spec, sink))
    out = sink.of("stdout")
    assert out[0] == "c" and out[1] == "registry=x"
    assert "Read-only file system" in out[2]
    assert "No such file" in out[3]
    assert (cache / "entry").read_text() == "c\n"
    assert not (ro_src / "new").exists()
    assert not target_ro.exists()  # its mount point was made inside the hiding tmpfs
    assert result.returncode == 0


def test_spec_memfd_does_not_reach_the_child(sandbox: Sandbox, ws: Path, sink: ListSink) -> None:
    env = {**BASE_ENV, "SECRET_TOKEN": "s3cr3t"}
    script = "ls -l /proc/$$/fd/ | grep -c memfd; ls /proc/$$/fd/"
    result = run(sandbox.run(SandboxSpec(argv=["sh", "-c", script], workspace=ws, env=env), sink))
    assert result.returncode == 0
    assert sink.of("stdout") == ["0", "0", "1", "2"]  # nothing of the daemon's fds either


def test_workspace_chown_does_not_follow_symlinks(sandbox: Sandbox, ws: Path, tmp_path: Path, sink: ListSink) -> None:
    outside = tmp_path / "outside"
    outside.write_text("root's\n")
    (ws / "link").symlink_to(outside)
    (ws / "sub").mkdir()
    (ws / "sub" / "link").symlink_to(tmp_path)
    spec = SandboxSpec(argv=["sh", "-c", "echo pwned > link 2>&1; true"], workspace=ws, env=BASE_ENV)
    run(sandbox.run(spec, sink))
    assert outside.stat().st_uid == 0 and tmp_path.stat().st_uid == 0
    assert outside.read_text() == "root's\n"
    assert (ws / "sub").stat().st_uid == 65534


@pytest.fixture
def listener() -> Iterator[int]:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as srv:
        srv.bind(("127.0.0.1", 0))
        srv.listen(16)
        yield srv.getsockname()[1]


_CONNECT = (
    "const s=require('net').connect({{port:{port},host:'127.0.0.1'}});"
    "s.on('connect',()=>{{console.log('connected');process.exit(0)}});"
    "s.on('error',e=>{{console.log('error '+e.code);process.exit(1)}});"
)


@pytest.mark.parametrize(("network", "expected"), [(False, "error"), (True, "connected")])
def test_network(sandbox: Sandbox, ws: Path, sink: ListSink, listener: int, network: bool, expected: str) -> None:
    spec = SandboxSpec(
        argv=["node", "-e", _CONNECT.format(port=listener)], workspace=ws, env=BASE_ENV, network=network, timeout=20
    )
    result = run(sandbox.run(spec, sink))
    assert sink.of("stdout")[0].startswith(expected), result.tail
    assert result.returncode == (0 if network else 1)
