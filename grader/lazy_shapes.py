"""Import `torch.fx.experimental.symbolic_shapes` (and with it sympy, ~0.4 s) only when
something needs more of it than a backward pass does.

Every backward pass with an explicit gradient (`Q.backward(gradient=v)`,
`torch.autograd.grad(outputs, inputs, grad_outputs)`) imports that module only to compare the
gradient's shape with the output's (`sym_eq`, then `expect_true`). In the grader, where a
reference or a check computes such gradients on plain tensors, that import is ~0.4 s of every
cold `grader check`, paid before its judges can start.

`install()` puts a stand-in module in its place, in the grader only (workers import the real
module anyway: the meta device needs it). Its `sym_eq` and `expect_true` do what the real ones
do for plain ints and bools; anything symbolic, and any other name, loads the real module and
hands over to it, so code that traces or compiles behaves as without the stand-in.
"""

from __future__ import annotations

import functools
import operator
from typing import Any

from grader.worker import stand_in

NAME = "torch.fx.experimental.symbolic_shapes"


def _plain(value: Any) -> bool:
    return type(value) in (int, bool)


def _sym_eq(x: Any, y: Any) -> Any:
    """`==` for sizes, element by element for tuples and lists (the real `sym_eq`)."""
    if isinstance(x, (tuple, list)) and isinstance(y, (tuple, list)):
        if len(x) != len(y):
            return False
        return functools.reduce(operator.and_, map(_sym_eq, x, y), True)
    if _plain(x) and _plain(y):
        return x == y
    return stand_in.real(NAME).sym_eq(x, y)  # symbolic sizes (tracing): the real one


def _expect_true(a: Any, skip: int = 0) -> Any:
    if type(a) is bool:
        return a
    # symbolic, or an error to raise: the real one
    return stand_in.real(NAME).expect_true(a, skip + 1)


def install() -> bool:
    """Put the stand-in in place, unless the real module is already loaded. True if it did."""
    return stand_in.install(NAME, __doc__, {"sym_eq": _sym_eq, "expect_true": _expect_true},
                            package=False)


def installed() -> bool:
    return stand_in.installed(NAME)
