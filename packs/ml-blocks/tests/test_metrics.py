"""Checks for Part 1, `metrics.py`."""

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from grader.testing import FLOAT_DTYPES, Context, indices, shapes, tensors

# Values on a grid of quarters: exact in float32, so a correct answer never depends on the
# order of a sum, and every difference is either 0 or at least 0.25.
QUARTERS = st.integers(-400, 400).map(lambda quarters: quarters / 4)


# --- mean_squared_error ---------------------------------------------------------------------

mean_squared_error = pytest.mark.exercise(
    "metrics.mean_squared_error", "the mean of the squared differences, as a 0-d tensor")


@st.composite
def prediction_target_pairs(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor]:
    shape = draw(shapes(min_dims=1, max_dims=3, max_side=6))
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    return (draw(tensors(shape=shape, dtype=dtype, elements=QUARTERS)),
            draw(tensors(shape=shape, dtype=dtype, elements=QUARTERS)))


@mean_squared_error
@pytest.mark.points(2)
@pytest.mark.device_probe(0.5)
@given(pair=prediction_target_pairs())
@example(pair=(torch.tensor([[1.0, 2.0, 4.0], [0.0, 0.0, 0.0]]),
               torch.tensor([[1.0, 0.0, 1.0], [0.5, -0.5, 3.0]])))
def test_averages_squared_differences(ctx: Context, pair: tuple) -> None:
    """returns the mean over all elements of (prediction - target) ** 2, as a 0-d tensor"""
    prediction, target = pair
    reply = ctx.call(prediction, target)
    ctx.expect_tensor(reply.value, ctx.reference(prediction, target), "the mean squared error",
                      rtol=1e-5, atol=1e-6)


# --- accuracy -------------------------------------------------------------------------------

accuracy = pytest.mark.exercise("metrics.accuracy", "the fraction of rows predicted right")


@st.composite
def scored_batches(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits without ties in a row (every class ranked differently), and labels that are
    right for some rows and wrong for others."""
    rows, classes = draw(shapes(min_dims=2, max_dims=2, min_side=2, max_side=7))
    ranks = [draw(st.permutations(range(classes))) for _ in range(rows)]
    scale = draw(st.sampled_from([0.5, 1.0, 30.0]))
    shift = draw(st.sampled_from([0.0, -10.0, 100.0]))
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    logits = torch.tensor(ranks, dtype=dtype) * scale + shift
    guesses = draw(indices(classes, rows))
    right = torch.tensor(draw(st.lists(st.booleans(), min_size=rows, max_size=rows)))
    labels = torch.where(right, logits.argmax(dim=1), guesses)
    return logits, labels


@accuracy
@pytest.mark.points(2)
@given(batch=scored_batches())
def test_fraction_of_rows_predicted_right(ctx: Context, batch: tuple) -> None:
    """returns, as a Python float, the fraction of rows whose largest logit is at the label"""
    logits, labels = batch
    reply = ctx.call(logits, labels)
    ctx.expect_type(reply.value, float, "the accuracy", "a Python float (use .item())")
    ctx.expect_float(reply.value, ctx.reference(logits, labels), "the accuracy")
