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
    of the cores this process may use). Judge and worker take turns (a request, then its
    reply), so one core serves both; waking the other side on the same core is ~3x faster
    than across cores, and parallel jobs on distinct cores never compete."""
    cores = sorted(allowed_cores() or ())
    if cores:  # elsewhere (not Linux) unpinned is fine
        set_cores({cores[slot % len(cores)]})
