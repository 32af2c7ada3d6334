"""Part 4 - nn.Module networks.

Writing your own layer with `nn.Parameter`, the multilayer perceptron and LeNet
convolutional network of the PyTorch tutorials, `nn.Sequential`, turning logits into
probabilities, and inspecting a model's parameters.
"""

import torch
import torch.nn.functional as F
from torch import nn


class MyLinear(nn.Module):
    """A fully connected layer written by hand: `forward(x) = x @ weights + bias`.

    Subclass `nn.Module`, call `super().__init__()` first, then register two
    parameters by assigning `nn.Parameter` objects to attributes: `weights` of shape
    `(in_features, out_features)` and `bias` of shape `(out_features,)` (e.g. from
    `torch.randn`). Assigned Parameters show up in `parameters()`, so optimizers see
    them. `forward` works for any leading batch shape `(..., in_features)`.

    >>> layer = MyLinear(4, 3)
    >>> [tuple(p.shape) for p in layer.parameters()]
    [(4, 3), (3,)]
    >>> layer(torch.ones(2, 5, 4)).shape
    torch.Size([2, 5, 3])

    Pitfall: a plain tensor attribute (`self.weights = torch.randn(...)`) is not a
    parameter: the optimizer never updates it and `.to(device)` does not move it.
    """

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.weights = nn.Parameter(torch.randn(in_features, out_features))
        self.bias = nn.Parameter(torch.randn(out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return `x @ weights + bias` for `x` of shape `(..., in_features)`."""
        return x @ self.weights + self.bias


class NeuralNetwork(nn.Module):
    """The multilayer perceptron of the PyTorch quickstart, for 28x28 images.

    Attributes: `flatten = nn.Flatten()` and `linear_relu_stack = nn.Sequential(
    nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
    nn.Linear(512, 10))`. `forward(x)` takes `x` of shape `(B, 28, 28)`, flattens each
    image to 784 values and returns the logits of shape `(B, 10)`: raw scores, with
    no activation after the last layer.

    >>> model = NeuralNetwork()
    >>> model(torch.zeros(3, 28, 28)).shape
    torch.Size([3, 10])

    Pitfall: a softmax at the end; `nn.CrossEntropyLoss` expects logits and applies
    log-softmax itself.
    """

    def __init__(self) -> None:
        super().__init__()
        self.flatten = nn.Flatten()
        self.linear_relu_stack = nn.Sequential(
            nn.Linear(28 * 28, 512),
            nn.ReLU(),
            nn.Linear(512, 512),
            nn.ReLU(),
            nn.Linear(512, 10),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the logits `(B, 10)` for images `x` of shape `(B, 28, 28)`."""
        x = self.flatten(x)
        return self.linear_relu_stack(x)


class Net(nn.Module):
    """LeNet, the convolutional network of the PyTorch "Neural Networks" tutorial.

    Layers: `conv1 = nn.Conv2d(1, 6, 5)`, `conv2 = nn.Conv2d(6, 16, 5)`,
    `fc1 = nn.Linear(16 * 5 * 5, 120)`, `fc2 = nn.Linear(120, 84)`,
    `fc3 = nn.Linear(84, 10)`. `forward` on `x` of shape `(B, 1, 32, 32)`:
    `F.max_pool2d(F.relu(conv1(x)), 2)`, the same with `conv2`, flatten from dim 1
    (`torch.flatten(x, 1)`, giving 400 features), `relu(fc1)`, `relu(fc2)`, `fc3`.
    Returns `(B, 10)` logits. The sizes: 32 -> 28 (conv) -> 14 (pool) -> 10 -> 5.

    >>> Net()(torch.zeros(2, 1, 32, 32)).shape
    torch.Size([2, 10])

    Pitfall: `x.view(-1)` or `torch.flatten(x)` also flattens the batch axis.
    """

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.fc2 = nn.Linear(120, 84)
        self.fc3 = nn.Linear(84, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return the logits `(B, 10)` for images `x` of shape `(B, 1, 32, 32)`."""
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = torch.flatten(x, 1)
        x = F.relu(self.fc1(x))
        x = F.relu(self.fc2(x))
        return self.fc3(x)


def build_sequential(in_features: int, hidden: int, out_features: int) -> nn.Sequential:
    """Return a two-layer network built with `nn.Sequential`.

    The layers, in order: `nn.Flatten()`, `nn.Linear(in_features, hidden)`,
    `nn.ReLU()`, `nn.Linear(hidden, out_features)`. `nn.Sequential` chains modules:
    the output of each is the input of the next, so a simple feed-forward network
    needs no class of its own. The Flatten first turns each sample into a vector of
    `in_features` values; the network returns logits.

    >>> model = build_sequential(4, 8, 2)
    >>> model
    Sequential(
      (0): Flatten(start_dim=1, end_dim=-1)
      (1): Linear(in_features=4, out_features=8, bias=True)
      (2): ReLU()
      (3): Linear(in_features=8, out_features=2, bias=True)
    )
    >>> model(torch.zeros(5, 2, 2)).shape
    torch.Size([5, 2])

    Pitfall: a Python list of layers is not a module; wrap them in `nn.Sequential`.
    """
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(in_features, hidden),
        nn.ReLU(),
        nn.Linear(hidden, out_features),
    )


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """Turn a batch of logits `(B, C)` into class probabilities: softmax over dim 1.

    Each row becomes positive and sums to 1; the largest logit keeps the largest
    probability. `nn.Softmax(dim=1)` is allowed here (unlike in `tensors.softmax`).

    >>> probabilities(torch.tensor([[0.0, 0.0], [0.0, 1000.0]]))
    tensor([[0.5000, 0.5000],
            [0.0000, 1.0000]])

    Pitfall: dim 0 normalises over the batch instead of over the classes.
    """
    return nn.Softmax(dim=1)(logits)


def count_parameters(model: nn.Module) -> int:
    """Return the number of trainable scalars of `model` as a Python int.

    Sum `p.numel()` over `model.parameters()`, counting only parameters with
    `requires_grad` (frozen ones are not trained).

    >>> count_parameters(nn.Linear(3, 2))
    8
    >>> count_parameters(NeuralNetwork())
    669706

    Pitfall: `len(list(model.parameters()))` counts parameter tensors, not scalars.
    """
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def describe_parameters(model: nn.Module) -> list[tuple[str, tuple[int, ...]]]:
    """Return `[(name, shape), ...]` for every parameter, in `named_parameters()` order.

    Names are the dotted attribute paths that PyTorch builds (`fc1.weight`,
    `0.bias`...); each shape is a plain tuple of ints, `tuple(p.shape)`.

    >>> describe_parameters(nn.Linear(3, 2))
    [('weight', (2, 3)), ('bias', (2,))]

    Pitfall: `p.shape` is a `torch.Size`; convert it with `tuple(...)`.
    """
    return [(name, tuple(p.shape)) for name, p in model.named_parameters()]


"""Stores weights and bias as plain tensors instead of nn.Parameter, so they are not registered as
parameters."""


import torch
import torch.nn as nn


class MyLinear(nn.Module):
    def __init__(self, in_features, out_features):
        super().__init__()
        self.weights = torch.randn(in_features, out_features, requires_grad=True)
        self.bias = torch.randn(out_features, requires_grad=True)

    def forward(self, x):
        return x @ self.weights + self.bias
