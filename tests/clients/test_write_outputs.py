"""Client.write_outputs trusts no path from the server: nothing is written outside the destination."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from cached_client import BuildResult, Client, OutputFile, UnsafeOutputPath
from cached_client.outputs import check_output_path
from support import WRITE_DIST, DaemonProcess, tiny_app


def _result(*paths: str, executable: bool = False) -> BuildResult:
    outputs = [OutputFile(path=p, digest=f"blake3:{'0' * 64}/3", hash="0" * 64, size=3, executable=executable) for p in paths]
    return BuildResult(action_key="k", cache="miss", reason="", duration_ms=0.0, phases={}, decisions=[], outputs=outputs)


@pytest.fixture
def client() -> Client:
    c = Client("127.0.0.1:9")  # never connects: blobs come from the stub below
    c.read_blob = lambda tenant, o: f"content of {o.path}".encode()  # type: ignore[method-assign]
    yield c
    c.close()


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


@pytest.mark.parametrize("path,why", [
    ("/etc/cached-evil", "absolute"),
    ("../evil.js", "'..'"),
    ("assets/../../evil.js", "'..'"),
    ("assets/./x.js", "'.'"),
    ("assets//x.js", "empty"),
    ("assets/", "empty"),
    ("", "empty"),
    ("a\\..\\evil", "backslash"),
    ("a\x00b", "NUL"),
])
def test_paths_that_could_escape_are_refused_and_nothing_is_written(client: Client, tmp_path: Path, path: str, why: str) -> None:
    out = tmp_path / "out"
    with pytest.raises(UnsafeOutputPath, match=why) as e:
        client.write_outputs("t1", _result("index.html", path), out)  # a good path first: still nothing written
    assert "refusing output path" in str(e.value) and isinstance(e.value, ValueError)
    assert not out.exists() or _tree(out) == []
    assert _tree(tmp_path) in ([], ["out"])


def test_a_symlinked_directory_in_the_destination_is_refused_not_followed(client: Client, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    (out / "assets").symlink_to(outside)
    with pytest.raises(UnsafeOutputPath, match="assets in the destination is a symlink"):
        client.write_outputs("t1", _result("assets/app.js"), out)
    assert _tree(outside) == []
    (out / "deep").mkdir()
    (out / "deep" / "er").symlink_to(outside)
    with pytest.raises(UnsafeOutputPath, match="deep/er in the destination is a symlink"):
        client.write_outputs("t1", _result("deep/er/app.js"), out)
    assert _tree(outside) == []


def test_a_symlink_at_an_outputs_name_is_refused_and_its_target_untouched(client: Client, tmp_path: Path) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    out = tmp_path / "out"
    out.mkdir()
    (out / "index.html").symlink_to(victim)
    with pytest.raises(UnsafeOutputPath, match="symlink"):
        client.write_outputs("t1", _result("index.html"), out)
    assert victim.read_text() == "keep me" and (out / "index.html").is_symlink()


def test_good_paths_are_written_with_their_modes_and_replace_old_files(client: Client, tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "assets").mkdir(parents=True)
    (out / "assets" / "app.js").write_text("old")
    assert client.write_outputs("t1", _result("index.html", "assets/app.js", "a/b/c/d.txt"), out) == out
    assert (out / "assets" / "app.js").read_bytes() == b"content of assets/app.js"
    assert (out / "a" / "b" / "c" / "d.txt").read_bytes() == b"content of a/b/c/d.txt"
    assert os.stat(out / "index.html").st_mode & 0o777 == 0o644
    client.write_outputs("t1", _result("bin/run", executable=True), out)
    assert os.stat(out / "bin" / "run").st_mode & 0o777 == 0o755
    assert not list(out.rglob("*.cached-tmp"))
    assert check_output_path("assets/app.js") == ["assets", "app.js"]


def test_outputs_of_a_real_build_are_written(daemon: DaemonProcess, tmp_path: Path) -> None:
    with Client(daemon.address) as real:
        result = real.build(files=tiny_app(WRITE_DIST), app="write-outputs", tenant="t1", env={"GREETING": "written"})
        real.write_outputs("t1", result, tmp_path / "site")
    assert (tmp_path / "site" / "index.html").read_text() == "<h1>written</h1>\n"
