"""Part 2 - gradients with autograd.

Computing gradients with `backward`, vector-Jacobian products, differentiating any
scalar function, switching gradient tracking off (`torch.no_grad`, `detach`), and how
gradients accumulate in `.grad`. Never change the caller's tensors: work on fresh leaf
copies made with `x.detach().clone().requires_grad_(True)`.
"""

from collections.abc import Callable

import torch


def q_gradients(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return `(dQ/da, dQ/db)` for `Q = 3*a**3 - b**2` summed, computed with autograd.

    By hand the answer is `(9*a**2, -2*b)`; here autograd must find it. `a` and `b`
    are float tensors that do not require grad and must stay that way, so make leaf
    copies that do (`.detach().clone().requires_grad_(True)`), build Q from them,
    call `backward()` on the scalar `Q.sum()` and return the copies' `.grad`.

    >>> q_gradients(torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0]))
    (tensor([ 9., 36.]), tensor([-6., -8.]))

    Pitfall: `backward()` without an argument needs a scalar; sum first.
    """
    a_leaf = a.detach().clone().requires_grad_(True)
    b_leaf = b.detach().clone().requires_grad_(True)
    q = 3 * a_leaf**3 - b_leaf**2
    q.sum().backward()
    return a_leaf.grad, b_leaf.grad


def vjp(a: torch.Tensor, b: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Return `(a.grad, b.grad)` after `Q.backward(gradient=v)` for `Q = 3*a**3 - b**2`.

    Q is not summed, so it is not a scalar: `backward(gradient=v)` computes the
    vector-Jacobian product v^T J, i.e. the gradient of `(Q * v).sum()`, which is
    `(9*a**2 * v, -2*b * v)`. `v` has Q's shape. Work on leaf copies of `a` and `b`
    that require grad, so the caller's tensors (and their `.grad`) stay untouched.

    >>> a, b = torch.tensor([1.0, 2.0]), torch.tensor([3.0, 4.0])
    >>> vjp(a, b, torch.tensor([1.0, 0.5]))
    (tensor([ 9., 18.]), tensor([-6., -4.]))

    Pitfall: `Q.backward()` on a non-scalar Q raises "grad can be implicitly created
    only for scalar outputs".
    """
    a_leaf = a.detach().clone().requires_grad_(True)
    b_leaf = b.detach().clone().requires_grad_(True)
    q = 3 * a_leaf**3 - b_leaf**2
    q.backward(gradient=v)
    return a_leaf.grad, b_leaf.grad


def gradient(f: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """Return the gradient of the scalar-valued function `f` at `x`.

    `f` maps a tensor shaped like `x` to a 0-d tensor using differentiable torch
    operations. Evaluate it on a leaf copy of `x` that requires grad, call
    `backward()` on the result and return the copy's `.grad` (same shape as `x`).
    `x` itself must stay unchanged and not requiring grad.

    >>> gradient(lambda t: (t**2).sum(), torch.tensor([1.0, -2.0, 3.0]))
    tensor([ 2., -4.,  6.])

    Pitfall: `x.requires_grad_(True)` on the caller's tensor changes their tensor.
    """
    x_leaf = x.detach().clone().requires_grad_(True)
    y = f(x_leaf)
    y.backward()
    return x_leaf.grad


def predict_no_grad(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Return `x @ w + b` computed without recording a graph.

    Inside `with torch.no_grad():` autograd records nothing, so the result has
    `requires_grad == False` even when `w` and `b` require grad. Use it for
    inference and evaluation: it is faster and uses less memory.

    >>> w = torch.ones(2, 1, requires_grad=True)
    >>> b = torch.zeros(1, requires_grad=True)
    >>> y = predict_no_grad(torch.tensor([[1.0, 2.0]]), w, b)
    >>> y, y.requires_grad
    (tensor([[3.]]), False)

    Pitfall: computing first and calling `.detach()` afterwards still builds (and
    then discards) the whole graph.
    """
    with torch.no_grad():
        return x @ w + b


def detached(z: torch.Tensor) -> torch.Tensor:
    """Return a tensor with `z`'s values that shares its storage and needs no grad.

    `z.detach()` cuts the result out of the autograd graph without copying: it is a
    view of the same memory, so an in-place change to one shows in the other, and
    gradients never flow back through it.

    >>> z = torch.ones(2, requires_grad=True) * 2
    >>> d = detached(z)
    >>> d, d.requires_grad, d.data_ptr() == z.data_ptr()
    (tensor([2., 2.]), False, True)

    Pitfall: `z.clone()` keeps the graph, and `z.detach().clone()` copies the memory.
    """
    return z.detach()


def accumulated_grad(w: torch.Tensor, x: torch.Tensor, times: int) -> torch.Tensor:
    """Return the `.grad` of a fresh leaf copy of `w` after `times` backward calls.

    Each call to `backward()` on `(w * x).sum()` ADDS d/dw = x into `w.grad`; nothing
    resets it. So after `times` calls without zeroing the gradient is `times * x`.
    This is why training loops must call `optimizer.zero_grad()` every step.
    Build the graph anew in each iteration; leave `w` itself untouched.

    >>> accumulated_grad(torch.zeros(3), torch.tensor([1.0, 2.0, 3.0]), 2)
    tensor([2., 4., 6.])

    Pitfall: calling `backward()` twice on the same graph raises; recompute the loss.
    """
    w_leaf = w.detach().clone().requires_grad_(True)
    for _ in range(times):
        (w_leaf * x).sum().backward()
    if w_leaf.grad is None:
        # times == 0: nothing accumulated, which is a zero gradient.
        return torch.zeros_like(w_leaf.detach())
    return w_leaf.grad


"""Calls Q.sum().backward(), i.e. uses a vector of ones instead of v."""


import torch


def vjp(a, b, v):
    a_leaf = a.detach().clone().requires_grad_(True)
    b_leaf = b.detach().clone().requires_grad_(True)
    Q = 3 * a_leaf**3 - b_leaf**2
    Q.sum().backward()
    return a_leaf.grad, b_leaf.grad
