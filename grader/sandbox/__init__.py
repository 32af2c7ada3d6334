"""The judge's side of the sandbox: prepare a worker's sandbox, start it, talk to it with
deadlines, kill it and everything it started.

    settings.py   how workers are isolated and limited (`Settings`)
    allowlist.py  what a worker may read (resolved paths; never the protected folders)
    scratch.py    the copy of the submission, the environment, the disk budget
    cgroups.py    pids cgroups and the child subreaper: everything a worker started dies
    zygote.py     the warm process that forks workers
    cores.py      one grading job, one core
    process.py    one worker process (`Worker`)
    errors.py     how a worker fails to answer

Every worker gets a scratch folder holding a copy of the submission (so it can change nothing of
the original, of other submissions or of the output), a minimal environment (no secrets of the
grader's), a pids cgroup where the machine allows one, and an isolation policy that the worker
applies to itself before running student code (`grader.worker.isolation`). Only a runtime copy
of the `grader.worker` package is importable in it: never the checks or the solutions.

When a request runs past its deadline or the worker dies (an endless loop, `os._exit`, a crash),
every process of the worker is killed and the caller gets `WorkerTimeout` / `WorkerCrashed`;
`restart()` gives a fresh worker for the rest.
"""

from __future__ import annotations

from grader.sandbox.allowlist import can_drop_uid, protected_paths, read_paths, runtime_dir
from grader.sandbox.cgroups import become_subreaper, cgroup_parent
from grader.sandbox.cores import allowed_cores, pin_job, pin_to_core, pin_worker, set_cores
from grader.sandbox.errors import WorkerCrashed, WorkerDiskFull, WorkerFailure, WorkerTimeout
from grader.sandbox.process import Worker
from grader.sandbox.scratch import copy_submission, disk_budget_text
from grader.sandbox.settings import (
    DEFAULT_DISK_BUDGET,
    STARTUP_SECONDS,
    SUBMISSION_CAP_BYTES,
    SUBMISSION_CAP_FILES,
    Settings,
)
from grader.sandbox.zygote import Zygote, close_zygote, prestart, replace_zygote, zygote


def clean_up() -> None:
    """What this process set up for its workers, removed now: its zygote, its cgroup folder,
    its runtime copy of the worker's modules (for an exit that skips `atexit`, as the CLI's
    quick exit does)."""
    import shutil

    from grader.sandbox.cgroups import _remove_cgroup

    close_zygote()
    if cgroup_parent.cache_info().currsize:
        folder = cgroup_parent()
        if folder is not None:
            _remove_cgroup(folder)
    if runtime_dir.cache_info().currsize:
        shutil.rmtree(runtime_dir(), ignore_errors=True)


__all__ = [
    "DEFAULT_DISK_BUDGET", "STARTUP_SECONDS", "SUBMISSION_CAP_BYTES", "SUBMISSION_CAP_FILES",
    "Settings", "Worker", "WorkerCrashed", "WorkerDiskFull", "WorkerFailure", "WorkerTimeout",
    "Zygote", "allowed_cores", "become_subreaper", "can_drop_uid", "cgroup_parent", "clean_up",
    "close_zygote", "copy_submission", "disk_budget_text", "pin_job", "pin_to_core",
    "pin_worker", "prestart", "protected_paths", "read_paths", "replace_zygote", "runtime_dir",
    "set_cores", "zygote",
]
