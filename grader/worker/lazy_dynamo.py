"""Import `torch._dynamo` only when something compiles (it costs ~1.5 s and ~150 MB).

torch wraps many internal functions with `torch._compile._disable_dynamo` (an optimizer's
`add_param_group`, the meta device's kernels, ...): the first call of any of them imports
`torch._dynamo`, only to mark that function as not to be compiled. Nothing a check or a
course's exercise does compiles, so a process would pay the import for nothing: in the
grader, when a training check builds its first optimizer; in a worker, on the first optimizer or
meta-device op of a submission.

`install()` puts a stand-in module in its place. Its `disable(fn)` calls `fn` as it is (which
is what the real `disable` does while nothing is being compiled) and checks on every call
whether the real module has been loaded since; its `graph_break()` does nothing, as the real
one does outside compilation. Any other use (`torch.compile`,
`torch._dynamo.config`, `import torch._dynamo.utils`, ...) loads the real module at once and
hands over to it, so code that does compile behaves as without the stand-in.

This module imports nothing of the grader: it runs in the worker too.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any

NAME = "torch._dynamo"


class _StandIn(types.ModuleType):
    """`torch._dynamo` until something needs the real one."""


def _real() -> types.ModuleType:
    """Load the real `torch._dynamo` (once) in place of the stand-in."""
    module = sys.modules.get(NAME)
    if module is not None and not isinstance(module, _StandIn):
        return module
    import torch

    sys.modules.pop(NAME, None)
    if isinstance(getattr(torch, "_dynamo", None), _StandIn):
        delattr(torch, "_dynamo")
    return importlib.import_module(NAME)


def _disable(fn: Any = None, recursive: bool = True, *, wrapping: bool = True,
             **kwargs: Any) -> Any:
    if fn is None or kwargs:  # decorator forms and options: the real one handles them
        return _real().disable(fn, recursive, wrapping=wrapping, **kwargs)

    def call(*args: Any, **kwargs: Any) -> Any:
        module = sys.modules.get(NAME)
        # (another thread may be importing the real module: until it has `disable`, nothing
        # can be compiling)
        real_disable = None if isinstance(module, _StandIn) else getattr(module, "disable", None)
        if real_disable is not None:
            # something compiles now: from here on, as torch meant it
            disabled = real_disable(fn, recursive, wrapping=False)
            try:
                fn.__dynamo_disable = disabled
            except (AttributeError, TypeError):
                pass
            return disabled(*args, **kwargs)
        return fn(*args, **kwargs)

    return call


def _graph_break(msg: str = "") -> None:
    """Outside compilation a graph break does nothing (an optimizer's `step` asks for two)."""
    module = sys.modules.get(NAME)
    real_graph_break = None if isinstance(module, _StandIn) else \
        getattr(module, "graph_break", None)
    if real_graph_break is not None:
        real_graph_break(msg)


def _getattr(name: str) -> Any:
    return getattr(_real(), name)


def install() -> bool:
    """Put the stand-in in place, unless `torch._dynamo` is already loaded. True if it did."""
    if NAME in sys.modules:
        return False
    import torch

    if "_dynamo" in vars(torch):
        return False
    stand_in = _StandIn(NAME, __doc__)
    stand_in.disable = _disable
    stand_in.graph_break = _graph_break
    stand_in.__getattr__ = _getattr  # anything else (even __path__): the real module
    sys.modules[NAME] = stand_in
    torch._dynamo = stand_in
    return True


def installed() -> bool:
    return isinstance(sys.modules.get(NAME), _StandIn)
