"""A second judge for one submission: `grader check` grades half of the parts in a forked copy
of itself, with a worker of its own, while it grades the other half.

A judge and its worker take turns (a request, then its reply), so one pair keeps about one core
busy: two pairs use two. The second judge is a `fork` of this grader process after its imports,
its pytest session and its warm-up, so it starts in milliseconds. It grades whole parts, chosen
by a fixed rule (every other part, in pack order), never by timing or by the machine's cores:
which worker runs which exercise, and so every result, is the same on every run. Its results
(the grader's own data: it never runs student code, its worker does) stream back through a
pipe as each exercise finishes; if it fails, this process grades its exercises itself.
"""

from __future__ import annotations

import os
import pickle
import select
import struct
from collections.abc import Callable, Iterable

from grader.results import ExerciseResult
from grader.spec import Exercise

_LENGTH = struct.Struct("!Q")


def split(exercises: list[Exercise]) -> tuple[list[Exercise], list[Exercise]]:
    """(this judge's exercises, the second judge's): every other part, in pack order. With a
    single part, or without `fork`, everything stays here."""
    parts = list(dict.fromkeys(exercise.part for exercise in exercises))
    if len(parts) < 2 or not hasattr(os, "fork"):
        return exercises, []
    theirs = set(parts[1::2])
    return ([exercise for exercise in exercises if exercise.part not in theirs],
            [exercise for exercise in exercises if exercise.part in theirs])


class SecondJudge:
    """Grades `exercises` in a forked process: `grade(send)` runs there and calls `send` with
    each result. With no exercises, nothing is forked."""

    def __init__(self, exercises: list[Exercise],
                 grade: Callable[[Callable[[ExerciseResult], None]], None]) -> None:
        self.exercises = exercises
        self.received: list[ExerciseResult] = []
        self.pid: int | None = None
        self.read: int | None = None
        self.buffer = b""
        if not exercises:
            return
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
        while wait or select.select([self.read], [], [], 0)[0]:
            chunk = os.read(self.read, 1 << 16)
            if not chunk:
                break
            self.buffer += chunk
            arrived += self._decode()
        return arrived

    def rest(self, grade_here: Callable[[Exercise], ExerciseResult]) -> list[ExerciseResult]:
        """Wait for the remaining results; those the second judge did not send (it died) are
        graded here."""
        if self.read is None:
            return []
        arrived = self._read(wait=True)
        os.close(self.read)
        self.read = None
        os.waitpid(self.pid, 0)
        done = {result.id for result in self.received}
        return arrived + [grade_here(exercise) for exercise in self.exercises
                          if exercise.id not in done]

    def _decode(self) -> list[ExerciseResult]:
        results = []
        while len(self.buffer) >= _LENGTH.size:
            (size,) = _LENGTH.unpack_from(self.buffer)
            if len(self.buffer) < _LENGTH.size + size:
                break
            payload = self.buffer[_LENGTH.size:_LENGTH.size + size]
            self.buffer = self.buffer[_LENGTH.size + size:]
            results.append(pickle.loads(payload))
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
