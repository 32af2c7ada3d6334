"""A second judge for one submission: `grader check` grades its parts in two processes at
once, each with a worker of its own.

A judge and its worker take turns (a request, then its reply), so one pair keeps about one core
busy: two pairs use two. The second judge is a `fork` of this grader process after its imports,
its pytest session and its warm-up, so it starts in milliseconds. Both judges take the next
part from a shared queue (in pack order) whenever they finish one, so neither sits idle while
parts are left, whatever the parts cost. Every part is graded in a worker that has loaded no
other part (see `SubmissionSession.keep_to_part`) and every example starts from the same
seeded PRNGs (`grader.prng`): which judge grades a part, and what it graded before, changes
nothing in any result, so every result is the same on every run. The second judge's results
(the grader's own data: it never runs student code, its worker does) stream back through a
pipe as each exercise finishes; whatever it took and did not send (it failed), this process
grades itself.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import select
import signal
import struct
import time
from collections.abc import Callable, Iterable

from grader.results import ExerciseResult
from grader.spec import Exercise

_LENGTH = struct.Struct("!Q")


def by_part(exercises: list[Exercise]) -> list[list[Exercise]]:
    """The exercises grouped by part, parts in pack order."""
    groups: dict[str, list[Exercise]] = {}
    for exercise in exercises:
        groups.setdefault(exercise.part, []).append(exercise)
    return list(groups.values())


def can_share(parts: list[list[Exercise]]) -> bool:
    """Two judges need two parts, and `fork`."""
    return len(parts) >= 2 and hasattr(os, "fork")


class PartQueue:
    """The next part to grade, shared by a judge and its fork (a counter in shared memory)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._next = multiprocessing.get_context("fork").Value("i", 0)

    def take(self) -> int | None:
        """The index of a part nobody took yet, or None when all are taken."""
        with self._next.get_lock():
            index = self._next.value
            if index >= self.count:
                return None
            self._next.value = index + 1
            return index


class SecondJudge:
    """Runs `grade(send)` in a forked process, which calls `send` with each result. Waiting for
    the rest (`rest`), a second judge that sends nothing for `silent_after` seconds is hung:
    it is killed, and what it took and never sent is the caller's to grade."""

    def __init__(self, grade: Callable[[Callable[[ExerciseResult], None]], None], *,
                 silent_after: float | None = None) -> None:
        self.received: list[ExerciseResult] = []
        self.pid: int | None = None
        self.read: int | None = None
        self.buffer = b""
        self.silent_after = silent_after
        self.last_heard = time.monotonic()
        self.ended = False  # it closed its end of the pipe
        self.stopped = False  # killed as hung
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the second judge: grade, stream, and leave without any clean-up of
            code = 1  # the first's (its atexit handlers, its zygote, its worker are not ours)
            try:
                os.close(read)
                grade(lambda result: _send(write, result))
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        self.pid, self.read = pid, read

    def ready(self) -> list[ExerciseResult]:
        """The results that arrived so far (without waiting)."""
        return self._read(wait=False)

    def _read(self, *, wait: bool) -> list[ExerciseResult]:
        """The results in the pipe now, or (`wait`) until the second judge closes it."""
        if self.read is None:
            return []
        arrived = []
        while select.select([self.read], [], [], self._patience() if wait else 0)[0]:
            chunk = os.read(self.read, 1 << 16)
            if not chunk:
                self.ended = True  # it closed the pipe: done, or dead
                break
            self.buffer += chunk
            arrived += self._decode()
        return arrived

    def _patience(self) -> float | None:
        """How long to wait for the next bytes (None: as long as it takes)."""
        if self.silent_after is None:
            return None
        return max(0.0, self.last_heard + self.silent_after - time.monotonic())

    def rest(self) -> list[ExerciseResult]:
        """Wait until the second judge is done: the results that arrived meanwhile. (Those it
        never sent, because it failed or hung, are the caller's to grade.)"""
        if self.read is None:
            return []
        arrived = self._read(wait=True)
        if not self.ended:  # silent for `silent_after`: hung
            try:
                os.kill(self.pid, signal.SIGKILL)
                self.stopped = True
            except ProcessLookupError:
                pass
            arrived += self._read(wait=False)
        os.close(self.read)
        self.read = None
        os.waitpid(self.pid, 0)
        return arrived

    def _decode(self) -> list[ExerciseResult]:
        results = []
        while len(self.buffer) >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(self.buffer)
            if len(self.buffer) < _LENGTH.size + size:
                break
            payload = self.buffer[_LENGTH.size:_LENGTH.size + size]
            self.buffer = self.buffer[_LENGTH.size + size:]
            results.append(pickle.loads(payload))
            self.last_heard = time.monotonic()
        self.received += results
        return results


def _send(fd: int, result: ExerciseResult) -> None:
    payload = pickle.dumps(result)
    data = memoryview(_LENGTH.pack(len(payload)) + payload)
    while data:
        data = data[os.write(fd, data):]


class InOrder:
    """Collects results that arrive out of order and reports each (`on_exercise`) as soon as
    every exercise before it in pack order has been reported."""

    def __init__(self, exercises: list[Exercise],
                 on_exercise: Callable[[ExerciseResult], None] | None) -> None:
        self.order = [exercise.id for exercise in exercises]
        self.on_exercise = on_exercise
        self.by_id: dict[str, ExerciseResult] = {}
        self.reported = 0

    def add(self, result: ExerciseResult) -> None:
        self.by_id[result.id] = result
        while self.reported < len(self.order) and self.order[self.reported] in self.by_id:
            if self.on_exercise is not None:
                self.on_exercise(self.by_id[self.order[self.reported]])
            self.reported += 1

    def add_all(self, results: Iterable[ExerciseResult]) -> None:
        for result in results:
            self.add(result)

    def results(self) -> list[ExerciseResult]:
        return [self.by_id[exercise_id] for exercise_id in self.order]
