import pytest

from cached.errors import InvalidRequest
from cached.request.paths import check_tree


@pytest.mark.parametrize("path", [
    "../x", "/etc/x", "a/../b", "a//b", "./a", "a/.", "", "a\\b", "a\x00b",
    "node_modules/react/index.js", ".git/config", "dist/index.html", "x" * 256,
])
def test_bad_paths_are_refused_naming_the_path(path: str) -> None:
    with pytest.raises(InvalidRequest) as e:
        check_tree(["package.json", path])
    assert repr(path)[:40] in str(e.value) or "files" in str(e.value)
    assert e.value.field.startswith("files")


def test_duplicates_are_refused_including_unicode_forms() -> None:
    with pytest.raises(InvalidRequest, match="twice"):
        check_tree(["src/a.ts", "src/a.ts"])
    with pytest.raises(InvalidRequest, match="Unicode"):
        check_tree(["src/caf\u00e9.ts", "src/cafe\u0301.ts"])


def test_file_directory_conflicts_are_refused() -> None:
    with pytest.raises(InvalidRequest, match="directory"):
        check_tree(["src/lib", "src/lib/a.ts"])


def test_ordinary_tree_passes_and_keeps_case() -> None:
    check_tree(["package.json", "src/App.tsx", "src/app.tsx", "public/a b.png", "src/dist/x.ts", "x" * 255])
