"""Checks for Part 2, `features.py`."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from grader.testing import FLOAT_DTYPES, Context, shapes

# Values on a grid of quarters: a column that is not constant has a range of at least 0.25,
# so dividing by it is well-conditioned and any careful formula gives the same answer.
QUARTERS = st.integers(-400, 400).map(lambda quarters: quarters / 4)


@st.composite
def feature_matrices(draw: st.DrawFn, *, constant_columns: bool, min_rows: int = 1
                     ) -> torch.Tensor:
    """(N, D) with all-different N and D, contiguous or transposed. Without
    `constant_columns` every column has two different values; with it, at least one column
    is constant."""
    rows, columns = draw(shapes(min_dims=2, max_dims=2, min_side=min_rows, max_side=7))
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    values = [[draw(QUARTERS) for _ in range(columns)] for _ in range(rows)]
    x = torch.tensor(values, dtype=dtype)
    if constant_columns:
        flat = draw(st.lists(st.integers(0, columns - 1), min_size=1, max_size=columns))
        for column in flat:
            x[:, column] = x[0, column]
    else:
        for column in range(columns):
            if bool((x[:, column] == x[0, column]).all()):
                x[0, column] += 1.0
    if draw(st.booleans()):  # the same values, transposed in memory: breaks `view`
        x = x.t().contiguous().t()
    return x


# --- min_max_normalise ----------------------------------------------------------------------

min_max_normalise = pytest.mark.exercise(
    "features.min_max_normalise", "every column scaled to [0, 1]")


@min_max_normalise
@pytest.mark.points(2)
@pytest.mark.device_probe(0.5)
@given(x=feature_matrices(constant_columns=False, min_rows=2))
def test_scales_each_column_to_unit_range(ctx: Context, x: torch.Tensor) -> None:
    """maps each column's minimum to 0 and its maximum to 1 (columns with a range)"""
    reply = ctx.call(x)
    ctx.expect_tensor(reply.value, ctx.reference(x), rtol=1e-5, atol=1e-6)


@min_max_normalise
@pytest.mark.points(1)
@given(x=feature_matrices(constant_columns=True))
def test_constant_columns_become_zero(ctx: Context, x: torch.Tensor) -> None:
    """turns a constant column into zeros (no division by a zero range), one row included"""
    reply = ctx.call(x)
    ctx.expect_tensor(reply.value, ctx.reference(x), rtol=1e-5, atol=1e-6)


# --- cosine_similarity ----------------------------------------------------------------------

cosine_similarity = pytest.mark.exercise(
    "features.cosine_similarity", "the cosine of the angle between matching rows")


@st.composite
def row_pairs(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor]:
    """Two (N, D) matrices of rows that are never all zeros, of very different lengths."""
    rows, columns = draw(shapes(min_dims=2, max_dims=2, max_side=7))
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    pair = []
    for _ in range(2):
        x = torch.tensor([[draw(QUARTERS) for _ in range(columns)] for _ in range(rows)],
                         dtype=dtype)
        x[:, 0] = torch.where((x == 0).all(dim=1), torch.ones(rows, dtype=dtype), x[:, 0])
        pair.append(x)
    return pair[0], pair[1]


@cosine_similarity
@pytest.mark.points(2)
@pytest.mark.device_probe(0.5)
@given(pair=row_pairs())
def test_cosine_of_each_row_pair(ctx: Context, pair: tuple) -> None:
    """returns the (N,) cosines a[i] . b[i] / (|a[i]| |b[i]|), one per row"""
    a, b = pair
    reply = ctx.call(a, b)
    ctx.expect_tensor(reply.value, ctx.reference(a, b), rtol=1e-4, atol=1e-5)
