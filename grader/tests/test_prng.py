"""The grader's cheap per-example seeding (`grader.prng`) behaves as hypothesis's own."""

from __future__ import annotations

import random
import warnings

import hypothesis
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from grader import prng
from grader.profile import grading_settings


def observed_run(inside: bool) -> list[tuple]:
    """What each example of a derandomized test draws and what the global PRNGs give it."""
    seen: list[tuple] = []

    @given(st.integers(0, 1000), st.lists(st.floats(0, 1), max_size=3))
    def check(number: int, floats: list[float]) -> None:
        seen.append((number, tuple(floats), random.random(), float(np.random.random())))
        random.random()  # an example that moves the global states must not move the next one's
        np.random.random()

    check._hypothesis_internal_use_settings = grading_settings(20)
    if inside:
        with prng.restored_after():
            check()
    else:
        check()
    return seen


def test_inside_a_check_examples_see_what_hypothesis_gives_them() -> None:
    assert observed_run(inside=True) == observed_run(inside=False)
    assert len(observed_run(inside=True)) == 20


def test_every_example_starts_from_the_seeded_states() -> None:
    seen = observed_run(inside=True)
    assert len({entry[2:] for entry in seen}) == 1  # random and numpy: the same at each start


def test_the_global_states_are_restored_after_the_check() -> None:
    random.seed(1234)
    np.random.seed(1234)
    expected = (random.random(), float(np.random.random()))
    random.seed(1234)
    np.random.seed(1234)
    observed_run(inside=True)
    assert (random.random(), float(np.random.random())) == expected


def test_a_failing_example_still_restores_the_states() -> None:
    random.seed(99)
    state = random.getstate()

    @given(st.integers(0, 10))
    def failing(number: int) -> None:
        random.random()
        assert number < 5

    failing._hypothesis_internal_use_settings = grading_settings(30)
    with pytest.raises(AssertionError), prng.restored_after():
        failing()
    assert random.getstate() == state


def test_outside_a_check_hypothesis_watches_the_states_itself() -> None:
    """Any other hypothesis test in the same run keeps hypothesis's own handling: a strategy
    that uses the `random` module is still warned about there (and not inside a check, whose
    examples start from the seeded states anyway)."""
    uses_random = st.builds(random.random)

    @given(uses_random)
    def plain(value: float) -> None:
        pass

    plain._hypothesis_internal_use_settings = hypothesis.settings(max_examples=3, database=None)
    with pytest.warns(hypothesis.errors.HypothesisDeprecationWarning, match="random"):
        plain()
    state = random.getstate()
    plain._hypothesis_internal_use_settings = grading_settings(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with prng.restored_after():
            plain()
    assert random.getstate() == state


def test_inside_a_check_torch_starts_every_example_from_the_same_seed() -> None:
    import torch

    seen: list[float] = []

    @given(st.integers(0, 100))
    def check(number: int) -> None:
        seen.append(float(torch.rand(())))
        torch.rand(5)  # moving the generator must not move the next example's start

    check._hypothesis_internal_use_settings = grading_settings(10)
    torch.manual_seed(7)
    torch.rand(3)  # whatever ran before in this process
    before = torch.random.get_rng_state()
    with prng.restored_after():
        check()
    assert len(seen) == 10 and len(set(seen)) == 1
    first = seen[0]
    assert torch.equal(torch.random.get_rng_state(), before)  # restored after the check
    seen.clear()
    torch.manual_seed(12345)  # a different history: the same values inside the check
    with prng.restored_after():
        check()
    assert seen == [first] * 10
