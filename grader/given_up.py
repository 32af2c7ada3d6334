"""Submissions the grading infrastructure failed twice: their explicit `error` result.

Both ways of grading a class, the local batch (`grader.batch`) and a Dask cluster
(`grader.cluster.client`), grade a submission again once when the infrastructure cut its
grading short (a judge process died, or hung: `hung_after`, `silent_after`; a Dask worker
died), and after a second failure give it this result: every exercise `error`, 0 points, and
why. Never a silent 0, never a lost submission.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from grader.failures import ERROR
from grader.results import CheckResult, ExerciseResult, SubmissionResult

ATTEMPTS = 2  # a first grading and one retry
GRACE_SECONDS = 120.0  # beyond Limits.submission_seconds, before a judge counts as hung


def silent_after(options: object) -> float:
    """Seconds after which a judge that has finished no exercise since the last (or since it
    got the submission) is hung: one exercise may start a worker, import its part, run its
    checks to the exercise's budget and one last call past it."""
    from grader.sandbox import STARTUP_SECONDS

    limits = options.limits
    return (STARTUP_SECONDS + limits.import_seconds + limits.exercise_seconds
            + limits.call_seconds + GRACE_SECONDS)


def hung_after(options: object) -> float:
    """Seconds after which a judge still grading one submission is hung: the judge's own
    deadlines stop a submission's grading at `Limits.submission_seconds` (each call and
    exercise has its own, shorter one), so this never cuts real grading short."""
    return options.limits.submission_seconds + GRACE_SECONDS


def infrastructure_error(template: SubmissionResult, submission: Path,
                         reason: str) -> SubmissionResult:
    """The explicit result of a submission the infrastructure failed twice: every exercise of
    `template` (any result of the same run) with status `error`, 0 points, and why."""
    message = (f"Not graded: the grading infrastructure failed twice on this submission "
               f"({reason}). This says nothing about your code: your instructor will "
               "regrade it.")
    exercises = [
        ExerciseResult(ex.id, 0.0, ex.max_score, ERROR, message,
                       [CheckResult(check.name, check.description, ERROR, 0.0,
                                    check.max_score, message) for check in ex.checks],
                       ex.summary)
        for ex in template.exercises]
    return SubmissionResult(Path(submission).name.removesuffix(".zip"), exercises, 0.0,
                            template.devices, {}, [])


def result_shape(options: object) -> SubmissionResult:
    """The shape of a result (exercises, checks, points) when no submission of the run was
    graded: an empty submission graded here."""
    from grader import runner

    with tempfile.TemporaryDirectory() as scratch:
        empty = Path(scratch) / "empty"
        empty.mkdir()
        return runner.grade_submission(empty, options)
