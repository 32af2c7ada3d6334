"""Correct submission, "functional" style: torch.func transforms."""

import torch
from torch.func import grad as func_grad
from torch.func import vjp as func_vjp


def _Q(a, b):
    return 3 * a**3 - b**2


def q_gradients(a, b):
    return func_grad(lambda a_, b_: _Q(a_, b_).sum(), argnums=(0, 1))(a, b)


def vjp(a, b, v):
    _, pullback = func_vjp(_Q, a, b)
    grad_a, grad_b = pullback(v)
    return grad_a, grad_b


def gradient(f, x):
    return func_grad(f)(x)


def predict_no_grad(x, w, b):
    return torch.add(torch.matmul(x.detach(), w.detach()), b.detach())


def detached(z):
    return z.data


def accumulated_grad(w, x, times):
    leaf = torch.nn.Parameter(w.detach().clone())
    for _ in range(times):
        torch.sum(torch.mul(leaf, x)).backward()
    return leaf.grad if leaf.grad is not None else torch.zeros_like(w)
