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


SHELL_WORDS = frozenset({
    # keywords and builtins of sh: never looked up in node_modules/.bin
    "!", "{", "}", "(", ")", "if", "then", "else", "elif", "fi", "do", "done", "while", "until", "for", "in", "case", "esac",
    ".", ":", "[", "alias", "bg", "break", "cd", "command", "continue", "echo", "eval", "exec", "exit", "export", "false",
    "fg", "getopts", "hash", "jobs", "kill", "printf", "pwd", "read", "readonly", "return", "set", "shift", "test",
    "times", "trap", "true", "type", "ulimit", "umask", "unalias", "unset", "wait", "local",
})
_OPERATORS = frozenset({"&&", "||", ";", "|", "&", ";;", "(", ")", "|&"})
_PREFIX_KEYWORDS = frozenset({"!", "{", "(", "if", "then", "else", "elif", "do", "while", "until", "time"})


def script_tools(command: str) -> list[str]:
    """The bare command names a script line runs (``tsc -b && vite build`` -> tsc, vite).

    Only plain words count: a path (``./x.sh``), a word with an expansion, an
    assignment or a shell keyword or builtin is skipped. A line the shell
    grammar here cannot split gives no names (nothing is claimed about it).
    """
    lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|()")
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        words = list(lexer)
    except ValueError:
        return []
    tools: list[str] = []
    at_command = True
    for word in words:
        if word in _OPERATORS or set(word) <= set(";&|()"):
            at_command = True
            continue
        if not at_command:
            continue
        if word in _PREFIX_KEYWORDS:
            continue
        if "=" in word and not word.startswith("="):
            continue  # FOO=1 vite build: an assignment before the command
        at_command = False
        if word in SHELL_WORDS or "/" in word or any(c in word for c in "$`*?[]{}~\\\"'"):
            continue
        if word not in tools:
            tools.append(word)
    return tools
