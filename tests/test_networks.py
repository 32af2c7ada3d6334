"""Checks for Part 4, `networks.py`: nn.Module networks."""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
import torch
from hypothesis import example, given
from hypothesis import strategies as st
from torch import nn

from grader.testing import (
    Context,
    Handle,
    TensorData,
    fixtures,
    seeded_tensors,
    shape_text,
    tensors,
)


def module_facts(ctx: Context, handle: object, what: str, *, values: bool = True) -> dict:
    """The worker's description of a returned module (an error if it is not one); without
    `values`, its parameters' shapes only."""
    ctx.expect_type(handle, Handle, what, "an nn.Module")
    facts = ctx.inspect(handle, values=values)
    if not facts.get("is_module"):
        ctx.error(f"returned a {facts.get('type')} for {what}, but an nn.Module is expected")
    return facts


def expect_parameter_layout(ctx: Context, facts: dict, reference: nn.Module, what: str, *,
                            by_position: bool = False) -> None:
    """The same registered parameters (names and shapes; with `by_position`, the shapes in
    order whatever the names), all trainable. Registration order is free otherwise."""
    got = [(name, tuple(p.shape)) for name, p in facts["parameters"]]
    expected = [(name, tuple(p.shape)) for name, p in reference.named_parameters()]
    if by_position:
        same = [shape for _, shape in got] == [shape for _, shape in expected]
    else:
        same = sorted(got) == sorted(expected)
    if not same:
        got_text = "\n".join(f"    {name}: {shape_text(shape)}" for name, shape in got) or \
            "    (none: tensors stored as plain attributes are not registered; wrap them in " \
            "nn.Parameter or use nn layers)"
        want_text = "\n".join(f"    {name}: {shape_text(shape)}" for name, shape in expected)
        ctx.fail(f"{what} does not register the expected parameters.\n  expected "
                 f"(named_parameters()):\n{want_text}\n  got:\n{got_text}")
    for name, p in facts["parameters"]:
        ctx.expect(p.requires_grad, f"The parameter `{name}` does not require grad.")


def load_student_weights(ctx: Context, facts: dict, reference: nn.Module, *,
                         by_position: bool = False) -> nn.Module:
    """The reference module carrying the student's parameter values (to compare forwards)."""
    got = dict(facts["parameters"])
    in_order = [value for _, value in facts["parameters"]]
    state = {}
    for index, (name, p) in enumerate(reference.named_parameters()):
        if by_position:
            value = in_order[index] if index < len(in_order) else None
        else:
            value = got.get(name)
        if not isinstance(value, TensorData) or tuple(value.shape) != tuple(p.shape):
            ctx.fail("The forward pass cannot be compared because the parameters are not "
                     f"registered as the contract says (no `{name}` of shape "
                     f"{shape_text(tuple(p.shape))}); see the other check of this exercise.")
        state[name] = value.values
    reference.load_state_dict(state, strict=False)
    return reference


# --- MyLinear -------------------------------------------------------------------------------

my_linear = pytest.mark.exercise(
    "networks.MyLinear", "a linear layer with weights (in, out) and bias")
feature_pairs = st.lists(st.integers(1, 7), min_size=2, max_size=2, unique=True)


@my_linear
@pytest.mark.points(1)
@given(features=feature_pairs)
def test_registers_weights_and_bias(ctx: Context, features: list) -> None:
    """registers nn.Parameters `weights` (in_features, out_features) and `bias` (out_features,)"""
    in_features, out_features = features
    model = ctx.construct(in_features, out_features)
    facts = module_facts(ctx, model, "MyLinear(...)", values=False)
    expect_parameter_layout(ctx, facts, ctx.reference_attribute("MyLinear")(*features),
                            f"MyLinear({in_features}, {out_features})")


@my_linear
@pytest.mark.points(1.5)
@given(features=feature_pairs, data=st.data())
def test_forward_is_x_weights_plus_bias(ctx: Context, features: list, data: st.DataObject) -> None:
    """forward(x) = x @ weights + bias for any leading batch shape"""
    in_features, out_features = features
    model = ctx.construct(in_features, out_features)
    facts = module_facts(ctx, model, "MyLinear(...)")
    reference = load_student_weights(ctx, facts, ctx.reference_attribute("MyLinear")(*features))
    leading = data.draw(st.lists(st.integers(1, 5), min_size=0, max_size=2), label="batch shape")
    x = data.draw(tensors(shape=(*leading, in_features), magnitude=10), label="x")
    reply = ctx.method(model, "__call__", x)
    with torch.no_grad():
        expected = reference(x)
    ctx.expect_tensor(reply.value, expected, "the output", rtol=1e-5, atol=1e-4)


# --- NeuralNetwork and Net ------------------------------------------------------------------


def expect_layers(ctx: Context, facts: dict, wanted: dict[str, str], what: str) -> None:
    """Named submodules of the expected types (e.g. conv1 is a Conv2d)."""
    modules = dict(facts["modules"])
    for name, type_name in wanted.items():
        if name not in modules:
            ctx.fail(f"{what} has no submodule `{name}` (expected {type_name}); use exactly the "
                     "attribute names of the contract.")
        ctx.expect(modules[name] == type_name,
                   f"In {what}, `{name}` is a {modules[name]}, but it should be a {type_name}.")


MLP_LAYERS = {"flatten": "Flatten", "linear_relu_stack": "Sequential",
              "linear_relu_stack.0": "Linear", "linear_relu_stack.1": "ReLU",
              "linear_relu_stack.2": "Linear", "linear_relu_stack.3": "ReLU",
              "linear_relu_stack.4": "Linear"}
LENET_LAYERS = {"conv1": "Conv2d", "conv2": "Conv2d", "fc1": "Linear", "fc2": "Linear",
                "fc3": "Linear"}


def network_checks(class_name: str, layers: dict[str, str], input_shape: tuple,
                   parameter_count: int) -> type:
    """A test class with the structure and forward checks of a fixed architecture."""

    @pytest.mark.exercise(f"networks.{class_name}", f"the {class_name} architecture")
    class NetworkChecks:
        @pytest.mark.points(1.5)
        def test_has_the_contract_layers(self, ctx: Context) -> None:
            model = ctx.construct()
            facts = module_facts(ctx, model, f"{class_name}()", values=False)
            expect_layers(ctx, facts, layers, f"{class_name}()")
            expect_parameter_layout(ctx, facts, ctx.reference_attribute(class_name)(),
                                    f"{class_name}()")
            count = sum(math.prod(p.shape) for _, p in facts["parameters"])
            ctx.expect(count == parameter_count, f"{class_name}() has {count} parameters, but "
                       f"it should have {parameter_count}.")

        @pytest.mark.points(1.5)
        @pytest.mark.examples(5)
        @given(batch=st.integers(1, 4), data=st.data())
        def test_forward_matches(self, ctx: Context, batch: int, data: st.DataObject) -> None:
            model = ctx.construct()
            facts = module_facts(ctx, model, f"{class_name}()")
            reference = load_student_weights(ctx, facts, ctx.reference_attribute(class_name)())
            x = data.draw(seeded_tensors((batch, *input_shape)), label="x")
            reply = ctx.method(model, "__call__", x)
            with torch.no_grad():
                expected = reference(x)
            ctx.expect_tensor(reply.value, expected, "the logits", rtol=1e-4, atol=1e-5)

    top_level = ", ".join(name for name in layers if "." not in name)
    NetworkChecks.test_has_the_contract_layers.__doc__ = (
        f"has the contract's layers ({top_level}) with {parameter_count:,} parameters")
    NetworkChecks.test_forward_matches.__doc__ = (
        f"forward on (B, {', '.join(map(str, input_shape))}) returns the contract's logits "
        "(B, 10), with no activation after the last layer")
    return NetworkChecks


TestNeuralNetwork = network_checks("NeuralNetwork", MLP_LAYERS, (28, 28), 669_706)
TestNet = network_checks("Net", LENET_LAYERS, (1, 32, 32), 61_706)


# --- build_sequential -----------------------------------------------------------------------

build_sequential = pytest.mark.exercise(
    "networks.build_sequential", "Flatten, Linear, ReLU, Linear")
sizes3 = st.lists(st.integers(1, 9), min_size=3, max_size=3, unique=True)


@build_sequential
@pytest.mark.points(1)
@given(sizes=sizes3)
def test_sequential_layers(ctx: Context, sizes: list) -> None:
    """returns nn.Sequential(Flatten(), Linear(in, hidden), ReLU(), Linear(hidden, out))"""
    reply = ctx.call(*sizes)
    facts = module_facts(ctx, reply.value, "the result", values=False)
    ctx.expect(facts["type"] == "Sequential", f"The result is a {facts['type']}, but an "
               "nn.Sequential is expected.")
    layers = [type_name for name, type_name in facts["children"]]
    expected = ["Flatten", "Linear", "ReLU", "Linear"]
    ctx.expect(layers == expected, f"The layers are {layers}, but they should be {expected}.")
    expect_parameter_layout(ctx, facts, ctx.reference(*sizes), "the Sequential",
                            by_position=True)


@build_sequential
@pytest.mark.points(1)
@given(sizes=sizes3, data=st.data())
def test_forward_flattens_then_maps(ctx: Context, sizes: list, data: st.DataObject) -> None:
    """flattens (B, ...) inputs and maps them to (B, out_features)"""
    in_features = sizes[0]
    reply = ctx.call(*sizes)
    facts = module_facts(ctx, reply.value, "the result")
    reference = load_student_weights(ctx, facts, ctx.reference(*sizes), by_position=True)
    batch = data.draw(st.integers(2, 4), label="batch")
    split = data.draw(st.sampled_from([d for d in range(1, in_features + 1)
                                       if in_features % d == 0]), label="split")
    x = data.draw(seeded_tensors((batch, split, in_features // split)), label="x")
    output = ctx.method(reply.value, "__call__", x)
    with torch.no_grad():
        expected = reference(x)
    ctx.expect_tensor(output.value, expected, "the output", rtol=1e-5, atol=1e-5)


# --- probabilities --------------------------------------------------------------------------

probabilities = pytest.mark.exercise("networks.probabilities", "softmax over dim 1")


@probabilities
@pytest.mark.points(1)
@pytest.mark.device_probe(0.5)
@given(logits=tensors(dtype=(torch.float32, torch.float64), min_dims=2, max_dims=3,
                      magnitude=30))
@example(logits=torch.tensor([[1000.0, 0.0], [0.0, -1000.0]]))
def test_softmax_over_dim_1(ctx: Context, logits: torch.Tensor) -> None:
    """returns softmax(logits) over dim 1 (each row of class scores sums to 1)"""
    reply = ctx.call(logits)
    ctx.expect_tensor(reply.value, ctx.reference(logits), "the probabilities", rtol=1e-3,
                      atol=1e-5)


# --- count_parameters and describe_parameters -----------------------------------------------

models = st.tuples(st.sampled_from(fixtures.ASSORTED_MODELS), st.integers(0, 100))


def every_model_kind(function: Callable) -> Callable:
    """Try each kind of model first (frozen layers and buffers are where the bugs are)."""
    for kind in fixtures.ASSORTED_MODELS:
        function = example(model=(kind, 0))(function)
    return function


def build_model(ctx: Context, model: tuple) -> tuple[Handle, nn.Module]:
    kind, seed = model
    handle = ctx.fixture("assorted_model", kind, seed)
    ctx.describe_input("model", {"mlp": "an MLP", "conv": "a conv net with batch norm",
                                 "frozen": "an MLP with a frozen weight",
                                 "embedding": "a model with a frozen embedding"}[kind])
    return handle, fixtures.assorted_model(kind, seed)


count_parameters = pytest.mark.exercise(
    "networks.count_parameters", "the number of trainable scalars")


@count_parameters
@pytest.mark.points(1)
@pytest.mark.examples(8)
@given(model=models)
@every_model_kind
def test_counts_trainable_scalars(ctx: Context, model: tuple) -> None:
    """returns the number of trainable scalars (parameters with requires_grad) as a Python int"""
    handle, twin = build_model(ctx, model)
    reply = ctx.call(handle)
    ctx.expect_type(reply.value, int, "the count", "a Python int")
    expected = ctx.reference(twin)
    ctx.expect(reply.value == expected, f"The count is {reply.value}, but the model has "
               f"{expected} trainable scalars (frozen parameters and buffers do not count).")


describe_parameters = pytest.mark.exercise(
    "networks.describe_parameters", "(name, shape) of each parameter")


@describe_parameters
@pytest.mark.points(1)
@pytest.mark.examples(8)
@given(model=models)
@every_model_kind
def test_names_and_shapes(ctx: Context, model: tuple) -> None:
    """returns [(name, tuple(shape)), ...] in named_parameters() order"""
    handle, twin = build_model(ctx, model)
    reply = ctx.call(handle)
    ctx.expect_type(reply.value, list, "the result", "a list of (name, shape) pairs")
    expected = ctx.reference(twin)
    for item in reply.value:
        ctx.expect_type(item, (tuple, list), "each item", "a (name, shape) pair")
        ctx.expect(len(item) == 2 and type(item[1]) is tuple,
                   f"Each item should be (name, tuple(shape)), but one is {item!r}; convert "
                   "the torch.Size with tuple(p.shape).")
    got = [tuple(item) for item in reply.value]
    ctx.expect(got == expected, f"The list is wrong.\n  expected: {expected}\n  got:      {got}")

