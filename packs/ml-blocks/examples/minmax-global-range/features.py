"""Part 2 - features: putting columns on one scale, comparing rows by direction.

Rows are examples and columns are features. Each function here returns a new
tensor with the dtype and device of its inputs and never modifies an input.
"""

import torch


def min_max_normalise(x: torch.Tensor) -> torch.Tensor:
    """Scale every column of `x` to the range [0, 1].

    `x` is (N, D) and floating. For each column j, with `lo` its smallest and
    `hi` its largest value, the result holds `(x[:, j] - lo) / (hi - lo)`: the
    column's minimum becomes 0 and its maximum 1. A constant column (hi == lo,
    always the case when N == 1) has no range to divide by: it becomes all zeros.

    >>> min_max_normalise(torch.tensor([[1.0, 5.0], [3.0, 5.0], [2.0, 5.0]]))
    tensor([[0.0000, 0.0000],
            [1.0000, 0.0000],
            [0.5000, 0.0000]])

    Pitfalls: `x.min()` is the minimum of the whole tensor, not of each column
    (use `dim=0`, with `keepdim=True` to broadcast back); `x -= lo` changes the
    caller's tensor; and new tensors need `device=x.device` (or `zeros_like`).
    """
    lo = x.min()
    span = x.max() - lo
    scaled = (x - lo) / torch.where(span > 0, span, torch.ones_like(span))
    return torch.where(span > 0, scaled, torch.zeros_like(x))


def cosine_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """The cosine of the angle between each row of `a` and the same row of `b`.

    `a` and `b` are (N, D) and floating, and no row is all zeros. For row i the
    answer is `a[i] . b[i] / (|a[i]| * |b[i]|)`, where `.` is the dot product and
    `|v|` the Euclidean length `sqrt(v . v)`. Return the (N,) tensor of these
    values, each between -1 and 1: 1 for rows pointing the same way, 0 for
    perpendicular rows, -1 for opposite ones.

    >>> cosine_similarity(torch.tensor([[1.0, 0.0], [1.0, 1.0]]),
    ...                   torch.tensor([[2.0, 0.0], [-1.0, -1.0]]))
    tensor([ 1.0000, -1.0000])

    Pitfalls: the lengths are per row (`dim=1`), not per column; and `a @ b.T`
    compares every row with every other row, an (N, N) matrix.
    """
    dots = (a * b).sum(dim=1)
    return dots / (a.norm(dim=1) * b.norm(dim=1))
