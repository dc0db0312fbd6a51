"""The failpoint switch: parsing, counting, and the exit it makes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from cached import failpoints

REPO = Path(__file__).resolve().parents[2]


def test_parse() -> None:
    assert failpoints._parse("a.b:3, c ,d:0,") == {"a.b": 3, "c": 1, "d": 1}
    assert failpoints._parse("") == {}


def test_nth_hit_exits_86_and_others_do_not() -> None:
    code = (
        "from cached.failpoints import failpoint\n"
        "for i in range(5):\n"
        "    failpoint('other')\n"
        "    failpoint('x.y')\n"
        "    print(i, flush=True)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "CACHED_FAILPOINT": "x.y:3"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == failpoints.EXIT_CODE
    assert proc.stdout.split() == ["0", "1"]
    env["CACHED_FAILPOINT"] = ""
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and proc.stdout.split() == ["0", "1", "2", "3", "4"]
