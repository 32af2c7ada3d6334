"""The grader catches every realistic single bug in exactly the exercise it breaks, and gives
full marks to correct submissions written in other styles."""

from __future__ import annotations

import pytest

from .conftest import BUG_FILES, CORRECT_STYLES, statuses


def test_the_corpus_is_big_and_spread_over_all_parts() -> None:
    parts = [path.stem.split("__")[0] for path in BUG_FILES]
    assert len(BUG_FILES) >= 30
    assert {part: parts.count(part) >= 5 for part in set(parts)} == dict.fromkeys(
        ["tensors", "autograd", "training", "networks"], True)
    assert len(CORRECT_STYLES) >= 5


@pytest.mark.parametrize("bug", [path.stem for path in BUG_FILES])
def test_bug_is_caught_by_exactly_its_exercise(bug_results, bug: str) -> None:
    exercise_id, result = bug_results[bug]
    not_passed = {ex_id: status for ex_id, status in statuses(result).items()
                  if status != "passed"}
    assert list(not_passed) == [exercise_id], not_passed
    broken = next(ex for ex in result.exercises if ex.id == exercise_id)
    assert broken.score < broken.max_score
    assert broken.feedback and "Traceback" not in broken.feedback


@pytest.mark.parametrize("style", [path.name for path in CORRECT_STYLES])
def test_correct_style_gets_full_marks(style_results, style: str) -> None:
    result = style_results[style]
    failures = {ex.id: ex.feedback for ex in result.exercises if ex.status != "passed"}
    assert failures == {}
    assert result.score == result.max_score
