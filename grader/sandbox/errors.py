"""How a worker can fail to answer: the exceptions the judge's side raises."""

from __future__ import annotations


class WorkerFailure(Exception):
    """The worker did not answer; `output` is the tail of what the student's code printed."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class WorkerTimeout(WorkerFailure):
    """A request ran past its deadline; the worker was killed."""


class WorkerCrashed(WorkerFailure):
    """The worker process ended (exit, crash, killed) while a request was in flight."""


class WorkerDiskFull(WorkerCrashed):
    """The worker wrote more than the disk budget; the grader's watchdog stopped it."""
