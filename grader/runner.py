"""Grading: run every property of every exercise against one submission, or a whole class.

For each property the runner builds a hypothesis test from the property's strategies with the
grading settings (fixed seed, no example database, no deadline, one bug reported), runs it on
each selected device and turns the outcome into a scored `CheckResult`. The student's code runs
in the submission's worker (`grader.session`); everything here is the trusted side.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
from hypothesis import HealthCheck, Phase, Verbosity

from grader import pack, sandbox
from grader.context import Context
from grader.failures import (
    ERROR,
    FORBIDDEN,
    MISSING,
    PASSED,
    SEVERITY,
    TIMEOUT,
    Abort,
    Crashed,
    Mismatch,
    StudentError,
)
from grader.recorded import NotRecorded
from grader.results import CheckResult, ExerciseResult, SubmissionResult, points
from grader.session import Limits, SubmissionSession
from grader.spec import CPU_ONLY, EACH_DEVICE, META, Exercise, Property


def _only_global_constants() -> None:
    """Make generation independent of which modules happen to be loaded.

    Hypothesis (6.131+) mixes literals found in "local" modules (anything outside
    site-packages: this grader when installed editable, the loaded reference solutions) into
    the values it draws, and caches that pool at its first use. Examples would then differ
    between an editable and a regular install, between `--only` and a full run, and between
    the instructor's grader and a student release. Grading uses hypothesis's own constants
    only. (A private hook: without it, hypothesis works as before.)"""
    try:
        from hypothesis.internal.conjecture import providers
        from hypothesis.internal.constants_ast import Constants
    except ImportError:
        return
    if hasattr(providers, "_get_local_constants"):
        nothing_local = Constants()
        providers._get_local_constants = lambda: nothing_local
        if hasattr(providers, "CONSTANTS_CACHE"):  # pools cached before this point
            providers.CONSTANTS_CACHE = type(providers.CONSTANTS_CACHE)(1024)


_only_global_constants()

DEFAULT_EXAMPLES = 12
PROFILE = "grading"
hypothesis.settings.register_profile(
    PROFILE,
    derandomize=True,
    database=None,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    report_multiple_bugs=False,
    phases=(Phase.explicit, Phase.generate, Phase.shrink),
    print_blob=False,
    verbosity=Verbosity.quiet,
    max_examples=DEFAULT_EXAMPLES,
)


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

    def runs(self, exercise: Exercise, prop: Property) -> bool:
        return self.checks is None or f"{exercise.id}:{prop.name}" in self.checks

    def properties(self, exercise: Exercise) -> list[Property]:
        return [prop for prop in exercise.properties if self.runs(exercise, prop)]

    def sandbox_settings(self) -> sandbox.Settings:
        return sandbox.Settings(isolate=self.isolate, memory_bytes=self.memory_bytes,
                                cpu_seconds=int(self.limits.submission_seconds),
                                cuda="cuda" in self.devices)


def available_devices() -> tuple[str, ...]:
    import torch

    return ("cpu", "cuda") if torch.cuda.is_available() else ("cpu",)


def grading_settings(max_examples: int, shrink: bool = True) -> hypothesis.settings:
    phases = (Phase.explicit, Phase.generate, Phase.shrink) if shrink else \
        (Phase.explicit, Phase.generate)
    return hypothesis.settings(hypothesis.settings.get_profile(PROFILE),
                               max_examples=max_examples, phases=phases)


@functools.cache
def build_test(prop: Property, examples: int, shrink: bool = True
               ) -> Callable[[Context], None]:
    """The hypothesis test of a property with the grading settings (built once per process:
    the context, which changes per submission, is its argument)."""

    @functools.wraps(prop.test)
    def run_example(ctx: Context, *args: object, **kwargs: object) -> None:
        ctx.session.reset()
        prop.test(ctx, *args, **kwargs)

    count = examples if prop.max_examples is None else max(1, min(prop.max_examples, examples))
    if not prop.strategies:
        return run_example
    test = hypothesis.given(**prop.strategies)(run_example)
    for explicit in prop.examples:
        test = hypothesis.example(**explicit)(test)
    return grading_settings(count, shrink)(test)


def _unwrap(error: BaseException) -> BaseException:
    """Hypothesis wraps some failures (flaky, grouped); find the student-facing one."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def run_property(prop: Property, ctx: Context, examples: int, shrink: bool = True
                 ) -> tuple[str, str]:
    """Run one property on one device: (status, feedback)."""
    test = build_test(prop, examples, shrink)
    try:
        test(ctx)
    except Abort as abort:
        return abort.status, abort.message
    except hypothesis.errors.Unsatisfiable:
        return PASSED, ""  # every example was inconclusive (e.g. unsupported on meta)
    except (Mismatch, StudentError) as failure:
        return failure.status, str(failure)
    except BaseException as error:  # noqa: BLE001 - hypothesis groups, flaky reruns, bugs
        inner = _unwrap(error)
        if isinstance(inner, NotRecorded):
            return ERROR, ("This check has no recorded answer for one of its inputs in this "
                           "student release; your instructor's grading runs it in full.")
        if isinstance(inner, (Mismatch, StudentError)):
            return inner.status, str(inner)
        if isinstance(inner, Abort):
            return inner.status, inner.message
        if isinstance(inner, (KeyboardInterrupt, SystemExit)):
            raise
        return ERROR, (f"The grader could not finish this check ({type(inner).__name__}: "
                       f"{inner}). Please tell your instructor.")
    return PASSED, ""


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
    state = session.part(exercise.part)
    early = None
    if state.status != "ok":
        early = (MISSING if state.status == "missing" else
                 TIMEOUT if state.status == "timeout" else ERROR, state.message)
    elif exercise.name not in state.names:
        early = (MISSING, f"{exercise.part}.py has no `{exercise.name}`: define it with exactly "
                 "this name (see the exercise stub).")
    if early is not None:
        status, message = early
        checks = [CheckResult(p.name, p.description, status, 0.0, p.points, message)
                  for p in properties]
        return ExerciseResult(exercise.id, 0.0, max_score, status, message, checks,
                              exercise.summary, time.perf_counter() - started)

    reference = pack.reference(exercise.part)
    checks: list[CheckResult] = []
    stop: tuple[str, str] | None = None  # after a timeout or forbidden call, skip the rest
    for prop in properties:
        status, message = PASSED, ""
        if stop is not None:
            status, message = stop[0], "not checked: " + stop[1]
        elif prop.devices == META and checks and checks[0].status != PASSED:
            # the device probe reuses the main check: it proves nothing while that one fails
            status, message = checks[0].status, "not checked: the main check did not pass yet"
        else:
            for device in devices_for(prop, options):
                ctx = Context(exercise, session, reference, device,
                              budget_seconds=options.limits.exercise_seconds)
                status, message = run_property(prop, ctx, options.examples, options.shrink)
                if status != PASSED:
                    if device == "cuda":
                        message = "On the GPU (cuda): " + message
                    break
            if status in (TIMEOUT, FORBIDDEN) or message.startswith("Not implemented yet"):
                stop = (status, {TIMEOUT: "an earlier check of this exercise timed out",
                                 FORBIDDEN: "an earlier check found a forbidden call"}
                        .get(status, "the function is not implemented yet"))
        score = prop.points if status == PASSED else 0.0
        checks.append(CheckResult(prop.name, prop.description, status, score, prop.points,
                                  message))

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
    for exercise in pack.exercises():
        if not options.properties(exercise):
            continue
        if not options.only or exercise.id in options.only or exercise.part in options.only:
            chosen.append(exercise)
    return chosen


_warming: threading.Thread | None = None


def warm_up_in_background() -> None:
    """Pay torch's first-use costs in this process (~1 s: the optimizer, backward with
    explicit grads, the meta device) on a thread, while the first worker starts; the first
    `grade_submission` waits for it before grading, so nothing runs beside a check."""
    global _warming
    from grader import worker

    if _warming is None:
        _warming = threading.Thread(target=worker.warm_up, name="warm-up", daemon=True)
        _warming.start()


def finish_warm_up() -> None:
    global _warming
    if _warming is not None:
        _warming.join()
        _warming = None


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
    results = []
    deadline = time.monotonic() + options.limits.submission_seconds
    with SubmissionSession(Path(submission_dir), limits=options.limits,
                           settings=options.sandbox_settings()) as session:
        session.cuda_available = "cuda" in options.devices
        if _warming is not None:  # the first one: finish warming up while the worker starts
            try:
                session.start()
            except Crashed:
                pass  # the first request tries again and reports it
            finish_warm_up()
        for exercise in selected(options):
            if time.monotonic() > deadline:
                result = out_of_time(exercise, options)
            else:
                result = grade_exercise(exercise, session, options)
            results.append(result)
            if on_exercise is not None:
                on_exercise(result)
        isolation, notes = session.isolation, session.notes
    submission_id = submission_id or Path(submission_dir).name.removesuffix(".zip")
    return SubmissionResult(submission_id, results, time.perf_counter() - started,
                            options.devices, isolation, notes)


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


def _grade_one(folder: Path, options: Options) -> SubmissionResult:
    return grade_submission(folder, options)


def current_core() -> int:
    """The index, among the cores this process may use, of the one it runs on now."""
    try:
        cpu = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[36])
        return sorted(os.sched_getaffinity(0)).index(cpu)
    except (OSError, ValueError, IndexError, AttributeError):
        return 0


def _start_job(slots: Any) -> None:
    """A batch job's set-up: its zygote, then one core of its own (see `sandbox.pin_to_core`)."""
    sandbox.prestart()
    warm_up_in_background()
    with slots.get_lock():
        slot = slots.value
        slots.value += 1
    sandbox.pin_to_core(slot)


def grade_batch(folders: list[Path], options: Options, *, jobs: int = 1
                ) -> Iterator[SubmissionResult]:
    """Grade many submissions, `jobs` at a time; yields results as they finish."""
    if jobs <= 1 or len(folders) <= 1:
        allowed = sandbox.allowed_cores()
        try:
            for index, folder in enumerate(folders):
                yield grade_submission(folder, options)
                if index == 0 and len(folders) > 2:
                    # Started up (zygote and grader warmed in parallel): one job, one core.
                    sandbox.pin_to_core(current_core())
        finally:
            sandbox.set_cores(allowed)
        return
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    slots = context.Value("i", 0)
    with ProcessPoolExecutor(max_workers=min(jobs, len(folders)), mp_context=context,
                             initializer=_start_job, initargs=(slots,)) as pool:
        futures = [pool.submit(_grade_one, folder, options) for folder in folders]
        from concurrent.futures import as_completed

        for future in as_completed(futures):
            yield future.result()
