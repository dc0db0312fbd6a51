"""Runs a command that is sent a signal when the process that started it ends, however it ends (SIGKILL included).

    python -I -S pdeathsig.py PARENT_PID SIGNAL COMMAND [ARG...]

Linux's ``PR_SET_PDEATHSIG`` is set, then ``COMMAND`` replaces this process
(the setting survives exec). Python's ``preexec_fn`` could set it too, but it
is unsafe in a process with threads (the CLI runs gRPC's), so this small
launcher does it instead; it imports nothing of cached (``-S``: nor of
site-packages). ``PARENT_PID`` is the starting process: if it ended before the
setting took effect, no signal will come, and the command is not run.

The signal follows the *thread* that started the launcher: start it from one
that lives as long as the command should (the main thread). Elsewhere than
Linux the command just runs.
"""

from __future__ import annotations

import os
import sys

PR_SET_PDEATHSIG = 1


def main(argv: list[str]) -> int:
    if len(argv) < 4:
        print("usage: pdeathsig.py PARENT_PID SIGNAL COMMAND [ARG...]", file=sys.stderr)
        return 2
    parent, sig, command = int(argv[1]), int(argv[2]), argv[3:]
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) != 0:
            print(f"pdeathsig: prctl(PR_SET_PDEATHSIG): {os.strerror(ctypes.get_errno())}", file=sys.stderr)
            return 1
        if os.getppid() != parent:  # the parent is already gone: its death signal was never coming
            return 1
    try:
        os.execvp(command[0], command)
    except OSError as e:
        print(f"pdeathsig: cannot run {command[0]}: {e.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv))
