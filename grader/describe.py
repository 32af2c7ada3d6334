"""Short, beginner-readable renderings of values for feedback (inputs, expected, got)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from grader.worker.wire import ArrayData, DeviceData, DtypeData, Handle, Opaque, TensorData

MAX_ELEMENTS_SHOWN = 36


def shape_text(shape: tuple[int, ...] | torch.Size) -> str:
    return "(" + ", ".join(str(size) for size in shape) + ("," if len(shape) == 1 else "") + ")"


def _tensor_text(values: torch.Tensor, dtype: str, device: str, extra: str = "") -> str:
    suffix = []
    if dtype not in ("float32", "int64", "bool"):
        suffix.append(f"dtype={dtype}")
    if device != "cpu":
        suffix.append(f"device={device}")
    if extra:
        suffix.append(extra)
    tail = (", " + ", ".join(suffix)) if suffix else ""
    if values.numel() > MAX_ELEMENTS_SHOWN:
        return f"a tensor of shape {shape_text(tuple(values.shape))}{tail}"
    body = np.array2string(values.detach().cpu().numpy(), precision=4, separator=", ",
                           suppress_small=False, max_line_width=88, threshold=MAX_ELEMENTS_SHOWN)
    body = body.replace("\n", "\n       ")
    return f"tensor({body}{tail})"


def describe(value: Any) -> str:
    """A one-line (or few-line) text for a value, as a student would write it in Python."""
    if isinstance(value, TensorData):
        if value.values is None:
            extra = f"device={value.device}" if value.device != "cpu" else ""
            return f"a tensor of shape {shape_text(value.shape)}, dtype={value.dtype}" + \
                (f", {extra}" if extra else "")
        extra = "requires_grad=True" if value.requires_grad else ""
        return _tensor_text(value.values, value.dtype, value.device, extra)
    if isinstance(value, torch.Tensor):
        extra = "requires_grad=True" if value.requires_grad else ""
        if value.device.type == "meta":
            return f"a tensor of shape {shape_text(tuple(value.shape))} on the meta device"
        text = _tensor_text(value, str(value.dtype).removeprefix("torch."), str(value.device),
                            extra)
        if value.numel() > 1 and not value.is_contiguous():  # why `view` fails on it
            text += (f"\n(not contiguous: a view with strides {tuple(value.stride())}, as "
                     "x.t() or x[:, ::2] make)")
        return text
    if isinstance(value, (ArrayData, np.ndarray)):
        values = value.values if isinstance(value, ArrayData) else value
        if values.size > MAX_ELEMENTS_SHOWN:
            return f"a NumPy array of shape {shape_text(values.shape)}, dtype={values.dtype}"
        return f"np.array({np.array2string(values, separator=', ')}, dtype={values.dtype})"
    if isinstance(value, DeviceData):
        return f"torch.device({value.type!r})" if value.index is None else \
            f"torch.device('{value.type}:{value.index}')"
    if isinstance(value, DtypeData):
        return f"torch.{value.name}"
    if isinstance(value, Opaque):  # (texts forged on the worker's pipe may be long)
        return f"a {value.type_name[:100]} object ({_shortened(value.text)})"
    if isinstance(value, Handle):
        return f"a {value.type_name} object"
    if isinstance(value, tuple) and not isinstance(value, torch.Size):
        if len(value) > 12:
            return "(" + ", ".join(describe(item) for item in value[:12]) + \
                f", ... ({len(value)} items))"
        inner = ", ".join(describe(item) for item in value)
        return f"({inner}{',' if len(value) == 1 else ''})"
    if isinstance(value, list):
        if len(value) > 12:
            return "[" + ", ".join(describe(item) for item in value[:12]) + \
                f", ... ({len(value)} items)]"
        return "[" + ", ".join(describe(item) for item in value) + "]"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, torch.Size):
        return f"torch.Size({list(value)})"
    return _shortened(repr(value))


def _shortened(text: str) -> str:
    return text if len(text) < 300 else text[:297] + "..."


def type_name(value: Any) -> str:
    """What a beginner would call the type of a value that came back."""
    if isinstance(value, TensorData):
        return "a torch.Tensor"
    if isinstance(value, ArrayData):
        return "a NumPy array"
    if isinstance(value, Opaque):
        return f"a {value.type_name}"
    if isinstance(value, Handle):
        return f"a {value.type_name}"
    if isinstance(value, DeviceData):
        return "a torch.device"
    if value is None:
        return "None"
    return f"a {type(value).__name__}"
