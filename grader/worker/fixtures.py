"""Trusted helper objects built the same way on both sides: models, optimizers, losses, loaders.

The worker builds these for the student's code to use (by name, from `WORKER_FIXTURES`); the
grader builds identical ones (same seeds) to run the reference solution on. Nothing here holds
an answer: it is safe to ship into the worker.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset


def seed_everything(seed: int) -> None:
    """Seed torch's generators. `torch.manual_seed` would also queue a lazy CUDA seeding that
    records a stack trace on every call (milliseconds each) when CUDA is not initialized."""
    torch.default_generator.manual_seed(seed)
    if torch.cuda.is_initialized():
        torch.cuda.manual_seed_all(seed)


def _seeded(seed: int, build: Callable[[], nn.Module]) -> nn.Module:
    with torch.random.fork_rng(devices=[]):
        seed_everything(seed)
        return build()


def mlp(sizes: list[int], seed: int, device: str = "cpu") -> nn.Module:
    """Linear layers with ReLU between them, initialised from `seed`."""

    def build() -> nn.Module:
        layers: list[nn.Module] = []
        for i, (fan_in, fan_out) in enumerate(zip(sizes, sizes[1:], strict=False)):
            if i:
                layers.append(nn.ReLU())
            layers.append(nn.Linear(fan_in, fan_out))
        return nn.Sequential(*layers)

    return _seeded(seed, build).to(device)


class SpyClassifier(nn.Module):
    """A classifier with dropout and batch norm (both behave differently in eval mode) that
    notes, at each forward, whether it was in training mode and whether grad was enabled."""

    def __init__(self, in_features: int, classes: int) -> None:
        super().__init__()
        self.hidden = nn.Linear(in_features, 16)
        self.norm = nn.BatchNorm1d(16)
        self.dropout = nn.Dropout(0.5)
        self.out = nn.Linear(16, classes)
        self.forward_log: list[tuple[bool, bool]] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.forward_log.append((bool(self.training), bool(torch.is_grad_enabled())))
        return self.out(self.dropout(torch.relu(self.norm(self.hidden(x)))))


def spy_classifier(in_features: int, classes: int, seed: int) -> nn.Module:
    model = _seeded(seed, lambda: SpyClassifier(in_features, classes))
    with torch.random.fork_rng(devices=[]):
        seed_everything(seed + 1)
        model.norm.running_mean.normal_()
        model.norm.running_var.uniform_(0.5, 2.0)
    model.train()
    return model


def sgd(model: nn.Module, lr: float, momentum: float = 0.0) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum)


def criterion(name: str) -> nn.Module:
    return {"mse": nn.MSELoss, "cross_entropy": nn.CrossEntropyLoss}[name]()


def loader(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> DataLoader:
    """Batches in order (no shuffling), the last one possibly smaller; data on the CPU."""
    return DataLoader(TensorDataset(x.detach().cpu(), y.detach().cpu()), batch_size=batch_size,
                      shuffle=False)


# Differentiable scalar functions for `autograd.gradient(f, x)`.
SCALAR_FUNCTIONS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "sum of cubes": lambda x: (x**3).sum(),
    "sum of sin(x) * x": lambda x: (torch.sin(x) * x).sum(),
    "log-sum-exp": lambda x: torch.logsumexp(x.reshape(-1), 0),
    "mean of squares": lambda x: (x * x).mean(),
    "sum of tanh(x)**2 + 2x": lambda x: (torch.tanh(x) ** 2 + 2 * x).sum(),
}


def scalar_function(name: str) -> Callable[[torch.Tensor], torch.Tensor]:
    return SCALAR_FUNCTIONS[name]


def describe_module(module: Any, values: bool = True) -> dict:
    """Plain facts about a module: its parameters (with values, or as shape-only `meta`
    tensors when `values` is false: a 670k-parameter network is 2.7 MB), buffers and
    submodules."""
    if not isinstance(module, nn.Module):
        return {"is_module": False, "type": type(module).__name__}

    def parameter(p: torch.Tensor) -> torch.Tensor:
        return p if values else p.detach().to("meta").requires_grad_(p.requires_grad)

    facts: dict[str, Any] = {
        "is_module": True,
        "type": type(module).__name__,
        "training": bool(module.training),
        "parameters": [[name, parameter(p)] for name, p in module.named_parameters()],
        "buffers": [[name, b] for name, b in module.named_buffers()],
        "children": [[name, type(child).__name__] for name, child in module.named_children()],
        "modules": [[name, type(child).__name__] for name, child in module.named_modules()],
    }
    log = getattr(module, "forward_log", None)
    if isinstance(log, list):
        facts["forward_log"] = [list(entry) for entry in log]
    return facts


def type_name_of(name: str) -> str:
    """The type of what fixture `name` builds, as feedback names it ("a Sequential")."""
    return {"mlp": "Sequential", "spy_classifier": "SpyClassifier", "sgd": "SGD",
            "criterion": "loss function", "loader": "DataLoader", "scalar_function": "function",
            "assorted_model": "Module"}.get(name, name)


WORKER_FIXTURES: dict[str, Callable[..., Any]] = {
    "mlp": mlp,
    "spy_classifier": spy_classifier,
    "sgd": sgd,
    "criterion": criterion,
    "loader": loader,
    "scalar_function": scalar_function,
    "describe_module": describe_module,
}


def assorted_model(kind: str, seed: int) -> nn.Module:
    """Models for counting and listing parameters: frozen layers and buffers included."""

    def build() -> nn.Module:
        if kind == "mlp":
            return nn.Sequential(nn.Linear(7, 5), nn.ReLU(), nn.Linear(5, 3))
        if kind == "conv":
            return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(),
                                 nn.Flatten(), nn.Linear(36, 2))
        if kind == "frozen":
            model = nn.Sequential(nn.Linear(6, 4), nn.Tanh(), nn.Linear(4, 2, bias=False))
            model[0].weight.requires_grad_(False)
            return model
        if kind == "embedding":
            model = nn.Sequential(nn.Embedding(10, 3), nn.Flatten(), nn.Linear(6, 1))
            model[0].requires_grad_(False)
            return model
        raise ValueError(kind)

    return _seeded(seed, build)


ASSORTED_MODELS = ("mlp", "conv", "frozen", "embedding")
WORKER_FIXTURES["assorted_model"] = assorted_model
