"""Hypothesis strategies for tensors that expose real student bugs.

Sizes are drawn all-different (so a wrong `dim`, a missing transpose or `*` for `@` cannot match
a shape by chance), size-1 axes and batch >= 2 appear, layouts include transposed and strided
views (they break `view`), floats are float32-representable and finite, and big tensors are
built from a drawn seed instead of element by element.
"""

from __future__ import annotations

import hypothesis.extra.numpy as hnp
import numpy as np
import torch
from hypothesis import strategies as st

FLOAT_DTYPES = (torch.float32, torch.float64)
LAYOUTS = ("contiguous", "transposed", "strided")

_NUMPY_DTYPES = {torch.float32: np.float32, torch.float64: np.float64, torch.int64: np.int64,
                 torch.bool: np.bool_, torch.int32: np.int32}


def elements_for(dtype: torch.dtype, *, magnitude: float = 1e3) -> st.SearchStrategy:
    """Finite values of a dtype (floats float32-representable, ints small)."""
    if dtype == torch.float32:
        return st.floats(-magnitude, magnitude, allow_nan=False, allow_infinity=False, width=32)
    if dtype == torch.float64:
        return st.floats(-magnitude, magnitude, allow_nan=False, allow_infinity=False)
    if dtype == torch.bool:
        return st.booleans()
    return st.integers(-100, 100)


@st.composite
def shapes(draw: st.DrawFn, *, min_dims: int = 1, max_dims: int = 4, min_side: int = 1,
           max_side: int = 6, unique: bool = True) -> tuple[int, ...]:
    """Shapes whose axes have all-different sizes (size 1 allowed once)."""
    sizes = st.integers(min_side, max_side)
    dims = draw(st.lists(sizes, min_size=min_dims, max_size=max_dims, unique=unique))
    return tuple(dims)


@st.composite
def unit_axis_shapes(draw: st.DrawFn, *, max_dims: int = 5) -> tuple[int, ...]:
    """Shapes with several size-1 axes mixed among all-different sizes >= 2."""
    sizes = draw(st.lists(st.integers(2, 6), min_size=0, max_size=3, unique=True))
    ones = draw(st.integers(1 if sizes else 0, max_dims - len(sizes)))
    shape = sizes + [1] * ones
    order = draw(st.permutations(range(len(shape))))
    return tuple(shape[i] for i in order)


def _as_layout(values: torch.Tensor, layout: str) -> torch.Tensor:
    """The same values in a (non-)contiguous layout."""
    if layout == "transposed" and values.dim() >= 2:
        return values.transpose(-1, -2).contiguous().transpose(-1, -2)
    if layout == "strided" and values.dim() >= 1 and values.numel() > 1:
        shape = list(values.shape)
        shape[0] *= 2
        wide = torch.zeros(shape, dtype=values.dtype)
        wide[::2] = values
        return wide[::2]
    return values


@st.composite
def tensors(draw: st.DrawFn, *, shape: tuple[int, ...] | st.SearchStrategy | None = None,
            dtype: torch.dtype | tuple[torch.dtype, ...] = torch.float32,
            elements: st.SearchStrategy | None = None, layouts: tuple[str, ...] = LAYOUTS,
            min_dims: int = 1, max_dims: int = 3, max_side: int = 6) -> torch.Tensor:
    """Small tensors drawn element by element (so hypothesis can shrink the values too)."""
    if shape is None:
        shape = shapes(min_dims=min_dims, max_dims=max_dims, max_side=max_side)
    if isinstance(shape, st.SearchStrategy):
        shape = draw(shape)
    if isinstance(dtype, tuple):
        dtype = draw(st.sampled_from(dtype))
    array = draw(hnp.arrays(_NUMPY_DTYPES[dtype], tuple(shape),
                            elements=elements if elements is not None else elements_for(dtype)))
    values = torch.from_numpy(np.array(array))
    layout = draw(st.sampled_from(layouts))
    return _as_layout(values, layout)


@st.composite
def seeded_tensors(draw: st.DrawFn, shape: tuple[int, ...], *,
                   dtype: torch.dtype = torch.float32, scale: float = 1.0) -> torch.Tensor:
    """Big tensors (images, 784-wide batches) from a drawn seed: cheap and reproducible."""
    seed = draw(st.integers(0, 2**31 - 1))
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(shape, generator=generator, dtype=dtype) * scale


def indices(size: int, count: int) -> st.SearchStrategy:
    """`count` int64 indices in [0, size), duplicates allowed (made valid by modulo)."""
    return st.lists(st.integers(0, 10_000), min_size=count, max_size=count).map(
        lambda raw: torch.tensor([r % size for r in raw], dtype=torch.int64)
    )


def dims_of(ndim: int, *, extra: int = 0) -> st.SearchStrategy:
    """A valid dimension index for a tensor of `ndim` axes, negative ones included."""
    return st.integers(-(ndim + extra), ndim + extra - 1)
