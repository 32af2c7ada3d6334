"""Checks for Part 3, `clustering.py`."""

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from grader.testing import FLOAT_DTYPES, Context, shapes

# Whole-number coordinates: every squared distance is exact in float32, so an equally close
# pair of centroids is a true tie (broken by the smaller index), whatever the formula.
WHOLE = st.integers(-20, 20).map(float)

NEAREST = "the tensor of nearest-centroid indices"

kmeans_assign = pytest.mark.exercise(
    "clustering.kmeans_assign", "the index of the nearest centroid of every point")


@st.composite
def points_and_centroids(draw: st.DrawFn, *, repeated_centroid: bool = False
                         ) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, D) points and (K, D) centroids with N, K and D all different; with
    `repeated_centroid`, one centroid appears twice (every point near it is a tie)."""
    count, k, dims = draw(shapes(min_dims=3, max_dims=3, min_side=2 if repeated_centroid
                                 else 1, max_side=7))
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    points = torch.tensor([[draw(WHOLE) for _ in range(dims)] for _ in range(count)],
                          dtype=dtype)
    centroids = torch.tensor([[draw(WHOLE) for _ in range(dims)] for _ in range(k)],
                             dtype=dtype)
    if repeated_centroid:
        first, second = sorted(draw(st.lists(st.integers(0, k - 1), min_size=2, max_size=2,
                                             unique=True)))
        centroids[second] = centroids[first]
        points[0] = centroids[first]  # at least one point sits exactly on the pair
    return points, centroids


@kmeans_assign
@pytest.mark.points(2)
@pytest.mark.device_probe(0.5)
@given(case=points_and_centroids())
def test_picks_the_nearest_centroid(ctx: Context, case: tuple) -> None:
    """returns the int64 (N,) indices of each point's nearest centroid (Euclidean distance)"""
    points, centroids = case
    reply = ctx.call(points, centroids)
    ctx.expect_tensor(reply.value, ctx.reference(points, centroids), NEAREST)


@kmeans_assign
@pytest.mark.points(1)
@pytest.mark.hidden
@given(case=points_and_centroids(repeated_centroid=True))
def test_ties_go_to_the_smaller_index(ctx: Context, case: tuple) -> None:
    """chooses the smaller index when two centroids are equally close"""
    points, centroids = case
    reply = ctx.call(points, centroids)
    ctx.expect_tensor(reply.value, ctx.reference(points, centroids), NEAREST)
