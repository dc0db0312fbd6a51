"""The sandbox's init: runs as PID 1 of fresh mount/pid(/net) namespaces.

The runner starts it as ``unshare --mount --pid ... -- <sys.executable> -I -S
-B enter.py <fd>`` where ``<fd>`` is a memfd holding the marshalled spec (see
``launch.py``). This process (the launcher) first sets its own
parent-death SIGKILL (and exits if the daemon is already gone), then joins
the run's cgroups (the spec's ``cgroups``: ``cgroup.procs`` files it writes its
pid into), so every process of the run, tenant code included, is born inside
them; then it forks the namespace's PID 1 (``_init``, with a parent-death
SIGKILL too) and waits for it. For a spec with ``egress`` (a fetch step, in a
network namespace of its own), the launcher, before that fork, brings ``lo`` up and hands
the daemon a listener on the namespace's own 127.0.0.1 (``_egress_listener``,
``egress.py``): the run's one way out. (Should the OOM killer pick the launcher or the
init rather than the command, the whole run dies all the same and the group's
OOM count names the memory limit). The init builds the child's view of
the filesystem, forks the command with dropped privileges, reaps every
orphan, and exits with the command's status, which makes the kernel kill
whatever the command left behind in the pid namespace.

Mount plan (all in the private mount namespace; nothing leaks to the host):

1. a fresh ``/proc`` for the new pid namespace (the daemon is not in it);
2. the overlay (lower read-only, writes land in upper) at its target;
3. detached clones (``open_tree``) of the workspace and each extra bind source,
   and with a ``view`` (``view.py``) of its binds (the toolchain, the ``/etc``
   files, the ``/dev`` nodes) and of the run's own cgroup directories;
4. an empty root-owned tmpfs over each hidden directory and, with a ``view``,
   over every entry of ``/`` it does not keep (a file there covered by
   ``/dev/null``), its files and symlinks written into those tmpfs mounts
   only (never onto the host's filesystem); then a private 1777
   tmpfs at each ``tmpfs`` path, ``size=``-capped by the spec's ``tmp_size``;
5. the clones moved back to their targets (parents first; a file's mount
   point made in the covering tmpfs), so a workspace under a hidden
   directory is visible while its siblings are not;
6. every mount made read-only recursively (``mount_setattr``), then only the
   workspace, the writable binds, the overlay and the tmpfs mounts made
   writable again: whatever the run sees of the host is read-only whatever
   its permission bits say.

Workspace ownership (root mode): before the mounts the workspace is chowned,
recursively and without following symlinks or crossing into other mounts, to
the sandbox uid:gid (and its directories get u+rwx), and so is the overlay's
upper dir. Why: the caller writes
sources as root, and a build must be able to create its outDir wherever the
tenant's config puts it, plus ``node_modules/.vite-temp``/``.tmp`` through the
overlay (whose root directory takes the upper dir's owner). The files stay
uid-owned afterwards; the root daemon can still read and delete them. Only
this workspace is chowned, and no sandboxed process can run in it meanwhile
(one build per workspace; every earlier sandbox's pid namespace is dead).
In user-namespace mode (daemon not root) no chown happens: the daemon's uid is
root inside and already owns its files (directories still get u+rwx).

This module must never:
- import anything but cheap stdlib modules (it runs on every child start;
  ``json`` alone costs ~15 ms, hence ``marshal``);
- exec the command with any capability, without no_new_privs, or (in root
  mode) as root;
- pass anything to the command's environment but the spec's ``env``;
- follow a symlink inside the workspace when chowning (the tenant's previous
  build may have planted one);
- chown a file with more than one link: with the hardlink method the
  workspace's node_modules files are the store's blobs, shared by every
  tenant (chowning one would hand it to the sandbox user), and a link a build
  planted could name any file of the filesystem;
- leave the spec memfd open in the command (it is made non-inheritable), nor
  the egress socketpair end or the proxy's listener (both closed once sent);
- fork anything before it has joined the run's cgroups (a failure to join
  is a setup failure, never a run outside them).

Status protocol: after the spec bytes in the memfd it writes one line,
``X <code>`` (command exited), ``S <signal>`` (command killed) or
``E <message>`` (sandbox setup failed, exit code 125). After a command that
failed, ``X``/``S`` lines end with `` full=<path>[,<path>]`` naming the tmpfs
mounts left (nearly) full, so a filled ``/tmp`` is reported as its limit.
"""

import ctypes
import marshal
import os
import sys
from stat import S_ISDIR, S_ISLNK

# Syscall numbers of the "new mount API" are shared by all architectures.
SYS_OPEN_TREE = 428
SYS_MOVE_MOUNT = 429
SYS_MOUNT_SETATTR = 442

AT_FDCWD = -100
AT_RECURSIVE = 0x8000
OPEN_TREE_CLONE = 1
OPEN_TREE_CLOEXEC = 0o2000000
MOVE_MOUNT_F_EMPTY_PATH = 0x4
MOUNT_ATTR_RDONLY = 0x1

MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8

PR_CAPBSET_DROP = 24
PR_SET_PDEATHSIG = 1
SIGKILL = 9  # not importing signal: start-up time
PR_SET_SECUREBITS = 28
PR_SET_NO_NEW_PRIVS = 38
PR_CAP_AMBIENT = 47
PR_CAP_AMBIENT_CLEAR_ALL = 4
# SECBIT_NOROOT | SECBIT_NOROOT_LOCKED | SECBIT_KEEP_CAPS_LOCKED: uid 0 of a
# user namespace gains no capabilities on execve.
SECUREBITS_NOROOT = 0x1 | 0x2 | 0x20
LINUX_CAPABILITY_VERSION_3 = 0x20080522

SETUP_FAILED = 125
EXEC_FAILED = 127

_libc = ctypes.CDLL(None, use_errno=True)


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _check(result: int, what: str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")
    return result


def _mount(source: str, target: str, fstype: str, flags: int, data: str | None) -> None:
    _check(
        _libc.mount(
            source.encode(), target.encode(), fstype.encode(), ctypes.c_ulong(flags),
            data.encode() if data is not None else None,
        ),
        f"mount {fstype} at {target}",
    )


def _open_tree_clone(path: str) -> int:
    return _check(
        _libc.syscall(
            SYS_OPEN_TREE, AT_FDCWD, path.encode(),
            ctypes.c_uint(OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | AT_RECURSIVE),
        ),
        f"open_tree {path}",
    )


def _move_mount(fd: int, target: str) -> None:
    _check(
        _libc.syscall(
            SYS_MOVE_MOUNT, fd, b"", AT_FDCWD, target.encode(), ctypes.c_uint(MOVE_MOUNT_F_EMPTY_PATH)
        ),
        f"move_mount to {target}",
    )


def _set_readonly(path: str, readonly: bool, recursive: bool) -> None:
    attr = _MountAttr()
    if readonly:
        attr.attr_set = MOUNT_ATTR_RDONLY
    else:
        attr.attr_clr = MOUNT_ATTR_RDONLY
    flags = AT_RECURSIVE if recursive else 0
    _check(
        _libc.syscall(
            SYS_MOUNT_SETATTR, AT_FDCWD, path.encode(), ctypes.c_uint(flags),
            ctypes.byref(attr), ctypes.c_size_t(ctypes.sizeof(attr)),
        ),
        f"mount_setattr {'ro' if readonly else 'rw'} {path}",
    )


def _prctl(option: int, arg2: int = 0) -> None:
    _check(
        _libc.prctl(ctypes.c_int(option), ctypes.c_ulong(arg2), ctypes.c_ulong(0),
                    ctypes.c_ulong(0), ctypes.c_ulong(0)),
        f"prctl {option}",
    )


def _prepare_tree(top: str, owner: tuple[int, int] | None) -> None:
    """lchown (to ``owner``, root mode) everything under ``top`` that is on
    top's filesystem, and give the owner rwx on its directories (file modes
    are the tenant's; a 0555 source dir must still take build outputs).

    os.walk never follows symlinks (followlinks=False) and the chown is
    follow_symlinks=False, so a planted link cannot redirect it. A file with
    more than one link is never chowned: it is a store blob (a hardlinked
    node_modules, read-only to the sandbox uid) or a link a build made.
    """
    dev = os.lstat(top).st_dev

    def fix(path: str) -> None:
        st = os.lstat(path)
        if st.st_dev != dev:
            return
        shared = not S_ISDIR(st.st_mode) and st.st_nlink > 1
        if owner is not None and (st.st_uid, st.st_gid) != owner and not shared:
            os.chown(path, *owner, follow_symlinks=False)
        if S_ISDIR(st.st_mode) and st.st_mode & 0o700 != 0o700:
            os.chmod(path, (st.st_mode & 0o7777) | 0o700)

    fix(top)
    for dirpath, dirnames, filenames in os.walk(top):
        keep = []
        for name in dirnames:
            path = os.path.join(dirpath, name)
            st = os.lstat(path)
            if st.st_dev != dev:
                continue  # another mount: not ours to chown
            fix(path)
            keep.append(name)
        dirnames[:] = keep
        for name in filenames:
            fix(os.path.join(dirpath, name))


def _depth(path: str) -> int:
    return path.rstrip("/").count("/")


def _inside(path: str, tops: list[str]) -> bool:
    return any(path.startswith(top.rstrip("/") + "/") for top in tops)


def _view_exposures(view: dict, spec: dict) -> list[tuple[str, str, bool]]:
    """What the view binds back read-only: its own binds (the toolchain, the
    /etc files, the /dev nodes), and the run's cgroup directories (where node
    reads its memory limit) under the covered /sys."""
    out = [(src, dst, False) for src, dst in view["binds"] if os.path.exists(src)]
    if view.get("own_cgroups"):
        dirs = sorted({os.path.dirname(p) for p in spec.get("cgroups") or ()})
        out += [(d, d, False) for d in dirs if os.path.isdir(d)]
    return out


def _view_covers(view: dict, spec: dict, hide: list[str]) -> tuple[list[str], list[str]]:
    """The directories to cover with an empty tmpfs and the files to cover with
    /dev/null: ``hide``, every entry of / the view does not keep (but /proc,
    the run's own, and the spec's tmpfs paths), and the view's own ``hide``.
    Symlinks are left: they resolve into the view."""
    keep = set(view["keep"]) | {"proc"}
    dirs, files = list(hide), []
    candidates = ["/" + name for name in sorted(os.listdir("/")) if name not in keep]
    for path in candidates + list(view["hide"]):
        if path in spec["tmpfs"]:
            continue
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            continue
        if S_ISDIR(mode):
            dirs.append(path)
        elif not S_ISLNK(mode):
            files.append(path)
    return dirs, files


def _view_populate(view: dict, covered: list[str]) -> None:
    """The view's written files and symlinks, made only in the tmpfs mounts it
    covered (never on the host's filesystem)."""
    for path, content in view["files"]:
        if _inside(path, covered) and not os.path.lexists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
            try:
                os.write(fd, content)
            finally:
                os.close(fd)
    for path, target in view["links"]:
        if _inside(path, covered) and not os.path.lexists(path):
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.symlink(target, path)


def setup(spec: dict) -> list[str]:
    """Build the namespace's filesystem view (see the module docstring);
    returns the private tmpfs mounts made."""
    userns = spec["userns"]
    uid, gid = spec["uid"], spec["gid"]
    workspace = spec["workspace"]
    overlay = spec["overlay"]

    owner = None if userns else (uid, gid)
    _prepare_tree(workspace, owner)

    _mount("proc", "/proc", "proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None)

    writable: list[str] = []
    mounted: list[str] = []
    if overlay is not None:
        for key in ("upper", "work", "target"):
            os.makedirs(overlay[key], exist_ok=True)
        _prepare_tree(overlay["upper"], owner)
        _mount(
            "overlay", overlay["target"], "overlay", MS_NOSUID | MS_NODEV,
            f"lowerdir={overlay['lower']},upperdir={overlay['upper']},workdir={overlay['work']}",
        )
        writable.append(overlay["target"])

    exposures = [(workspace, workspace, True)] + [tuple(b) for b in spec["binds"]]
    view = spec.get("view")
    hide, masked = list(spec["hide"]), []
    if view is not None:
        exposures += _view_exposures(view, spec)
        hide, masked = _view_covers(view, spec, hide)
    clones = [(_open_tree_clone(src), dst, rw, os.path.isdir(src)) for src, dst, rw in exposures]
    masks = [(_open_tree_clone("/dev/null"), path) for path in masked]

    covered: list[str] = []
    for hidden in hide:
        if os.path.isdir(hidden):
            _mount("tmpfs", hidden, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, "mode=0755,size=64k")
            covered.append(hidden)
    for fd, path in masks:
        _move_mount(fd, path)
        os.close(fd)
    if view is not None:
        _view_populate(view, covered)
    tmp_size = spec.get("tmp_size") or 0
    tmp_data = f"mode=1777,size={tmp_size}" if tmp_size else "mode=1777"
    for path in spec["tmpfs"]:
        if not os.path.isdir(path) and _inside(path, covered):
            os.makedirs(path)  # /dev/shm in the view's /dev
        if os.path.isdir(path):
            _mount("tmpfs", path, "tmpfs", MS_NOSUID | MS_NODEV, tmp_data)
            writable.append(path)
            mounted.append(path)

    for fd, dst, rw, is_dir in sorted(clones, key=lambda c: _depth(c[1])):
        if is_dir:
            os.makedirs(dst, exist_ok=True)
        elif not os.path.lexists(dst):  # a file's mount point (the view's /etc, /dev)
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            os.close(os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644))
        _move_mount(fd, dst)
        os.close(fd)

    _set_readonly("/", True, recursive=True)
    for path in writable:
        _set_readonly(path, False, recursive=False)
    for _src, dst, rw in exposures:
        if rw:
            _set_readonly(dst, False, recursive=False)
    return mounted


def drop_privileges(spec: dict) -> None:
    """Leave no way back to privilege: empty bounding/ambient/inheritable sets,
    no_new_privs, and in root mode a real unprivileged uid."""
    last_cap = int(open("/proc/sys/kernel/cap_last_cap").read())
    for cap in range(last_cap + 1):
        _prctl(PR_CAPBSET_DROP, cap)
    _prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_CLEAR_ALL)
    if spec["userns"]:
        _prctl(PR_SET_SECUREBITS, SECUREBITS_NOROOT)
    else:
        os.setgroups([])
        os.setresgid(spec["gid"], spec["gid"], spec["gid"])
        os.setresuid(spec["uid"], spec["uid"], spec["uid"])
    header = _CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (_CapData * 2)()
    _check(_libc.capset(ctypes.byref(header), data), "capset")
    _prctl(PR_SET_NO_NEW_PRIVS, 1)


def _run_child(spec: dict) -> None:
    """In the forked child: drop privileges and exec; never returns."""
    try:
        os.umask(0o022)
        drop_privileges(spec)
        os.chdir(spec["workspace"])
    except BaseException as exc:  # noqa: BLE001 - must never fall back into init's code
        os.write(2, f"sandbox: dropping privileges failed: {exc}\n".encode())
        os._exit(SETUP_FAILED)
    argv = spec["argv"]
    env = spec["env"]
    err: BaseException = FileNotFoundError(2, "not found in PATH")
    for path in _candidates(argv[0], env):
        try:
            os.execve(path, argv, env)
        except OSError as exc:  # keep looking, like execvp; report EACCES over ENOENT
            if exc.errno != 2:
                err = exc
    os.write(2, f"sandbox: cannot execute {argv[0]!r}: {err}\n".encode(errors="replace"))
    os._exit(EXEC_FAILED)


def _candidates(name: str, env: dict) -> list[str]:
    """execvp's search against the child's own PATH. Not os.execvpe: it
    imports modules lazily, and the interpreter's stdlib may be unreadable
    once privileges are dropped."""
    if "/" in name:
        return [name]
    dirs = env.get("PATH", "/usr/bin:/bin").split(":")
    return [os.path.join(d or ".", name) for d in dirs]


def _write_file(path: str, value: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CLOEXEC)
    try:
        os.write(fd, value.encode())
    finally:
        os.close(fd)


SIOCGIFFLAGS = 0x8913
SIOCSIFFLAGS = 0x8914
IFF_UP = 0x1


def _egress_listener(egress: dict) -> None:
    """For a run whose one way out is the daemon's egress proxy (``egress.py``),
    in the launcher, inside the run's fresh network namespace and before
    anything of the run exists: bring ``lo`` up, listen on its
    ``127.0.0.1:<port>`` and send the listening socket to the daemon over the
    inherited socketpair end (``SCM_RIGHTS``); keep neither. ``_socket`` and
    ``fcntl`` (C modules, well under a millisecond) are imported here only."""
    import _socket
    import fcntl

    channel = int(egress["fd"])
    try:
        ctl = _socket.socket(_socket.AF_INET, _socket.SOCK_DGRAM)
        try:
            name = b"lo".ljust(16, b"\0")
            ifreq = fcntl.ioctl(ctl.fileno(), SIOCGIFFLAGS, name + bytes(24))
            flags = int.from_bytes(ifreq[16:18], sys.byteorder) | IFF_UP
            fcntl.ioctl(ctl.fileno(), SIOCSIFFLAGS, name + flags.to_bytes(2, sys.byteorder) + bytes(22))
        finally:
            ctl.close()
        listener = _socket.socket(_socket.AF_INET, _socket.SOCK_STREAM)
        try:
            listener.bind(("127.0.0.1", int(egress["port"])))
            listener.listen(128)
            sender = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, channel)
            channel = -1  # the socket object owns it now
            try:
                fd = listener.fileno().to_bytes(4, sys.byteorder)
                sender.sendmsg([b"L"], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fd)])
            finally:
                sender.close()
        finally:
            listener.close()
    except OSError as exc:
        raise OSError(exc.errno, f"cannot set up the run's way to the registry: {exc.strerror or exc}") from None
    finally:
        if channel >= 0:
            os.close(channel)


def _full(paths: list[str]) -> str:
    """`` full=...`` for the tmpfs mounts with (almost) no free space left."""
    full = []
    for path in paths:
        try:
            st = os.statvfs(path)
        except OSError:
            continue
        if st.f_blocks and st.f_bavail * st.f_frsize < (64 << 10):
            full.append(path)
    return " full=" + ",".join(full) if full else ""


def _init(spec: dict, report) -> None:
    """PID 1 of the new pid namespace; never returns."""
    try:
        _prctl(PR_SET_PDEATHSIG, SIGKILL)
        tmpfs = setup(spec)
        pid = os.fork()
    except BaseException as exc:  # noqa: BLE001 - reported to the runner, not raised
        report(f"E {exc}")
        os.write(2, f"sandbox: setup failed: {exc}\n".encode(errors="replace"))
        os._exit(SETUP_FAILED)
    if pid == 0:
        _run_child(spec)

    # PID 1 duties: reap every orphan until the command itself exits. Our
    # exit then makes the kernel kill whatever is left in the namespace.
    while True:
        wpid, status = os.waitpid(-1, 0)
        if wpid == pid:
            break
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        report(f"S {sig}{_full(tmpfs)}")
        os._exit(128 + sig)
    code = os.waitstatus_to_exitcode(status)
    report(f"X {code}{_full(tmpfs) if code else ''}")
    os._exit(code)


def main() -> None:
    """The launcher half: ``unshare --pid`` (without --fork) exec'd us, so our
    first child is the namespace's PID 1. We stay outside, wait for it and
    exit with its code: the runner's process is always this one, and killing
    our child (the init) kills the whole namespace before we can exit."""
    fd = int(sys.argv[1])
    os.set_inheritable(fd, False)
    os.umask(0o022)  # directories made for mount points must be traversable by the uid
    chunks = []
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    data = b"".join(chunks)
    end = len(data)
    spec = marshal.loads(data)

    def report(line: str) -> None:
        os.pwrite(fd, line.encode(errors="replace")[:4000] + b"\n", end)

    try:
        # Dies with the daemon (the thread that forked us: the daemon's event
        # loop); if the daemon died before this line, getppid() tells.
        _prctl(PR_SET_PDEATHSIG, SIGKILL)
        if spec.get("parent") and os.getppid() != spec["parent"]:
            raise OSError("the daemon exited while the sandbox was starting")
        for path in spec.get("cgroups") or ():
            try:
                _write_file(path, str(os.getpid()))
            except OSError as exc:
                raise OSError(exc.errno, f"cannot join the run's cgroup ({path}): {exc.strerror}") from None
        if spec.get("egress"):
            _egress_listener(spec["egress"])
    except OSError as exc:
        report(f"E {exc.strerror or exc}")
        os.write(2, f"sandbox: setup failed: {exc}\n".encode(errors="replace"))
        os._exit(SETUP_FAILED)

    try:
        pid = os.fork()
    except OSError as exc:
        report(f"E fork: {exc}")
        os._exit(SETUP_FAILED)
    if pid == 0:
        _init(spec, report)
    _wpid, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        os._exit(128 + os.WTERMSIG(status))
    os._exit(os.waitstatus_to_exitcode(status))


if __name__ == "__main__":
    main()
