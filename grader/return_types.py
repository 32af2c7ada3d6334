"""Python return types, as a check expects them and as a worker's reply carries them.

A reference function's return annotation (`-> torch.Tensor`, `-> tuple[...]`, `-> int`,
`-> None`) says what every call of the student's function must return; `declared` turns it into
the decoded types a reply may hold, and `type_text` names what came back ("numpy.ndarray"),
so that one path (`Context.expect_type`) reports any wrong type as an `error`.
"""

from __future__ import annotations

import functools
import types
import typing
from typing import Any

import torch
from torch import nn

from grader.worker.wire import ArrayData, DeviceData, DtypeData, Handle, Opaque, TensorData


def _kinds(annotation: Any) -> tuple[tuple[type, ...], str] | None:
    """(types a decoded reply may have, how a student would name the expected one)."""
    origin = typing.get_origin(annotation) or annotation
    if annotation is None or annotation is type(None):
        return (type(None),), "None"
    if origin is torch.Tensor:
        return (TensorData,), "a torch.Tensor"
    if origin is tuple:
        return (tuple, list), "a tuple"  # a check may insist on the tuple itself
    if origin is list:
        return (list, tuple), "a list"
    if origin is int:
        return (int,), "a Python int"
    if origin is float:
        # a one-element tensor is judged by the check itself (some accept it)
        return (float, int, TensorData), "a Python float"
    if origin is bool:
        return (bool,), "a bool"
    if origin is torch.device:
        return (DeviceData,), "a torch.device"
    if isinstance(origin, type) and issubclass(origin, nn.Module):
        return (Handle,), f"an nn.Module ({origin.__name__})"
    return None  # unions and the like: only the checks themselves judge the type


def declared(function: Any) -> tuple[tuple[type, ...], str] | None:
    """What a call of the reference `function` must return, from its return annotation, or
    None when it declares none (or one this module cannot judge)."""
    if not isinstance(function, types.FunctionType):
        return None
    if "<locals>" in function.__qualname__:
        # made per call (a student release replays recorded answers): no annotation to read
        return _declared.__wrapped__(function)
    return _declared(function)


@functools.cache
def _declared(function: types.FunctionType) -> tuple[tuple[type, ...], str] | None:
    try:
        hints = typing.get_type_hints(function)
    except Exception:  # noqa: BLE001 - an annotation that does not evaluate: no verdict
        return None
    if "return" not in hints:
        return None
    return _kinds(hints["return"])


_NAMES = {TensorData: "torch.Tensor", ArrayData: "numpy.ndarray", DeviceData: "torch.device",
          DtypeData: "torch.dtype", Handle: "nn.Module", type(None): "None"}


def type_text(kinds: type | tuple[type, ...]) -> str:
    """The Python names of decoded types: `torch.Tensor or tuple`."""
    kinds = kinds if isinstance(kinds, tuple) else (kinds,)
    return " or ".join(dict.fromkeys(_NAMES.get(kind, kind.__name__) for kind in kinds))


def value_type_text(value: Any) -> str:
    """The Python type of what the student's code returned: `numpy.ndarray`, `list`."""
    if isinstance(value, (Opaque, Handle)):
        return value.type_name
    for kind, name in _NAMES.items():
        if isinstance(value, kind):
            return name
    return type(value).__name__
