"""What a check works with: calls into the submission, the reference, and expectations.

A `Context` is bound to one exercise, one submission session and one device. `ctx.call(...)`
runs the student's function in the worker on the given inputs (placed on the device being
checked) and returns a `Reply` of inert data; `ctx.reference(...)` runs the trusted solution on
copies of the same inputs here, in the grader; the `expect_*` methods compare the two and raise
`Mismatch`/`StudentError` with a message that ends with the input that was used.
"""

from __future__ import annotations

import functools
import inspect
import re
import time
from collections.abc import Sequence
from types import ModuleType
from typing import Any

import hypothesis
import numpy as np
import torch

from grader import return_types
from grader.describe import describe, shape_text, type_name
from grader.failures import (
    ForbiddenCall,
    Mismatch,
    NameMissing,
    NotImplementedYet,
    StudentError,
    TimedOut,
    WrongType,
)
from grader.session import Reply, SubmissionSession
from grader.spec import Exercise
from grader.worker import codec, fixtures, lazy_dynamo
from grader.worker.wire import Handle, TensorData

# The references' first optimizer would import torch._dynamo (~1.5 s) for nothing.
lazy_dynamo.install()

# Errors from tensors that met on different devices (what a missing `device=x.device` causes).
# ("Tensor on device cpu is not on the expected device meta!", "Expected all tensors to be on
# the same device, but found at least two devices, cuda:0 and cpu!")
_DEVICE_MIX = re.compile(r"(expected device|same device|different devices|device mismatch)",
                         re.IGNORECASE)


class Context:
    """The toolbox of one property check, for one exercise, on one device."""

    def __init__(self, exercise: Exercise, session: SubmissionSession, reference: ModuleType,
                 device: str, *, budget_seconds: float) -> None:
        self.exercise = exercise
        self.session = session
        self.reference_module = reference
        self.device = device
        self.deadline = time.monotonic() + budget_seconds
        self.budget_seconds = budget_seconds
        self.inputs: list[tuple[str, Any]] = []
        self.input_labels: dict[str, str] = {}
        self.seed = 0

    # -- calling the submission ----------------------------------------------------------------

    @property
    def meta(self) -> bool:
        return self.device == "meta"

    def call(self, *args: Any, watch_autograd: bool = False) -> Reply:
        """Call the exercise's function with these inputs, in the worker. With
        `watch_autograd`, the reply says whether a backward pass ran during the call."""
        self.record_inputs(args, {})
        target = {"part": self.exercise.part, "name": self.exercise.name}
        reply = self._checked(self._call(target, args, {}, report_args=True,
                                         forbid=self.exercise.forbid,
                                         watch_autograd=watch_autograd))
        declared = return_types.declared(getattr(self.reference_module, self.exercise.name,
                                                 None))
        if declared is not None:  # every exercise: the type its reference declares
            self.expect_type(reply.value, declared[0], "the result", declared[1])
        if self.exercise.inputs_unchanged and reply.args_after is not None:
            for (name, before), after in zip(self.inputs, reply.args_after, strict=False):
                if isinstance(before, torch.Tensor):
                    self.expect_unchanged(after, before, name)
                elif isinstance(before, list):
                    for item_before, item_after in zip(before, after or [], strict=False):
                        if isinstance(item_before, torch.Tensor):
                            self.expect_unchanged(item_after, item_before, name)
        return reply

    def construct(self, *args: Any) -> Handle:
        """Instantiate the exercise's class in the worker; returns a handle to the instance."""
        self.record_inputs(args, {}, names=self._init_parameter_names())
        target = {"part": self.exercise.part, "name": self.exercise.name}
        reply = self._checked(self._call(target, args, {}, keep=True))
        return reply.value

    def method(self, handle: Handle, name: str, *args: Any, record: bool = True) -> Reply:
        """Call a method of an object kept in the worker (e.g. `forward` of a module)."""
        if record:
            self.inputs = [entry for entry in self.inputs if not entry[0].startswith("input")]
            self.inputs += [(f"input to {name}" if len(args) == 1 else f"input {i} to {name}",
                             arg) for i, arg in enumerate(args)]
        return self._checked(self._call({"handle": handle.number, "method": name}, args, {},
                                        report_args=False, forbid=self.exercise.forbid))

    def fixture(self, name: str, *args: Any, keep: bool = True) -> Any:
        """Build a trusted helper object in the worker (see `grader.fixtures`). A kept one is
        built just before the next call into the worker, in the same round trip (a failure
        to build it is reported there)."""
        if keep:
            encoded = [self._encode(arg, self.device) for arg in args]
            return self.session.defer({"fixture": name}, encoded, seed=self.seed,
                                      type_name=fixtures.type_name_of(name))
        reply = self._call({"fixture": name}, args, {}, keep=keep)
        if reply.status != "ok":
            raise RuntimeError(f"fixture {name} failed in the worker: {reply.error}")
        return reply.value

    def inspect(self, handle: Handle, *, values: bool = True) -> Any:
        """Plain-data facts about a kept module (parameters, buffers, submodules...); without
        `values`, parameters come as shapes only (see `fixtures.describe_module`)."""
        return self.fixture("describe_module", handle, values, keep=False)

    def _call(self, target: dict, args: Sequence[Any], kwargs: dict, *, keep: bool = False,
              report_args: bool = False, forbid: tuple[str, ...] = (),
              watch_autograd: bool = False) -> Reply:
        remaining = self.deadline - time.monotonic()
        if remaining <= 0:
            raise TimedOut(f"checking this exercise took longer than {self.budget_seconds:g} s "
                           "in total; is your code very slow?")
        encode_device = self.device
        encoded_args = [self._encode(arg, encode_device) for arg in args]
        encoded_kwargs = ({codec.KIND: "dict", "items": [[key, self._encode(value, encode_device)]
                                                         for key, value in kwargs.items()]}
                          if kwargs else None)
        return self.session.call(
            target, encoded_args, kwargs=encoded_kwargs, seed=self.seed, forbid=forbid,
            keep=keep, report_args=report_args, watch_autograd=watch_autograd,
            timeout=min(self.session.limits.call_seconds, max(remaining, 0.5)),
        )

    def _encode(self, value: Any, device: str) -> Any:
        if isinstance(value, Handle):
            return {codec.KIND: "handle", "number": value.number, "type": value.type_name}
        if isinstance(value, (list, tuple)) and any(isinstance(v, Handle) for v in value):
            items = [self._encode(v, device) for v in value]
            return items if isinstance(value, list) else {codec.KIND: "tuple", "items": items}
        return codec.encode(value, device=device, exact_layout=True)

    def _checked(self, reply: Reply) -> Reply:
        """Turn a reply into a value, or into the failure it stands for."""
        if reply.forbidden:
            names = ", ".join(reply.forbidden)
            raise ForbiddenCall(f"your code called a function that this exercise does not allow "
                                f"(it used {names}); write it yourself with basic tensor "
                                "operations")
        if reply.status.startswith("part-") or reply.status == "missing":
            raise NameMissing(reply.error["message"] if reply.error else "missing")
        if reply.status == "error":
            error = reply.error or {}
            message = error_text(error)
            # torch raises NotImplementedError too, for ops the meta device lacks (nonzero,
            # unique): that is the device's limit, not an untouched stub
            unsupported_on_meta = self.meta and "meta" in error.get("message", "").lower()
            if error.get("type") == "NotImplementedError" and not unsupported_on_meta:
                raise NotImplementedYet("Not implemented yet: your function still raises "
                                        "NotImplementedError. Replace the `raise` with your code.")
            if self.meta:
                if _DEVICE_MIX.search(error.get("message", "")):
                    self.fail("Your code mixed tensors from different devices. It raised:\n  "
                              + message + "\nCreate new tensors on the input's device, e.g. "
                              "torch.zeros(..., device=x.device).")
                hypothesis.reject()  # the meta device cannot run everything: no verdict
            self.error(f"raised an error: {message}")
        return reply

    # -- the reference -------------------------------------------------------------------------

    def reference(self, *args: Any, **kwargs: Any) -> Any:
        """The trusted solution's answer for (copies of) these inputs, computed here."""
        function = getattr(self.reference_module, self.exercise.name)
        return function(*[copy_input(arg) for arg in args],
                        **{key: copy_input(value) for key, value in kwargs.items()})

    def reference_attribute(self, name: str) -> Any:
        return getattr(self.reference_module, name)

    # -- inputs shown in feedback --------------------------------------------------------------

    def record_inputs(self, args: Sequence[Any], kwargs: dict,
                      names: list[str] | None = None) -> None:
        names = names or self._parameter_names()
        self.inputs = [(names[i] if i < len(names) else f"argument {i + 1}", value)
                       for i, value in enumerate(args)]
        self.inputs += list(kwargs.items())

    def _parameter_names(self) -> list[str]:
        return list(_parameter_names(getattr(self.reference_module, self.exercise.name, None)))

    def _init_parameter_names(self) -> list[str]:
        target = getattr(self.reference_module, self.exercise.name, None)
        try:
            return [name for name in inspect.signature(target.__init__).parameters
                    if name != "self"]
        except (TypeError, ValueError, AttributeError):
            return []

    def describe_input(self, name: str, text: str) -> None:
        """Show input `name` as `text` in feedback (e.g. a function, a model)."""
        self.input_labels[name] = text

    def input_text(self) -> str:
        if not self.inputs:
            return ""
        where = " (sent to your code on the meta device)" if self.meta else \
            (f" (on {self.device})" if self.device != "cpu" else "")
        lines = [f"  {name} = {self.input_labels.get(name) or describe(value)}"
                 .replace("\n", "\n    ") for name, value in self.inputs]
        return f"\nSmallest failing input found{where}:\n" + "\n".join(lines)

    # -- verdicts ------------------------------------------------------------------------------

    def fail(self, message: str, *, inputs: bool = True) -> None:
        """Raise a Mismatch with this message and the input that produced it."""
        raise Mismatch(message + (self.input_text() if inputs else ""))

    def error(self, message: str, *, inputs: bool = True) -> None:
        """Raise a StudentError: the code raised or returned the wrong type."""
        raise StudentError(f"Your code {message}" + (self.input_text() if inputs else ""))

    def expect(self, condition: bool, message: str) -> None:
        if not condition:
            self.fail(message)

    def expect_type(self, value: Any, kinds: type | tuple[type, ...], what: str,
                    wanted: str) -> None:
        """A wrong return type is an `error` (as the results contract says): the one path by
        which every check and exercise reports it, naming the expected and the received type.
        """
        kinds = kinds if isinstance(kinds, tuple) else (kinds,)
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise WrongType(what=what, expected=return_types.type_text(kinds),
                            received=return_types.value_type_text(value), wanted=wanted,
                            got=type_name(value), shown=describe(value),
                            inputs=self.input_text())

    def expect_tensor(self, got: Any, expected: torch.Tensor, what: str = "the returned tensor",
                      *, rtol: float | None = None, atol: float | None = None,
                      check_dtype: bool = True, compare_values: bool = True) -> None:
        """`got` must be a tensor on the checked device with the expected shape, dtype and
        values (values are not compared on the meta device, which holds none)."""
        self.expect_type(got, TensorData, what, "a torch.Tensor")
        if got.device_type != self.device:
            self.fail(f"{capital(what)} is on the device '{got.device}', but the inputs were on "
                      f"'{self.device}'. Create tensors with device=x.device (or use *_like / "
                      "x.new_* functions) so results stay on the input's device.")
        if tuple(got.shape) != tuple(expected.shape):
            self.fail(f"{capital(what)} has shape {shape_text(got.shape)}, but it should have "
                      f"shape {shape_text(tuple(expected.shape))}.")
        expected_dtype = codec.dtype_name(expected.dtype)
        if check_dtype and got.dtype != expected_dtype:
            self.fail(f"{capital(what)} has dtype {got.dtype}, but it should have dtype "
                      f"{expected_dtype}.")
        if got.values is None or self.meta or not compare_values:
            return
        if not values_close(got.values, expected.detach().cpu().to(got.values.dtype),
                            rtol=rtol, atol=atol):
            self.fail(f"{capital(what)} has the wrong values.\n"
                      f"  expected: {describe(expected.detach().cpu())}\n"
                      f"  got:      {describe(got)}"
                      + difference_text(got.values, expected.detach().cpu()))

    def expect_unchanged(self, after: Any, before: torch.Tensor, name: str) -> None:
        """An input tensor must come back with the same values and no in-place writes."""
        if not isinstance(after, TensorData):
            return
        changed = after.version != 0
        if not changed and after.values is not None and not self.meta:
            changed = not torch.equal(after.values, before.detach().cpu().to(after.values.dtype))
        if changed:
            self.fail(f"Your code changed its input `{name}` in place; it must leave its inputs "
                      "unchanged (work on a copy, e.g. x.clone(), or use out-of-place "
                      "operations).")

    def expect_float(self, value: Any, expected: float, what: str, *, rtol: float = 1e-5,
                     atol: float = 1e-6) -> None:
        self.expect_type(value, (float, int), what, "a Python float")
        if not np.isclose(value, expected, rtol=rtol, atol=atol, equal_nan=True):
            self.fail(f"{capital(what)} is {value!r}, but it should be {expected!r}.")


# torch.testing.assert_close's default (rtol, atol) per dtype; other dtypes compare exactly.
DEFAULT_TOLERANCES = {
    torch.float16: (1e-3, 1e-5), torch.bfloat16: (1.6e-2, 1e-5), torch.float32: (1.3e-6, 1e-5),
    torch.float64: (1e-7, 1e-7), torch.complex64: (1.3e-6, 1e-5), torch.complex128: (1e-7, 1e-7),
}


def values_close(got: torch.Tensor, expected: torch.Tensor, *, rtol: float | None = None,
                 atol: float | None = None) -> bool:
    """Same shape and dtype assumed: close within tolerance (NaN equals NaN, infinities must
    match), as `torch.testing.assert_close` judges, without its first-call import of
    torch.distributed (~0.5 s) or its per-call overhead."""
    if got.dtype not in DEFAULT_TOLERANCES:
        return torch.equal(got, expected)
    default_rtol, default_atol = DEFAULT_TOLERANCES[got.dtype]
    return bool(torch.isclose(got, expected, rtol=default_rtol if rtol is None else rtol,
                              atol=default_atol if atol is None else atol,
                              equal_nan=True).all())


def capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def error_text(error: dict) -> str:
    """`ValueError: ... (tensors.py, line 12: x.view(2, -1))`"""
    # (the worker shortens messages; one forged on its pipe may be any length)
    text = f"{str(error.get('type', 'Error'))[:100]}: {str(error.get('message', ''))[:1000]}" \
        .strip()
    frames = error.get("frames") or []
    if frames:
        last = frames[-1]
        text += f"\n  at {last['file']}, line {last['line']}"
        if last.get("code"):
            text += f": {last['code']}"
    elif error.get("where"):
        text += f"\n  at {error['where']}"
    return text


def difference_text(got: torch.Tensor, expected: torch.Tensor) -> str:
    """Where the largest difference is: for tensors too big to show whole, and for small ones
    whose printed values look equal (a loss of precision)."""
    if got.shape != expected.shape or (got.numel() <= 12 and describe(got) != describe(expected)):
        return ""
    try:
        difference = (got.double() - expected.double()).abs().nan_to_num(nan=float("inf"))
        flat_index = int(difference.argmax())
    except (RuntimeError, TypeError):
        return ""
    index = tuple(int(i) for i in np.unravel_index(flat_index, tuple(got.shape)))
    wanted, found = expected[index].item(), got[index].item()
    text = (f"\n  largest difference at index {list(index)}: expected {wanted:.9g}, "
            f"got {found:.9g}")
    if got.numel() <= 12:
        text += (" (equal when printed, but off by more than the precision of "
                 f"{str(got.dtype).removeprefix('torch.')} allows: compute it in a numerically "
                 "stable way)")
    return text


@functools.lru_cache(maxsize=256)
def _parameter_names(target: Any) -> tuple[str, ...]:
    """The parameter names of a reference function (read once: inspecting costs ~50 us)."""
    try:
        return tuple(inspect.signature(target).parameters)
    except (TypeError, ValueError):
        return ()


def copy_input(value: Any) -> Any:
    """An independent copy of an input (same values, grad state and layout)."""
    if isinstance(value, torch.Tensor):
        copy = value.detach().clone(memory_format=torch.preserve_format)
        if value.requires_grad:
            copy.requires_grad_(True)
            if not value.is_leaf:
                copy = copy * 1
        return copy
    if isinstance(value, np.ndarray):
        return value.copy()
    if isinstance(value, list):
        return [copy_input(item) for item in value]
    if isinstance(value, tuple):
        return tuple(copy_input(item) for item in value)
    return value

