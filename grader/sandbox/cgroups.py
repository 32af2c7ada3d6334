"""Killing everything a worker started: pids cgroups and the child subreaper."""

from __future__ import annotations

import atexit
import os
import signal
import time
from functools import cache
from pathlib import Path

from grader.worker import isolation

CGROUP_ROOTS = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup")
PR_SET_CHILD_SUBREAPER = 36


@cache
def cgroup_parent() -> Path | None:
    """A pids cgroup folder where this process may create per-worker groups, or None."""
    for root in CGROUP_ROOTS:
        base = Path(root)
        if not (base / "cgroup.procs").exists():
            continue
        if base.name != "pids" and "pids" not in _read(base / "cgroup.controllers"):
            continue
        parent = base / f"torch-grader-{os.getpid()}"
        try:
            parent.mkdir(exist_ok=True)
            if base.name != "pids":  # cgroup v2: delegate the pids controller to the children
                (parent / "cgroup.subtree_control").write_text("+pids")
            probe = parent / "probe"
            probe.mkdir(exist_ok=True)
            (probe / "pids.max").write_text("8")
            probe.rmdir()
        except OSError:
            try:
                parent.rmdir()
            except OSError:
                pass
            continue
        atexit.register(_remove_cgroup, parent)
        return parent
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _kill_cgroup(group: Path) -> None:
    for _ in range(20):
        pids = [int(pid) for pid in _read(group / "cgroup.procs").split()]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.01)


def _remove_cgroup(group: Path) -> None:
    if not group.exists():
        return
    for child in [path for path in group.iterdir() if path.is_dir()]:
        _remove_cgroup(child)
    _kill_cgroup(group)
    for _ in range(50):
        try:
            group.rmdir()
            return
        except OSError:
            time.sleep(0.02)


@cache
def become_subreaper() -> bool:
    """Orphans of our workers (a fork that called setsid) are re-parented to this process
    instead of init, so they can be found and killed even without a cgroup."""
    try:
        return isolation.libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (AttributeError, OSError):
        return False
