"""Grading a class on this machine: `jobs` judge processes, one submission each at a time.

Jobs are forked from this process once it has imported torch and collected the pack: they
start warm and share its zygote (one `import torch` for the whole batch instead of two per job).
Where fork is unavailable they are spawned, each with a zygote of its own. This process hands
each idle job the next submission and waits for a result, a job's death or a job's deadline:

- a job whose grading raised (a bug of the grader's) sends the error back: its submission is
  graded again once;
- a job that dies (the kernel killed it, a crash in native code), or that is hung (it holds
  one submission past `given_up.hung_after`, the submission's limit + 2 minutes, or it
  finished no exercise for `given_up.silent_after`, ~6 minutes: the judge's own deadlines
  never let grading run that long; a job reports each exercise it finishes), ends the round:
  every job is stopped and the zygote replaced (a job that died in the middle of asking the
  shared zygote for a worker leaves its channel half used), and fresh jobs take over. The
  submissions the other jobs held are graded again from the start, which changes nothing
  (grading is deterministic); the one the failed job held is graded again once;
- after a second failure, a submission gets an explicit error result
  (`given_up.infrastructure_error`): never a silent 0, never a lost submission, and never a
  cost to the others.

Results are yielded as they finish; the output writers order them.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader import given_up, runner, sandbox
from grader.results import SubmissionResult

_ALIVE = "alive"  # a job's message after each exercise it finished


@dataclass
class _Job:
    """One judge process and the submission it holds (its index, None when idle)."""

    slot: int  # which core it takes when pinned
    process: Any
    connection: Any
    index: int | None = None
    hung_at: float = 0.0  # when it counts as hung: its submission's whole time is up,
    deadline: float = 0.0  # or (at most that) it has been silent for too long


@dataclass(frozen=True)
class _Outcome:
    """What became of the submission at `index`: a result, a failure (why), or neither (it was
    interrupted by another job's failure: graded again, no failure counted)."""

    index: int
    result: SubmissionResult | None = None
    failure: str | None = None


def grade_batch(folders: list[Path], options: runner.Options, jobs: int
                ) -> Iterator[SubmissionResult]:
    """Grade every folder, `jobs` at a time (jobs >= 2); yields results as they finish."""
    pool = _Pool(options, min(jobs, len(folders)))
    waiting = deque(range(len(folders)))
    failures = [0] * len(folders)
    abandoned: list[tuple[int, str]] = []  # failed twice: an error result once one shows its shape
    template: SubmissionResult | None = None
    try:
        while waiting or pool.busy():
            pool.hand_out(waiting, folders)
            for outcome in pool.wait():
                if outcome.result is not None:
                    template = template or outcome.result
                    yield outcome.result
                elif outcome.failure is None:
                    waiting.appendleft(outcome.index)
                else:
                    failures[outcome.index] += 1
                    if failures[outcome.index] < given_up.ATTEMPTS:
                        waiting.appendleft(outcome.index)
                    else:
                        abandoned.append((outcome.index, outcome.failure))
            if abandoned and (template is not None or not (waiting or pool.busy())):
                template = template or given_up.result_shape(options)
                for index, reason in abandoned:
                    yield given_up.infrastructure_error(template, folders[index], reason)
                abandoned.clear()
    finally:
        pool.close()


class _Pool:
    """The jobs, started as submissions need them, and stopped all together after a failure."""

    def __init__(self, options: runner.Options, size: int) -> None:
        import multiprocessing

        self.options = options
        self.size = size
        self.hung_seconds = given_up.hung_after(options)  # on one submission, in all
        self.silent_seconds = given_up.silent_after(options)  # without finishing an exercise
        self.forked = "fork" in multiprocessing.get_all_start_methods()
        self.context = multiprocessing.get_context("fork" if self.forked else "spawn")
        # Every core busy with a job: one core per job (and its workers) keeps each job's
        # caches warm and the jobs out of each other's way. With cores to spare, a job's
        # grader and worker may run side by side.
        self.pinned = size >= len(sandbox.allowed_cores() or ())
        self.jobs: list[_Job] = []
        if self.forked:
            self._warm_up()

    def _warm_up(self) -> None:
        """What forked jobs share, made here once: the zygote, the cgroup folder, torch's
        first-use costs."""
        sandbox.prestart()
        sandbox.cgroup_parent()  # one folder for every job's workers, removed when we exit
        runner.warm_up_here()  # (on this thread: no other thread may have run torch)

    def busy(self) -> list[_Job]:
        return [job for job in self.jobs if job.index is not None]

    def hand_out(self, waiting: deque[int], folders: list[Path]) -> None:
        """Give every idle job (starting jobs up to the pool's size) the next submission."""
        while waiting:
            job = next((job for job in self.jobs if job.index is None), None)
            if job is None:
                if len(self.jobs) >= self.size:
                    return
                job = self._start(len(self.jobs))
            job.index = waiting.popleft()
            now = time.monotonic()
            job.hung_at = now + self.hung_seconds
            job.deadline = min(job.hung_at, now + self.silent_seconds)
            try:
                job.connection.send((job.index, folders[job.index]))
            except OSError:
                pass  # the job is dead: `wait` finds it so

    def _start(self, slot: int) -> _Job:
        ours, theirs = self.context.Pipe()
        process = self.context.Process(
            target=_job_main, args=(theirs, slot, self.pinned, self.forked, self.options),
            name=f"grader-job-{slot}", daemon=True)
        process.start()
        theirs.close()
        job = _Job(slot, process, ours)
        self.jobs.append(job)
        return job

    def wait(self) -> list[_Outcome]:
        """Wait until a busy job answers, dies or runs past its deadline."""
        from multiprocessing.connection import wait

        busy = self.busy()
        timeout = max(0.0, min(job.deadline for job in busy) - time.monotonic())
        ready = set(wait([job.connection for job in busy] +
                         [job.process.sentinel for job in busy], timeout))
        outcomes: list[_Outcome] = []
        failed: dict[int, str] = {}  # slot -> why
        for job in busy:
            if job.connection in ready or job.process.sentinel in ready:
                try:
                    message = job.connection.recv()
                except (EOFError, OSError):
                    job.process.join(1)
                    failed[job.slot] = ("its judge process died (exit status "
                                        f"{job.process.exitcode})")
                    continue
                if message == _ALIVE:  # it finished an exercise
                    job.deadline = min(job.hung_at, time.monotonic() + self.silent_seconds)
                    continue
                index, result, error = message
                job.index = None
                outcomes.append(_Outcome(index, result, error))
            elif time.monotonic() > job.deadline:
                failed[job.slot] = (
                    f"its judge did not finish within {self.hung_seconds:g} s"
                    if time.monotonic() > job.hung_at else
                    f"its judge finished no exercise for {self.silent_seconds:g} s")
        if failed:
            outcomes += self._stop_all(failed)
        return outcomes

    def _stop_all(self, failed: dict[int, str]) -> list[_Outcome]:
        """Stop every job and replace the zygote; what the jobs held is graded again."""
        outcomes = [_Outcome(job.index, failure=failed.get(job.slot))
                    for job in self.jobs if job.index is not None]
        for job in self.jobs:
            job.process.kill()
        for job in self.jobs:
            job.process.join()
            job.connection.close()
        self.jobs = []
        if self.forked:
            sandbox.replace_zygote()  # (the old one's workers die with it)
        return outcomes

    def close(self) -> None:
        for job in self.jobs:
            try:
                job.connection.send(None)
            except OSError:
                pass
        for job in self.jobs:
            job.process.join(5)
            if job.process.is_alive():
                job.process.kill()
                job.process.join()
            job.connection.close()
        self.jobs = []


def _job_main(connection: Any, slot: int, pinned: bool, forked: bool,
              options: runner.Options) -> None:
    """A job: grade each submission it is sent, send back the result (or the error)."""
    if forked:
        if pinned:  # one core of its own, for it and its workers (the zygote is shared)
            sandbox.pin_job(slot)
    else:
        sandbox.prestart()
        runner.warm_up_in_background()
        if pinned:
            sandbox.pin_to_core(slot)
    while True:
        try:
            task = connection.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        index, folder = task
        try:
            result = runner.grade_submission(
                folder, options, on_exercise=lambda _: connection.send(_ALIVE))
        except Exception as error:  # noqa: BLE001 - one submission's, reported with it
            connection.send((index, None, f"the grader failed: {type(error).__name__}: "
                             f"{error}".strip()))
        else:
            connection.send((index, result, None))
