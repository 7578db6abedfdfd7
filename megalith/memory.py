"""How much memory this process may still take, and sizes written for people.

Checks compare what a step needs (a table read into memory, a model's weights) with
`available_bytes()` before the step allocates anything, so an impossible request is one line
naming the size instead of an allocator's traceback, or a machine driven into swap.
"""

from __future__ import annotations

import os
import resource
from pathlib import Path


def available_bytes() -> int:
    """Bytes this process can still allocate: the least of the memory the system has available
    (Linux MemAvailable, else free pages), a cgroup (container) limit, and what the process's
    own address-space limit (RLIMIT_AS) leaves."""
    limits = [_system_available()]
    cgroup = _cgroup_left()
    if cgroup is not None:
        limits.append(cgroup)
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        limits.append(max(0, soft - _address_space_used()))
    return max(0, min(limits))


def format_bytes(size: float) -> str:
    """'1.5 GB', '320 MB', '12 kB' (powers of 1000, as disks and `ls -lh --si` count)."""
    for unit in ("B", "kB", "MB", "GB", "TB", "PB"):
        if abs(size) < 1000 or unit == "PB":
            return f"{size:.0f} {unit}" if unit in ("B", "kB") else f"{size:.1f} {unit}"
        size /= 1000
    raise AssertionError("unreachable")


def _system_available() -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass  # not Linux: the free pages below are a lower bound
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")


def _cgroup_left() -> int | None:
    """What a cgroup v2 memory limit leaves (None when there is none)."""
    folder = Path("/sys/fs/cgroup")
    try:
        limit = (folder / "memory.max").read_text().strip()
        if limit == "max":
            return None
        return int(limit) - int((folder / "memory.current").read_text().strip())
    except (OSError, ValueError):
        return None


def _address_space_used() -> int:
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")
