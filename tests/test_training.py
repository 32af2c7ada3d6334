"""Checks for Part 3, `training.py`: the training loop."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from grader.testing import Context, TensorData, capital, copy_input, fixtures, seeded_tensors

CRITERIA = {"mse": "nn.MSELoss()", "cross_entropy": "nn.CrossEntropyLoss()"}
# Float32 training runs drift a little between equivalent ways of writing the same loop.
RTOL, ATOL = 1e-4, 1e-5


def expect_losses(ctx: Context, got: object, expected: list[float], what: str) -> None:
    """A list of Python floats, one per step/epoch, equal to the reference's."""
    ctx.expect_type(got, (list, tuple), what, "a list of Python floats")
    for item in got:
        if isinstance(item, TensorData):
            ctx.error(f"returned tensors in {what}; use loss.item() to get Python floats "
                      "(keeping loss tensors also keeps every graph alive)")
        ctx.expect_type(item, (float, int), f"an item of {what}", "a Python float")
    ctx.expect(len(got) == len(expected),
               f"{capital(what)} should have {len(expected)} values (one per "
               f"epoch/step), but it has {len(got)}.")
    for index, (value, want) in enumerate(zip(got, expected, strict=True)):
        if abs(value - want) > ATOL + RTOL * abs(want):
            ctx.fail(f"{capital(what)} is wrong at position {index}: expected "
                     f"{want:.6g}, got {value:.6g}.\n  expected: {[round(v, 5) for v in expected]}"
                     f"\n  got:      {[round(v, 5) for v in got]}")


def expect_trained_parameters(ctx: Context, facts: dict, reference_model: nn.Module) -> None:
    """After training, the model's parameters equal the reference run's."""
    got = dict(facts["parameters"])
    for name, expected in reference_model.named_parameters():
        ctx.expect_tensor(got[name], expected.detach(), f"the trained parameter `{name}`",
                          rtol=RTOL, atol=ATOL)


# --- train_two_layer ------------------------------------------------------------------------

train_two_layer = pytest.mark.exercise(
    "training.train_two_layer", "a two-layer net trained by hand", inputs_unchanged=False)


@st.composite
def two_layer_problems(draw: st.DrawFn) -> tuple:
    n, d_in, hidden, d_out = draw(st.lists(st.integers(1, 7), min_size=4, max_size=4,
                                           unique=True))
    x = draw(seeded_tensors((n, d_in)))
    y = draw(seeded_tensors((n, d_out)))
    w1 = draw(seeded_tensors((d_in, hidden), scale=0.5)).requires_grad_(True)
    w2 = draw(seeded_tensors((hidden, d_out), scale=0.5)).requires_grad_(True)
    learning_rate = draw(st.sampled_from([1e-3, 5e-3, 1e-2]))
    return x, y, w1, w2, learning_rate, draw(st.integers(1, 4))


@train_two_layer
@pytest.mark.points(1.5)
@pytest.mark.examples(8)
@given(problem=two_layer_problems())
def test_returns_losses_before_each_update(ctx: Context, problem: tuple) -> None:
    """returns the `steps` losses (Python floats), each computed before its update"""
    reply = ctx.call(*problem)
    expected = ctx.reference(*problem)
    expect_losses(ctx, reply.value, expected, "the list of losses")


@train_two_layer
@pytest.mark.points(1.5)
@pytest.mark.examples(8)
@given(problem=two_layer_problems())
def test_updates_weights_in_place(ctx: Context, problem: tuple) -> None:
    """updates w1 and w2 in place (w -= learning_rate * w.grad) and leaves their grads zeroed"""
    reply = ctx.call(*problem)
    x, y, w1, w2, learning_rate, steps = (copy_input(item) for item in problem)
    ctx.reference_attribute("train_two_layer")(x, y, w1, w2, learning_rate, steps)
    for index, name, expected in ((2, "w1", w1), (3, "w2", w2)):
        after = reply.args_after[index]
        ctx.expect_tensor(after, expected.detach(), f"`{name}` after training", rtol=RTOL,
                          atol=ATOL)
        ctx.expect(after.requires_grad and after.is_leaf,
                   f"`{name}` is no longer a leaf that requires grad; update it in place under "
                   "torch.no_grad().")
        if after.grad is not None and after.grad.values is not None:
            ctx.expect(not bool(after.grad.values.any()),
                       f"`{name}.grad` is not zero after training: zero the gradients after each "
                       f"update ({name}.grad.zero_()).")
    for index, name in ((0, "x"), (1, "y")):
        ctx.expect_unchanged(reply.args_after[index], problem[index], name)


# --- sgd_update -----------------------------------------------------------------------------

sgd_update = pytest.mark.exercise(
    "training.sgd_update", "p -= lr * p.grad for every parameter", inputs_unchanged=False)


@st.composite
def parameters_with_grads(draw: st.DrawFn) -> tuple[list[torch.Tensor], float]:
    params = []
    count = draw(st.integers(1, 4))
    without_grad = draw(st.integers(-1, count - 1)) if count > 1 else -1
    for index in range(count):
        shape = tuple(draw(st.lists(st.integers(1, 5), min_size=1, max_size=2)))
        p = draw(seeded_tensors(shape)).requires_grad_(True)
        if index != without_grad:
            p.grad = draw(seeded_tensors(shape))
        params.append(p)
    return params, draw(st.sampled_from([0.1, 0.01, 0.5]))


@sgd_update
@pytest.mark.points(1.5)
@pytest.mark.examples(8)
@given(case=parameters_with_grads())
def test_steps_each_parameter(ctx: Context, case: tuple) -> None:
    """changes each parameter in place by -lr * p.grad (skipping parameters without a grad)"""
    params, lr = case
    reply = ctx.call(params, lr)
    for index, (before, after) in enumerate(zip(params, reply.args_after[0], strict=True)):
        expected = before.detach() - lr * before.grad if before.grad is not None else \
            before.detach()
        ctx.expect_tensor(after, expected, f"parameter {index} after the update", rtol=1e-5,
                          atol=1e-6)


@sgd_update
@pytest.mark.points(1)
@pytest.mark.examples(8)
@given(case=parameters_with_grads())
def test_zeroes_grads_returns_none(ctx: Context, case: tuple) -> None:
    """zeroes every gradient after the update and returns None"""
    params, lr = case
    reply = ctx.call(params, lr)
    for index, after in enumerate(reply.args_after[0]):
        grad = after.grad if isinstance(after, TensorData) else None
        if grad is not None and grad.values is not None:
            ctx.expect(not bool(grad.values.any()), f"The gradient of parameter {index} is not "
                       "zero after the update; call p.grad.zero_() once p is updated.")
    ctx.expect(reply.value is None, "sgd_update should return None (it changes the parameters "
               "in place), but it returned something.")


# --- train ----------------------------------------------------------------------------------

train = pytest.mark.exercise("training.train", "the full-batch training loop")


@st.composite
def samples(draw: st.DrawFn, n: int, d_in: int, d_out: int, kind: str) -> tuple:
    """`n` inputs and their targets: values for MSE, class indices for cross-entropy."""
    inputs = draw(seeded_tensors((n, d_in)))
    if kind == "mse":
        return inputs, draw(seeded_tensors((n, d_out)))
    labels = draw(st.lists(st.integers(0, d_out - 1), min_size=n, max_size=n))
    return inputs, torch.tensor(labels, dtype=torch.int64)


@st.composite
def training_problems(draw: st.DrawFn) -> dict:
    n, d_in, hidden, d_out = draw(st.lists(st.integers(2, 7), min_size=4, max_size=4,
                                           unique=True))
    kind = draw(st.sampled_from(["mse", "cross_entropy"]))
    inputs, targets = draw(samples(n, d_in, d_out, kind))
    return {"sizes": [d_in, hidden, d_out], "seed": draw(st.integers(0, 2**16)),
            "inputs": inputs, "targets": targets, "criterion": kind,
            "lr": draw(st.sampled_from([0.05, 0.1])), "momentum": draw(st.sampled_from([0.0, 0.9])),
            "epochs": draw(st.integers(2, 4))}


def training_objects(ctx: Context, problem: dict, device: str) -> tuple:
    """Model, optimizer and loss built in the worker (for the student's loop), and the twin
    model, optimizer and loss built here (for the reference's)."""
    model = ctx.fixture("mlp", problem["sizes"], problem["seed"], device)
    optimizer = ctx.fixture("sgd", model, problem["lr"], problem["momentum"])
    criterion = ctx.fixture("criterion", problem["criterion"])
    where = " (on the CPU)" if device == "cpu" and ctx.device != "cpu" else ""
    ctx.describe_input("model", f"an MLP with layer sizes {problem['sizes']}{where}")
    ctx.describe_input("optimizer", f"SGD(lr={problem['lr']}, momentum={problem['momentum']})")
    ctx.describe_input("criterion", CRITERIA[problem["criterion"]])
    twin = fixtures.mlp(problem["sizes"], problem["seed"])
    twins = (twin, fixtures.sgd(twin, problem["lr"], problem["momentum"]),
             fixtures.criterion(problem["criterion"]))
    return (model, optimizer, criterion), twins


def run_train(ctx: Context, problem: dict) -> tuple:
    """The student's train() on a model built in the worker; the reference's on a twin here."""
    (model, optimizer, criterion), (twin, twin_optimizer, twin_criterion) = \
        training_objects(ctx, problem, ctx.device)
    reply = ctx.call(model, problem["inputs"], problem["targets"], criterion, optimizer,
                     problem["epochs"])
    losses = ctx.reference(twin, problem["inputs"], problem["targets"], twin_criterion,
                           twin_optimizer, problem["epochs"])
    return reply, model, twin, losses


@train
@pytest.mark.points(1.5)
@pytest.mark.examples(8)
@given(problem=training_problems())
def test_returns_epoch_losses(ctx: Context, problem: dict) -> None:
    """returns one loss per epoch (Python floats), each computed before that epoch's step"""
    reply, _, _, losses = run_train(ctx, problem)
    expect_losses(ctx, reply.value, losses, "the list of epoch losses")


@train
@pytest.mark.points(1.5)
@pytest.mark.examples(8)
@given(problem=training_problems())
def test_trains_the_model(ctx: Context, problem: dict) -> None:
    """leaves the model trained: zero_grad, forward, loss, backward, step in every epoch"""
    _, model, twin, _ = run_train(ctx, problem)
    expect_trained_parameters(ctx, ctx.inspect(model), twin)


# --- train_batches --------------------------------------------------------------------------

train_batches = pytest.mark.exercise(
    "training.train_batches", "the training loop over a DataLoader")


@st.composite
def batch_problems(draw: st.DrawFn) -> dict:
    problem = draw(training_problems())
    n = problem["inputs"].shape[0] + 5  # at least 7 samples: a smaller last batch
    d_in, _, d_out = problem["sizes"]
    problem["inputs"], problem["targets"] = draw(samples(n, d_in, d_out, problem["criterion"]))
    problem["batch_size"] = draw(st.sampled_from([3, 4]).filter(lambda b: n % b != 0))
    return problem


def run_train_batches(ctx: Context, problem: dict) -> tuple:
    """The model starts on the CPU: the student's loop must move it to `device`."""
    (model, optimizer, criterion), (twin, twin_optimizer, twin_criterion) = \
        training_objects(ctx, problem, "cpu")
    loader = ctx.fixture("loader", problem["inputs"], problem["targets"], problem["batch_size"])
    ctx.describe_input("loader", f"a DataLoader of {problem['inputs'].shape[0]} samples in "
                       f"batches of {problem['batch_size']} (the last one smaller)")
    reply = ctx.call(model, loader, criterion, optimizer, problem["epochs"],
                     torch.device(ctx.device))
    twin_loader = fixtures.loader(problem["inputs"], problem["targets"], problem["batch_size"])
    losses = ctx.reference(twin, twin_loader, twin_criterion, twin_optimizer, problem["epochs"],
                           torch.device("cpu"))
    return reply, model, twin, losses


@train_batches
@pytest.mark.points(1.5)
@pytest.mark.examples(8)
@given(problem=batch_problems())
def test_returns_mean_loss_per_sample(ctx: Context, problem: dict) -> None:
    """returns each epoch's mean loss per sample (batch losses weighted by batch size)"""
    reply, _, _, losses = run_train_batches(ctx, problem)
    expect_losses(ctx, reply.value, losses, "the list of epoch losses")


@train_batches
@pytest.mark.points(1.5)
@pytest.mark.examples(8)
@given(problem=batch_problems())
def test_trains_on_every_batch(ctx: Context, problem: dict) -> None:
    """takes one optimizer step per batch (zero_grad, forward, loss, backward, step)"""
    _, model, twin, _ = run_train_batches(ctx, problem)
    expect_trained_parameters(ctx, ctx.inspect(model), twin)


# --- evaluate -------------------------------------------------------------------------------

evaluate = pytest.mark.exercise("training.evaluate", "accuracy in eval mode, without a graph")


@st.composite
def evaluation_problems(draw: st.DrawFn) -> dict:
    n = draw(st.integers(7, 13))
    d_in, classes = draw(st.lists(st.integers(2, 6), min_size=2, max_size=2, unique=True))
    seed = draw(st.integers(0, 2**16))
    inputs = draw(seeded_tensors((n, d_in)))
    model = fixtures.spy_classifier(d_in, classes, seed).eval()
    with torch.no_grad():
        labels = model(inputs).argmax(dim=1)
    flips = draw(st.lists(st.integers(0, n - 1), max_size=n // 2))
    for index in flips:
        labels[index] = (labels[index] + 1) % classes
    batch_size = draw(st.sampled_from([3, 4, 5]).filter(lambda b: n % b != 0))
    return {"d_in": d_in, "classes": classes, "seed": seed, "inputs": inputs, "labels": labels,
            "batch_size": batch_size}


def run_evaluate(ctx: Context, problem: dict) -> tuple:
    model = ctx.fixture("spy_classifier", problem["d_in"], problem["classes"], problem["seed"])
    loader = ctx.fixture("loader", problem["inputs"], problem["labels"], problem["batch_size"])
    n = problem["inputs"].shape[0]
    ctx.describe_input("model", "a classifier with dropout and batch norm, in training mode")
    ctx.describe_input("loader", f"a DataLoader of {n} samples in batches of "
                       f"{problem['batch_size']} (the last one smaller)")
    reply = ctx.call(model, loader, torch.device(ctx.device))
    return reply, model


@evaluate
@pytest.mark.points(1)
@pytest.mark.examples(8)
@given(problem=evaluation_problems())
def test_returns_accuracy(ctx: Context, problem: dict) -> None:
    """returns the fraction of samples whose argmax over dim 1 equals the label"""
    reply, _ = run_evaluate(ctx, problem)
    twin = fixtures.spy_classifier(problem["d_in"], problem["classes"], problem["seed"])
    expected = ctx.reference(twin, fixtures.loader(problem["inputs"], problem["labels"],
                                                   problem["batch_size"]), torch.device("cpu"))
    value = reply.value
    if isinstance(value, TensorData) and value.values is not None and value.values.numel() == 1:
        value = value.values.item()
    ctx.expect_float(value, expected, "the accuracy", rtol=1e-6, atol=1e-6)


@evaluate
@pytest.mark.points(1)
@pytest.mark.examples(8)
@given(problem=evaluation_problems())
def test_eval_mode_without_graph(ctx: Context, problem: dict) -> None:
    """runs the model in eval mode (model.eval()) without recording a graph (torch.no_grad())"""
    _, model = run_evaluate(ctx, problem)
    log = ctx.inspect(model).get("forward_log", [])
    ctx.expect(bool(log), "Your function never called the model.")
    ctx.expect(not any(training for training, _ in log),
               "The model was still in training mode during evaluation (dropout and batch norm "
               "behave differently then); call model.eval() first.")
    ctx.expect(not any(grad_enabled for _, grad_enabled in log),
               "Autograd recorded a graph during evaluation; wrap the loop in "
               "`with torch.no_grad():`.")


@evaluate
@pytest.mark.points(0.5)
@pytest.mark.examples(10)
@pytest.mark.hidden
@given(problem=evaluation_problems())
def test_changes_no_parameter(ctx: Context, problem: dict) -> None:
    """changes no parameter of the model"""
    _, model = run_evaluate(ctx, problem)
    twin = fixtures.spy_classifier(problem["d_in"], problem["classes"], problem["seed"])
    got = dict(ctx.inspect(model)["parameters"])
    for name, expected in twin.named_parameters():
        ctx.expect_tensor(got[name], expected.detach(), f"the parameter `{name}` after "
                          "evaluation (it must not change)")
