"""What a sandboxed run sees of the host: the minimal view (cached/sandbox/view.py).

Real namespaces, real cgroups, real node: a probe walks the sandbox's ``/``
and reports every entry and whether it can be read; the secrets (a file
beside the workspace, a token file and its neighbour, a daemon's log, an npm
cache, the checkout, /root, /home, /var/log) sit outside /tmp, under
/var/tmp, so the sandbox's private /tmp is not what hides them. Then the
same through a daemon: a tiny build probes from inside its build step, and
examples/hello installs and builds with Vite.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from cached.execution.environment import fingerprint
from cached.sandbox import RunLimits, Sandbox, SandboxSpec
from cached.sandbox.view import DEV_LINKS, DEV_NODES, ETC, ETC_WRITTEN, KEEP, minimal_view
from sbx_support import BASE_ENV, ListSink, run

REPO = Path(__file__).resolve().parents[2]
NODE = shutil.which("node") or "node"
NPM = shutil.which("npm") or "npm"
ETC_NAMES = {n.split("/")[0] for n in ETC} | set(ETC_WRITTEN)
DEV_NAMES = set(DEV_NODES) | {n for n, _ in DEV_LINKS} | {"shm"}

# Walks / (not into the kept roots, /proc or the workspace) and tries every file;
# runs named paths; reports what node itself reads (CPUs, its cgroup's memory limit).
WALK = r"""
import { closeSync, lstatSync, openSync, readdirSync, readSync, readFileSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import os from "node:os";
const cfg = JSON.parse(process.env.VIEW_PROBE);
const entries = [];
const skip = new Set([...cfg.keep.map((n) => "/" + n), "/proc", cfg.workspace]);
function tryRead(p) {
  try { const fd = openSync(p, "r"); const buf = Buffer.alloc(64); const n = readSync(fd, buf, 0, 64, null); closeSync(fd); return "ok:" + buf.subarray(0, n).toString("latin1"); }
  catch (e) { return "error:" + e.code; }
}
function walk(dir, depth) {
  let names;
  try { names = readdirSync(dir); } catch (e) { entries.push({ path: dir, type: "unlistable", error: e.code }); return; }
  for (const name of names.sort()) {
    const p = (dir === "/" ? "" : dir) + "/" + name;
    const st = lstatSync(p);
    const type = st.isDirectory() ? "dir" : st.isFile() ? "file" : st.isSymbolicLink() ? "link" : st.isCharacterDevice() ? "char" : "other";
    const entry = { path: p, type };
    if (type === "file" || type === "char") entry.read = type === "char" && /\/(random|urandom|zero|tty)$/.test(p) ? "skipped" : tryRead(p);
    entries.push(entry);
    if (type === "dir" && !skip.has(p) && depth < 14) walk(p, depth + 1);
  }
}
walk("/", 0);
const probes = Object.fromEntries(cfg.probes.map((p) => [p, tryRead(p)]));
let npm;
try { npm = execFileSync("npm", ["--version"], { encoding: "utf8" }).trim(); } catch (e) { npm = "error:" + e.message; }
writeFileSync("report.json", JSON.stringify({
  entries, probes, npm, cpus: os.cpus().length, constrained: process.constrainedMemory(),
  passwd: readFileSync("/etc/passwd", "utf8"), cgroup: readFileSync("/proc/self/cgroup", "utf8"),
}));
"""


def _ancestors(path: str) -> set[str]:
    parts = path.strip("/").split("/")
    return {"/" + "/".join(parts[:i]) for i in range(1, len(parts) + 1)}


def check_view(report: dict, workspace: Path, label: str | None = None) -> None:
    """Everything the run listed is the minimal view, and nothing it read is the host's but that."""
    ws = str(workspace)
    ws_path = _ancestors(ws)
    run_dirs = [e["path"] for e in report["entries"] if label and e["type"] == "dir" and os.path.basename(e["path"]).startswith(label + "-")]
    sys_ok = set().union(*(_ancestors(d) for d in run_dirs)) if run_dirs else set()
    wrong = []
    for e in report["entries"]:
        path, parts = e["path"], e["path"].strip("/").split("/")
        top = parts[0]
        if top in KEEP or top == "proc" or path in ws_path or path in ("/etc", "/dev", "/sys"):
            continue
        if top == "etc":
            ok = len(parts) > 1 and parts[1] in ETC_NAMES and (parts[1] != "ssl" or len(parts) == 2 or parts[2] in ("certs", "openssl.cnf"))
        elif top == "dev":
            ok = len(parts) == 2 and parts[1] in DEV_NAMES or parts[1:2] == ["shm"]
        elif top == "sys":
            ok = path in sys_ok or any(path.startswith(d + "/") for d in run_dirs)
        else:
            # a covered entry of /: an empty directory, or a file covered by /dev/null
            ok = len(parts) == 1 and (e["type"] == "dir" or e.get("read") == "ok:")
        if not ok:
            wrong.append(e)
    assert not wrong, f"the run saw more than the minimal view: {wrong[:20]}"
    listed = {e["path"] for e in report["entries"]}
    assert {f"/etc/{n}" for n in ETC_WRITTEN} <= listed and "/etc/ssl/certs" in listed
    assert {"/dev/null", "/dev/zero", "/dev/urandom", "/dev/shm", "/dev/fd"} <= listed
    reads = {e["path"]: e.get("read", "") for e in report["entries"]}
    assert reads["/dev/null"] == "ok:" and reads["/etc/hosts"].startswith("ok:127.0.0.1")
    users = [line.split(":")[0] for line in report["passwd"].splitlines()]
    assert set(users) <= {"root", "nobody", "sandbox"}, users  # not the host's users
    assert report["npm"][:1].isdigit(), report["npm"]
    assert report["cpus"] >= 1


@pytest.fixture
def base() -> Iterator[Path]:
    """Secrets outside /tmp (the sandbox's /tmp is private anyway), and a workspace beside them."""
    path = Path(tempfile.mkdtemp(prefix="cached-view-", dir="/var/tmp"))
    try:
        path.chmod(0o755)
        (path / "secret.txt").write_text("VIEW-SECRET\n")
        (path / "conf").mkdir()
        (path / "conf" / "tokens").write_text("build:*:view-token-0123456789abcdef\n")
        (path / "conf" / "beside.env").write_text("R2_SECRET=VIEW-SECRET\n")
        index = path / "npm-cache" / "_cacache" / "index-v5" / "aa" / "bb"
        index.mkdir(parents=True)
        (index / "entry").write_text("another tenant's package\n")
        (path / "daemon.log").write_text("VIEW-SECRET in the daemon's log\n")
        (path / "work" / "t" / "b" / "src").mkdir(parents=True)
        (path / "work" / "t" / "b" / "src" / "secret.ts").write_text("export const s = 'VIEW-SECRET';\n")
        (path / "work" / "t" / "a").mkdir(parents=True)
        for p in [path, *path.rglob("*")]:
            p.chmod(0o755 if p.is_dir() else 0o644)
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def secrets(base: Path) -> list[str]:
    host = [str(REPO / "cached" / "__init__.py"), str(REPO / "cached" / "sandbox" / "enter.py"), "/etc/shadow", "/etc/hostname"]
    for d in ("/root", "/home", "/var/log", "/srv", "/opt", "/run"):
        try:
            host += [str(p) for p in sorted(Path(d).iterdir())[:5]]
        except OSError:
            pass
    return [
        str(base / "secret.txt"), str(base / "conf" / "tokens"), str(base / "conf" / "beside.env"),
        str(base / "npm-cache" / "_cacache" / "index-v5" / "aa" / "bb" / "entry"), str(base / "daemon.log"),
        str(base / "work" / "t" / "b" / "src" / "secret.ts"), *host,
    ]


def test_a_run_sees_the_system_the_toolchain_a_minimal_etc_and_dev_and_its_workspace(limited: Sandbox, base: Path) -> None:
    ws = base / "work" / "t" / "a"
    (ws / "walk.mjs").write_text(WALK)
    (ws / "src").mkdir()
    (ws / "src" / "main.ts").write_text("export const a = 1;\n")
    probes = secrets(base) + [str(ws / "src" / "main.ts")]
    view = minimal_view(node_path=NODE, npm_path=NPM)
    limits = RunLimits(memory_bytes=768 << 20)
    env = {**BASE_ENV, "HOME": "/tmp", "VIEW_PROBE": json.dumps({"keep": list(KEEP), "workspace": str(ws), "probes": probes})}
    spec = SandboxSpec(argv=[NODE, "walk.mjs"], workspace=ws, env=env, timeout=60, limits=limits, label="viewprobe", view=view)
    sink = ListSink()
    result = run(limited.run(spec, sink))
    assert result.returncode == 0, sink.lines
    report = json.loads((ws / "report.json").read_text())
    check_view(report, ws, label="viewprobe")
    leaked = {p: r for p, r in report["probes"].items() if r.startswith("ok:") and r != "ok:" and p != str(ws / "src" / "main.ts")}
    assert not leaked, leaked
    assert report["probes"][str(ws / "src" / "main.ts")] == "ok:export const a = 1;\n"
    # /sys holds the run's own cgroup alone, where node reads the limit it sizes its heap by
    assert report["constrained"] == 768 << 20
    assert any(e["path"].endswith(("/memory.limit_in_bytes", "/memory.max")) for e in report["entries"])
    # the host's own files are untouched: nothing was made on them for the view's mount points
    assert sorted(p.name for p in base.iterdir()) == ["conf", "daemon.log", "npm-cache", "secret.txt", "work"]


def test_a_toolchain_outside_the_system_is_shown_and_nothing_beside_it(limited: Sandbox, base: Path) -> None:
    """node and npm under a hidden directory (as /opt/node or ~/.nvm): their install is bound back,
    the links on their way are made again, the rest of that directory stays covered."""
    tc = base / "toolchain"
    pkg = tc / "lib" / "node_modules" / "fakenpm"
    (pkg / "bin").mkdir(parents=True)
    (pkg / "lib").mkdir()
    (pkg / "lib" / "main.js").write_text("console.log('fake npm ' + require('../package.json').version);\n")
    (pkg / "package.json").write_text('{"name": "fakenpm", "version": "7.7.7"}\n')
    (pkg / "bin" / "cli.js").write_text("#!/usr/bin/env node\nrequire('../lib/main.js');\n")
    (pkg / "bin" / "cli.js").chmod(0o755)
    (tc / "bin").mkdir()
    (tc / "bin" / "node").symlink_to(os.path.realpath(NODE))
    (tc / "bin" / "fakenpm").symlink_to("../lib/node_modules/fakenpm/bin/cli.js")
    (tc / "secret.txt").write_text("VIEW-SECRET\n")
    view = minimal_view(node_path=str(tc / "bin" / "node"), npm_path=str(tc / "bin" / "fakenpm"))
    assert (str(pkg), str(pkg)) in view.binds
    ws = base / "work" / "t" / "a"
    script = f"fakenpm; node -e 'console.log(process.version)'; ls {tc} {tc}/bin; cat {tc}/secret.txt {base}/secret.txt 2>&1; true"
    spec = SandboxSpec(argv=["sh", "-c", script], workspace=ws, env={**BASE_ENV, "PATH": f"{tc}/bin:/usr/bin:/bin"}, timeout=30, view=view)
    sink = ListSink()
    assert run(limited.run(spec, sink)).returncode == 0, sink.lines
    out = sink.of("stdout")
    assert out[0] == "fake npm 7.7.7", out
    assert out[1].startswith("v")
    assert "VIEW-SECRET" not in "\n".join(out)
    assert sorted(out[2:]) == sorted([f"{tc}:", "bin", "lib", "", f"{tc}/bin:", "fakenpm", "node", *[line for line in out[2:] if "No such file" in line]])
    assert len([line for line in out if "No such file" in line]) == 2


def test_the_view_is_in_the_action_key_and_the_same_for_every_toolchain_path() -> None:
    one = minimal_view(node_path=NODE, npm_path=NPM)
    other = minimal_view(node_path="/opt/elsewhere/bin/node", npm_path="/opt/elsewhere/bin/npm")
    assert one.fingerprint and one.fingerprint == other.fingerprint  # a moved toolchain is the same view
    assert minimal_view(uid=1234, gid=1234).fingerprint != one.fingerprint  # the written /etc/passwd differs
    base = {"PATH": "/usr/bin", "TZ": "UTC"}
    assert fingerprint(base, one.fingerprint) != fingerprint(base)
    assert fingerprint(base, one.fingerprint) == fingerprint(dict(base), other.fingerprint)


USERNS_DRIVER = textwrap.dedent(
    """
    import asyncio, json, sys
    from pathlib import Path
    from cached.sandbox import Sandbox, SandboxSpec
    from cached.sandbox.view import minimal_view

    class Sink:
        def __init__(self): self.out = []
        def line(self, stream, text): self.out.append((stream, text))

    async def main():
        base = Path(sys.argv[1])
        sb = Sandbox("auto")
        script = (f"id -u; ls /etc; echo --; ls /dev; echo --; ls -A /root /home /sys {base}; echo --;"
                  f" cat {base}/secret.txt 2>&1; node -e 'console.log(1 + 1)'")
        spec = SandboxSpec(argv=["sh", "-c", script], workspace=base / "work" / "t" / "a", env={"PATH": "/usr/bin:/bin"},
                           timeout=30, view=minimal_view(node_path=sys.argv[2], npm_path=sys.argv[3]))
        sink = Sink()
        result = await sb.run(spec, sink)
        print(json.dumps({"caps": sb.capabilities.detail, "rc": result.returncode, "tail": result.tail,
                          "stdout": [t for s, t in sink.out if s == "stdout"]}))

    asyncio.run(main())
    """
)


def test_the_view_in_user_namespace_mode(base: Path) -> None:
    """The daemon-not-root path makes the same view (its tmpfs and binds in a user namespace)."""
    setpriv, python = shutil.which("setpriv"), "/usr/bin/python3"
    if os.geteuid() != 0 or setpriv is None or not os.access(python, os.X_OK):
        pytest.skip("needs root, setpriv and /usr/bin/python3 to run a driver as uid 65534")
    if (REPO.stat().st_mode & 0o005) != 0o005:
        pytest.skip(f"{REPO} is not readable by uid 65534")
    for p in [base, *base.rglob("*")]:
        os.chown(p, 65534, 65534, follow_symlinks=False)
    proc = subprocess.run(
        [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", python, "-c", USERNS_DRIVER, str(base), NODE, NPM],
        capture_output=True, text=True, timeout=60, cwd="/", env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO)},
    )
    if proc.returncode != 0 and ("user namespace" in proc.stderr or "older" in proc.stderr):
        pytest.skip(f"user-namespace mode unavailable: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["rc"] == 0, report
    out = report["stdout"]
    assert "user namespace" in report["caps"] and out[0] == "0"
    cut = [i for i, line in enumerate(out) if line == "--"]
    etc, dev, covered, rest = out[1:cut[0]], out[cut[0] + 1:cut[1]], out[cut[1] + 1:cut[2]], out[cut[2] + 1:]
    assert set(etc) <= ETC_NAMES and {"passwd", "group", "hosts", "ssl"} <= set(etc), out
    assert set(dev) <= DEV_NAMES and {"null", "zero", "urandom", "shm", "fd"} <= set(dev), out
    assert [line for line in covered if line and not line.endswith(":")] == ["work"], out  # /root, /home, /sys: empty
    assert "No such file" in rest[0] and rest[1] == "2", out  # the secret beside the workspace; node runs


# ---------------------------------------------------------------- through a daemon

PROBE_BUILD = r"""
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
const paths = JSON.parse(process.env.PROBE_PATHS ?? "[]");
const tryRead = (p) => { try { return "ok:" + readFileSync(p, "latin1").slice(0, 40); } catch (e) { return "error:" + e.code; } };
const list = (d) => { try { return readdirSync(d).sort(); } catch (e) { return ["error:" + e.code]; } };
mkdirSync("dist", { recursive: true });
writeFileSync("dist/index.html", JSON.stringify({
  probes: Object.fromEntries(paths.map((p) => [p, tryRead(p)])),
  etc: list("/etc"), dev: list("/dev"), root: list("/"), home: list("/root"), work: list(paths.at(-1)),
}));
"""


@pytest.fixture
def view_daemon(base: Path, npm_cache: Path) -> Iterator[object]:
    from support import DaemonProcess

    proc = DaemonProcess(base / "root", npm_cache, args=["--token-file", str(base / "conf" / "tokens")]).start()
    try:
        yield proc
    finally:
        proc.stop()


def test_builds_through_a_daemon_see_nothing_of_it_and_vite_still_builds(view_daemon, base: Path, npm_cache: Path) -> None:  # type: ignore[no-untyped-def]
    from cached_client import Client
    from cached.v1 import tree_pb2
    from support import EXAMPLES, app_files, tiny_app

    daemon = view_daemon
    root = base / "root"
    probes = [*secrets(base), str(daemon.log_path), str(npm_cache), str(root / "index" / "data.mdb"), str(root / "work")]
    files = tiny_app(PROBE_BUILD)
    with Client(daemon.address, token="view-token-0123456789abcdef") as client:
        result = client.build(files=files, app="probe", tenant="t1", env={"PROBE_PATHS": json.dumps(probes)})
        out = next(o for o in result.outputs if o.path == "index.html")
        report = json.loads(client.read_blob("t1", tree_pb2.Digest(hash=out.hash, size=out.size, function=tree_pb2.BLAKE3)))
        hello = client.build(files=app_files(EXAMPLES / "hello"), app="hello", tenant="t1")
    leaked = {p: r for p, r in report["probes"].items() if r.startswith("ok:") and r != "ok:"}
    assert not leaked, leaked
    assert set(report["etc"]) <= ETC_NAMES and "passwd" in report["etc"], report["etc"]
    assert set(report["dev"]) <= DEV_NAMES, report["dev"]
    assert report["home"] == []
    assert report["work"] == ["t1"]  # the daemon's work dir holds only the path down to this build's workspace
    # examples/hello: npm ci (through the registry, with the daemon's npm cache) and vite build
    paths = {o.path for o in hello.outputs}
    assert "index.html" in paths and any(p.startswith("assets/") and p.endswith(".js") for p in paths), paths
