"""The local batch (`grader.batch`): a job that dies, hangs or fails costs only the submission it
held, which is graded again once and then gets an explicit error result; the others are graded
as if nothing happened."""

from __future__ import annotations

import multiprocessing
import os
import time
from pathlib import Path

import pytest

from grader import given_up, runner, sandbox
from grader.failures import ERROR, PASSED
from grader.tests.conftest import copy_solutions

pytestmark = pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                                reason="the jobs' behaviour is planted by forking")

OPTIONS = runner.Options(only=("tensors.dot",),
                         limits=runner.Limits(submission_seconds=8.0))


def dies(folder: Path, **_: object) -> None:
    os._exit(7)


def dies_once(folder: Path, **_: object) -> None:
    marker = folder.parent / f"{folder.name}.died"
    if not marker.exists():
        marker.touch()
        os._exit(7)


def hangs(folder: Path, **_: object) -> None:
    time.sleep(600)


def raises(folder: Path, **_: object) -> None:
    raise RuntimeError("boom")


def dies_holding_the_zygote(folder: Path, **_: object) -> None:
    """Dies the first time while holding the shared zygote's lock, as a job killed in the
    middle of asking for a worker would: a job using the old zygote would wait forever."""
    marker = folder.parent / f"{folder.name}.died"
    if not marker.exists():
        marker.touch()
        sandbox.zygote().lock.acquire()
        os._exit(7)


def grade_class(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, behaviours: dict,
                honest: tuple[str, ...]) -> dict:
    """Grade a class of correct submissions, two jobs at a time, where the named submissions'
    jobs do what `behaviours` says before grading them; results by id."""
    folders = [copy_solutions(tmp_path / "class" / name, parts=("tensors",))
               for name in sorted((*behaviours, *honest))]
    real = runner.grade_submission

    def grade(folder: Path, options: runner.Options | None = None, **kwargs: object) -> object:
        behaviour = behaviours.get(Path(folder).name)
        if behaviour is not None:
            behaviour(Path(folder), **kwargs)
        return real(folder, options, **kwargs)

    monkeypatch.setattr(runner, "grade_submission", grade)  # inherited by the forked jobs
    monkeypatch.setattr(given_up, "GRACE_SECONDS", 1.0)
    results = list(runner.grade_batch(folders, OPTIONS, jobs=2))
    assert sorted(result.id for result in results) == sorted(f.name for f in folders), \
        "every submission has exactly one result"
    assert not [child for child in multiprocessing.active_children()
                if child.name.startswith("grader-job-")], "the jobs outlived the batch"
    return {result.id: result for result in results}


@pytest.fixture(scope="module")
def troubled_class(tmp_path_factory: pytest.TempPathFactory) -> dict:
    with pytest.MonkeyPatch.context() as monkeypatch:
        return grade_class(tmp_path_factory.mktemp("batch"), monkeypatch,
                           {"dies": dies, "dies_once": dies_once, "hangs": hangs,
                            "raises": raises}, honest=("honest_a", "honest_b", "honest_c"))


def statuses(result: object) -> set[str]:
    return {exercise.status for exercise in result.exercises}


def test_honest_submissions_are_graded_as_if_nothing_happened(troubled_class: dict) -> None:
    for name in ("honest_a", "honest_b", "honest_c"):
        assert statuses(troubled_class[name]) == {PASSED}, name
        assert troubled_class[name].score == troubled_class[name].max_score > 0


def test_a_job_that_died_once_is_graded_again(troubled_class: dict) -> None:
    assert statuses(troubled_class["dies_once"]) == {PASSED}


@pytest.mark.parametrize(("name", "reason"), [
    ("dies", "its judge process died (exit status 7)"),
    ("hangs", "its judge did not finish within 9 s"),
    ("raises", "the grader failed: RuntimeError: boom"),
])
def test_failing_twice_is_an_explicit_infrastructure_error(troubled_class: dict, name: str,
                                                            reason: str) -> None:
    result = troubled_class[name]
    assert statuses(result) == {ERROR}
    assert result.score == 0
    exercise = result.exercises[0]
    assert "failed twice" in exercise.feedback and reason in exercise.feedback
    assert all(check.status == ERROR for check in exercise.checks)


def slow_but_alive(folder: Path, *, on_exercise: object, **_: object) -> None:
    """Three "exercises" of 2 s each: longer than the silence allowed in all, not at once."""
    for _ in range(3):
        time.sleep(2)
        on_exercise(None)


def test_a_job_silent_too_long_is_stopped_but_one_reporting_progress_is_not(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(given_up, "silent_after", lambda options: 4.0)
    graded = grade_class(tmp_path, monkeypatch, {"silent": hangs, "slow": slow_but_alive},
                         honest=("honest_a",))
    assert statuses(graded["silent"]) == {ERROR}
    assert "its judge finished no exercise for 4 s" in graded["silent"].exercises[0].feedback
    assert statuses(graded["slow"]) == statuses(graded["honest_a"]) == {PASSED}


def test_a_job_dead_while_asking_the_zygote_does_not_stall_the_others(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    started = time.monotonic()
    graded = grade_class(tmp_path, monkeypatch, {"victim": dies_holding_the_zygote},
                         honest=("honest_a", "honest_b"))
    assert {name: statuses(result) for name, result in graded.items()} == \
        {"victim": {PASSED}, "honest_a": {PASSED}, "honest_b": {PASSED}}
    assert time.monotonic() - started < OPTIONS.limits.submission_seconds + 30
