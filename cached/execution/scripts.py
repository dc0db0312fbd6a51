"""Runs a package.json script the way `npm run` does, without starting npm.

`npm run build` costs a Node start-up and npm's config loading before the
script itself starts: hundreds of milliseconds on every build. What npm does
for a script is small and documented (@npmcli/run-script): run `pre<name>`,
`<name>`, `post<name>` through `sh -c`, with `node_modules/.bin` first on
PATH and a few `npm_*` variables set. This module does exactly that, so the
script sees what it would under npm.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class ScriptStep:
    event: str
    command: str


def script_steps(package_json: str, name: str, args: list[str]) -> list[ScriptStep]:
    """pre<name>, <name> (with args appended, as `npm run name -- args` does), post<name>."""
    package: Any = json.loads(package_json)
    scripts = package.get("scripts", {}) if isinstance(package, dict) else {}
    steps = []
    for event in (f"pre{name}", name, f"post{name}"):
        command = scripts.get(event)
        if not isinstance(command, str):
            continue
        if event == name and args:
            command = f"{command} {' '.join(shlex.quote(a) for a in args)}"
        steps.append(ScriptStep(event, command))
    return steps


def script_env(base: Mapping[str, str], workspace: Path, package_json: str, step: ScriptStep, node_path: str) -> dict[str, str]:
    package: Any = json.loads(package_json)
    env = dict(base)
    env["PATH"] = f"{workspace}/node_modules/.bin:{base['PATH']}"
    env.update({
        "npm_lifecycle_event": step.event,
        "npm_lifecycle_script": step.command,
        "npm_package_json": str(workspace / "package.json"),
        "npm_package_name": str(package.get("name", "")) if isinstance(package, dict) else "",
        "npm_package_version": str(package.get("version", "")) if isinstance(package, dict) else "",
        "npm_node_execpath": node_path,
        "NODE": node_path,
        "INIT_CWD": str(workspace),
        "npm_command": "run-script",
    })
    return env
