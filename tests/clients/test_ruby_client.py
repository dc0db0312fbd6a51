"""The Ruby client: its committed stubs are fresh, and its minitest suite passes (so CI covers Ruby).

Needs Debian's ruby, ruby-grpc and ruby-grpc-tools (`make deps` installs them; `make test` runs it).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import REPO, fixture_dir

RUBY_DIR = REPO / "client" / "ruby"
RUN_ALL = "Dir['test/*_test.rb'].sort.each { |f| require File.expand_path(f) }"


def _need(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        pytest.fail(f"{tool} is missing: `make deps` installs Debian's ruby, ruby-grpc and ruby-grpc-tools")
    return path


def test_ruby_stubs_are_fresh(tmp_path: Path) -> None:
    protoc = _need("grpc_tools_ruby_protoc")
    protos = sorted(str(p.relative_to(REPO)) for p in (REPO / "proto" / "cached" / "v1").glob("*.proto"))
    subprocess.run([protoc, "-I", "proto", f"--ruby_out={tmp_path}", f"--grpc_out={tmp_path}", *protos], cwd=REPO, check=True)
    generated = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.rb"))
    committed = sorted(p.relative_to(RUBY_DIR / "lib").as_posix() for p in (RUBY_DIR / "lib" / "cached" / "v1").glob("*.rb"))
    assert generated == committed, "run `make proto` (it regenerates client/ruby/lib/cached/v1 too)"
    stale = [name for name in generated if (tmp_path / name).read_bytes() != (RUBY_DIR / "lib" / name).read_bytes()]
    assert stale == [], f"stale Ruby stubs: {stale}; run `make proto`"


def test_ruby_minitest_suite_passes(npm_cache: Path, tmp_path: Path) -> None:
    ruby = _need("ruby")
    env = {
        **os.environ,
        "CACHED_PYTHON": sys.executable,
        "CACHED_NPM_CACHE": str(npm_cache),
        "CACHED_FIXTURE": str(fixture_dir()),
        "CACHED_TEST_TMP": str(tmp_path),
    }
    env.pop("CACHED_TOKEN", None)
    env.pop("CACHED_ADDRESS", None)
    out = subprocess.run([ruby, "-Ilib", "-Itest", "-e", RUN_ALL, "--", "-v"], cwd=RUBY_DIR, env=env, capture_output=True, text=True, timeout=900)
    report = out.stdout + out.stderr
    assert out.returncode == 0, report
    summary = re.search(r"^(\d+) runs, (\d+) assertions, (\d+) failures, (\d+) errors, (\d+) skips$", out.stdout, re.M)
    assert summary, report
    runs, _, failures, errors, skips = map(int, summary.groups())
    assert (failures, errors, skips) == (0, 0, 0), report
    assert runs >= 11, report
    for name in ("test_fixture_app_builds_then_hits_the_action_cache", "test_broken_app_raises_build_failed_with_the_log_tail",
                 "test_calls_without_a_token_are_unauthenticated", "test_a_25_mib_asset_is_never_hashed_in_ruby_and_uploaded_once"):
        assert f"#{name} = " in out.stdout and "= ." in out.stdout, report
    for line in out.stdout.splitlines():
        if line.startswith("25 MiB asset:"):
            print(line)  # the two build times, shown with pytest -s
