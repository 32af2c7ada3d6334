"""Recorded reference answers: how a student release checks work without the solutions.

`grader release` runs the public checks on the reference solutions once, through a
`RecordingReference` that notes every answer: the function, a digest of its inputs, what it
returned and what it left in its arguments (a trained model, updated weights, gradients). The
release ships those answers, never the solutions; there `ReplayReference` answers the same
calls from the record. Hypothesis is derandomized, so the release draws the very inputs the
recording saw; an input the record lacks (one that depends on the student's own output, or a
class to construct) raises `NotRecorded`, and `grader release` leaves such checks out.
"""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from grader.worker import fixtures


class NotRecorded(AttributeError):
    """The release has no recorded answer for this reference call (an AttributeError, so that
    `getattr(reference, name, None)` reads as "no such function")."""


# --- what identifies a call ---------------------------------------------------------------------


def digest(name: str, args: tuple, kwargs: dict) -> str:
    """A stable digest of a reference call: the function and every input's content (values,
    dtype, shape, grad state; a model's parameters and buffers; a loader's data)."""
    hasher = hashlib.sha256(name.encode())
    _feed(hasher, list(args))
    _feed(hasher, kwargs)
    return hasher.hexdigest()


def _feed(hasher: Any, value: Any) -> None:
    def put(*parts: object) -> None:
        hasher.update(repr(parts).encode())

    if isinstance(value, torch.Tensor):
        put("tensor", str(value.dtype), tuple(value.shape), value.requires_grad,
            value.device.type == "meta")
        if value.device.type != "meta":
            flat = value.detach().cpu().contiguous().reshape(-1)
            hasher.update(flat.view(torch.uint8).numpy().tobytes() if flat.numel() else b"")
    elif isinstance(value, np.ndarray):
        put("array", str(value.dtype), value.shape)
        hasher.update(np.ascontiguousarray(value).tobytes())
    elif isinstance(value, (list, tuple)):
        put(type(value).__name__, len(value))
        for item in value:
            _feed(hasher, item)
    elif isinstance(value, dict):
        put("dict", len(value))
        for key in sorted(value, key=repr):
            put(key)
            _feed(hasher, value[key])
    elif isinstance(value, nn.Module):
        put("module", type(value).__name__, value.training,
            [(name, p.requires_grad) for name, p in value.named_parameters()])
        _feed(hasher, dict(value.state_dict()))
    elif isinstance(value, torch.optim.Optimizer):
        put("optimizer", type(value).__name__,
            [{k: v for k, v in group.items() if k != "params"} for group in value.param_groups])
    elif isinstance(value, torch.utils.data.DataLoader):
        put("loader", value.batch_size)
        _feed(hasher, list(getattr(value.dataset, "tensors", ())))
    elif isinstance(value, (torch.device, torch.dtype)):
        put(type(value).__name__, str(value))
    elif value is None or isinstance(value, (bool, int, float, complex, str, bytes)):
        put(type(value).__name__, value)
    elif callable(value):
        names = [key for key, f in fixtures.SCALAR_FUNCTIONS.items() if f is value]
        put("callable", names[0] if names else getattr(value, "__qualname__", ""))
    else:
        text = repr(value)
        put(type(value).__qualname__, "" if " at 0x" in text else text)


# --- what a call left behind ----------------------------------------------------------------


def _flatten(value: Any) -> list[Any]:
    if isinstance(value, (list, tuple)):
        return [leaf for item in value for leaf in _flatten(item)]
    if isinstance(value, dict):
        return [leaf for item in value.values() for leaf in _flatten(item)]
    return [value]


def _clone(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.detach().clone()
    return value


def effects_of(args: tuple, kwargs: dict) -> list[Any]:
    """The state of every tensor and model among the inputs, after the call."""
    effects: list[Any] = []
    for value in _flatten([list(args), kwargs]):
        if isinstance(value, torch.Tensor) and value.device.type != "meta":
            effects.append({"values": _clone(value), "grad": _clone(value.grad)})
        elif isinstance(value, nn.Module):
            effects.append({"state": {k: _clone(v) for k, v in value.state_dict().items()},
                            "grads": {name: _clone(p.grad)
                                      for name, p in value.named_parameters()}})
        else:
            effects.append(None)
    return effects


def apply_effects(args: tuple, kwargs: dict, effects: list[Any]) -> None:
    values = _flatten([list(args), kwargs])
    if len(values) != len(effects):
        raise NotRecorded("the inputs do not match the recorded call")
    for value, effect in zip(values, effects, strict=True):
        if effect is None:
            continue
        if "values" in effect and isinstance(value, torch.Tensor):
            with torch.no_grad():
                value.copy_(effect["values"])
            if value.is_leaf:
                value.grad = _clone(effect["grad"])
        elif "state" in effect and isinstance(value, nn.Module):
            value.load_state_dict({k: _clone(v) for k, v in effect["state"].items()})
            for name, p in value.named_parameters():
                p.grad = _clone(effect["grads"].get(name))


def storable(value: Any) -> bool:
    """Whether an answer can be kept as plain data (tensors, numbers, text, containers)."""
    if isinstance(value, (list, tuple)):
        return all(storable(item) for item in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and storable(v) for k, v in value.items())
    if isinstance(value, torch.Tensor):
        return value.device.type == "cpu" and value.layout == torch.strided
    return value is None or isinstance(value, (bool, int, float, str))


def fresh(value: Any) -> Any:
    """A copy of a recorded answer that a check may change freely."""
    if isinstance(value, torch.Tensor):  # a leaf, with the answer's requires_grad
        return value.detach().clone().requires_grad_(value.requires_grad)
    if isinstance(value, list):
        return [fresh(item) for item in value]
    if isinstance(value, tuple):
        return tuple(fresh(item) for item in value)
    if isinstance(value, dict):
        return {key: fresh(item) for key, item in value.items()}
    return value


# --- the two stand-ins for a reference module ------------------------------------------------


Answers = dict[str, dict[str, Any]]  # digest -> {"result": ..., "effects": [...]}


class RecordingReference:
    """A reference module that notes each function's answers (for `grader release`)."""

    def __init__(self, module: ModuleType, part: str, answers: Answers) -> None:
        self._module, self._part, self._answers = module, part, answers

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._module, name)
        if not inspect.isfunction(target):
            return target  # a class: its instances cannot be replayed (see ReplayReference)
        qualified = f"{self._part}.{name}"

        def record(*args: Any, **kwargs: Any) -> Any:
            key = digest(qualified, args, kwargs)
            result = target(*args, **kwargs)
            if storable(result):
                self._answers[key] = {"result": fresh(result),
                                      "effects": effects_of(args, kwargs)}
            return result

        record.__signature__ = inspect.signature(target)  # type: ignore[attr-defined]

        return record


class ReplayReference:
    """A reference module that answers from the record and never runs a solution."""

    def __init__(self, part: str, answers: Answers, functions: dict[str, list[str]]) -> None:
        self._part, self._answers = part, answers
        self._functions = functions  # name -> its parameter names (for feedback)

    def __getattr__(self, name: str) -> Callable[..., Any]:
        if name.startswith("__"):
            raise AttributeError(name)
        if name not in self._functions:
            raise NotRecorded(f"`{name}` is not a recorded function of {self._part}")
        qualified = f"{self._part}.{name}"

        def replay(*args: Any, **kwargs: Any) -> Any:
            answer = self._answers.get(digest(qualified, args, kwargs))
            if answer is None:
                raise NotRecorded(f"no recorded answer of {qualified} for these inputs")
            apply_effects(args, kwargs, answer["effects"])
            return fresh(answer["result"])

        replay.__name__ = name
        replay.__signature__ = inspect.Signature([  # type: ignore[attr-defined]
            inspect.Parameter(parameter, inspect.Parameter.POSITIONAL_OR_KEYWORD)
            for parameter in self._functions[name]])
        return replay


def save(answers: Answers, path: Path) -> None:
    torch.save(answers, path)


def load(path: Path) -> Answers:
    return torch.load(path, weights_only=True)


def function_signatures(module: ModuleType) -> dict[str, list[str]]:
    """The parameter names of a reference module's public functions (shipped in a release)."""
    return {name: list(inspect.signature(value).parameters)
            for name, value in vars(module).items()
            if inspect.isfunction(value) and not name.startswith("_")
            and value.__module__ == module.__name__}
