"""A worker's scratch folder: the copy of the submission, its environment, its disk
budget."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from grader.sandbox.settings import SUBMISSION_CAP_BYTES, SUBMISSION_CAP_FILES, WATCH_SECONDS
from grader.worker import isolation


def copy_submission(source: Path, destination: Path) -> list[str]:
    """Copy a submission (links as links, size-capped); returns what was left out."""
    left_out = []
    total = copied = 0
    destination.mkdir(parents=True)
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if any(part.startswith(".") or part == "__pycache__" for part in relative.parts):
            continue
        target = destination / relative
        if path.is_symlink():
            target.symlink_to(os.readlink(path))
        elif path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.is_file():
            size = path.stat().st_size
            if total + size > SUBMISSION_CAP_BYTES or copied >= SUBMISSION_CAP_FILES:
                left_out.append(str(relative))
                continue
            total += size
            copied += 1
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return left_out


def worker_environment(scratch: Path, *, cuda: bool, token: str) -> dict[str, str]:
    """A minimal environment: nothing of the grader's (tokens, paths) leaks to the student.
    `token` marks the worker's processes (see `kill_strays`)."""
    env = {"TORCH_GRADER_WORKER": token, "PATH": "/usr/local/bin:/usr/bin:/bin",
           "HOME": str(scratch),
           "TMPDIR": str(scratch / "tmp"), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
           "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "MKL_DISABLE_FAST_MM": "1", "PYTHONIOENCODING": "utf-8"}
    if cuda:
        for name in ("CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH", "CUDA_HOME"):
            if name in os.environ:
                env[name] = os.environ[name]
    else:
        env["CUDA_VISIBLE_DEVICES"] = ""  # then pick_device() must answer cpu
    return env


class DiskWatchdog:
    """Measures a scratch folder (blocks really used, files) where no tmpfs caps it. It looks
    every WATCH_SECONDS while the worker runs, so a submission can overshoot the budget by
    what it writes in that time (tens of MiB on a fast disk) before it is stopped."""

    def __init__(self, folder: Path | None, budget: int) -> None:
        self.folder = folder
        self.budget = budget
        self.checked = time.monotonic()
        self.used = 0  # bytes at the last measurement

    def due(self) -> float:
        """Seconds until the next measurement."""
        return self.checked + WATCH_SECONDS - time.monotonic()

    def over_budget(self) -> str | None:
        """Why the folder is over budget, or None."""
        self.checked = time.monotonic()
        used = files = 0
        pending = [str(self.folder)] if self.folder else []
        while pending:
            try:
                entries = list(os.scandir(pending.pop()))
            except OSError:
                continue
            for entry in entries:
                files += 1
                try:
                    used += entry.stat(follow_symlinks=False).st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                except OSError:
                    continue
            if used > self.budget or files > isolation.DISK_INODES:
                self.used = used
                return disk_budget_text(self.budget)
        self.used = used
        return None


def disk_budget_text(budget: int) -> str:
    return (f"your code wrote more than this submission's disk budget of {budget >> 20} MiB "
            "(all files it writes, together), so it was stopped")
