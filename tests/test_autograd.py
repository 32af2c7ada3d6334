"""Checks for Part 2, `autograd.py`: gradients with autograd."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from grader.testing import (
    FLOAT_DTYPES,
    SCALAR_FUNCTIONS,
    Context,
    TensorData,
    scalar_function,
    shapes,
    tensors,
)


@st.composite
def same_shape_floats(draw: st.DrawFn, count: int, *, magnitude: float = 10.0
                      ) -> list[torch.Tensor]:
    shape = draw(shapes(min_dims=1, max_dims=3, max_side=5))
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    return [draw(tensors(shape=shape, dtype=dtype, magnitude=magnitude)) for _ in range(count)]


def expect_no_grad_state(ctx: Context, after: object, name: str) -> None:
    """An input that did not require grad must not require it after the call."""
    if isinstance(after, TensorData) and after.requires_grad:
        ctx.fail(f"After your function, `{name}` requires grad: your code turned on gradient "
                 f"tracking on the caller's tensor. Work on a copy: "
                 f"{name}.detach().clone().requires_grad_(True).")


def expect_pair(ctx: Context, value: object, what: str) -> None:
    ctx.expect_type(value, (tuple, list), "the result", f"a tuple {what}")
    ctx.expect(len(value) == 2, f"The result should be a pair {what}, but it has {len(value)} "
               "items.")


# --- q_gradients ----------------------------------------------------------------------------

q_gradients = pytest.mark.exercise(
    "autograd.q_gradients", "(dQ/da, dQ/db) for Q = 3a^3 - b^2, by autograd")


@q_gradients
@pytest.mark.points(1.5)
@pytest.mark.device_probe(0.5)
@given(ab=same_shape_floats(2))
def test_gradients_of_q(ctx: Context, ab: list) -> None:
    """returns (dQ/da, dQ/db) = (9a^2, -2b) for Q = 3a^3 - b^2 summed"""
    a, b = ab
    reply = ctx.call(a, b)
    expect_pair(ctx, reply.value, "(dQ/da, dQ/db)")
    grad_a, grad_b = ctx.reference(a, b)
    ctx.expect_tensor(reply.value[0], grad_a, "`dQ/da` (first item)", rtol=1e-5, atol=1e-5)
    ctx.expect_tensor(reply.value[1], grad_b, "`dQ/db` (second item)", rtol=1e-5, atol=1e-5)


@q_gradients
@pytest.mark.points(0.5)
@pytest.mark.examples(10)
@pytest.mark.hidden
@given(ab=same_shape_floats(2))
def test_inputs_still_need_no_grad(ctx: Context, ab: list) -> None:
    """leaves a and b unchanged, still not requiring grad"""
    a, b = ab
    reply = ctx.call(a, b)
    expect_no_grad_state(ctx, reply.args_after[0], "a")
    expect_no_grad_state(ctx, reply.args_after[1], "b")


@q_gradients
@pytest.mark.points(0.5)
@pytest.mark.examples(5)
@given(ab=same_shape_floats(2))
def test_uses_autograd(ctx: Context, ab: list) -> None:
    """gets the gradients from autograd (backward or torch.autograd.grad), not by hand"""
    a, b = ab
    reply = ctx.call(a, b, watch_autograd=True)
    ctx.expect(reply.autograd_ran, "Your function returned gradients without running autograd "
               "(no backward pass happened). Build Q from tensors that require grad and call "
               "Q.sum().backward() (or torch.autograd.grad).")


# --- vjp ------------------------------------------------------------------------------------

vjp = pytest.mark.exercise("autograd.vjp", "(a.grad, b.grad) after Q.backward(gradient=v)")


@vjp
@pytest.mark.points(1.5)
@pytest.mark.device_probe(0.5)
@given(abv=same_shape_floats(3))
def test_vector_jacobian_product(ctx: Context, abv: list) -> None:
    """returns (a.grad, b.grad) = (9a^2 * v, -2b * v) after Q.backward(gradient=v)"""
    a, b, v = abv
    a_leaf, b_leaf = a.requires_grad_(True), b.requires_grad_(True)
    reply = ctx.call(a_leaf, b_leaf, v)
    expect_pair(ctx, reply.value, "(a.grad, b.grad)")
    grad_a, grad_b = ctx.reference(a_leaf, b_leaf, v)
    ctx.expect_tensor(reply.value[0], grad_a, "`a.grad` (first item)", rtol=1e-5, atol=1e-5)
    ctx.expect_tensor(reply.value[1], grad_b, "`b.grad` (second item)", rtol=1e-5, atol=1e-5)


# --- gradient -------------------------------------------------------------------------------

gradient = pytest.mark.exercise("autograd.gradient", "the gradient of a scalar function at x")
function_names = st.sampled_from(sorted(SCALAR_FUNCTIONS))


@gradient
@pytest.mark.points(1.5)
@pytest.mark.device_probe(0.5)
@given(name=function_names, x=tensors(dtype=FLOAT_DTYPES, magnitude=3,
                                      max_dims=3))
def test_gradient_of_f(ctx: Context, name: str, x: torch.Tensor) -> None:
    """returns the gradient of the scalar function f at x (x's shape)"""
    f = ctx.fixture("scalar_function", name)
    ctx.describe_input("f", f"the function x -> {name}")
    reply = ctx.call(f, x)
    x_leaf = x.detach().clone().requires_grad_(True)
    expected = torch.autograd.grad(scalar_function(name)(x_leaf), x_leaf)[0]
    ctx.expect_tensor(reply.value, expected, "the gradient", rtol=1e-5, atol=1e-5)


@gradient
@pytest.mark.points(0.5)
@pytest.mark.examples(10)
@given(name=function_names, x=tensors(dtype=FLOAT_DTYPES, magnitude=3,
                                      max_dims=3))
def test_x_still_needs_no_grad(ctx: Context, name: str, x: torch.Tensor) -> None:
    """leaves x unchanged and not requiring grad"""
    f = ctx.fixture("scalar_function", name)
    ctx.describe_input("f", f"the function x -> {name}")
    reply = ctx.call(f, x)
    expect_no_grad_state(ctx, reply.args_after[1], "x")


# --- predict_no_grad ------------------------------------------------------------------------


predict_no_grad = pytest.mark.exercise(
    "autograd.predict_no_grad", "x @ w + b without recording a graph")


@st.composite
def linear_inputs(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    batch, fan_in, fan_out = draw(st.lists(st.integers(1, 6), min_size=3, max_size=3,
                                           unique=True))
    dtype = draw(st.sampled_from(FLOAT_DTYPES))
    x = draw(tensors(shape=(batch, fan_in), dtype=dtype, magnitude=10))
    w = draw(tensors(shape=(fan_in, fan_out), dtype=dtype, magnitude=10))
    b = draw(tensors(shape=(fan_out,), dtype=dtype, magnitude=10))
    return x, w.requires_grad_(True), b.requires_grad_(True)


@predict_no_grad
@pytest.mark.points(1)
@pytest.mark.device_probe(0.5)
@given(case=linear_inputs())
def test_computes_x_w_plus_b(ctx: Context, case: tuple) -> None:
    """returns x @ w + b"""
    reply = ctx.call(*case)
    ctx.expect_tensor(reply.value, ctx.reference(*case).detach(), rtol=1e-5, atol=1e-4)


@predict_no_grad
@pytest.mark.points(1)
@pytest.mark.examples(10)
@given(case=linear_inputs())
def test_records_no_graph(ctx: Context, case: tuple) -> None:
    """the result does not require grad even though w and b do (computed under no_grad)"""
    reply = ctx.call(*case)
    ctx.expect_type(reply.value, TensorData, "the result", "a torch.Tensor")
    ctx.expect(not reply.value.requires_grad and reply.value.grad_fn is None,
               "The result requires grad (autograd recorded a graph for it). Compute it inside "
               "`with torch.no_grad():`.")


# --- detached -------------------------------------------------------------------------------

detached = pytest.mark.exercise("autograd.detached", "z's values, sharing storage, without grad")


@detached
@pytest.mark.points(1)
@given(z=tensors(dtype=FLOAT_DTYPES, layouts=("contiguous",)))
def test_same_values_no_grad(ctx: Context, z: torch.Tensor) -> None:
    """returns z's values in a tensor that does not require grad"""
    z_tracked = (z.requires_grad_(True) * 1)
    reply = ctx.call(z_tracked)
    ctx.expect_tensor(reply.value, z.detach())
    ctx.expect(not reply.value.requires_grad, "The result still requires grad; use z.detach().")


@detached
@pytest.mark.points(1)
@pytest.mark.examples(10)
@given(z=tensors(dtype=FLOAT_DTYPES, layouts=("contiguous",)))
def test_shares_storage_with_z(ctx: Context, z: torch.Tensor) -> None:
    """shares z's storage (no copy)"""
    reply = ctx.call(z.requires_grad_(True) * 1)
    ctx.expect_type(reply.value, TensorData, "the result", "a torch.Tensor")
    ctx.expect(0 in reply.shares_with, "The result is a copy: it does not share z's storage. "
               "z.detach() shares it; z.clone().detach() copies.")


# --- accumulated_grad -----------------------------------------------------------------------

accumulated_grad = pytest.mark.exercise(
    "autograd.accumulated_grad", "gradients add up over backward calls")


@st.composite
def accumulation_inputs(draw: st.DrawFn) -> tuple[torch.Tensor, torch.Tensor, int]:
    w, x = draw(same_shape_floats(2))
    return w, x, draw(st.integers(1, 5))


@accumulated_grad
@pytest.mark.points(1.5)
@pytest.mark.device_probe(0.5)
@given(case=accumulation_inputs())
def test_times_x(ctx: Context, case: tuple) -> None:
    """returns the gradient accumulated over `times` backward calls: times * x"""
    reply = ctx.call(*case)
    ctx.expect_tensor(reply.value, ctx.reference(*case), "the accumulated gradient",
                      rtol=1e-5, atol=1e-5)


@accumulated_grad
@pytest.mark.points(0.5)
@pytest.mark.examples(10)
@pytest.mark.hidden
@given(case=accumulation_inputs())
def test_w_left_alone(ctx: Context, case: tuple) -> None:
    """works on a fresh leaf copy: w is unchanged and still does not require grad"""
    reply = ctx.call(*case)
    expect_no_grad_state(ctx, reply.args_after[0], "w")
