"""The demo's own logic, without a daemon: which string it edits, the second app, the counters, the table.

`make demo` itself runs a real daemon, npm, Vite and Miniflare for about a
minute; these tests check the parts that decide what it shows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cached import demo
from cached_client import BuildResult, Decision

PAGE = """export default function Dashboard() {
  const n = a > b && c < d;
  return (
    <div className="space-y-6">
      <h1 className="text-2xl">Welcome back, {name}</h1>
      <p className="text-muted-foreground">Here's what's happening today.</p>
    </div>
  );
}
"""
OTHER = """export default function Settings() {
  return <h1 className="text-2xl">Settings</h1>;
}
"""


def small_app(tmp_path: Path) -> Path:
    app = tmp_path / "shop"
    (app / "src" / "pages").mkdir(parents=True)
    (app / "src" / "pages" / "Dashboard.tsx").write_text(PAGE)
    (app / "src" / "pages" / "Settings.tsx").write_text(OTHER)
    (app / "package.json").write_text(json.dumps({"name": "shop", "version": "1.0.0", "scripts": {"build": "vite build"},
                                                  "dependencies": {"react": "19.0.0"}}))
    (app / "package-lock.json").write_text(json.dumps({"name": "shop", "version": "1.0.0", "lockfileVersion": 3,
                                                       "packages": {"": {"name": "shop", "version": "1.0.0", "dependencies": {"react": "19.0.0"}}}}))
    return app


def test_the_edit_changes_jsx_text_of_the_preferred_page_never_code(tmp_path: Path) -> None:
    app = small_app(tmp_path)
    first, second = demo.pick_edits(app)
    assert first.path == "src/pages/Dashboard.tsx" and second.path == "src/pages/Settings.tsx"
    assert "Here's what's happening today." in first.old and "&&" not in first.old and "{" not in first.old
    demo.Edit(first.path, first.old, first.new.replace("{MARKER}", demo.MARKER)).apply(app)
    text = (app / first.path).read_text()
    assert f">Here's what's happening today. {demo.MARKER}</p>" in text
    assert text.replace(f" {demo.MARKER}", "") == PAGE


def test_no_text_to_edit_is_an_error_that_says_where_it_looked(tmp_path: Path) -> None:
    (tmp_path / "src" / "pages").mkdir(parents=True)
    (tmp_path / "src" / "pages" / "Empty.tsx").write_text("export const x = 1;\n")
    with pytest.raises(demo.DemoError, match="no component with a text"):
        demo.pick_edits(tmp_path)


def test_the_second_app_has_another_name_one_page_changed_and_the_same_dependencies(tmp_path: Path) -> None:
    app = small_app(tmp_path)
    edits = demo.pick_edits(app)
    second = demo.make_second_app(app, tmp_path / "second", edits[1])
    package, lock = (json.loads((second / n).read_text()) for n in ("package.json", "package-lock.json"))
    assert package["name"] == lock["name"] == lock["packages"][""]["name"] == "shop-second"
    assert package["dependencies"] == json.loads((app / "package.json").read_text())["dependencies"]
    assert demo.SECOND_MARKER in (second / "src" / "pages" / "Settings.tsx").read_text()
    assert (second / "src" / "pages" / "Dashboard.tsx").read_text() == PAGE


def test_counter_deltas_by_layer_result_and_reason_summed_over_tiers() -> None:
    before = demo.parse_counters(
        'cached_lookups_total{layer="action",result="miss",tier="local"} 1.0\n'
        'cached_misses_total{layer="action",reason="new_app"} 1.0\n'
    )
    after = demo.parse_counters(
        "# HELP cached_lookups_total decisions\n# TYPE cached_lookups_total counter\n"
        'cached_lookups_total{layer="action",result="miss",tier="local"} 3.0\n'
        'cached_lookups_total{layer="action",result="hit",tier="local"} 2.0\n'
        'cached_lookups_total{layer="action",result="hit",tier="remote"} 1.0\n'
        'cached_misses_total{layer="action",reason="new_app"} 1.0\n'
        'cached_misses_total{layer="deps",reason="new_deps"} 1.0\n'
        'cached_builds_total{cache="hit"} 9.0\n'
    )
    assert demo.counter_deltas(before, after) == [
        ("cached_lookups_total", 'layer="action",result="hit"', 3),
        ("cached_lookups_total", 'layer="action",result="miss"', 2),
        ("cached_misses_total", 'layer="deps",reason="new_deps"', 1),
    ]


def result(*decisions: Decision) -> BuildResult:
    return BuildResult("k", decisions[0].result, decisions[0].reason, 1.0, {}, list(decisions), [])


def test_a_row_names_the_decisions_the_reason_and_which_processes_ran() -> None:
    cold = result(Decision("action", "miss", "local", "new_app", "(first build of this app)"),
                  Decision("deps", "miss", "local", "new_deps", ""), Decision("warm", "miss", "local", "started", ""))
    assert demo.summarize(cold, 2) == ("action miss (new_app), deps miss (new_deps), warm miss (started)",
                                       "first build of this app; deps never installed here", "2 (npm ci + node: Vite builder)")
    second = result(Decision("action", "miss", "local", "new_app", "(first build of this app)"),
                    Decision("deps", "hit", "local", "hit", "10 files"), Decision("warm", "miss", "local", "started", ""))
    assert demo.summarize(second, 1)[1:] == ("first build of this app; deps in the store, no npm", "1 (node: Vite builder)")
    edit = result(Decision("action", "miss", "local", "sources_changed", "sources changed: src/App.tsx (1 file)"),
                  Decision("deps", "hit", "local", "hit", ""), Decision("warm", "hit", "local", "reused", ""))
    assert demo.summarize(edit, 0) == ("action miss (sources_changed), deps hit, warm hit (reused)", "changed: src/App.tsx (1 file)", "0")
    hit = result(Decision("action", "hit", "local", "hit", ""))
    assert demo.summarize(hit, 0) == ("action hit", "identical inputs built before", "0")


def test_the_table_has_a_header_a_rule_and_a_row_per_step() -> None:
    lines = demo.render_table([demo.Row("2. cold build", "action miss", "new_app", 25835.8, "2", "4 files"),
                               demo.Row("1. start daemon", "-", "store emptied", None, "0", "")])
    assert lines[0].split() == ["step", "cache", "decisions", "reason", "wall", "ms", "node/npm", "processes", "outputs"]
    assert set(lines[1].replace(" ", "")) == {"-"} and "25,835.8" in lines[2] and len(lines) == 4


def test_the_demo_builds_the_repositorys_example_by_default_and_cached_fixture_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert demo.DEFAULT_APP == demo.REPO / "examples" / "dashboard"
    monkeypatch.setenv("CACHED_FIXTURE", str(small_app(tmp_path)))
    assert demo.app_source() == tmp_path / "shop"
    monkeypatch.setenv("CACHED_FIXTURE", str(tmp_path / "nothing"))
    with pytest.raises(demo.DemoError, match="CACHED_FIXTURE"):
        demo.app_source()


def test_the_demo_refuses_any_address_but_127_0_0_1() -> None:
    with pytest.raises(demo.DemoError, match="127.0.0.1 only"):
        demo.http_get("http://example.test/")


def test_the_literal_around_the_edit_is_the_whole_string() -> None:
    js = b'x=1;children:`Here\'s what\'s new. ' + demo.MARKER.encode() + b'`}),y=2'
    at = js.find(demo.MARKER.encode())
    assert demo.literal_around(js, at, len(demo.MARKER)) == "`Here's what's new. " + demo.MARKER + "`"
