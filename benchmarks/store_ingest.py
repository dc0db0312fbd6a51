"""Store ingest benchmark: ingest node_modules, materialise it, against ``cp -al``.

Usage: ``python benchmarks/store_ingest.py [NODE_MODULES_DIR]``. Without an
argument it copies ``examples/dashboard`` (or ``$CACHED_FIXTURE``) to a temp dir
(the app is never touched) and runs ``npm ci --ignore-scripts --no-audit --no-fund``
there. Prints a table; asserts nothing (timings are not tests).

Ingest runs with ``move=False`` from a directory the store's uid owns on the
store's filesystem, after ``chmod -R a-w`` of its files (the caller's promise
not to rewrite them in place), so every file is hardlinked into the store, never
copied. The store lives next to the tree, on the same filesystem.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cached.digest import Hasher  # noqa: E402
from cached.store import Store  # noqa: E402
from cached.store.fsutil import remove_tree  # noqa: E402

FIXTURE = Path(os.environ.get("CACHED_FIXTURE") or Path(__file__).resolve().parents[1] / "examples" / "dashboard")


def install_fixture(work: Path) -> Path:
    app = work / "app"
    shutil.copytree(FIXTURE, app, ignore=shutil.ignore_patterns("node_modules", "dist"))
    started = time.perf_counter()
    subprocess.run(
        ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund"],
        cwd=app, check=True, stdout=subprocess.DEVNULL,
    )
    print(f"npm ci: {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return app / "node_modules"


def count_files(root: Path) -> tuple[int, int]:
    files = size = 0
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                files += 1
                size += os.lstat(p).st_size
    return files, size


def hash_all(root: Path) -> None:
    hasher = Hasher()
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            p = os.path.join(dirpath, name)
            if not os.path.islink(p):
                hasher.file(p)


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("node_modules", nargs="?", type=Path)
    parser.add_argument("--workdir", type=Path, default=None, help="where the temp dirs go (same fs as the tree)")
    args = parser.parse_args()

    base = args.workdir or (args.node_modules.resolve().parent if args.node_modules else None)
    work = Path(tempfile.mkdtemp(prefix="cached-bench-", dir=base))
    try:
        tree_dir = args.node_modules.resolve() if args.node_modules else install_fixture(work)
        files, size = count_files(tree_dir)
        rows: list[tuple[str, float]] = []
        subprocess.run(["sync"], check=True)

        subprocess.run(["chmod", "-R", "a-w", str(tree_dir)], check=True)
        subprocess.run(["find", str(tree_dir), "-type", "d", "-exec", "chmod", "u+w", "{}", "+"], check=True)
        rows.append(("read + blake3 every file (floor)", timed(lambda: hash_all(tree_dir))))
        with Store.open(work / "store") as store:
            result: dict[str, object] = {}

            def ingest() -> None:
                with store.ingesting():
                    result["tree"] = store.trees.ingest(tree_dir)

            rows.append(("ingest (hardlink, move=False)", timed(ingest)))
            # The commit point: one syncfs of the filesystem, then the blobs' index records.
            rows.append(("  then syncfs + registering the blobs", timed(lambda: store.flush().result())))
            digest, tree = result["tree"]  # type: ignore[misc]
            rows.append(("re-ingest the same tree (all deduplicated)", timed(lambda: store.trees.ingest(tree_dir))))
            rows.append(("materialise by hardlinks (+ syncfs + mark)", timed(lambda: store.trees.materialise(digest))))
            rows.append(("materialise again (already there)", timed(lambda: store.trees.materialise(digest))))
            checkout = work / "checkout"
            rows.append(("link_out into a writable dir", timed(lambda: store.trees.link_out(tree, checkout))))
        linked = sum(
            1 for dirpath, _, names in os.walk(tree_dir) for n in names
            if not os.path.islink(os.path.join(dirpath, n)) and os.lstat(os.path.join(dirpath, n)).st_nlink > 1
        )
        cp_dest = work / "cp-al"
        rows.append(("cp -al of the same tree", timed(lambda: subprocess.run(["cp", "-al", str(tree_dir), str(cp_dest)], check=True))))
        if not args.node_modules:
            # As the daemon ingests npm's output: move=True, consuming the directory. Only
            # for a tree we installed ourselves, once nothing else links its files.
            remove_tree(cp_dest)
            remove_tree(checkout)
            remove_tree(work / "store")
            with Store.open(work / "store2") as store2:
                def ingest_move() -> None:
                    with store2.ingesting():
                        store2.trees.ingest(tree_dir, move=True)

                rows.append(("ingest move=True (fresh store, consumes the tree)", timed(ingest_move)))
                rows.append(("  then syncfs + registering the blobs", timed(lambda: store2.flush().result())))

        print(f"\ntree: {tree_dir} — {files} files, {size / 1e6:.1f} MB, {len(tree.symlinks)} symlinks")
        print(f"manifest: {digest}; files hardlinked by the move=False ingest: {linked}/{files}")
        width = max(len(name) for name, _ in rows)
        print(f"{'step'.ljust(width)}  seconds")
        for name, seconds in rows:
            print(f"{name.ljust(width)}  {seconds:8.3f}")
    finally:
        remove_tree(work)  # makes directories writable, never files (blobs share inodes with the tree)


if __name__ == "__main__":
    main()
