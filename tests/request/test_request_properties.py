"""Property-based tests of the request rules: paths, ids, env names and values, against parse_request.

Each property is checked on a bounded number of generated examples (seconds
in all); Hypothesis shrinks any counterexample to a minimal request.
"""

from __future__ import annotations

import json
import os
import posixpath
import re
import unicodedata

from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from cached.digest import Hasher
from cached.errors import InvalidRequest
from cached.request.paths import MAX_COMPONENT_BYTES, check_path, check_tree
from cached.request.spec import (
    MAX_ENV_STRING_BYTES, RESERVED_ENV, RESERVED_ENV_PREFIXES, Limits, check_env, check_id, parse_request,
)
from cached.v1 import cached_pb2

SETTINGS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
HASHER = Hasher()
ID_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789_-"
PACKAGE_JSON = json.dumps({"name": "p", "version": "1.0.0", "scripts": {"build": "node build.mjs"}}).encode()

# Any text, including what a careless or hostile caller sends: separators, dots, NUL, newlines, non-ASCII.
nasty_text = st.lists(st.sampled_from(list("ab/.\\\x00\n -_Zé\u0301\ufeff") + ["..", "node_modules", ".git", "dist"]), max_size=16).map("".join)
component = st.text(
    alphabet=st.characters(blacklist_characters="/\\\x00", blacklist_categories=("Cs",)), min_size=1, max_size=30,
).filter(lambda c: c not in (".", ".."))
valid_path = st.lists(component, min_size=1, max_size=5).map("/".join).filter(
    lambda p: p.split("/")[0] not in ("node_modules", ".git", "dist")
)


def _refused(fn, *args, **kwargs) -> InvalidRequest | None:  # type: ignore[no-untyped-def]
    try:
        fn(*args, **kwargs)
    except InvalidRequest as e:
        return e
    return None


# ------------------------------------------------------------------ paths

@SETTINGS
@given(st.one_of(nasty_text, valid_path, st.text(max_size=60)))
def test_a_path_is_accepted_only_when_it_stays_inside_the_app_unchanged(path: str) -> None:
    error = _refused(check_path, path)  # never anything but InvalidRequest
    if error is not None:
        assert error.field == f"files[{path!r}]"  # the error names the path exactly as sent
        return
    parts = path.split("/")
    assert path and not path.startswith("/") and "\\" not in path and "\x00" not in path
    assert all(p not in ("", ".", "..") and len(p.encode()) <= MAX_COMPONENT_BYTES for p in parts)
    assert parts[0] not in ("node_modules", ".git", "dist")
    # Taken as is: joining it under the workspace neither escapes nor is rewritten by normalisation.
    assert posixpath.normpath(path) == path
    joined = posixpath.normpath(posixpath.join("/work/t/a", path))
    assert joined.startswith("/work/t/a/") and os.path.commonpath(["/work/t/a", joined]) == "/work/t/a"


@SETTINGS
@given(valid_path, st.sampled_from(["..", ".", ""]), st.integers(min_value=0, max_value=5))
def test_a_dot_dot_dot_or_empty_component_anywhere_is_refused(path: str, bad: str, at: int) -> None:
    parts = path.split("/")
    parts.insert(min(at, len(parts)), bad)
    assert _refused(check_path, "/".join(parts)) is not None


@SETTINGS
@given(valid_path, st.sampled_from(["/", "\\", "\x00"]))
def test_absolute_paths_backslashes_and_nul_are_refused(path: str, bad: str) -> None:
    candidate = "/" + path if bad == "/" else path + bad + "x"
    assert _refused(check_path, candidate) is not None


@SETTINGS
@given(valid_path, st.sampled_from(["node_modules", ".git", "dist"]))
def test_paths_under_the_daemons_directories_are_refused(path: str, top: str) -> None:
    assert _refused(check_path, f"{top}/{path}") is not None
    assert _refused(check_path, top) is not None


@SETTINGS
@given(st.integers(min_value=MAX_COMPONENT_BYTES + 1, max_value=MAX_COMPONENT_BYTES + 40), st.sampled_from(["a", "é", "\u20ac"]))
def test_a_component_over_255_bytes_is_refused_counting_utf8_bytes(size: int, char: str) -> None:
    long = char * (size // len(char.encode()) + 1)
    assert len(long.encode()) > MAX_COMPONENT_BYTES
    assert _refused(check_path, f"src/{long}") is not None
    fits = char * (MAX_COMPONENT_BYTES // len(char.encode()))
    assert _refused(check_path, f"src/{fits}") is None


@SETTINGS
@given(st.lists(valid_path, min_size=1, max_size=8, unique=True))
def test_a_tree_is_refused_exactly_for_duplicates_and_file_directory_conflicts(paths: list[str]) -> None:
    normal = [unicodedata.normalize("NFC", p) for p in paths]
    duplicate = len(set(normal)) != len(normal)
    conflict = any(other.startswith(p + "/") for p in normal for other in normal)
    assert (_refused(check_tree, paths) is not None) == (duplicate or conflict)


@SETTINGS
@given(valid_path)
def test_nfc_and_nfd_forms_of_one_path_are_duplicates(path: str) -> None:
    nfc, nfd = unicodedata.normalize("NFC", path), unicodedata.normalize("NFD", path)
    assume(nfc != nfd)
    assert _refused(check_tree, [nfc, nfd]) is not None


# -------------------------------------------------------------------- ids

@SETTINGS
@given(st.one_of(st.text(alphabet=ID_CHARS, max_size=70), st.text(max_size=70), nasty_text))
@example("abc\n")  # `$` alone would match before a trailing newline
@example("a" * 63)
@example("a" * 64)
def test_an_id_is_accepted_exactly_when_it_matches_the_rule(value: str) -> None:
    ok = re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", value) is not None
    error = _refused(check_id, "tenant", value)
    assert (error is None) == ok
    if error is not None:
        assert error.field == "tenant" and repr(value) in str(error)
    else:
        assert check_id("tenant", value) == value and 1 <= len(value) <= 63 and value.isascii()


# -------------------------------------------------------------------- env

env_name = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,40}", fullmatch=True)
env_value = st.text(alphabet=st.characters(blacklist_characters="\x00", blacklist_categories=("Cs",)), max_size=200)


def _reserved(name: str) -> bool:
    return name in RESERVED_ENV or any(name.lower().startswith(p.lower()) for p in RESERVED_ENV_PREFIXES)


@SETTINGS
@given(st.dictionaries(env_name, env_value, max_size=8))
def test_env_names_are_accepted_unless_reserved_and_values_pass_unchanged(env: dict[str, str]) -> None:
    error = _refused(check_env, env, Limits())
    reserved = [n for n in env if _reserved(n)]
    if reserved:
        assert error is not None and error.field.startswith("env[")
    else:
        assert error is None and check_env(env, Limits()) == env


@SETTINGS
@given(st.one_of(nasty_text, st.text(max_size=20)), env_value)
@example("FOO\n", "x")
@example("npm_CONFIG_registry", "x")
@example("NODE_OPTIONS", "--require x")
def test_bad_or_reserved_names_are_refused_naming_the_variable(name: str, value: str) -> None:
    valid = re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", name) is not None
    assume(not valid or _reserved(name))
    error = _refused(check_env, {name: value}, Limits())
    assert error is not None and error.field == f"env[{name!r}]"


@SETTINGS
@given(env_name.filter(lambda n: not _reserved(n)), st.integers(min_value=-3, max_value=3), st.sampled_from(["x", "é", "\u20ac"]))
def test_one_value_is_refused_exactly_past_the_kernels_string_limit(name: str, delta: int, char: str) -> None:
    room = MAX_ENV_STRING_BYTES - len(name) - 2  # "NAME=" and the NUL
    value = char * max(0, (room + delta) // len(char.encode()))
    size = len(name) + 1 + len(value.encode()) + 1
    error = _refused(check_env, {name: value}, Limits(max_env_bytes=1 << 20))
    assert (error is None) == (size <= MAX_ENV_STRING_BYTES)
    if error is not None:
        assert error.field == f"env[{name!r}]"


@SETTINGS
@given(env_name.filter(lambda n: not _reserved(n)), st.text(min_size=0, max_size=20), st.integers(min_value=0, max_value=20))
def test_a_nul_anywhere_in_a_value_is_refused(name: str, value: str, at: int) -> None:
    at = min(at, len(value))
    assert _refused(check_env, {name: value[:at] + "\x00" + value[at:]}, Limits()) is not None


# ---------------------------------------------------------- parse_request

def _request(tenant: str, app: str, files: dict[str, bytes], env: dict[str, str]) -> cached_pb2.BuildRequest:
    request = cached_pb2.BuildRequest(tenant=tenant, app=app, env=env)
    for path, content in files.items():
        request.files.append(cached_pb2.File(path=path, content=content))
    return request


def _parse(request: cached_pb2.BuildRequest):  # type: ignore[no-untyped-def]
    return parse_request(request, HASHER, Limits(), lambda tenant, digest: False, lambda digest: b"")


ids = st.from_regex(r"[a-z0-9][a-z0-9_-]{0,20}", fullmatch=True)


@SETTINGS
@given(ids, ids, st.dictionaries(valid_path, st.binary(max_size=64), max_size=6), st.dictionaries(env_name, env_value, max_size=4))
def test_parse_request_keeps_every_file_exactly_or_refuses_the_request(tenant: str, app: str, files: dict[str, bytes], env: dict[str, str]) -> None:
    files = {"package.json": PACKAGE_JSON, **{p: c for p, c in files.items() if p != "package.json"}}
    request = _request(tenant, app, files, env)
    tree_ok = _refused(check_tree, list(files)) is None
    env_ok = _refused(check_env, env, Limits()) is None
    error = _refused(_parse, request)
    assert (error is None) == (tree_ok and env_ok), error
    if error is not None:
        return
    spec = _parse(request)
    assert (spec.tenant, spec.app, spec.env) == (tenant, app, env)
    assert [f.path for f in spec.files] == sorted(files)  # sorted, nothing added, dropped or renamed
    for f in spec.files:
        assert f.content == files[f.path] and f.digest == HASHER.bytes(files[f.path])
        assert spec.by_path[f.path] is f


@SETTINGS
@given(st.one_of(nasty_text, st.text(max_size=30)), st.one_of(nasty_text, st.text(max_size=30)))
@example("t1\n", "app")
@example("t1", "app\n")
def test_parse_request_takes_only_valid_tenant_and_app_ids(tenant: str, app: str) -> None:
    request = _request(tenant, app, {"package.json": PACKAGE_JSON}, {})
    ok = all(re.fullmatch(r"[a-z0-9][a-z0-9_-]{0,62}", v) for v in (tenant, app))
    error = _refused(_parse, request)
    assert (error is None) == ok
    if error is not None:
        assert error.field in ("tenant", "app")


@SETTINGS
@given(st.one_of(nasty_text, st.text(max_size=70), st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,70}", fullmatch=True)))
@example("staging\n")
@example("build\n")
def test_mode_and_build_script_are_taken_only_when_they_match_their_rule(value: str) -> None:
    package = json.dumps({"name": "p", "scripts": {"build": "node build.mjs", value: "node build.mjs"}}).encode()
    as_mode = _request("t1", "app", {"package.json": package}, {})
    as_mode.mode = value
    mode_ok = value == "" or re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", value) is not None
    assert (_refused(_parse, as_mode) is None) == mode_ok
    as_script = _request("t1", "app", {"package.json": package}, {})
    as_script.build_script = value
    script_ok = value == "" or re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9:_.-]{0,63}", value) is not None
    error = _refused(_parse, as_script)
    assert (error is None) == script_ok
    if error is not None and value:
        assert error.field == "build_script"
