"""Part 1 - tensor operations.

Creating tensors (from lists, from NumPy, shaped like another tensor), indexing and
copying, joining and splitting, reshaping, products, a hand-written softmax, gather /
scatter, and choosing a device. Unless stated otherwise, never modify an input and
return tensors on the same device as the inputs.
"""

from collections.abc import Sequence

import numpy as np
import torch


def from_nested(data: list) -> torch.Tensor:
    """Build a tensor from a nested Python list.

    `torch.tensor` copies the data and infers the dtype from the values: Python ints
    give int64, floats give float32 and bools give bool. Return that tensor; its shape
    follows the nesting of `data`.

    >>> from_nested([[1, 2], [3, 4]])
    tensor([[1, 2],
            [3, 4]])
    >>> from_nested([1.5, 2.0]).dtype
    torch.float32

    Pitfall: `torch.Tensor(data)` (capital T) always gives float32; use `torch.tensor`.
    """
    return torch.tensor(data)


def share_numpy(array: np.ndarray) -> torch.Tensor:
    """Wrap a NumPy array in a tensor that shares its memory.

    `torch.from_numpy` makes no copy: the tensor and the array are two views of the
    same buffer, so an in-place change to either one shows in the other. The dtype
    follows the array (float64 stays float64).

    >>> a = np.array([1.0, 2.0])
    >>> t = share_numpy(a)
    >>> a[0] = 10.0
    >>> t
    tensor([10.,  2.], dtype=torch.float64)

    Pitfall: `torch.tensor(array)` copies, so later changes are not shared.
    """
    return torch.from_numpy(array)


def like(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Return `(ones, zeros, rand)` shaped like `x`.

    `ones` and `zeros` take x's shape, dtype and device (`torch.ones_like`,
    `torch.zeros_like`). `rand` takes x's shape and device but is always float32,
    with values uniform in [0, 1) - even when `x` holds integers.

    >>> ones, zeros, rand = like(torch.tensor([[1, 2, 3]]))
    >>> ones, zeros
    (tensor([[1, 1, 1]]), tensor([[0, 0, 0]]))
    >>> rand.shape, rand.dtype
    (torch.Size([1, 3]), torch.float32)

    Pitfall: `torch.rand(x.shape)` alone lands on the CPU; pass `device=x.device`.
    """
    ones = torch.ones_like(x)
    zeros = torch.zeros_like(x)
    rand = torch.rand(x.shape, dtype=torch.float32, device=x.device)
    return ones, zeros, rand


def zero_column(t: torch.Tensor, j: int) -> torch.Tensor:
    """Return a copy of the 2-D tensor `t` with column `j` set to 0.

    Indexing with `[:, j]` selects a column; assigning to it writes in place. So clone
    first and write into the clone: `t` itself must stay unchanged. `j` may be
    negative, as in ordinary indexing.

    >>> t = torch.tensor([[1, 2], [3, 4]])
    >>> zero_column(t, 1)
    tensor([[1, 0],
            [3, 0]])
    >>> t
    tensor([[1, 2],
            [3, 4]])

    Pitfall: `t[:, j] = 0` without a clone silently changes the caller's tensor.
    """
    result = t.clone()
    result[:, j] = 0
    return result


def concat(tensors: Sequence[torch.Tensor], dim: int) -> torch.Tensor:
    """Join a sequence of tensors along the existing axis `dim`.

    `torch.cat` needs the tensors to agree in every axis except `dim`; the result's
    size along `dim` is the sum of theirs. No new axis is created (that is
    `torch.stack`).

    >>> concat([torch.tensor([[1, 2]]), torch.tensor([[3, 4]])], 0)
    tensor([[1, 2],
            [3, 4]])
    >>> concat([torch.tensor([[1, 2]]), torch.tensor([[3, 4]])], 1)
    tensor([[1, 2, 3, 4]])

    Pitfall: confusing `cat` with `stack`, which adds a dimension.
    """
    return torch.cat(list(tensors), dim)


def products(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return `(a * b, a @ b)`: the elementwise and the matrix product.

    `*` multiplies matching entries (shapes must broadcast); `@` is matrix
    multiplication (rows of `a` times columns of `b`). For square matrices both
    exist and usually differ.

    >>> a = torch.tensor([[1, 2], [3, 4]])
    >>> elementwise, matrix = products(a, a)
    >>> elementwise
    tensor([[ 1,  4],
            [ 9, 16]])
    >>> matrix
    tensor([[ 7, 10],
            [15, 22]])

    Pitfall: using `*` when a matrix product is meant (or vice versa).
    """
    return a * b, a @ b


def add_in_place(t: torch.Tensor, value: float) -> torch.Tensor:
    """Add `value` to every element of `t` in place and return `t` itself.

    Methods ending in an underscore (`add_`, `mul_`, `zero_`...) modify the tensor
    they are called on. This is the one function of the part that is meant to change
    its input: the returned object must be the very same tensor (`result is t`).

    >>> t = torch.tensor([1.0, 2.0])
    >>> add_in_place(t, 5) is t
    True
    >>> t
    tensor([6., 7.])

    Pitfall: `t = t + value` builds a new tensor and leaves the caller's unchanged.
    """
    t.add_(value)
    return t


def flatten_per_sample(x: torch.Tensor) -> torch.Tensor:
    """Flatten every sample of a batch: shape `(B, ...)` becomes `(B, prod(...))`.

    The first axis is the batch and is kept; all the others are merged into one.
    `reshape` returns a view when it can and copies when it must, so it works on any
    input. Passing -1 lets PyTorch compute the merged size.

    >>> x = torch.zeros(2, 3, 4).transpose(1, 2)
    >>> flatten_per_sample(x).shape
    torch.Size([2, 12])

    Pitfall: `x.view(B, -1)` raises on non-contiguous input such as a transposed
    tensor; use `reshape` (or `flatten(1)`).
    """
    return x.reshape(x.shape[0], -1)


def add_axis(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Insert an axis of size 1 at position `dim`.

    `unsqueeze` turns, for example, a vector of shape `(3,)` into a row `(1, 3)`
    (`dim=0`) or a column `(3, 1)` (`dim=1`); negative `dim` counts from the end.
    The values are unchanged and the result is a view.

    >>> add_axis(torch.tensor([1, 2, 3]), 0).shape
    torch.Size([1, 3])
    >>> add_axis(torch.tensor([1, 2, 3]), -1).shape
    torch.Size([3, 1])

    Pitfall: adding the axis in the wrong place silently changes how it broadcasts.
    """
    return x.unsqueeze(dim)


def drop_unit_axes(x: torch.Tensor) -> torch.Tensor:
    """Remove every axis of size 1.

    `squeeze()` with no argument drops all size-1 axes, keeping the values and their
    order. A tensor with a single element becomes 0-d.

    >>> drop_unit_axes(torch.zeros(1, 3, 1, 2)).shape
    torch.Size([3, 2])
    >>> drop_unit_axes(torch.zeros(1, 1)).shape
    torch.Size([])

    Pitfall: squeezing a batch of one also drops the batch axis; pass `dim` when
    you only mean one axis.
    """
    return x.squeeze()


def matmul_broadcast(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Multiply with `torch.matmul` semantics: vectors, matrices and batches.

    1-D @ 1-D is a dot product, 2-D @ 2-D a matrix product, and a 1-D operand is
    treated as a row (left) or a column (right) whose added axis is removed again.
    With more than two dimensions the last two are multiplied and the leading
    (batch) axes broadcast.

    >>> matmul_broadcast(torch.ones(10, 3, 4), torch.ones(4, 5)).shape
    torch.Size([10, 3, 5])
    >>> matmul_broadcast(torch.ones(2, 3), torch.ones(3)).shape
    torch.Size([2])

    Pitfall: `torch.mm` accepts only 2-D matrices and does not broadcast.
    """
    return torch.matmul(a, b)


def dot(u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Return the inner product of two 1-D tensors as a 0-d tensor.

    The inner product is the sum of the products of matching entries. Return a 0-d
    tensor (on the inputs' device), not a Python number; call `.item()` yourself
    when you need the number.

    >>> dot(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([4.0, 5.0, 6.0]))
    tensor(32.)

    Pitfall: `u @ v.T` or `(u * v).sum(dim=0, keepdim=True)` give the right value
    but not always a 0-d result.
    """
    return torch.dot(u, v)


def softmax(x: torch.Tensor, dim: int) -> torch.Tensor:
    """Softmax along `dim`, written by hand and numerically stable.

    softmax(x)_i = exp(x_i) / sum_j exp(x_j), taken over `dim`: the values become
    positive and sum to 1 along that axis. Must equal `torch.softmax(x, dim)` for
    every finite input, huge and tiny magnitudes included. Subtracting the maximum
    along `dim` (keepdim=True) first changes nothing mathematically but keeps
    `exp` from overflowing to inf (inf / inf is nan).
    Not allowed here: torch.softmax, Tensor.softmax, F.softmax, F.log_softmax and
    nn.Softmax; the grader detects calls to them.

    >>> softmax(torch.tensor([[0.0, 0.0], [0.0, 1000.0]]), 1)
    tensor([[0.5000, 0.5000],
            [0.0000, 1.0000]])

    Pitfall: `x.exp() / x.exp().sum()` gives nan for x = 1000; a global `x.max()`
    instead of a per-`dim` maximum underflows rows far below it to 0 / 0.
    """
    if x.numel() == 0:
        # amax refuses an empty reduction; an empty softmax is just an empty tensor.
        return x.clone()
    exps = (x - x.amax(dim, keepdim=True)).exp()
    return exps / exps.sum(dim, keepdim=True)


def select_rows(x: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Return the rows of `x` at the int64 indices `idx` (in that order).

    `index_select(0, idx)` picks whole slices along axis 0; indices may repeat and
    appear in any order. The result is a new tensor with `len(idx)` rows.

    >>> x = torch.tensor([[1, 2], [3, 4], [5, 6]])
    >>> select_rows(x, torch.tensor([2, 0, 2]))
    tensor([[5, 6],
            [1, 2],
            [5, 6]])

    Pitfall: `idx` must be an integer tensor on the same device as `x`.
    """
    return x.index_select(0, idx)


def pick_per_row(A: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """Return the 1-D tensor whose i-th value is `A[i, idx[i]]`.

    `gather(1, index)` reads, for every row, the column named in `index`; `index`
    must have as many dimensions as `A`, so turn `idx` into a column with
    `unsqueeze(1)` and drop that axis again afterwards. This is how a loss picks
    the score of the correct class in each row.

    >>> A = torch.tensor([[10, 11, 12], [20, 21, 22]])
    >>> pick_per_row(A, torch.tensor([2, 0]))
    tensor([12, 20])

    Pitfall: `A[:, idx]` selects whole columns (an N x N result), not one per row.
    """
    return A.gather(1, idx.unsqueeze(1)).squeeze(1)


def count_elements(x: torch.Tensor) -> int:
    """Return the number of elements of `x` as a Python int.

    `numel()` is the product of the sizes of all axes: 1 for a 0-d tensor, 0 when
    any axis has size 0.

    >>> count_elements(torch.zeros(2, 3, 4))
    24
    >>> count_elements(torch.tensor(5.0))
    1

    Pitfall: `len(x)` is only the size of the first axis (and fails on 0-d tensors).
    """
    return x.numel()


def split(x: torch.Tensor, chunks: int, dim: int) -> tuple[torch.Tensor, ...]:
    """Split `x` into `chunks` pieces along `dim`, as `torch.chunk` does.

    Each piece has size ceil(n / chunks) along `dim` and the last may be smaller, so
    fewer than `chunks` pieces can come back. The pieces are views of `x`, returned
    as a tuple.

    >>> split(torch.arange(5), 2, 0)
    (tensor([0, 1, 2]), tensor([3, 4]))

    Pitfall: `torch.split(x, n)` takes the size of each piece, not the number of
    pieces.
    """
    return tuple(torch.chunk(x, chunks, dim))


def swap(x: torch.Tensor, d0: int, d1: int) -> torch.Tensor:
    """Return `x` with axes `d0` and `d1` swapped.

    `transpose` returns a view with the two axes exchanged; no data moves, so the
    result is usually non-contiguous. Negative axes count from the end.

    >>> swap(torch.zeros(2, 3, 4), 0, 2).shape
    torch.Size([4, 3, 2])
    >>> swap(torch.tensor([[1, 2, 3]]), 0, 1)
    tensor([[1],
            [2],
            [3]])

    Pitfall: `x.reshape(...)` with swapped sizes keeps the memory order and so
    scrambles the values; it is not a transpose.
    """
    return x.transpose(d0, d1)


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """One-hot encode the 1-D int64 `labels`: float32 of shape `(N, num_classes)`.

    Row i holds 1.0 at column `labels[i]` and 0.0 elsewhere. Start from zeros and
    use `scatter_(1, index, 1.0)`, which writes 1.0 in each row at the column given
    by `index` (a column made with `labels.unsqueeze(1)`). Create the zeros on
    `labels.device`.

    >>> one_hot(torch.tensor([0, 2]), 3)
    tensor([[1., 0., 0.],
            [0., 0., 1.]])

    Pitfall: `torch.zeros(n, k)` without `device=labels.device` breaks on the GPU.
    """
    encoded = torch.zeros(len(labels), num_classes, dtype=torch.float32, device=labels.device)
    return encoded.scatter_(1, labels.unsqueeze(1), 1.0)


def pick_device() -> torch.device:
    """Return `torch.device("cuda")` when a GPU is available, else the CPU device.

    Code that moves models and data with `.to(device)` then runs unchanged on
    machines with and without a GPU. Return a `torch.device` object, not a string.

    >>> pick_device() in (torch.device("cuda"), torch.device("cpu"))
    True

    Pitfall: hard-coding `"cuda"` crashes on a machine without a GPU.
    """
    return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")


"""Naive exp(x) / sum(exp(x)) without subtracting the max: overflows to nan for x around 100."""


import torch


def softmax(x, dim):
    exps = torch.exp(x)
    return exps / exps.sum(dim, keepdim=True)


"""Uses x.view(B, -1), which raises on non-contiguous (e.g. transposed) input."""


import torch


def flatten_per_sample(x):
    return x.view(x.shape[0], -1)
