"""The tensor strategies (`grader/strategies.py`): values finite, float32-representable and within
their bounds for every dtype; every value kind and layout drawn, the non-contiguous layouts
really non-contiguous; shapes with all-different sides within their limits; failing inputs that
shrink to small, readable ones; options chosen evenly; the same examples on every run."""

from __future__ import annotations

import collections
from typing import Any

import pytest
import torch
from hypothesis import find, given, settings
from hypothesis import strategies as st

from grader import strategies
from grader.profile import grading_settings
from grader.strategies import LAYOUTS, VALUE_KINDS, choose, shapes, tensors

DTYPES = (torch.float32, torch.float64, torch.int64, torch.bool)
FIND = settings(database=None, derandomize=True)


def drawn(strategy: st.SearchStrategy, examples: int = 200) -> list[Any]:
    """The values a check drawing from `strategy` under the grading settings would see."""
    seen: list[Any] = []

    @given(strategy)
    @grading_settings(examples, shrink=False)
    def record(value: Any) -> None:
        seen.append(value)

    record()
    return seen


def float32_representable(t: torch.Tensor) -> bool:
    return bool(torch.equal(t.double().float().double(), t.double()))


# keyword arguments -> (float bounds, int bounds): ints stay within [-100, 100], rounded inwards
BOUNDS = {
    "default": ({}, (-1e3, 1e3), (-100, 100)),
    "magnitude=10": ({"magnitude": 10}, (-10, 10), (-10, 10)),
    "magnitude=2.5": ({"magnitude": 2.5}, (-2.5, 2.5), (-2, 2)),
    "magnitude=1e6": ({"magnitude": 1e6}, (-1e6, 1e6), (-100, 100)),
    "low=0.5,high=100": ({"low": 0.5, "high": 100}, (0.5, 100), (1, 100)),
    "low=-7.5,high=-3": ({"low": -7.5, "high": -3}, (-7.5, -3), (-7, -3)),
    "low=0": ({"low": 0}, (0, 1e3), (0, 100)),
}


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("case", BOUNDS, ids=str)
def test_values_are_finite_and_within_bounds(dtype: torch.dtype, case: str) -> None:
    kwargs, float_bounds, int_bounds = BOUNDS[case]
    examples = drawn(tensors(dtype=dtype, **kwargs), 100)
    assert len(examples) == 100
    low, high = float_bounds if dtype.is_floating_point else int_bounds
    for t in examples:
        assert t.dtype == dtype
        if dtype == torch.bool:
            continue
        assert t.numel() >= 1
        if dtype.is_floating_point:
            assert torch.isfinite(t).all()
            assert float32_representable(t), t
        assert low <= t.min().item() and t.max().item() <= high, (case, t)
    if dtype != torch.bool:  # the edges kind reaches both ends
        assert any(t.min().item() == low for t in examples)
        assert any(t.max().item() == high for t in examples)


@pytest.mark.parametrize("dtype", (torch.float32, torch.float64, torch.int64), ids=str)
def test_positive_bounds_exclude_zero_and_negatives(dtype: torch.dtype) -> None:
    """low=0.5: no small integer 0 and no negative value, whichever kind is drawn."""
    for t in drawn(tensors(dtype=dtype, low=0.5, high=100), 200):
        assert (t >= 0.5).all() and (t != 0).all(), t
    assert any((t == 1).any() for t in drawn(tensors(dtype=dtype, low=0.5, high=100), 200))


def test_float64_values_within_bounds_not_representable_in_float32() -> None:
    for t in drawn(tensors(dtype=torch.float64, magnitude=0.1), 100):
        assert (t >= -0.1).all() and (t <= 0.1).all(), t


def test_bool_tensors_hold_both_values() -> None:
    examples = drawn(tensors(dtype=torch.bool), 50)
    assert all(t.dtype == torch.bool for t in examples)
    assert any(t.any() for t in examples) and any((~t).any() for t in examples)


def test_a_dtype_tuple_draws_each_dtype() -> None:
    dtypes = (torch.float32, torch.int64, torch.bool)
    assert {t.dtype for t in drawn(tensors(dtype=dtypes), 100)} == set(dtypes)


def test_every_value_kind_is_drawn_and_has_its_values(monkeypatch: pytest.MonkeyPatch) -> None:
    filled = strategies._filled
    kinds: dict[int, list[torch.Tensor]] = collections.defaultdict(list)

    def recording(shape, dtype, kind, seed, low, high):  # type: ignore[no-untyped-def]
        values = filled(shape, dtype, kind, seed, low, high)
        kinds[kind].append(values)
        return values

    monkeypatch.setattr(strategies, "_filled", recording)
    drawn(tensors(dtype=torch.float32), 200)
    assert set(kinds) == set(range(len(VALUE_KINDS)))
    assert all(len(kinds[kind]) >= 20 for kind in kinds), {k: len(v) for k, v in kinds.items()}
    for t in kinds[VALUE_KINDS.index("small integers")]:
        assert torch.equal(t, t.round()) and t.abs().max() <= 4, t
    for t in kinds[VALUE_KINDS.index("quarters")]:
        assert torch.equal(t * 4, (t * 4).round()) and t.abs().max() <= 8, t
    for t in kinds[VALUE_KINDS.index("edges")]:
        assert set(t.flatten().tolist()) <= {-1e3, 1e3, 0.0, 1.0, -1.0}, t


def test_every_layout_is_drawn_with_the_same_values(monkeypatch: pytest.MonkeyPatch) -> None:
    as_layout = strategies._as_layout
    layouts: dict[str, list[torch.Tensor]] = collections.defaultdict(list)

    def recording(values: torch.Tensor, layout: str) -> torch.Tensor:
        result = as_layout(values, layout)
        assert torch.equal(result, values) and result.shape == values.shape
        layouts[layout].append(result)
        return result

    monkeypatch.setattr(strategies, "_as_layout", recording)
    drawn(tensors(dtype=(torch.float32, torch.int64)), 200)
    assert set(layouts) == set(LAYOUTS)
    assert all(len(layouts[layout]) >= 30 for layout in LAYOUTS)  # ~67 each
    assert all(t.is_contiguous() for t in layouts["contiguous"])
    strided = [t for t in layouts["strided"] if t.numel() > 1]
    assert strided and not any(t.is_contiguous() for t in strided)
    transposed = [t for t in layouts["transposed"] if t.dim() >= 2 and min(t.shape[-2:]) > 1]
    assert transposed and not any(t.is_contiguous() for t in transposed)


def test_transposed_layout_is_non_contiguous_with_two_sides_above_1() -> None:
    """(A size-1 axis moves without changing the layout: (3, 1) transposed is contiguous.)"""
    for t in drawn(tensors(layouts=("transposed",), min_dims=2, max_dims=4), 80):
        if sum(side > 1 for side in t.shape) >= 2:
            assert not t.is_contiguous(), (t.shape, t.stride())


def test_transposed_layout_breaks_view() -> None:
    for t in drawn(tensors(shape=shapes(min_dims=3, max_dims=3, min_side=2),
                           layouts=("transposed",)), 30):
        with pytest.raises(RuntimeError):
            t.view(t.shape[0], -1)


def test_strided_layout_breaks_view() -> None:
    for t in drawn(tensors(shape=shapes(min_dims=3, max_dims=3, min_side=2),
                           layouts=("strided",)), 30):
        assert not t.is_contiguous()
        with pytest.raises(RuntimeError):
            t.view(t.shape[0], -1)


SHAPE_LIMITS = [  # min_dims, max_dims, min_side, max_side
    (1, 4, 1, 6),
    (0, 2, 1, 6),
    (2, 3, 2, 5),
    (3, 3, 1, 3),
]


@pytest.mark.parametrize("limits", SHAPE_LIMITS, ids=str)
def test_shapes_have_distinct_sides_within_limits(limits: tuple[int, int, int, int]) -> None:
    min_dims, max_dims, min_side, max_side = limits
    examples = drawn(shapes(min_dims=min_dims, max_dims=max_dims, min_side=min_side,
                            max_side=max_side), 200)
    for shape in examples:
        assert isinstance(shape, tuple)
        assert min_dims <= len(shape) <= max_dims, shape
        assert all(min_side <= side <= max_side for side in shape), shape
        assert len(set(shape)) == len(shape), shape
    assert {len(shape) for shape in examples} == set(range(min_dims, max_dims + 1))
    if min_dims == 0:
        assert () in examples


def test_rank_0_tensors() -> None:
    examples = drawn(tensors(min_dims=0, max_dims=1), 60)
    assert any(t.dim() == 0 for t in examples)


def test_a_failing_tensor_shrinks_to_few_small_integers() -> None:
    for dtype in (torch.float32, torch.int64):
        t = find(tensors(dtype=dtype),
                 lambda t: t.numel() >= 4 and bool((t.abs() > 2).any()), settings=FIND)
        assert t.dtype == dtype and t.dim() == 1 and t.numel() <= 6, t
        assert torch.equal(t, t.round()) and t.abs().max() <= 4, t


def test_a_failing_shape_shrinks_to_small_sides() -> None:
    assert find(shapes(), lambda shape: True, settings=FIND) == (1,)
    assert find(shapes(max_dims=2), lambda shape: max(shape) >= 4, settings=FIND) == (4,)
    assert find(tensors(), lambda t: max(t.shape) >= 4, settings=FIND).shape == (4,)


def test_a_failing_shape_shrinks_to_the_fewest_axes() -> None:
    assert find(shapes(), lambda shape: len(shape) >= 2, settings=FIND) == (1, 2)
    # (the shrinker cannot always trade a lower rank for a later shape: a side of 4 may keep
    # a unit axis beside it, as in (4, 1))
    shrunk = find(shapes(), lambda shape: max(shape) >= 4, settings=FIND)
    assert max(shrunk) == 4 and len(shrunk) <= 2 and sorted(shrunk)[:-1] in ([], [1]), shrunk
    assert find(tensors(), lambda t: t.numel() >= 5, settings=FIND).dim() == 1


def test_a_failure_needing_a_fraction_shrinks_to_a_quarter() -> None:
    t = find(tensors(), lambda t: bool((t != t.round()).any()), settings=FIND)
    assert torch.equal(t * 4, (t * 4).round()), t


def test_choose_hits_every_option_and_shrinks_to_the_first() -> None:
    options = ("a", "b", "c", "d", "e")
    chosen = st.composite(lambda draw: choose(draw, options))()
    counts = collections.Counter(drawn(chosen, 200))
    assert set(counts) == set(options)  # (hypothesis stops once it has tried all five)
    assert find(chosen, lambda option: True, settings=FIND) == "a"


def test_elements_draws_element_by_element() -> None:
    for t in drawn(tensors(shape=(2, 3), elements=st.just(3.0)), 20):
        assert t.shape == (2, 3) and t.dtype == torch.float32
        assert (t == 3).all(), t
    examples = drawn(tensors(dtype=torch.int64, elements=st.integers(5, 7)), 50)
    assert all(t.dtype == torch.int64 and ((t >= 5) & (t <= 7)).all() for t in examples)
    assert len({t.shape for t in examples}) > 1
    assert {v for t in examples for v in t.flatten().tolist()} == {5, 6, 7}


def test_the_same_examples_on_every_run() -> None:
    strategy = tensors(dtype=(torch.float32, torch.float64, torch.int64, torch.bool))
    first, second = drawn(strategy, 60), drawn(strategy, 60)
    assert len(first) == len(second) == 60
    for a, b in zip(first, second, strict=True):
        assert a.dtype == b.dtype and a.shape == b.shape and a.stride() == b.stride()
        assert torch.equal(a, b)
    assert len({(t.dtype, t.shape) for t in first}) > 5  # not one example 60 times


def test_int_bounds_without_an_integer_are_refused() -> None:
    with pytest.raises(ValueError, match="no integer"):
        drawn(tensors(dtype=torch.int64, low=0.2, high=0.8), 1)


def test_feedback_says_when_an_input_is_not_contiguous() -> None:
    """A student told "view failed" on an input that prints like any other needs to know why."""
    from grader.describe import describe

    plain = torch.arange(6.0).reshape(2, 3)
    assert "contiguous" not in describe(plain)
    text = describe(plain.t())
    assert text.startswith("tensor([[0., 3.],") and "(not contiguous: a view with strides (1, 3)" \
        in text
    assert "contiguous" not in describe(torch.ones(1, 1).t())  # one element: any layout
