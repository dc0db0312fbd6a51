"""Dependencies from the store against npm: `python benchmarks/deps.py [--runs N]`.

(a) `npm ci` in a fresh dir with an empty and with a warm npm cache;
(b) node_modules made available by each import method (overlay mount,
    hardlink farm, copy, symlink), against `cp -al` of the same tree;
(c) a whole build with known dependencies through the daemon, against a bare
    `node node_modules/vite/bin/vite.js build` on installed dependencies.
Runs are interleaved; min and median are printed as a table. Run as root
(overlay mounts).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, Series, fresh_app, npm_env, run, start_daemon, timed  # noqa: E402

sys.path.insert(0, str(REPO / "client"))
from cached.store import Store  # noqa: E402
from cached_client import Client  # noqa: E402
from support import app_files  # noqa: E402

_libc = ctypes.CDLL(None, use_errno=True)


def mount_overlay(lower: Path, upper: Path, work: Path, target: Path) -> None:
    opts = f"lowerdir={lower},upperdir={upper},workdir={work}".encode()
    if _libc.mount(b"overlay", str(target).encode(), b"overlay", 0, opts) != 0:
        raise OSError(ctypes.get_errno(), "mount overlay failed")


def umount(target: Path) -> None:
    _libc.umount2(str(target).encode(), 0)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="cached-bench-deps-"))
    warm_cache = work / "npm-warm"
    rows: list[Series] = []
    try:
        # (a) npm ci, empty vs warm cache (the warm cache is filled by the first run)
        empty, warm = Series("npm ci, empty npm cache"), Series("npm ci, warm npm cache")
        run(["npm", "ci", "--ignore-scripts"], fresh_app(work / "prime"), npm_env(warm_cache))
        for i in range(args.runs):
            app = fresh_app(work / "a-empty")
            empty.add(timed(lambda: run(["npm", "ci", "--ignore-scripts"], app, npm_env(work / f"npm-empty-{i}"))))
            shutil.rmtree(work / f"npm-empty-{i}", ignore_errors=True)
            app = fresh_app(work / "a-warm")
            warm.add(timed(lambda: run(["npm", "ci", "--ignore-scripts"], app, npm_env(warm_cache))))
        rows += [empty, warm]

        # (b) import methods, from a store holding the installed tree
        installed = work / "a-warm" / "node_modules"
        with Store.open(work / "store") as store:
            ingest = Series("ingest node_modules into the store (hardlink)")
            ingest.add(timed(lambda: store.trees.ingest(installed)))
            digest, tree = store.trees.ingest(installed)
            materialise = Series("materialise the tree (first time)")
            materialise.add(timed(lambda: store.trees.materialise(digest)))
            lower = store.trees.materialise(digest)
            overlay, hardlink, copy, symlink, cp_al = (Series(n) for n in (
                "overlay mount (O(1))", "hardlink farm", "copy", "symlink", "cp -al (reference)"))
            for i in range(args.runs):
                target, upper, wk = (work / f"ov-{i}" / d for d in ("node_modules", "upper", "work"))
                for d in (target, upper, wk):
                    d.mkdir(parents=True)
                overlay.add(timed(lambda: mount_overlay(lower, upper, wk, target)))
                assert (target / "react" / "package.json").is_file()
                umount(target)
                hardlink.add(timed(lambda: store.trees.link_out(tree, work / f"hl-{i}")))
                copy.add(timed(lambda: store.trees.copy_out(tree, work / f"cp-{i}")))
                symlink.add(timed(lambda: os.symlink(lower, work / f"sl-{i}")))
                cp_al.add(timed(lambda: run(["cp", "-al", str(lower), str(work / f"cpal-{i}")], work)))
                for d in (f"hl-{i}", f"cp-{i}", f"cpal-{i}"):
                    run(["rm", "-rf", str(work / d)], work)
            rows += [ingest, materialise, overlay, hardlink, copy, symlink, cp_al]

        # (c) a build with known dependencies vs the bare vite build
        bare_app = work / "a-warm"
        bare = Series("bare vite build (installed deps)")
        daemon_build = Series("daemon build, deps known, one file changed")
        app = fresh_app(work / "daemon-app")
        run(["chown", "-R", "65534:65534", str(warm_cache)], work)  # npm ran as root above; the daemon's npm is the sandbox user
        daemon = start_daemon(work / "daemon-root", warm_cache)
        try:
            with Client(daemon.address) as client:
                client.build(files=app_files(app), app="bench", tenant="bench")  # install once
                for i in range(args.runs):
                    bare.add(timed(lambda: run(["node", "node_modules/vite/bin/vite.js", "build"], bare_app)))
                    files = app_files(app)
                    files["src/App.tsx"] += f"\nexport const benchRun = {i};\n".encode()
                    result = None
                    def build() -> None:
                        nonlocal result
                        result = client.build(files=files, app="bench", tenant="bench")
                    daemon_build.add(timed(build))
                    assert result is not None and result.cache == "miss"
                    assert [d.result for d in result.decisions if d.layer == "deps"] == ["hit"]
        finally:
            daemon.stop()
        rows += [bare, daemon_build]
    finally:
        subprocess_rm(work)

    print(f"{'scenario':52} {'runs':>4} {'min ms':>10} {'median ms':>10}")
    for r in rows:
        s = r.summary()
        print(f"{s['name']:52} {s['runs']:>4} {s.get('min_ms', 0):>10.1f} {s.get('median_ms', 0):>10.1f}")
    overhead = [d - b for d, b in zip(daemon_build.samples, bare.samples)]
    overhead.sort()
    print(f"\ndaemon overhead over the bare vite build (paired runs): min {overhead[0]:.1f} ms, median {overhead[len(overhead) // 2]:.1f} ms")
    return 0


def subprocess_rm(path: Path) -> None:
    os.system(f"chmod -R u+w '{path}' 2>/dev/null; rm -rf '{path}'")


if __name__ == "__main__":
    sys.exit(main())
