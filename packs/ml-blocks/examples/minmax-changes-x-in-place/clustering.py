"""Part 3 - clustering: the assignment step of k-means.

k-means alternates two steps: assign every point to its nearest centroid, then
move every centroid to the mean of its points. Here you write the first step.
"""

import torch


def kmeans_assign(points: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    """The index of the nearest centroid for every point.

    `points` is (N, D) and `centroids` is (K, D), both floating. For each point,
    measure the Euclidean distance to every centroid and return the index of the
    closest one: an int64 tensor of shape (N,) with values in [0, K). When two
    centroids are equally close, choose the smaller index (as `argmin` does).

    >>> kmeans_assign(torch.tensor([[0.0, 0.0], [9.0, 9.0]]),
    ...               torch.tensor([[10.0, 10.0], [1.0, 1.0]]))
    tensor([1, 0])

    Pitfalls: broadcast `points[:, None, :] - centroids[None, :, :]` to compare
    every point with every centroid, take the minimum over the centroid axis, and
    mind that the largest dot product is not the nearest centroid.
    """
    distances = torch.cdist(points, centroids)
    return distances.argmin(dim=1)
