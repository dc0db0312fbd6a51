"""The fixture app, built by hand once per session: the reference every daemon build must equal."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from support import copy_fixture

SOURCEMAP_CONFIG = "  build: { sourcemap: true },\n  server: {"


def with_sourcemaps(app: Path) -> Path:
    """The fixture, asking Vite for sourcemaps (so the comparison covers their paths too)."""
    config = app / "vite.config.ts"
    text = config.read_text()
    assert "  server: {" in text
    config.write_text(text.replace("  server: {", SOURCEMAP_CONFIG, 1))
    return app


def npm_env(npm_cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("npm_config_")}
    env.update({"npm_config_cache": str(npm_cache), "npm_config_audit": "false", "npm_config_fund": "false", "CI": "true"})
    return env


def read_tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="session")
def fixture_app(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A pristine copy of the fixture app with sourcemaps on; tests copy it again before editing."""
    return with_sourcemaps(copy_fixture(tmp_path_factory.mktemp("fixture") / "app"))


@pytest.fixture(scope="session")
def clean_build(tmp_path_factory: pytest.TempPathFactory, fixture_app: Path, npm_cache: Path) -> dict[str, bytes]:
    """`npm ci && npm run build` by hand in a fresh copy, as the platform's old pipeline did."""
    app = tmp_path_factory.mktemp("by-hand") / "app"
    import shutil

    shutil.copytree(fixture_app, app)
    env = npm_env(npm_cache)
    subprocess.run(["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"], cwd=app, env=env, check=True, capture_output=True)
    subprocess.run(["npm", "run", "build"], cwd=app, env=env, check=True, capture_output=True)
    # npm ran as root here; the daemon's sandboxed npm (uid 65534) shares this cache.
    subprocess.run(["chown", "-R", "65534:65534", str(npm_cache)], check=True)
    return read_tree(app / "dist")
