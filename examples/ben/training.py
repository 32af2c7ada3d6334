"""Part 3 - the training loop.

From a hand-written two-layer network with manual weight updates to the standard loop
with a loss `criterion` and a `torch.optim` optimizer, over full batches and over a
DataLoader on a chosen device, and measuring accuracy.
"""

from collections.abc import Callable, Iterable

import torch
from torch import nn
from torch.utils.data import DataLoader


def train_two_layer(
    x: torch.Tensor,
    y: torch.Tensor,
    w1: torch.Tensor,
    w2: torch.Tensor,
    learning_rate: float,
    steps: int,
) -> list[float]:
    """Train a two-layer ReLU network by hand for `steps` steps; return the losses.

    Each step: `y_pred = x.mm(w1).clamp(min=0).mm(w2)`, `loss = (y_pred - y).pow(2).sum()`,
    `loss.backward()`, then under `torch.no_grad()` update `w -= learning_rate * w.grad`
    for w1 and w2 and zero their grads (`w.grad.zero_()`). `w1`, `w2` are leaf tensors
    that require grad and are updated in place. Return a list of `steps` Python floats:
    the loss before each update (`loss.item()`).

    >>> _ = torch.manual_seed(0)
    >>> x, y = torch.randn(8, 3), torch.randn(8, 2)
    >>> w1 = torch.randn(3, 4, requires_grad=True)
    >>> w2 = torch.randn(4, 2, requires_grad=True)
    >>> losses = train_two_layer(x, y, w1, w2, 1e-2, 5)
    >>> len(losses), type(losses[0]), losses[-1] < losses[0]
    (5, <class 'float'>, True)

    Pitfall: updating without `torch.no_grad()` records the update in the graph (and
    fails on a leaf); forgetting to zero the grads makes them accumulate.
    """
    losses = []
    for _ in range(steps):
        y_pred = x.mm(w1).clamp(min=0).mm(w2)
        loss = (y_pred - y).pow(2).sum()
        losses.append(loss.item())
        loss.backward()
        with torch.no_grad():
            w1 -= learning_rate * w1.grad
            w2 -= learning_rate * w2.grad
            w1.grad.zero_()
            w2.grad.zero_()
    return losses


def sgd_update(params: Iterable[torch.Tensor], lr: float) -> None:
    """Take one plain gradient-descent step on `params`, then zero their gradients.

    For every parameter that has a gradient (`p.grad is not None`): `p -= lr * p.grad`
    in place without recording a graph (`torch.no_grad()`), then `p.grad.zero_()`.
    Parameters without a gradient are skipped. Returns None. This is what
    `torch.optim.SGD(params, lr).step()` followed by `zero_grad()` does.

    >>> p = torch.tensor([1.0, 2.0], requires_grad=True)
    >>> (p * p).sum().backward()
    >>> sgd_update([p], 0.1)
    >>> p.detach(), p.grad
    (tensor([0.8000, 1.6000]), tensor([0., 0.]))

    Pitfall: `p = p - lr * p.grad` rebinds a local name and updates nothing.
    """
    with torch.no_grad():
        for p in params:
            if p.grad is not None:
                p -= lr * p.grad
                p.grad.zero_()


def train(
    model: nn.Module,
    inputs: torch.Tensor,
    targets: torch.Tensor,
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    epochs: int,
) -> list[float]:
    """Train `model` on one full batch for `epochs` epochs; return the epoch losses.

    Each epoch: `optimizer.zero_grad()`, `outputs = model(inputs)`,
    `loss = criterion(outputs, targets)`, `loss.backward()`, `optimizer.step()`.
    Return the list of `epochs` Python floats: each epoch's loss (computed before
    that epoch's step), taken with `loss.item()`.

    >>> _ = torch.manual_seed(0)
    >>> model = nn.Linear(3, 1)
    >>> x, y = torch.randn(16, 3), torch.randn(16, 1)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> losses = train(model, x, y, nn.MSELoss(), opt, 10)
    >>> len(losses), type(losses[0]), losses[-1] < losses[0]
    (10, <class 'float'>, True)

    Pitfall: forgetting `zero_grad()` adds up old gradients; appending `loss` instead
    of `loss.item()` keeps every graph alive and returns tensors, not floats.
    """
    losses = []
    for _ in range(epochs):
        optimizer.zero_grad()
        outputs = model(inputs)
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def train_batches(
    model: nn.Module,
    loader: DataLoader,
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    optimizer: torch.optim.Optimizer,
    epochs: int,
    device: torch.device | str,
) -> list[float]:
    """Train over the `(x, y)` batches of `loader` on `device`; return epoch mean losses.

    Move the model to `device` once and every batch with `x.to(device)`,
    `y.to(device)`. Per batch: zero_grad, forward, loss, backward, step. The epoch's
    value is the mean loss per sample: add `loss.item() * batch_size` over the
    batches and divide by the number of samples, so a smaller last batch counts less.
    Return the list of `epochs` Python floats.

    >>> from torch.utils.data import TensorDataset
    >>> _ = torch.manual_seed(0)
    >>> data = TensorDataset(torch.randn(10, 3), torch.randn(10, 1))
    >>> model = nn.Linear(3, 1)
    >>> opt = torch.optim.SGD(model.parameters(), lr=0.1)
    >>> losses = train_batches(model, DataLoader(data, batch_size=4), nn.MSELoss(), opt, 3, "cpu")
    >>> len(losses), type(losses[0])
    (3, <class 'float'>)

    Pitfall: averaging the batch losses directly over-weights a short last batch;
    data and model on different devices raise an error.
    """
    model.to(device)
    losses = []
    for _ in range(epochs):
        total_loss = 0.0
        sample_count = 0
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            optimizer.zero_grad()
            outputs = model(x)
            loss = criterion(outputs, y)
            loss.backward()
            optimizer.step()
            total_loss += loss.item() * x.shape[0]
            sample_count += x.shape[0]
        losses.append(total_loss / sample_count)
    return losses


def evaluate(model: nn.Module, loader: DataLoader, device: torch.device | str) -> float:
    """Return the accuracy of `model` over `loader`: a Python float in [0, 1].

    A sample is correct when the argmax of the model's output over dim 1 equals its
    label. Move the model and each batch to `device`, call `model.eval()` (dropout
    and batch norm switch to inference behaviour) and run under `torch.no_grad()`;
    no parameter may change. Return correct / total over all samples.

    >>> from torch.utils.data import TensorDataset
    >>> model = nn.Linear(2, 2, bias=False)
    >>> _ = model.weight.data.copy_(torch.eye(2))
    >>> data = TensorDataset(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0]))
    >>> evaluate(model, DataLoader(data, batch_size=1), "cpu")
    0.5

    Pitfall: summing `(pred == y)` gives a tensor; convert with `.item()`, and count
    samples, not batches.
    """
    model.to(device)
    model.eval()
    correct = 0
    total = 0
    with torch.no_grad():
        for x, y in loader:
            x, y = x.to(device), y.to(device)
            predictions = model(x).argmax(dim=1)
            correct += (predictions == y).sum().item()
            total += y.shape[0]
    return correct / total


"""Never calls optimizer.zero_grad(), so gradients from earlier epochs accumulate."""


import torch


def train(model, inputs, targets, criterion, optimizer, epochs):
    losses = []
    for _ in range(epochs):
        outputs = model(inputs)
        loss = criterion(outputs, targets)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
