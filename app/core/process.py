"""Who this process is, in a form another process can check: is the owner of a run still alive?

A sync run records the process that executes it as ``host:pid:start@place``. The pid alone
says little: after a restart the same pid may belong to another program (a container's
`krsync serve` is pid 1 every time). ``start`` is the kernel's start time of that pid, so a
reused pid shows as a different process. ``place`` is the kernel boot and the pid namespace:
only a process in the same namespace of the same boot can look a pid up at all (two containers
on one host may share a hostname, and each has its own pid 1).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from functools import cache
from pathlib import Path

_PROC = Path("/proc")


@dataclass(frozen=True)
class ProcessId:
    host: str
    pid: int
    #: The process's start time in clock ticks since boot; "" where /proc can't say.
    start: str
    #: The boot id and pid namespace it runs in; "" where /proc can't say.
    place: str

    @property
    def boot(self) -> str:
        return self.place.partition("/")[0]

    def __str__(self) -> str:
        return f"{self.host}:{self.pid}:{self.start}@{self.place}"

    @classmethod
    def parse(cls, text: str | None) -> ProcessId | None:
        """None for a run recorded before owners were (or by something that isn't krsync)."""
        if not text:
            return None
        host, _, rest = text.partition(":")
        pid, _, token = rest.partition(":")
        start, at, place = token.partition("@")
        if not host or not pid.isdigit() or not at:
            return None
        return cls(host=host, pid=int(pid), start=start, place=place)


def _read(path: Path) -> str:
    try:
        return path.read_text().strip()
    except OSError:
        return ""


def _start_of(pid: int) -> str | None:
    """The start time of `pid`, "" if /proc can't say, None if no such process exists."""
    stat = _read(_PROC / str(pid) / "stat")
    if stat:
        # The command name is in parentheses and may hold spaces: count fields after it.
        fields = stat.rpartition(")")[2].split()
        return fields[19] if len(fields) > 19 else ""
    try:
        os.kill(pid, 0)  # no /proc (macOS): the signal 0 still says whether the pid exists
    except ProcessLookupError:
        return None
    except PermissionError:
        return ""
    return ""


def _place() -> str:
    boot = _read(_PROC / "sys/kernel/random/boot_id").replace("-", "")[:12]
    try:
        namespace = os.readlink("/proc/self/ns/pid").strip("pid:[]")
    except OSError:
        namespace = ""
    return f"{boot}/{namespace}" if boot and namespace else ""


@cache
def _this(pid: int) -> ProcessId:
    # Linux caps a hostname at 64 characters; the cap keeps an odd one inside the column.
    return ProcessId(socket.gethostname()[:100], pid, _start_of(pid) or "", _place())


def this_process() -> ProcessId:
    """Keyed by pid, so a forked worker is itself and not its parent."""
    return _this(os.getpid())


def is_alive(owner: ProcessId, *, one_machine: bool = False) -> bool | None:
    """Whether the owner still runs; None when this process can't tell (another host, another
    container), which leaves it to the database's own means (the run's advisory lock).

    ``one_machine``: every process sharing the database runs on this machine (SQLite, a file on
    a local disk), so an owner of another boot died when the machine restarted.
    """
    me = this_process()
    if one_machine and owner.boot and me.boot and owner.boot != me.boot:
        return False
    if owner.host != me.host or not owner.place or owner.place != me.place:
        return None
    start = _start_of(owner.pid)
    if start is None:
        return False
    # An unknown start time on either side can't prove a reuse: count the pid as the owner.
    return not (start and owner.start and start != owner.start)
