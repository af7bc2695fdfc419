"""Process-tree queries from /proc, to know when a target's connections have all ended.

The local target's processes live in their own pid namespace, but the host's /proc still shows
them with host pids and parents, which is all that is needed here.
"""

from __future__ import annotations

import os
import time


def _ppid_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: split after the last ')'.
        fields = stat.rsplit(b")", 1)[1].split()
        if fields[0] == b"Z":
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
    return children


def children_of(pid: int) -> list[int]:
    """Live (non-zombie) children of pid."""
    return sorted(_ppid_map().get(pid, []))


def descendants_of(pid: int) -> list[int]:
    """Every live process below pid."""
    tree = _ppid_map()
    found: list[int] = []
    todo = list(tree.get(pid, []))
    while todo:
        p = todo.pop()
        found.append(p)
        todo.extend(tree.get(p, []))
    return sorted(found)


def wait_no_descendants(pid: int, deadline: float, settle: float) -> bool:
    """Poll until `pid` has had no live descendant for `settle` seconds (True), or `deadline`
    (a time.monotonic() value) passes (False): every connection of a listener has ended."""
    quiet_since: float | None = None
    while time.monotonic() < deadline:
        if descendants_of(pid):
            quiet_since = None
        elif quiet_since is None:
            quiet_since = time.monotonic()
        elif time.monotonic() - quiet_since >= settle:
            return True
        time.sleep(0.01)
    return False
