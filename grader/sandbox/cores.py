"""Which cores a grading job runs on (one job, one core)."""

from __future__ import annotations

import os

from grader.sandbox.zygote import zygote


def allowed_cores() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def set_cores(cores: set[int] | None) -> None:
    """Let this process and its zygote run on `cores` (undoes `pin_to_core`)."""
    if not cores:
        return
    try:
        os.sched_setaffinity(0, cores)
        warm = zygote()
        if warm.process is not None:
            os.sched_setaffinity(warm.process.pid, cores)
    except (AttributeError, OSError):
        pass


def pin_to_core(slot: int) -> None:
    """Run this grader process, its zygote and every worker it forks on one core (slot `slot`
    of the cores this process may use): when every core has a job of its own, jobs on distinct
    cores never compete, and a judge and its worker keep that core's caches warm."""
    core = _core_for(slot)
    if core is not None:  # elsewhere (not Linux) unpinned is fine
        set_cores({core})


def _core_for(slot: int) -> int | None:
    """The core of slot `slot` among the cores this process may use (None: unknown)."""
    cores = sorted(allowed_cores() or ())
    return cores[slot % len(cores)] if cores else None


_job_core: int | None = None  # a forked batch job's core: its workers are pinned to it


def pin_job(slot: int) -> None:
    """A batch job forked from the grader, sharing its zygote: run on one core (slot `slot`
    of the allowed ones), and so does every worker it starts (`pin_worker`). The shared
    zygote stays unpinned: it serves every job."""
    global _job_core
    _job_core = _core_for(slot)
    if _job_core is not None:
        try:
            os.sched_setaffinity(0, {_job_core})
        except (AttributeError, OSError):
            _job_core = None


def pin_worker(pid: int) -> None:
    """Move a worker this job started onto the job's core (when `pin_job` chose one)."""
    if _job_core is not None:
        try:
            os.sched_setaffinity(pid, {_job_core})
        except (AttributeError, OSError):
            pass
