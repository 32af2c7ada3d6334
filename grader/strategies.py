"""Hypothesis strategies for tensors that expose real student bugs.

Sizes are drawn all-different (so a wrong `dim`, a missing transpose or `*` for `@` cannot match
a shape by chance), size-1 axes and batch >= 2 appear, layouts include transposed and strided
views (they break `view`), floats are float32-representable and finite. Values are built from a
drawn kind and seed, not element by element: drawing is most of what a check costs, and a
tensor then costs a few draws whatever its size.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any

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


def choose(draw: st.DrawFn, options: tuple | list) -> Any:
    """One of `options` (a failing input shrinks towards the first)."""
    return options[draw(_index_below(len(options)))]


@functools.cache
def _index_below(count: int) -> st.SearchStrategy[int]:
    """One strategy per range, made once: making (and validating) a strategy for every draw
    would cost more than the draw itself."""
    return st.integers(0, count - 1)


@functools.cache
def shapes(*, min_dims: int = 1, max_dims: int = 4, min_side: int = 1, max_side: int = 6,
           unique: bool = True) -> st.SearchStrategy[tuple[int, ...]]:
    """Shapes whose axes have all-different sizes (size 1 allowed once).

    Two draws, whatever the rank: the number of axes, then which shape of that rank (listed
    simplest first): a failing shape shrinks to few, small axes."""
    by_rank = {rank: _shapes_of_rank(rank, min_side, max_side, unique)
               for rank in range(min_dims, max_dims + 1)}
    return _indexed_shapes(tuple(listed for listed in by_rank.values() if listed))


@st.composite
def _indexed_shapes(draw: st.DrawFn, by_rank: tuple[tuple[tuple[int, ...], ...], ...]
                    ) -> tuple[int, ...]:
    listed = choose(draw, by_rank)
    return choose(draw, listed)


@functools.cache
def _shapes_of_rank(rank: int, min_side: int, max_side: int,
                    unique: bool) -> tuple[tuple[int, ...], ...]:
    sides = range(min_side, max_side + 1)
    listed = itertools.permutations(sides, rank) if unique else itertools.product(sides,
                                                                                 repeat=rank)
    return tuple(sorted(listed, key=lambda shape: (sum(shape), shape)))


@st.composite
def unit_axis_shapes(draw: st.DrawFn, *, max_dims: int = 5) -> tuple[int, ...]:
    """Shapes with several size-1 axes mixed among all-different sizes >= 2."""
    sizes = draw(st.lists(st.integers(2, 6), min_size=0, max_size=3, unique=True))
    ones = draw(st.integers(1 if sizes else 0, max_dims - len(sizes)))
    shape = sizes + [1] * ones
    order = draw(st.permutations(range(len(shape))))
    return tuple(shape[i] for i in order)


def _as_layout(values: torch.Tensor, layout: str) -> torch.Tensor:
    """The same values in a (non-)contiguous layout:

    - transposed: stored with the axes in reverse order (a matrix's transpose), so `view` cannot
      merge any two axes of size > 1;
    - strided: the first half of each row of a tensor twice as wide in its last axis (every
      other element of a single row), so `view` cannot merge the last axis with another."""
    if layout == "transposed" and values.dim() >= 2:
        reverse = tuple(reversed(range(values.dim())))
        return values.permute(reverse).contiguous().permute(reverse)
    if layout == "strided" and values.numel() > 1:
        *leading, last = values.shape
        wide = torch.zeros((*leading, last * 2), dtype=values.dtype)
        if values.numel() == last:  # one row: every other element
            wide[..., ::2] = values
            return wide[..., ::2]
        wide[..., :last] = values
        return wide[..., :last]
    return values


VALUE_KINDS = ("small integers", "quarters", "uniform", "log-uniform", "edges")
_INT_LIMIT = 100  # int tensors hold values in [-100, 100] (or the bounds asked for)


def _bounds(dtype: torch.dtype, magnitude: float | None, low: float | None,
            high: float | None) -> tuple[float, float]:
    if dtype.is_floating_point:
        default = 1e3 if magnitude is None else float(magnitude)
        return (-default if low is None else float(low), default if high is None else float(high))
    limit = _INT_LIMIT if magnitude is None else min(int(magnitude), _INT_LIMIT)
    bottom = max(-limit, -_INT_LIMIT if low is None else int(np.ceil(low)))
    top = min(limit, _INT_LIMIT if high is None else int(np.floor(high)))
    if bottom > top:
        raise ValueError(f"tensors(dtype={dtype}): no integer lies in [{low}, {high}]")
    return bottom, top


def _filled(shape: tuple[int, ...], dtype: torch.dtype, kind: int, seed: int,
            low: float, high: float) -> torch.Tensor:
    """Values of one kind (see VALUE_KINDS) in [low, high], from a seed: vectorized, so a
    tensor costs a few draws however many elements it has."""
    generator = torch.Generator().manual_seed(seed)
    if dtype == torch.bool:
        return torch.rand(shape, generator=generator) < 0.5
    floating = dtype.is_floating_point
    small_low, small_high = max(np.ceil(low), -4), min(np.floor(high), 4)
    if kind == 0 and small_low > small_high:
        kind = 2  # no small integer in range: uniform instead
    if kind == 0:  # small integers: readable, with ties and zeros
        values = torch.randint(int(small_low), int(small_high) + 1, shape, generator=generator,
                               dtype=torch.int64).double()
    elif kind == 1 and floating:  # quarters: exact fractions
        quarter_low, quarter_high = max(np.ceil(low * 4), -32), min(np.floor(high * 4), 32)
        if quarter_low > quarter_high:
            return _filled(shape, dtype, 2, seed, low, high)
        values = torch.randint(int(quarter_low), int(quarter_high) + 1, shape,
                               generator=generator, dtype=torch.int64).double() / 4
    elif kind == 3 and floating:  # log-uniform: tiny and huge magnitudes together
        largest = max(abs(low), abs(high), 1e-3)
        exponents = torch.rand(shape, generator=generator, dtype=torch.float64)
        magnitudes = 10 ** (-3 + exponents * (np.log10(largest) + 3))
        signs = torch.where(torch.rand(shape, generator=generator) < 0.5, -1.0, 1.0)
        values = (magnitudes * signs.double()).clamp(low, high)
    elif kind == 4:  # edges: the bounds, zero, ±1 and the midpoint, repeated
        pool = torch.tensor(sorted({low, high, (low + high) / 2,
                                    *(v for v in (0.0, 1.0, -1.0) if low <= v <= high)}),
                            dtype=torch.float64)
        values = pool[torch.randint(0, len(pool), shape, generator=generator)]
    else:  # uniform over [low, high]
        values = low + torch.rand(shape, generator=generator, dtype=torch.float64) * (high - low)
        if not floating or high - low >= 10:  # readable: whole numbers, or two decimals
            values = values.round() if not floating else (values * 100).round() / 100
    if floating:  # float32-representable, so float32 and float64 inputs hold the same values
        return values.float().clamp(*_float32_within(low, high)).to(dtype)
    return values.round().clamp(low, high).to(dtype)


@functools.lru_cache(maxsize=256)
def _float32_within(low: float, high: float) -> tuple[float, float]:
    """The float32 values nearest to the bounds that are still within them."""
    bottom, top = np.float32(low), np.float32(high)
    if float(bottom) < low:  # (compared as float64: numpy would compare in float32)
        bottom = np.nextafter(bottom, np.float32(np.inf))
    if float(top) > high:
        top = np.nextafter(top, np.float32(-np.inf))
    return float(bottom), float(top)


_KIND = st.integers(0, len(VALUE_KINDS) - 1)  # in VALUE_KINDS' order: simplest first
_SEED = st.integers(0, 2**32 - 1)


def tensors(*, shape: tuple[int, ...] | st.SearchStrategy | None = None,
            dtype: torch.dtype | tuple[torch.dtype, ...] = torch.float32,
            magnitude: float | None = None, low: float | None = None, high: float | None = None,
            elements: st.SearchStrategy | None = None, layouts: tuple[str, ...] = LAYOUTS,
            min_dims: int = 1, max_dims: int = 3, max_side: int = 6
            ) -> st.SearchStrategy[torch.Tensor]:
    """Tensors with all-different axis sizes, in contiguous, transposed or strided layouts.

    Values are finite and lie in [low, high] (default: +-magnitude, which defaults to 1e3 for
    floats and 100 for ints). They are built from a drawn kind (small integers, quarters,
    uniform, log-uniform, the range's edges) and a drawn seed: a tensor costs a few draws
    whatever its size, and a failing input shrinks to a small shape of small integers when
    those fail too. `elements=` (any hypothesis strategy) draws element by element instead:
    exact control, at a cost of one draw per element."""
    if shape is None:
        shape = shapes(min_dims=min_dims, max_dims=max_dims, max_side=max_side)
    elif not isinstance(shape, st.SearchStrategy):
        shape = tuple(shape)
    return _tensors(shape, dtype, magnitude, low, high, elements, tuple(layouts))


@functools.lru_cache(maxsize=4096)
def _tensors(shape: tuple[int, ...] | st.SearchStrategy, dtype: torch.dtype | tuple,
             magnitude: float | None, low: float | None, high: float | None,
             elements: st.SearchStrategy | None, layouts: tuple[str, ...]
             ) -> st.SearchStrategy[torch.Tensor]:
    return _drawn_tensors(shape=shape, dtype=dtype, magnitude=magnitude, low=low, high=high,
                          elements=elements, layouts=layouts)


@st.composite
def _drawn_tensors(draw: st.DrawFn, *, shape: tuple[int, ...] | st.SearchStrategy,
                   dtype: torch.dtype | tuple[torch.dtype, ...], magnitude: float | None,
                   low: float | None, high: float | None, elements: st.SearchStrategy | None,
                   layouts: tuple[str, ...]) -> torch.Tensor:
    if isinstance(shape, st.SearchStrategy):
        shape = tuple(draw(shape))
    if isinstance(dtype, tuple):
        dtype = choose(draw, dtype)
    if elements is not None:
        import hypothesis.extra.numpy as hnp  # (~70 ms to import: only when asked for)

        array = draw(hnp.arrays(_NUMPY_DTYPES[dtype], shape, elements=elements))
        values = torch.from_numpy(np.array(array))
    else:
        bottom, top = _bounds(dtype, magnitude, low, high)
        kind = 0 if dtype == torch.bool else draw(_KIND)
        seed = draw(_SEED)
        values = _filled(shape, dtype, kind, seed, bottom, top)
    return _as_layout(values, choose(draw, layouts))


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
