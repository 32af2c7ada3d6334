"""Checks for Part 1, `tensors.py`: tensor operations."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st

from grader.testing import (
    FLOAT_DTYPES,
    Context,
    DeviceData,
    TensorData,
    dims_of,
    indices,
    shapes,
    tensors,
    unit_axis_shapes,
)

ANY_DTYPE = (torch.float32, torch.float64, torch.int64)
# Every aten op behind torch.softmax, Tensor.softmax, F.softmax, F.log_softmax, nn.Softmax.
SOFTMAX_OPS = ("aten._softmax", "aten.softmax", "aten._log_softmax", "aten.log_softmax",
               "aten._safe_softmax", "aten.special_softmax", "aten.special_log_softmax")


# --- from_nested ----------------------------------------------------------------------------

from_nested = pytest.mark.exercise("tensors.from_nested", "a tensor from a nested Python list")


def nested_lists(dtype: torch.dtype) -> st.SearchStrategy:
    return tensors(shape=shapes(min_dims=1, max_dims=3, max_side=4), dtype=dtype,
                   magnitude=50 if dtype == torch.int64 else 100,
                   layouts=("contiguous",)).map(torch.Tensor.tolist)


@from_nested
@pytest.mark.points(1)
@pytest.mark.devices("cpu")
@given(data=st.one_of(nested_lists(torch.int64), nested_lists(torch.float32),
                      nested_lists(torch.bool)))
def test_infers_dtype_like_torch_tensor(ctx: Context, data: list) -> None:
    """builds the tensor of the nested list with torch.tensor's dtype (int64, float32 or bool)"""
    reply = ctx.call(data)
    ctx.expect_tensor(reply.value, ctx.reference(data))


# --- share_numpy ----------------------------------------------------------------------------

share_numpy = pytest.mark.exercise(
    "tensors.share_numpy", "a tensor sharing memory with a NumPy array")
numpy_arrays = tensors(shape=shapes(min_dims=1, max_dims=3, max_side=5),
                       dtype=(torch.float32, torch.float64, torch.int64),
                       layouts=("contiguous",)).map(lambda t: t.numpy())


@share_numpy
@pytest.mark.points(1)
@pytest.mark.devices("cpu")
@given(array=numpy_arrays)
def test_same_values_and_dtype(ctx: Context, array: np.ndarray) -> None:
    """returns a tensor with the array's values and dtype"""
    reply = ctx.call(array)
    ctx.expect_tensor(reply.value, ctx.reference(array))


@share_numpy
@pytest.mark.points(1)
@pytest.mark.devices("cpu")
@pytest.mark.examples(10)
@given(array=numpy_arrays)
def test_shares_memory(ctx: Context, array: np.ndarray) -> None:
    """shares memory with the array (no copy): a change to one shows in the other"""
    reply = ctx.call(array)
    ctx.expect_type(reply.value, TensorData, "the result", "a torch.Tensor")
    ctx.expect(0 in reply.shares_with,
               "The returned tensor is a copy: it does not share memory with the NumPy array, so "
               "changes to one do not show in the other. torch.from_numpy(array) shares memory; "
               "torch.tensor(array) copies.")


# --- like -----------------------------------------------------------------------------------

like = pytest.mark.exercise("tensors.like", "ones, zeros and rand shaped like x")


@like
@pytest.mark.points(1.5)
@pytest.mark.device_probe(0.5)
@given(x=tensors(dtype=(torch.float32, torch.float64, torch.int64, torch.bool)))
def test_ones_zeros_rand_like_x(ctx: Context, x: torch.Tensor) -> None:
    """returns (ones, zeros, rand): ones/zeros with x's shape and dtype, rand float32 in [0, 1)"""
    reply = ctx.call(x)
    value = reply.value
    ctx.expect_type(value, (tuple, list), "the result", "a tuple (ones, zeros, rand)")
    ctx.expect(len(value) == 3, f"The result should have 3 items (ones, zeros, rand), but it has "
               f"{len(value)}.")
    ones, zeros, rand = ctx.reference(x)
    ctx.expect_tensor(value[0], ones, "ones")
    ctx.expect_tensor(value[1], zeros, "zeros")
    ctx.expect_tensor(value[2], rand, "rand", compare_values=False)
    got_rand = value[2].values
    if got_rand is not None and got_rand.numel():
        ctx.expect(bool((got_rand >= 0).all() and (got_rand < 1).all()),
                   "rand should hold values in [0, 1) (torch.rand), but some are outside.")
        if got_rand.numel() >= 8:
            ctx.expect(got_rand.unique().numel() > 1, "rand should hold random values, but all "
                       "its values are equal.")


# --- zero_column ----------------------------------------------------------------------------

zero_column = pytest.mark.exercise(
    "tensors.zero_column", "t with column j set to 0, as a new tensor", inputs_unchanged=False)
matrices = tensors(dtype=ANY_DTYPE, min_dims=2, max_dims=2)


@zero_column
@pytest.mark.points(1)
@pytest.mark.device_probe(0.5)
@given(t=matrices, data=st.data())
def test_column_j_is_zero(ctx: Context, t: torch.Tensor, data: st.DataObject) -> None:
    """returns t with column j set to 0"""
    j = data.draw(st.integers(0, t.shape[1] - 1), label="j")
    reply = ctx.call(t, j)
    ctx.expect_tensor(reply.value, ctx.reference(t, j))


@zero_column
@pytest.mark.points(1)
@pytest.mark.hidden
@given(t=matrices, data=st.data())
def test_leaves_t_unchanged(ctx: Context, t: torch.Tensor, data: st.DataObject) -> None:
    """leaves t unchanged and returns a new tensor"""
    j = data.draw(st.integers(0, t.shape[1] - 1), label="j")
    reply = ctx.call(t, j)
    ctx.expect_unchanged(reply.args_after[0], t, "t")
    ctx.expect(0 not in reply.shares_with, "The result shares memory with `t`, so writing into "
               "it changes `t` too; return a new tensor (e.g. t.clone()).")


# --- concat ---------------------------------------------------------------------------------

concat = pytest.mark.exercise("tensors.concat", "tensors joined along dim")


@st.composite
def concat_inputs(draw: st.DrawFn) -> tuple[list[torch.Tensor], int]:
    shape = list(draw(shapes(min_dims=1, max_dims=3, max_side=5)))
    dim = draw(dims_of(len(shape)))
    dtype = draw(st.sampled_from(ANY_DTYPE))
    parts = []
    for _ in range(draw(st.integers(1, 4))):
        part_shape = list(shape)
        part_shape[dim] = draw(st.integers(1, 4))
        parts.append(draw(tensors(shape=tuple(part_shape), dtype=dtype)))
    return parts, dim


@concat
@pytest.mark.points(1)
@pytest.mark.device_probe(0.5)
@given(case=concat_inputs())
def test_joins_along_dim(ctx: Context, case: tuple) -> None:
    """joins the tensors along the existing axis dim (like torch.cat)"""
    parts, dim = case
    reply = ctx.call(parts, dim)
    ctx.expect_tensor(reply.value, ctx.reference(parts, dim))


# --- products -------------------------------------------------------------------------------

products = pytest.mark.exercise("tensors.products", "elementwise and matrix products")


@st.composite
def product_inputs(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor]:
    dtype = draw(st.sampled_from(ANY_DTYPE))
    if draw(st.booleans()):
        n = draw(st.integers(1, 5))
        return (draw(tensors(shape=(n, n), dtype=dtype, magnitude=10)),
                draw(tensors(shape=(n, n), dtype=dtype, magnitude=10)))
    m, n = draw(shapes(min_dims=2, max_dims=2, max_side=5))
    return (draw(tensors(shape=(m, n), dtype=dtype, magnitude=10)),
            draw(tensors(shape=(n,), dtype=dtype, magnitude=10)))


@products
@pytest.mark.points(1)
@pytest.mark.device_probe(0.5)
@given(pair=product_inputs())
def test_elementwise_and_matrix(ctx: Context, pair: tuple) -> None:
    """returns (a * b, a @ b), in that order"""
    a, b = pair
    reply = ctx.call(a, b)
    ctx.expect_type(reply.value, (tuple, list), "the result", "a tuple (elementwise, matrix)")
    ctx.expect(len(reply.value) == 2, "The result should be a pair (elementwise, matrix).")
    elementwise, matrix = ctx.reference(a, b)
    ctx.expect_tensor(reply.value[0], elementwise, "the elementwise product (first item)",
                      rtol=1e-5, atol=1e-4)
    ctx.expect_tensor(reply.value[1], matrix, "the matrix product (second item)",
                      rtol=1e-5, atol=1e-4)


# --- add_in_place ---------------------------------------------------------------------------

add_in_place = pytest.mark.exercise(
    "tensors.add_in_place", "add to t in place, return t itself", inputs_unchanged=False)


@st.composite
def in_place_inputs(draw: st.DrawFn) -> tuple[torch.Tensor, object]:
    dtype = draw(st.sampled_from(ANY_DTYPE))
    t = draw(tensors(dtype=dtype, layouts=("contiguous",)))
    scalar = st.integers(-10, 10) if dtype == torch.int64 else st.floats(-10, 10, width=32)
    value = draw(st.one_of(scalar, tensors(shape=t.shape[-1:], dtype=dtype, magnitude=10)))
    return t, value


@add_in_place
@pytest.mark.points(1)
@given(case=in_place_inputs())
def test_adds_value_to_t(ctx: Context, case: tuple) -> None:
    """t holds t + value afterwards (changed in place)"""
    t, value = case
    reply = ctx.call(t, value)
    ctx.expect_tensor(reply.args_after[0], ctx.reference(t, value), "`t` after the call")


@add_in_place
@pytest.mark.points(1)
@given(case=in_place_inputs())
def test_returns_the_same_object(ctx: Context, case: tuple) -> None:
    """returns the very same tensor object t (not a new tensor)"""
    t, value = case
    reply = ctx.call(t, value)
    ctx.expect(reply.result_is_arg == 0, "Your function should return the very tensor `t` it "
               "was given (after t.add_(value) or t += value), but it returned another object.")


# --- flatten_per_sample ---------------------------------------------------------------------

flatten_per_sample = pytest.mark.exercise(
    "tensors.flatten_per_sample", "(B, ...) to (B, prod(...))")


@flatten_per_sample
@pytest.mark.points(1)
@pytest.mark.device_probe(0.5)
@given(x=tensors(dtype=ANY_DTYPE, min_dims=2, max_dims=4))
def test_flattens_each_sample(ctx: Context, x: torch.Tensor) -> None:
    """reshapes (B, ...) to (B, prod(...)), on contiguous and non-contiguous inputs"""
    reply = ctx.call(x)
    ctx.expect_tensor(reply.value, ctx.reference(x))


# --- add_axis -------------------------------------------------------------------------------

add_axis = pytest.mark.exercise("tensors.add_axis", "a size-1 axis inserted at dim")


@add_axis
@pytest.mark.points(1)
@pytest.mark.device_probe(0.5)
@given(x=tensors(dtype=ANY_DTYPE, max_dims=3), data=st.data())
def test_inserts_unit_axis(ctx: Context, x: torch.Tensor, data: st.DataObject) -> None:
    """inserts a size-1 axis at dim (negative dims too), like unsqueeze"""
    dim = data.draw(dims_of(x.dim(), extra=1), label="dim")
    reply = ctx.call(x, dim)
    ctx.expect_tensor(reply.value, ctx.reference(x, dim))


# --- drop_unit_axes -------------------------------------------------------------------------

drop_unit_axes = pytest.mark.exercise("tensors.drop_unit_axes", "every size-1 axis removed")


@drop_unit_axes
@pytest.mark.points(1)
@pytest.mark.device_probe(0.5)
@given(x=tensors(shape=unit_axis_shapes(), dtype=ANY_DTYPE))
def test_removes_every_unit_axis(ctx: Context, x: torch.Tensor) -> None:
    """removes every size-1 axis, wherever it is"""
    reply = ctx.call(x)
    ctx.expect_tensor(reply.value, ctx.reference(x))


# --- matmul_broadcast -----------------------------------------------------------------------

matmul_broadcast = pytest.mark.exercise("tensors.matmul_broadcast", "torch.matmul semantics")


@st.composite
def matmul_inputs(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor]:
    n, m, p, batch, other = draw(st.lists(st.integers(2, 6), min_size=5, max_size=5,
                                          unique=True))
    case = draw(st.sampled_from(["vector-vector", "matrix-vector", "vector-matrix",
                                 "matrix-matrix", "batched-matrix", "matrix-batched",
                                 "batched-batched", "broadcast-batches", "batched-vector"]))
    a_shape, b_shape = {
        "vector-vector": ((n,), (n,)),
        "matrix-vector": ((m, n), (n,)),
        "vector-matrix": ((n,), (n, p)),
        "matrix-matrix": ((m, n), (n, p)),
        "batched-matrix": ((batch, m, n), (n, p)),
        "matrix-batched": ((m, n), (batch, n, p)),
        "batched-batched": ((batch, m, n), (batch, n, p)),
        "broadcast-batches": ((other, 1, m, n), (batch, n, p)),
        "batched-vector": ((batch, m, n), (n,)),
    }[case]
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    return (draw(tensors(shape=a_shape, dtype=dtype, magnitude=10)),
            draw(tensors(shape=b_shape, dtype=dtype, magnitude=10)))


@matmul_broadcast
@pytest.mark.points(1.5)
@pytest.mark.device_probe(0.5)
@given(pair=matmul_inputs())
def test_matches_torch_matmul(ctx: Context, pair: tuple) -> None:
    """matches torch.matmul for vector, matrix and batched operands with broadcasting"""
    a, b = pair
    reply = ctx.call(a, b)
    ctx.expect_tensor(reply.value, ctx.reference(a, b), rtol=1e-5, atol=1e-4)


# --- dot ------------------------------------------------------------------------------------

dot = pytest.mark.exercise("tensors.dot", "the 0-d inner product of two vectors")


@st.composite
def vector_pairs(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor]:
    n = draw(st.integers(1, 8))
    dtype = draw(st.sampled_from(ANY_DTYPE))
    return (draw(tensors(shape=(n,), dtype=dtype, magnitude=10)),
            draw(tensors(shape=(n,), dtype=dtype, magnitude=10)))


@dot
@pytest.mark.points(1)
@pytest.mark.device_probe(0.5)
@given(pair=vector_pairs())
def test_zero_dim_inner_product(ctx: Context, pair: tuple) -> None:
    """returns the inner product as a 0-d tensor"""
    u, v = pair
    reply = ctx.call(u, v)
    ctx.expect_tensor(reply.value, ctx.reference(u, v), rtol=1e-5, atol=1e-4)


# --- softmax --------------------------------------------------------------------------------

softmax = pytest.mark.exercise(
    "tensors.softmax", "softmax along dim, written by hand", forbid=SOFTMAX_OPS)


@st.composite
def softmax_inputs(draw: st.DrawFn) -> tuple[torch.Tensor, int]:
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    magnitude = draw(st.sampled_from([1.0, 1e2, 1e4]))
    x = draw(tensors(dtype=dtype, magnitude=magnitude))
    # Logits that share a huge offset: exact in real arithmetic is not enough there.
    x.add_(draw(st.sampled_from([0.0, 0.0, 1e5, -1e6])))
    return x, draw(dims_of(x.dim()))


@softmax
@pytest.mark.points(2.5)
@pytest.mark.device_probe(0.5)
@given(case=softmax_inputs())
@example(case=(torch.tensor([[0.0, 1.0], [-1000.0, -999.0]]), 1))
@example(case=(torch.tensor([[1000.0, 1001.0, 999.0]]), -1))
@example(case=(torch.tensor([[1e6, 1e6 - 1, 1e6 - 2]]), -1))
@example(case=(torch.tensor([[1e-30, -1e-30], [3e-38, 0.0], [5.0, -5.0]]), 0))
def test_matches_torch_softmax(ctx: Context, case: tuple) -> None:
    """equals torch.softmax(x, dim) to float32 precision for every finite input, huge and tiny
    magnitudes included"""
    x, dim = case
    reply = ctx.call(x, dim)
    ctx.expect_tensor(reply.value, torch.softmax(x, dim), rtol=1e-5, atol=1e-6)


# --- select_rows ----------------------------------------------------------------------------

select_rows = pytest.mark.exercise("tensors.select_rows", "rows of x at the given indices")


@st.composite
def row_selections(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor]:
    x = draw(tensors(dtype=ANY_DTYPE, min_dims=2, max_dims=3))
    idx = draw(indices(x.shape[0], draw(st.integers(1, 7))))
    return x, idx


@select_rows
@pytest.mark.points(1)
@pytest.mark.device_probe(0.5)
@given(case=row_selections())
def test_selects_rows(ctx: Context, case: tuple) -> None:
    """returns the rows of x at idx (in order, repeats included)"""
    x, idx = case
    reply = ctx.call(x, idx)
    ctx.expect_tensor(reply.value, ctx.reference(x, idx))


# --- pick_per_row ---------------------------------------------------------------------------

pick_per_row = pytest.mark.exercise("tensors.pick_per_row", "A[i, idx[i]] for every row (gather)")


@st.composite
def per_row_picks(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor]:
    rows, columns = draw(shapes(min_dims=2, max_dims=2, max_side=7))
    A = draw(tensors(shape=(rows, columns), dtype=ANY_DTYPE))
    return A, draw(indices(columns, rows))


@pick_per_row
@pytest.mark.points(1)
@pytest.mark.device_probe(0.5)
@given(case=per_row_picks())
def test_picks_one_value_per_row(ctx: Context, case: tuple) -> None:
    """returns the 1-D tensor of A[i, idx[i]]"""
    A, idx = case
    reply = ctx.call(A, idx)
    ctx.expect_tensor(reply.value, ctx.reference(A, idx))


# --- count_elements -------------------------------------------------------------------------

count_elements = pytest.mark.exercise("tensors.count_elements", "the number of elements, as an int")


@count_elements
@pytest.mark.points(1)
@given(x=tensors(shape=shapes(min_dims=0, max_dims=4, max_side=5), dtype=ANY_DTYPE))
def test_counts_all_elements(ctx: Context, x: torch.Tensor) -> None:
    """returns the number of elements as a Python int (any number of axes, 0-d included)"""
    reply = ctx.call(x)
    ctx.expect_type(reply.value, int, "the count", "a Python int")
    expected = ctx.reference(x)
    ctx.expect(reply.value == expected, f"The count is {reply.value}, but x has {expected} "
               "elements.")


# --- split ----------------------------------------------------------------------------------

split = pytest.mark.exercise("tensors.split", "a tuple of chunks, as torch.chunk")


@split
@pytest.mark.points(1)
@pytest.mark.device_probe(0.5)
@given(x=tensors(dtype=ANY_DTYPE, max_dims=3, max_side=7), data=st.data())
def test_chunks_like_torch_chunk(ctx: Context, x: torch.Tensor, data: st.DataObject) -> None:
    """returns a tuple of chunks exactly as torch.chunk(x, chunks, dim)"""
    dim = data.draw(dims_of(x.dim()), label="dim")
    chunks = data.draw(st.integers(1, 5), label="chunks")
    reply = ctx.call(x, chunks, dim)
    expected = ctx.reference(x, chunks, dim)
    ctx.expect_type(reply.value, tuple, "the chunks", "a tuple of tensors (like torch.chunk)")
    ctx.expect(len(reply.value) == len(expected),
               f"There should be {len(expected)} chunks, but there are {len(reply.value)}.")
    for index, (got, want) in enumerate(zip(reply.value, expected, strict=True)):
        ctx.expect_tensor(got, want, f"chunk {index}")


# --- swap -----------------------------------------------------------------------------------

swap = pytest.mark.exercise("tensors.swap", "x with two axes swapped")


@swap
@pytest.mark.points(1)
@pytest.mark.device_probe(0.5)
@given(x=tensors(dtype=ANY_DTYPE, max_dims=4), data=st.data())
def test_swaps_two_axes(ctx: Context, x: torch.Tensor, data: st.DataObject) -> None:
    """returns x with axes d0 and d1 swapped (negative dims too)"""
    d0 = data.draw(dims_of(x.dim()), label="d0")
    d1 = data.draw(dims_of(x.dim()), label="d1")
    reply = ctx.call(x, d0, d1)
    ctx.expect_tensor(reply.value, ctx.reference(x, d0, d1))


# --- one_hot --------------------------------------------------------------------------------

one_hot = pytest.mark.exercise("tensors.one_hot", "float32 one-hot rows (scatter_)")


@st.composite
def label_batches(draw: st.DrawFn) -> tuple[torch.Tensor, int]:
    classes = draw(st.integers(1, 7))
    labels = draw(indices(classes, draw(st.integers(1, 8))))
    return labels, classes + draw(st.integers(0, 2))


@one_hot
@pytest.mark.points(1)
@pytest.mark.device_probe(0.5)
@given(case=label_batches())
def test_one_hot_rows(ctx: Context, case: tuple) -> None:
    """returns float32 (N, num_classes) with a 1 at (i, labels[i]) and 0 elsewhere"""
    labels, classes = case
    reply = ctx.call(labels, classes)
    ctx.expect_tensor(reply.value, ctx.reference(labels, classes))


# --- pick_device ----------------------------------------------------------------------------

pick_device = pytest.mark.exercise("tensors.pick_device", "cuda when available, else cpu")


@pick_device
@pytest.mark.points(1)
@pytest.mark.devices("cpu")
def test_picks_available_device(ctx: Context) -> None:
    """returns torch.device("cuda") when CUDA is available, else torch.device("cpu")"""
    reply = ctx.call()
    expected = "cuda" if ctx.session.cuda_available else "cpu"
    ctx.expect_type(reply.value, DeviceData, "the device", "a torch.device")
    ctx.expect(reply.value.type == expected,
               f"On this machine CUDA is {'available' if expected == 'cuda' else 'not available'}"
               f", so the answer should be torch.device({expected!r}), but your code returned "
               f"torch.device({reply.value.type!r}). Did you call torch.cuda.is_available() "
               "(with the parentheses)?")

