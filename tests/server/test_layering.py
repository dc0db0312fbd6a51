"""Servicers translate and touch no storage; only the store talks to LMDB.

Read from the source (``ast``), not by running anything: a servicer that
imports the store, or reaches for ``.store``, ``.index``, ``.blobs`` or a
``txn``, fails here before it can grow logic of its own.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "cached"
SERVICERS = sorted((PACKAGE / "server").glob("*_service.py"))
STORAGE_ATTRIBUTES = {"store", "index", "blobs", "txn"}


def _imports(tree: ast.AST) -> list[str]:
    """Every module a file imports, ``from a import b`` read as both ``a`` and ``a.b``."""
    out: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.append(node.module)
            out.extend(f"{node.module}.{alias.name}" for alias in node.names)
    return out


def _is(module: str, name: str) -> bool:
    return module == name or module.startswith(name + ".")


def _parse(path: Path) -> ast.AST:
    return ast.parse(path.read_text(), filename=str(path))


def test_there_are_servicers_to_check() -> None:
    assert {p.name for p in SERVICERS} >= {"admin_service.py", "builder_service.py", "content_service.py", "deploy_service.py"}


@pytest.mark.parametrize("path", SERVICERS, ids=lambda p: p.name)
def test_a_servicer_imports_neither_the_store_nor_lmdb(path: Path) -> None:
    found = [m for m in _imports(_parse(path)) if _is(m, "cached.store") or _is(m, "lmdb")]
    assert not found, f"{path.name} imports {found}: servicers call objects outside cached/server/, which own the store"


@pytest.mark.parametrize("path", SERVICERS, ids=lambda p: p.name)
def test_a_servicer_reaches_for_no_storage_attribute(path: Path) -> None:
    found = sorted(
        f"line {node.lineno}: .{node.attr}"
        for node in ast.walk(_parse(path))
        if isinstance(node, ast.Attribute) and node.attr in STORAGE_ATTRIBUTES
    )
    assert not found, f"{path.name} touches storage ({', '.join(found)}): move that into the object the servicer calls"


def test_no_module_outside_the_store_imports_lmdb() -> None:
    offenders = sorted(
        str(path.relative_to(PACKAGE.parent))
        for path in PACKAGE.rglob("*.py")
        if not path.is_relative_to(PACKAGE / "store") and any(_is(m, "lmdb") for m in _imports(_parse(path)))
    )
    assert not offenders, f"{offenders} import lmdb: only cached/store/ names the index"
