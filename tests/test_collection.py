"""Every test file in the tree is collected: a directory pytest skips by name (as it skips `build/`) must never hide tests again."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def collected_files(*paths: Path) -> set[str]:
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *(str(p) for p in paths or (TESTS,))],
        cwd=TESTS.parent, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return {line.split("::", 1)[0] for line in done.stdout.splitlines() if "::" in line}


def test_every_test_file_in_the_tree_is_collected() -> None:
    on_disk = {str(p.relative_to(TESTS.parent)) for p in TESTS.rglob("test_*.py") if "__pycache__" not in p.parts}
    assert on_disk, "no test files found"
    missing = sorted(on_disk - collected_files())
    assert not missing, f"test files pytest does not collect (rename the directory or fix norecursedirs): {missing}"


def test_the_test_directories_named_together_collect_the_same_files() -> None:
    """Named one by one on the command line (as a developer runs two of them), no directory's helpers
    shadow another's: two modules named conftest once made this fail."""
    dirs = sorted(p for p in TESTS.iterdir() if p.is_dir() and any(p.rglob("test_*.py")))
    assert collected_files(*dirs) == {f for f in collected_files() if "/" in f.removeprefix("tests/")}


def test_no_package_or_test_directory_is_named_build() -> None:
    repo = TESTS.parent
    named_build = [str(p.relative_to(repo)) for root in (repo / "cached", repo / "tests", repo / "client")
                   for p in root.rglob("build") if p.is_dir()]
    assert not named_build, f"directories named build are skipped by tools and templates: {named_build}"
