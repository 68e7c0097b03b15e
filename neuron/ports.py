"""Who listens on a TCP port, read from /proc (Linux): for `neuron up`'s checks before it
starts anything, and for health checks that prove the answering process is its own.

A listening socket appears in /proc/net/tcp{,6} with its inode; the processes holding it
have a `socket:[inode]` link under /proc/<pid>/fd. A supervised child runs in its own
session (start_new_session), so "ours" means: held by a process whose session id is the
child's pid. Elsewhere than Linux (no /proc) nothing can be told and ownership is not checked.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterable
from pathlib import Path

PROC = Path("/proc")
LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's `st` column


def proc_available() -> bool:
    return (PROC / "net" / "tcp").exists()


def listening_inodes(port: int) -> set[int]:
    """Inodes of the sockets listening on `port` (any address, IPv4 or IPv6)."""
    inodes: set[int] = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in (PROC / "net" / table).read_text().splitlines()[1:]:
                cols = line.split()
                if len(cols) > 9 and cols[3] == LISTEN and int(cols[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(int(cols[9]))
    return inodes


def holders(inodes: set[int], among: Iterable[int] | None = None) -> set[int]:
    """Pids holding any of these socket inodes, looked for `among` these pids (default: all
    we may inspect, i.e. our own user's)."""
    wanted = {f"socket:[{i}]" for i in inodes}
    pids: set[int] = set()
    if not wanted:
        return pids
    candidates = among if among is not None else (int(e.name) for e in PROC.iterdir() if e.name.isdigit())
    for pid in candidates:
        with contextlib.suppress(OSError):
            for fd in (PROC / str(pid) / "fd").iterdir():
                with contextlib.suppress(OSError):
                    if os.readlink(fd) in wanted:
                        pids.add(pid)
                        break
    return pids


def session_members(session: int) -> list[int]:
    """The pids of a session (cheap: one stat file each, no fd listing)."""
    return [int(e.name) for e in PROC.iterdir() if e.name.isdigit() and session_of(int(e.name)) == session]


def session_of(pid: int) -> int | None:
    """The session id of `pid` (field 6 of /proc/<pid>/stat), None if it is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    return int(stat.rsplit(")", 1)[1].split()[3])


def command_of(pid: int) -> str:
    """A short description of a process: its command line, cut."""
    try:
        argv = (PROC / str(pid) / "cmdline").read_bytes().split(b"\0")
    except OSError:
        return f"pid {pid}"
    words = [a.decode(errors="replace") for a in argv if a]
    if not words:
        return f"pid {pid}"
    # The program's name without its folder: the line must stay one line.
    return f"pid {pid} ({' '.join([Path(words[0]).name, *words[1:]])[:60]})"


def owned_by_session(port: int, session: int) -> bool:
    """Whether a process of `session` listens on `port` (True where /proc cannot tell)."""
    if not proc_available():
        return True
    inodes = listening_inodes(port)
    return bool(inodes) and bool(holders(inodes, among=session_members(session)))


def is_free(host: str, port: int) -> bool:
    """Whether we could bind `host:port` now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def taken_by(port: int) -> str:
    """What listens on `port`, as far as we can tell."""
    if not proc_available():
        return "another process"
    inodes = listening_inodes(port)
    pids = holders(inodes)
    if pids:
        return ", ".join(command_of(p) for p in sorted(pids)[:2])
    # Listed but no fd we may read: another user's process (or one outside our namespace).
    return "a process of another user" if inodes else "another process"


def is_listening(port: int) -> bool:
    """Whether anything listens on `port` now."""
    if proc_available():
        return bool(listening_inodes(port))
    return not is_free("127.0.0.1", port)
