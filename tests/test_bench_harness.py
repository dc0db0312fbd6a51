"""benchmarks/bench.py and benchmarks/readme_section.py without real builds: the README's marked section,
the scenario list, and what bench.py does with a script that is missing, fails or returns its data."""

from __future__ import annotations

import ast
import json
import sys
from pathlib import Path

import pytest

from support import REPO

sys.path.insert(0, str(REPO / "benchmarks"))
import bench  # noqa: E402
import readme_section  # noqa: E402
from readme_section import BEGIN, END, MarkerError, render, replace_section, update_readme  # noqa: E402

SAMPLE = {
    "when": "2026-12-01T00:00:00Z", "command": ".venv/bin/python benchmarks/bench.py --quick",
    "machine": {"cores": 2, "memory_gib": 23.5, "filesystem": "ext2/ext3", "node": "v20.20.2", "npm": "11.19.1", "vite": "8.3.8"},
    "page_cache": "Page cache warm.",
    "scenarios": [
        {"name": "run", "title": "cold and warm", "status": "ok", "seconds": 600.0, "when": "2026-12-01T00:00:00Z",
         "command": ".venv/bin/python benchmarks/run.py --runs 3",
         "series": [{"name": "daemon: unchanged, full hit (gRPC, open channel)", "runs": 1000, "min_ms": 1.8, "median_ms": 6.0, "p99_ms": 9.1, "max_ms": 12.8},
                    {"name": "turborepo: cache hit (turbo run build)", "runs": 3, "min_ms": 173.0, "median_ms": 191.0, "p99_ms": 206.5, "max_ms": 206.5}],
         "ratios": [{"situation": "unchanged app", "daemon": "daemon: unchanged, full hit (gRPC, open channel)",
                     "baseline": "turborepo: cache hit (turbo run build)", "stat": "median", "daemon_ms": 6.0, "baseline_ms": 191.0, "ratio": 0.0314}],
         "figures": {"daemon peak RSS, MiB": 124.1}},
        {"name": "edit_to_live", "title": "edit to served", "status": "missing", "error": "benchmarks/edit_to_live.py is missing: scenario not run"},
    ],
}

README = f"""# project

## Benchmarks

Hand-written prose before.

{BEGIN}
old figures | 1 | 2
{END}

Hand-written prose after, mentioning 0.031x by hand.

## Layout
"""


def outside(text: str) -> tuple[str, str]:
    return text.split(BEGIN)[0], text.split(END)[1]


def test_the_marked_section_is_replaced_and_nothing_else() -> None:
    section = render(SAMPLE, chart="benchmarks/results/latest.png")
    new = replace_section(README, section)
    assert outside(new) == outside(README)
    inner = new.split(BEGIN)[1].split(END)[0]
    assert "old figures" not in inner
    assert "| run | unchanged app |" in inner and "0.031x" in inner
    assert "![" in inner and "(benchmarks/results/latest.png)" in inner
    assert "edit_to_live" in inner and "not run: benchmarks/edit_to_live.py is missing" in inner
    assert "`.venv/bin/python benchmarks/run.py --runs 3`" in inner
    assert new.count(BEGIN) == 1 and new.count(END) == 1


def test_regenerating_twice_gives_the_same_readme(tmp_path: Path) -> None:
    readme, results = tmp_path / "README.md", tmp_path / "benchmarks" / "results" / "latest.json"
    results.parent.mkdir(parents=True)
    results.write_text(json.dumps(SAMPLE))
    readme.write_text(README)
    assert update_readme(readme, results) is True
    once = readme.read_text()
    assert "(benchmarks/results/latest.png)" in once  # the chart, relative to the README
    assert update_readme(readme, results) is False
    assert readme.read_text() == once
    assert replace_section(once, render(SAMPLE, chart="benchmarks/results/latest.png")) == once


@pytest.mark.parametrize("broken", [
    README.replace(BEGIN, ""),
    README.replace(END, ""),
    README.replace(BEGIN, "").replace(END, ""),
    README.replace(END, f"{END}\n{BEGIN}\n{END}"),
    README.replace(BEGIN, "@@").replace(END, BEGIN).replace("@@", END),
])
def test_missing_or_broken_markers_fail_clearly_and_write_nothing(tmp_path: Path, broken: str) -> None:
    with pytest.raises(MarkerError, match="bench:"):
        replace_section(broken, render(SAMPLE))
    readme, results = tmp_path / "README.md", tmp_path / "latest.json"
    readme.write_text(broken)
    results.write_text(json.dumps(SAMPLE))
    with pytest.raises(SystemExit, match="readme_section: .*nothing written"):
        readme_section.main(["--readme", str(readme), "--results", str(results)])
    assert readme.read_text() == broken


def test_the_real_readme_has_one_marked_section_inside_the_benchmarks_section() -> None:
    text = (REPO / "README.md").read_text()
    new = replace_section(text, render(SAMPLE, chart="benchmarks/results/latest.png"))
    assert outside(new) == outside(text)
    benchmarks = text.split("## Benchmarks", 1)[1].split("\n## ", 1)[0]
    assert BEGIN in benchmarks and END in benchmarks
    assert "make bench" in benchmarks.split(BEGIN)[0]


def test_every_listed_scenario_script_exists_and_takes_argv() -> None:
    names = [s.name for s in bench.SCENARIOS]
    assert {"run", "warm_rebuild", "load", "edit_to_live", "packages", "remote"} <= set(names)
    missing = [f"benchmarks/{s.script}" for s in bench.SCENARIOS if not s.path.exists()]
    assert not missing, f"scenario scripts listed in bench.SCENARIOS but not in the tree: {missing}"
    for s in bench.SCENARIOS:
        tree = ast.parse(s.path.read_text())
        mains = [n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "main"]
        assert mains and [a.arg for a in mains[0].args.args][:1] == ["argv"], f"{s.script}: main(argv: list[str] | None = None) -> dict"


def scenario(tmp_path: Path, name: str, body: str | None) -> bench.Scenario:
    path = tmp_path / f"{name}.py"
    if body is not None:
        path.write_text(body)
    return bench.Scenario(name, str(path), f"a {name} scenario", 4)


OK_SCRIPT = """
def main(argv=None):
    return {"argv": argv, "series": [{"name": "daemon: x", "runs": 4, "min_ms": 1.0, "median_ms": 2.0, "p99_ms": 3.0, "max_ms": 3.0},
                                     {"name": "baseline: x", "runs": 4, "min_ms": 7.0, "median_ms": 8.0, "p99_ms": 9.0, "max_ms": 9.0}],
            "comparisons": [{"what": "x vs baseline", "a": "daemon: x", "b": "baseline: x", "stat": "median", "a_ms": 2.0, "b_ms": 8.0, "ratio": 0.25}],
            "figures": {"requests": {"worker": 3}, "bytes": 1200}}
"""
FAILING_SCRIPT = "def main(argv=None):\n    raise SystemExit('benchmark step failed: npm ci')\n"


def test_a_missing_script_is_reported_and_the_others_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    scenarios = [scenario(tmp_path, "ok", OK_SCRIPT), scenario(tmp_path, "absent", None), scenario(tmp_path, "ok_too", OK_SCRIPT)]
    monkeypatch.setattr(bench, "SCENARIOS", scenarios)
    monkeypatch.setattr(bench, "BY_NAME", {s.name: s for s in scenarios})
    out = tmp_path / "results"
    data = bench.main(["--out", str(out), "--runs", "2"])
    printed = capsys.readouterr().out
    assert f"{tmp_path / 'absent.py'} is missing" in printed or "absent.py is missing" in printed
    by = {e["name"]: e for e in data["scenarios"]}
    assert by["absent"]["status"] == "missing" and "series" not in by["absent"] and "ratios" not in by["absent"]
    assert by["ok"]["status"] == by["ok_too"]["status"] == "ok"
    assert by["ok"]["argv"] == ["--runs", "2"]
    assert by["ok"]["ratios"] == [{"situation": "x vs baseline", "daemon": "daemon: x", "baseline": "baseline: x", "stat": "median",
                                   "daemon_ms": 2.0, "baseline_ms": 8.0, "ratio": 0.25}]
    assert by["ok"]["figures"] == {"requests worker": 3, "bytes": 1200}
    saved = json.loads((out / "latest.json").read_text())
    assert saved["command"].endswith("bench.py --out " + str(out) + " --runs 2") and saved["machine"]["cores"]
    assert "not run" in (out / "latest.md").read_text()
    assert (out / "latest.png").stat().st_size > 1000


def test_a_failing_script_is_recorded_the_rest_run_and_bench_exits_nonzero(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scenarios = [scenario(tmp_path, "bad", FAILING_SCRIPT), scenario(tmp_path, "ok", OK_SCRIPT)]
    monkeypatch.setattr(bench, "SCENARIOS", scenarios)
    monkeypatch.setattr(bench, "BY_NAME", {s.name: s for s in scenarios})
    out = tmp_path / "results"
    with pytest.raises(SystemExit, match="failed: bad"):
        bench.main(["--out", str(out), "--quick"])
    saved = {e["name"]: e for e in json.loads((out / "latest.json").read_text())["scenarios"]}
    assert saved["bad"]["status"] == "failed" and "npm ci" in saved["bad"]["error"] and "series" not in saved["bad"]
    assert saved["ok"]["status"] == "ok" and saved["ok"]["argv"] == ["--runs", "3"]


def test_only_replaces_its_own_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    scenarios = [scenario(tmp_path, "first", OK_SCRIPT), scenario(tmp_path, "second", OK_SCRIPT)]
    monkeypatch.setattr(bench, "SCENARIOS", scenarios)
    monkeypatch.setattr(bench, "BY_NAME", {s.name: s for s in scenarios})
    out = tmp_path / "results"
    bench.main(["--out", str(out)])
    before = {e["name"]: e for e in json.loads((out / "latest.json").read_text())["scenarios"]}
    bench.main(["--out", str(out), "--only", "second", "--runs", "1"])
    after = {e["name"]: e for e in json.loads((out / "latest.json").read_text())["scenarios"]}
    assert after["first"] == before["first"] and after["second"]["argv"] == ["--runs", "1"]
    with pytest.raises(SystemExit):
        bench.main(["--only", "nope"])
    with pytest.raises(SystemExit):
        bench.main(["--only", "first", "--", "--smoke"])  # extra arguments need --out


def test_the_real_scripts_get_their_runs_and_outputs(tmp_path: Path) -> None:
    by = bench.BY_NAME
    assert bench.script_argv(by["run"], 3, tmp_path, False, [])[:2] == ["--runs", "3"]
    assert "--out" in bench.script_argv(by["run"], 3, tmp_path, False, [])  # never the combined latest.* it would overwrite
    assert bench.script_argv(by["packages"], None, tmp_path, False, []) == []
    assert bench.script_argv(by["remote"], 2, tmp_path, True, ["--self-test"]) == ["--runs", "2", "--out", str(tmp_path), "--self-test"]


def test_summaries_of_the_scripts_data_shapes() -> None:
    packages = {"scenarios": {"add-package": "one package added"},
                "series": [{"name": "add-package: daemon build", "runs": 3, "min_ms": 1, "median_ms": 2900.0, "p99_ms": 3, "max_ms": 3},
                           {"name": "add-package: npm ci, warm npm cache: install + build", "runs": 3, "min_ms": 1, "median_ms": 20000.0, "p99_ms": 3, "max_ms": 3}],
                "comparisons": [{"scenario": "add-package", "baseline": "add-package: npm ci, warm npm cache: install + build", "ratio": 0.145}],
                "targets": [{"scenario": "add-package", "target": "<= 0.25x", "measured": 0.145, "unit": "x", "met": True, "what": "daemon / npm ci warm + build"}]}
    p = bench.summarize_packages(packages)
    assert p["ratios"][0]["situation"] == "one package added" and p["ratios"][0]["ratio"] == 0.145
    warm = {"series": [{"name": f"{k}/component", "runs": 3, "min_ms": 1, "median_ms": m, "p99_ms": 1, "max_ms": 1}
                       for k, m in (("warm", 1000.0), ("session", 1500.0), ("cold", 2700.0), ("bare", 2500.0))],
            "ratios": {"component": {"warm_over_bare": 0.4, "session_over_bare": 0.6, "cold_minus_bare_ms": 200.0}}, "builders": []}
    w = bench.summarize_warm_rebuild(warm)
    assert [r["ratio"] for r in w["ratios"]] == [0.4, 0.6, 1.08] and w["figures"]["component: warm / bare (target <= 0.45)"] == 0.4
    assert w["figures"]["component: watch session / bare"] == 0.6
    load = {"rows": [{"daemon": d, "processes": n, "requests": 200, "min_ms": 1.0, "p50_ms": m, "p99_ms": 9.0, "max_ms": 9.0,
                      "hits_per_s_median": 300.0, "daemon_cpu_ms_per_hit": 1.2} for d, n, m in (("daemon", 8, 4.0), ("baseline", 8, 8.0), ("daemon", 1, 3.0))]}
    lo = bench.summarize_load(load)
    assert len(lo["series"]) == 3 and [r["ratio"] for r in lo["ratios"]] == [0.5]
    assert lo["figures"]["daemon, 8 client processes: hits/s (median of rounds)"] == 300.0
    s = {"name": "edit_to_served", "runs": 3, "min_ms": 900.0, "median_ms": 1000.0, "p99_ms": 1100.0, "max_ms": 1100.0}
    e = bench.summarize_edit_to_live({"series": {"edit_to_served": s}, "target_ms": 1500, "median_shares": {"build": 0.6},
                                      "cloudflare": [{"case": "one-file edit", "requests": 4, "bytes_sent": 12345, "assets_uploaded": 1, "assets_total": 9}]})
    assert e["series"] == [s] and e["figures"]["edit to served, median ms (target under 1500)"] == 1000.0
    assert e["figures"]["Cloudflare, one-file edit: requests / bytes sent"] == "4 / 12,345"
