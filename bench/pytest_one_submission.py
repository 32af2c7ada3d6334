"""The pytest-per-process baseline of the benchmark: the same checks as `grader`, one pytest
test per exercise, for the submission folder named by $SUBMISSION (run by bench/benchmark.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from grader import pack, runner
from grader.session import SubmissionSession

SUBMISSION = Path(os.environ.get("SUBMISSION", "solutions"))


@pytest.fixture(scope="module")
def session():
    options = runner.Options()
    with SubmissionSession(SUBMISSION, limits=options.limits,
                           settings=options.sandbox_settings()) as opened:
        yield opened


@pytest.mark.parametrize("exercise", pack.exercises(), ids=lambda ex: ex.id)
def test_exercise(session, exercise) -> None:
    result = runner.grade_exercise(exercise, session, runner.Options())
    assert result.status == "passed", result.feedback
