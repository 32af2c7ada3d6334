"""Grading: run every property of every exercise against one submission, or a whole class.

For each property the runner builds a hypothesis test from the property's strategies with the
grading settings (fixed seed, no example database, no deadline, one bug reported), runs it on
each selected device and turns the outcome into a scored `CheckResult`. The student's code runs
in the submission's worker (`grader.session`); everything here is the trusted side.
"""

from __future__ import annotations

import gc
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from grader import collect, given_up, lazy_shapes, pack, sandbox, second_judge
from grader.failures import (
    FORBIDDEN,
    PASSED,
    SEVERITY,
    TIMEOUT,
    Crashed,
)
from grader.pack import DEFAULT_EXAMPLES
from grader.plugin import Run, prerequisite
from grader.results import CheckResult, ExerciseResult, SubmissionResult, points
from grader.session import Limits, SubmissionSession
from grader.spec import CPU_ONLY, EACH_DEVICE, META, Exercise, Property


@dataclass
class Options:
    """How thoroughly and where to grade."""

    devices: tuple[str, ...] = ("cpu",)
    examples: int = DEFAULT_EXAMPLES
    limits: Limits = field(default_factory=Limits)
    only: tuple[str, ...] = ()  # exercise ids (or part names) to grade; empty means all
    isolate: bool = True  # the sandbox layers of grader.isolation (off only for debugging)
    memory_bytes: int | None = 2 << 30  # address space beyond a worker with torch imported
    checks: frozenset[str] | None = None  # "exercise.id:property" to run; None means all
    shrink: bool = True  # look for the smallest failing input (off in a student release)
    pack: Path | None = None  # the pack's folder; None: the active one (the bundled pack)
    disk_bytes: int = sandbox.DEFAULT_DISK_BUDGET  # all files one submission writes, in total
    allow_unsafe: bool = False  # grade even if a start-up probe read what it must not
    pairs: int = 1  # judge/worker pairs grading one submission side by side (`grader check`)

    def runs(self, exercise: Exercise, prop: Property) -> bool:
        return self.checks is None or f"{exercise.id}:{prop.name}" in self.checks

    def properties(self, exercise: Exercise) -> list[Property]:
        return [prop for prop in exercise.properties if self.runs(exercise, prop)]

    def sandbox_settings(self) -> sandbox.Settings:
        return sandbox.Settings(isolate=self.isolate, memory_bytes=self.memory_bytes,
                                cpu_seconds=int(self.limits.submission_seconds),
                                cuda="cuda" in self.devices,
                                protected=sandbox.protected_paths(self.chosen_pack().protected),
                                disk_bytes=self.disk_bytes, allow_unsafe=self.allow_unsafe)

    def chosen_pack(self) -> pack.Pack:
        return pack.load(self.pack) if self.pack is not None else pack.current()


def available_devices() -> tuple[str, ...]:
    import torch

    return ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)


def devices_for(prop: Property, options: Options) -> tuple[str, ...]:
    if prop.devices == META:
        return ("meta",)
    if prop.devices == CPU_ONLY:
        return ("cpu",)
    assert prop.devices == EACH_DEVICE
    return options.devices


def grade_exercise(exercise: Exercise, session: SubmissionSession,
                   options: Options) -> ExerciseResult:
    """Every (selected) property of one exercise: points for each, the worst status overall."""
    started = time.perf_counter()
    properties = options.properties(exercise)
    max_score = points(sum(prop.points for prop in properties))
    early = prerequisite(exercise, session)
    if early is not None:
        status, message = early
        checks = [CheckResult(p.name, p.description, status, 0.0, p.points, message)
                  for p in properties]
        return ExerciseResult(exercise.id, 0.0, max_score, status, message, checks,
                              exercise.summary, time.perf_counter() - started)

    checks_run = collect.checks_of(options.chosen_pack())
    checks: list[CheckResult] = []
    done: dict[str, CheckResult] = {}
    stop: tuple[str, str] | None = None  # after a timeout or forbidden call, skip the rest
    for prop in properties:
        status, message = PASSED, ""
        if stop is not None:
            status, message = stop[0], "not checked: " + stop[1]
        elif prop.devices == META and prop.probe_of in done and \
                done[prop.probe_of].status != PASSED:
            # the device probe reuses its check: it proves nothing while that one fails
            status = done[prop.probe_of].status
            message = "not checked: the main check did not pass yet"
        else:
            run = Run(session, options.examples, options.shrink,
                      budget_seconds=options.limits.exercise_seconds)
            for device in devices_for(prop, options):
                if device not in prop.items:
                    continue  # e.g. a GPU asked for on a machine whose pytest found none
                status, message = checks_run.run(prop.items[device], run)
                if status != PASSED:
                    break
            if status in (TIMEOUT, FORBIDDEN) or message.startswith("Not implemented yet"):
                stop = (status, {TIMEOUT: "an earlier check of this exercise timed out",
                                 FORBIDDEN: "an earlier check found a forbidden call"}
                        .get(status, "the function is not implemented yet"))
        score = prop.points if status == PASSED else 0.0
        checks.append(CheckResult(prop.name, prop.description, status, score, prop.points,
                                  message))
        done[prop.name] = checks[-1]

    status = max((check.status for check in checks), key=SEVERITY.index, default=PASSED)
    score = 0.0 if status == FORBIDDEN else sum(check.score for check in checks)
    return ExerciseResult(exercise.id, points(score), max_score, status,
                          exercise_feedback(checks), checks, exercise.summary,
                          time.perf_counter() - started)


def exercise_feedback(checks: list[CheckResult]) -> str:
    """One text for results.json: what failed and why, or what was verified."""
    failed = [check for check in checks if check.status != PASSED]
    if not failed:
        return "Passed: " + "; ".join(check.description for check in checks) + "."
    parts = []
    for check in failed:
        if check.feedback.startswith("not checked:") and len(failed) > 1:
            continue
        parts.append(f"[{check.status}] {check.description}:\n{check.feedback}".rstrip())
    return "\n\n".join(parts)


def selected(options: Options) -> list[Exercise]:
    chosen = []
    for exercise in collect.checks_of(options.chosen_pack()).exercises:
        if not options.properties(exercise):
            continue
        if not options.only or exercise.id in options.only or exercise.part in options.only:
            chosen.append(exercise)
    return chosen


_warming: threading.Thread | None = None


def warm_up_in_background() -> None:
    """Pay torch's first-use costs in this process (the optimizer, backward with explicit
    grads; not the meta device, which only workers use) on a thread, while the first worker
    starts; the first `grade_submission` waits for it before grading, so nothing runs beside
    a check."""
    global _warming
    lazy_shapes.install()  # (here, on the main thread: before anything imports the module)
    if _warming is None:
        _warming = threading.Thread(target=_warm_up_grader, name="warm-up", daemon=True)
        _warming.start()


def _warm_up_grader() -> None:
    """torch's first-use costs, and the imports the first check would make (NumPy's random
    state, which hypothesis seeds; the release answers' module): paid once before a batch or
    a second judge forks, not once in every fork. In a cold `grader check` this runs while
    the zygote still warms up the workers' torch. (A backward pass with an explicit gradient
    would import sympy, ~0.4 s: `lazy_shapes` spares it.)"""
    import torch

    from grader import prng, recorded  # noqa: F401
    from grader.worker import zygote

    zygote.warm_up(worker=False)
    prng.managed()
    leaf = torch.ones(2, requires_grad=True)
    (leaf * 2).backward(torch.ones(2))


def warm_up_here() -> None:
    """The same warm-up, on this thread, for a process about to fork batch jobs: then no
    thread but the main one has ever run torch in the process the jobs are copied from (a
    batch job once hung for minutes in MKL's allocator, in a parent warmed up on a thread)."""
    lazy_shapes.install()
    if _warming is not None:
        finish_warm_up()
        return
    _warm_up_grader()
    gc.freeze()
    gc.enable()


def finish_warm_up() -> None:
    """Wait for the warm-up; then freeze the garbage collector's view of what this process
    holds (torch, the checks, the warm-up): every object so far lives as long as the process.
    A full collection then walks only what grading creates (~5 ms) instead of the whole heap
    (~0.1 s each, several per submission), and a forked judge or batch job does not touch,
    and so copy, the pages it shares with this process."""
    global _warming
    if _warming is not None:
        _warming.join()
        _warming = None
        gc.freeze()
        gc.enable()  # (`grader check` held it since it started: cli._cold_start)


def grade_submission(submission_dir: Path, options: Options | None = None,
                     submission_id: str | None = None,
                     on_exercise: Callable[[ExerciseResult], None] | None = None
                     ) -> SubmissionResult:
    """Grade one submission folder: a fresh worker, every selected exercise, in order."""
    import torch

    # One thread, as in the worker: the checks' tensors are small, and idle OpenMP threads
    # spinning here would take the core the worker is about to need.
    torch.set_num_threads(1)
    options = options or Options()
    started = time.perf_counter()
    deadline = time.monotonic() + options.limits.submission_seconds
    # the graded pack is the active one while this submission is read (its parts) and graded
    with pack.activated(options.pack), \
            SubmissionSession(Path(submission_dir), limits=options.limits,
                              settings=options.sandbox_settings()) as session:
        session.cuda_available = "cuda" in options.devices
        if _warming is not None:  # the first one: finish warming up while the worker starts
            try:
                session.start()
            except Crashed:
                pass  # the first request tries again and reports it
            finish_warm_up()
        chosen = selected(options)
        in_order = second_judge.InOrder(chosen, on_exercise)
        parts = second_judge.by_part(chosen)
        if options.pairs > 1 and second_judge.can_share(parts):
            _grade_in_two(parts, session, options, deadline, in_order)
        else:
            for exercise in chosen:
                in_order.add(_graded(exercise, session, options, deadline))
        results = in_order.results()
        isolation, notes = session.isolation, session.notes
    submission_id = submission_id or Path(submission_dir).name.removesuffix(".zip")
    return SubmissionResult(submission_id, results, time.perf_counter() - started,
                            options.devices, isolation, notes)


def _grade_in_two(parts: list[list[Exercise]], session: SubmissionSession, options: Options,
                  deadline: float, in_order: second_judge.InOrder) -> None:
    """Two judge/worker pairs take the parts from a shared queue (`grader.second_judge`);
    whatever the second judge took and did not send back is graded here at the end."""
    queue = second_judge.PartQueue(len(parts))

    def grade_there(send: Callable[[ExerciseResult], None]) -> None:
        with SubmissionSession(session.submission_dir, limits=options.limits,
                               settings=options.sandbox_settings()) as own:
            own.cuda_available = session.cuda_available
            while (index := queue.take()) is not None:
                _grade_part(parts[index], own, options, deadline, send)

    def here(result: ExerciseResult) -> None:
        in_order.add(result)
        in_order.add_all(other.ready())

    sandbox.cgroup_parent()  # its workers' cgroups go in our folder, removed at exit
    other = second_judge.SecondJudge(grade_there, silent_after=given_up.silent_after(options))
    while (index := queue.take()) is not None:
        _grade_part(parts[index], session, options, deadline, here)
    in_order.add_all(other.rest())
    for part in parts:
        missing = [exercise for exercise in part if exercise.id not in in_order.by_id]
        if missing:
            _grade_part(missing, session, options, deadline, in_order.add)


def _grade_part(exercises: list[Exercise], session: SubmissionSession, options: Options,
                deadline: float, send: Callable[[ExerciseResult], None]) -> None:
    """The exercises of one part, in a worker that has loaded no other part."""
    session.keep_to_part(exercises[0].part)
    for exercise in exercises:
        send(_graded(exercise, session, options, deadline))


def _graded(exercise: Exercise, session: SubmissionSession, options: Options,
            deadline: float) -> ExerciseResult:
    if time.monotonic() > deadline:
        return out_of_time(exercise, options)
    return grade_exercise(exercise, session, options)


def out_of_time(exercise: Exercise, options: Options) -> ExerciseResult:
    budget = options.limits.submission_seconds
    message = (f"not checked: grading this submission took more than {budget:g} s in total, "
               "so the remaining exercises were not run")
    properties = options.properties(exercise)
    checks = [CheckResult(p.name, p.description, TIMEOUT, 0.0, p.points, message)
              for p in properties]
    return ExerciseResult(exercise.id, 0.0, points(sum(p.points for p in properties)),
                          TIMEOUT, message, checks, exercise.summary)


# --- a class ----------------------------------------------------------------------------------


def submission_folders(submissions_dir: Path) -> list[Path]:
    """Every sub-folder (or `.zip`) is one submission (hidden ones and __pycache__ skipped),
    sorted by name."""
    return sorted(
        (path for path in Path(submissions_dir).iterdir()
         if (path.is_dir() or path.suffix == ".zip") and not path.name.startswith((".", "__"))),
        key=lambda path: path.name,
    )


def grade_batch(folders: list[Path], options: Options, *, jobs: int = 1
                ) -> Iterator[SubmissionResult]:
    """Grade many submissions, `jobs` at a time; yields results as they finish (several jobs:
    `grader.batch`)."""
    if jobs <= 1 or len(folders) <= 1:
        # One job, unpinned: from the second submission on, a worker answers a check's
        # requests ahead (grader.replay) on one core while the grader draws and compares on
        # another.
        for folder in folders:
            yield grade_submission(folder, options)
        return
    from grader import batch

    yield from batch.grade_batch(folders, options, jobs)
