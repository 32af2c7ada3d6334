"""Turning torch/NumPy values into plain data and back, on either side of the process boundary.

`encode` runs on both sides. The grader decodes what the worker sent with `decode_result`
(into inert `TensorData`/`ArrayData`/... records: nothing the student made is ever rebuilt as a
live object in the grader); the worker decodes the grader's inputs with `decode_input` (into real
tensors on the requested device, with the exact strides, so non-contiguous views stay
non-contiguous).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from grader.worker.wire import ArrayData, DeviceData, DtypeData, Handle, Opaque, TensorData

KIND = "__kind__"
MAX_DEPTH = 12
MAX_ITEMS = 100_000
MAX_TEXT = 300


def _dtype_from_name(name: str) -> torch.dtype:
    dtype = getattr(torch, name, None)
    if not isinstance(dtype, torch.dtype):
        raise ValueError(f"unknown dtype {name!r}")
    return dtype


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def _tensor_bytes(tensor: torch.Tensor) -> bytes:
    """The values in row-major order, as raw bytes (bool as one byte each)."""
    source = tensor.detach().to("cpu")
    if source.dtype in _NUMPY_DTYPES:  # numpy copies any strides into row-major bytes at once
        try:
            return source.numpy().tobytes()
        except (RuntimeError, TypeError):  # conjugate or negative views: the general way
            pass
    # a fresh tensor has textbook strides (a chunk of size 1 may carry stride 2 yet count as
    # "contiguous", which view(uint8) refuses)
    flat = torch.empty(source.shape, dtype=source.dtype).copy_(source).reshape(-1)
    if flat.dtype == torch.bool:
        flat = flat.to(torch.uint8)
    return flat.view(torch.uint8).numpy().tobytes()


_NUMPY_DTYPES = {torch.float32, torch.float64, torch.float16, torch.int64, torch.int32,
                 torch.int16, torch.int8, torch.uint8, torch.bool, torch.complex64,
                 torch.complex128}


def _storage_bytes(tensor: torch.Tensor) -> bytes:
    storage = tensor.detach().untyped_storage()
    if storage.device.type != "cpu":
        storage = storage.cpu()
    raw = torch.empty(0, dtype=torch.uint8).set_(storage)
    return raw.numpy().tobytes()


def _version(tensor: torch.Tensor) -> int:
    """The in-place write counter (inference-mode tensors have none)."""
    try:
        return int(tensor._version)
    except RuntimeError:
        return 0


def encode_tensor(tensor: torch.Tensor, *, device: str | None = None,
                  exact_layout: bool = False) -> dict:
    """Plain data for a tensor. `device` overrides the device the other side should use;
    `exact_layout` sends the whole storage with strides so a view is rebuilt as the same view."""
    is_meta = tensor.device.type == "meta"
    message: dict[str, Any] = {
        KIND: "tensor",
        "dtype": dtype_name(tensor.dtype),
        "shape": list(tensor.shape),
        "device": device or str(tensor.device),
        "requires_grad": bool(tensor.requires_grad),
        "is_leaf": bool(tensor.is_leaf),
        "grad_fn": type(tensor.grad_fn).__name__ if tensor.grad_fn is not None else None,
        "version": _version(tensor),
        "contiguous": bool(tensor.is_contiguous()),
        "grad": None,
        "data": None,
    }
    if tensor.is_leaf and tensor.grad is not None:
        message["grad"] = encode_tensor(tensor.grad, device=device)
    if is_meta:
        return message
    if exact_layout and not tensor.is_contiguous():
        message["storage"] = _storage_bytes(tensor)
        message["stride"] = list(tensor.stride())
        message["offset"] = int(tensor.storage_offset())
    else:
        message["data"] = _tensor_bytes(tensor)
    return message


def encode(value: Any, *, device: str | None = None, exact_layout: bool = False,
           handle_for: Callable[[Any], int] | None = None, depth: int = 0) -> Any:
    """Plain data for any value; unknown objects become an opaque record (or a handle)."""
    if depth > MAX_DEPTH:
        return {KIND: "opaque", "type": type(value).__name__, "text": "(nested too deeply)"}
    if value is None or isinstance(value, (bool, int, float, str)):
        if isinstance(value, int) and not isinstance(value, bool) and type(value) is not int:
            return {KIND: "opaque", "type": type(value).__name__, "text": _short_repr(value)}
        if isinstance(value, str) and len(value) > 10_000:
            return value[:10_000]
        return value
    recurse = {"device": device, "exact_layout": exact_layout, "handle_for": handle_for,
               "depth": depth + 1}
    if isinstance(value, torch.Tensor):
        if type(value) is not torch.Tensor and not isinstance(value, torch.nn.Parameter):
            return {KIND: "opaque", "type": type(value).__name__, "text": "(a tensor subclass)"}
        return encode_tensor(value, device=device, exact_layout=exact_layout)
    if isinstance(value, np.ndarray):
        return {KIND: "ndarray", "dtype": str(value.dtype), "shape": list(value.shape),
                "data": np.ascontiguousarray(value).tobytes()}
    if isinstance(value, np.generic):
        return {KIND: "opaque", "type": f"numpy.{type(value).__name__}", "text": _short_repr(value)}
    if isinstance(value, torch.device):
        return {KIND: "device", "type": value.type, "index": value.index}
    if isinstance(value, torch.dtype):
        return {KIND: "dtype", "name": dtype_name(value)}
    if isinstance(value, torch.Size):
        return {KIND: "size", "items": [int(size) for size in value]}
    if type(value) in (list, tuple):
        if len(value) > MAX_ITEMS:
            return {KIND: "opaque", "type": type(value).__name__, "text": f"({len(value)} items)"}
        items = [encode(item, **recurse) for item in value]
        return items if type(value) is list else {KIND: "tuple", "items": items}
    if type(value) is dict:
        return {KIND: "dict", "items": [[encode(key, **recurse), encode(item, **recurse)]
                                       for key, item in list(value.items())[:MAX_ITEMS]]}
    if handle_for is not None:
        return {KIND: "handle", "number": handle_for(value), "type": type(value).__name__}
    return {KIND: "opaque", "type": type(value).__name__, "text": _short_repr(value)}


def _short_repr(value: Any) -> str:
    try:
        text = repr(value)
    except Exception:
        text = "(no repr)"
    return text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 3] + "..."


# --- grader side ------------------------------------------------------------------------------


def _rebuild_values(message: dict, device: str = "cpu") -> torch.Tensor:
    """A tensor with the message's values (and, when sent, its exact strides) on `device`."""
    dtype = _dtype_from_name(message["dtype"])
    shape = [int(size) for size in message["shape"]]
    has_storage = message.get("storage") is not None
    raw = message["storage"] if has_storage else message["data"]
    flat = torch.frombuffer(bytearray(raw), dtype=torch.uint8) if raw else \
        torch.empty(0, dtype=torch.uint8)
    flat = flat.to(torch.bool) if dtype == torch.bool else flat.view(dtype)
    if device != "cpu":
        flat = flat.to(device)
    if has_storage:
        return torch.as_strided(flat, shape, message["stride"], message["offset"])
    return flat.reshape(shape)


# What one reply may hold once decoded. `encode` never makes more than MAX_DEPTH levels, but a
# message the student's code forged on the worker's pipe can nest the same list in itself by
# reference: a few bytes that would decode into 2**60 values and keep the grader busy forever.
MAX_DECODED_VALUES = 4_000_000
MAX_DECODED_DEPTH = 2 * MAX_DEPTH + 8


class ReplyTooLarge(ValueError):
    """A reply that would decode into more values, or more levels, than any real one."""


def decode_result(data: Any, _budget: list[int] | None = None, _depth: int = 0) -> Any:
    """Inert records for what the worker sent (the grader's view of the student's values).
    Raises ReplyTooLarge past MAX_DECODED_VALUES values or MAX_DECODED_DEPTH levels."""
    budget = [MAX_DECODED_VALUES] if _budget is None else _budget
    budget[0] -= 1
    if budget[0] < 0 or _depth > MAX_DECODED_DEPTH:
        raise ReplyTooLarge(f"the answer holds more than {MAX_DECODED_VALUES} values or "
                            f"{MAX_DECODED_DEPTH} levels")
    if isinstance(data, list):
        return [decode_result(item, budget, _depth + 1) for item in data]
    if not isinstance(data, dict):
        return data
    kind = data.get(KIND)
    if kind == "tensor":
        if data.get("storage") is not None:  # (a view's strides could make a 1-element
            # storage look like 10**18 values to every comparison)
            raise ValueError("a tensor in a reply comes as row-major values, never as a "
                             "storage with strides")
        values = None if data["data"] is None else _rebuild_values(data)
        return TensorData(
            values=values, dtype=data["dtype"], shape=tuple(data["shape"]), device=data["device"],
            requires_grad=data["requires_grad"], is_leaf=data["is_leaf"],
            grad_fn=data["grad_fn"], version=data["version"], is_contiguous=data["contiguous"],
            grad=decode_result(data["grad"], budget, _depth + 1)
            if data["grad"] is not None else None,
        )
    if kind == "ndarray":
        values = np.frombuffer(data["data"], dtype=np.dtype(data["dtype"])).reshape(data["shape"])
        return ArrayData(values=values.copy(), dtype=data["dtype"], shape=tuple(data["shape"]))
    if kind == "tuple":
        return tuple(decode_result(item, budget, _depth + 1) for item in data["items"])
    if kind == "size":
        return torch.Size(data["items"])
    if kind == "dict":
        return {_hashable(decode_result(key, budget, _depth + 1)):
                decode_result(item, budget, _depth + 1) for key, item in data["items"]}
    if kind == "device":
        return DeviceData(type=data["type"], index=data["index"])
    if kind == "dtype":
        return DtypeData(name=data["name"])
    if kind == "handle":
        return Handle(number=data["number"], type_name=data["type"])
    if kind == "opaque":
        return Opaque(type_name=data["type"], text=data["text"])
    raise ValueError(f"unknown record {kind!r}")


def _hashable(key: Any) -> Any:
    try:
        hash(key)
        return key
    except TypeError:
        return repr(key)


# --- worker side ------------------------------------------------------------------------------


def decode_input(data: Any, handles: dict[int, Any]) -> Any:
    """Real objects for what the grader sent (tensors built on their target device)."""
    if isinstance(data, list):
        return [decode_input(item, handles) for item in data]
    if not isinstance(data, dict):
        return data
    kind = data.get(KIND)
    if kind == "tensor":
        device = torch.device(data["device"])
        if device.type == "meta":
            tensor = torch.empty(data["shape"], dtype=_dtype_from_name(data["dtype"]),
                                 device="meta")
        else:
            tensor = _rebuild_values(data, data["device"])
        if data["requires_grad"]:
            if data["is_leaf"]:
                tensor = tensor.detach().requires_grad_(True)
            else:
                leaf = tensor.detach().requires_grad_(True)
                tensor = leaf * 1  # a non-leaf that requires grad, like an intermediate result
        if data.get("grad") is not None and tensor.is_leaf and tensor.requires_grad:
            tensor.grad = decode_input(data["grad"], handles)
        return tensor
    if kind == "ndarray":
        array = np.frombuffer(data["data"], dtype=np.dtype(data["dtype"]))
        return array.reshape(data["shape"]).copy()
    if kind == "tuple":
        return tuple(decode_input(item, handles) for item in data["items"])
    if kind == "dict":
        return {decode_input(key, handles): decode_input(item, handles)
                for key, item in data["items"]}
    if kind == "device":
        return torch.device(data["type"], data["index"]) if data["index"] is not None else \
            torch.device(data["type"])
    if kind == "dtype":
        return _dtype_from_name(data["name"])
    if kind == "size":
        return torch.Size(data["items"])
    if kind == "handle":
        return handles[data["number"]]
    raise ValueError(f"unknown record {kind!r}")
