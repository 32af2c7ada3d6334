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

from typing import Any

from grader.worker import stand_in

NAME = "torch._dynamo"


def _disable(fn: Any = None, recursive: bool = True, *, wrapping: bool = True,
             **kwargs: Any) -> Any:
    if fn is None or kwargs:  # decorator forms and options: the real one handles them
        return stand_in.real(NAME).disable(fn, recursive, wrapping=wrapping, **kwargs)

    def call(*args: Any, **kwargs: Any) -> Any:
        # (another thread may be importing the real module: until it has `disable`, nothing
        # can be compiling)
        real_disable = getattr(stand_in.loaded(NAME), "disable", None)
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
    real_graph_break = getattr(stand_in.loaded(NAME), "graph_break", None)
    if real_graph_break is not None:
        real_graph_break(msg)


def install() -> bool:
    """Put the stand-in in place, unless `torch._dynamo` is already loaded. True if it did."""
    return stand_in.install(NAME, __doc__, {"disable": _disable, "graph_break": _graph_break},
                            package=True)


def installed() -> bool:
    return stand_in.installed(NAME)
