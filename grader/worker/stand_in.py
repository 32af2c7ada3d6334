"""Stand-ins for modules that are costly to import: a stand-in answers a few names itself and,
on any other use, loads the real module and hands over to it (`lazy_dynamo` for
`torch._dynamo`, `grader.lazy_shapes` for `torch.fx.experimental.symbolic_shapes`).

This module imports nothing of the grader: it runs in the worker too.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


class StandIn(types.ModuleType):
    """A module's stand-in until something needs the real one."""


def real(name: str) -> types.ModuleType:
    """The real module `name`, loaded (once) in place of its stand-in."""
    module = sys.modules.get(name)
    if module is not None and not isinstance(module, StandIn):
        return module
    parent_name, _, attribute = name.rpartition(".")
    sys.modules.pop(name, None)
    parent = sys.modules.get(parent_name)
    if parent is not None and isinstance(vars(parent).get(attribute), StandIn):
        delattr(parent, attribute)
    return importlib.import_module(name)


def loaded(name: str) -> types.ModuleType | None:
    """The real module `name` when it is loaded, else None (its stand-in, or nothing)."""
    module = sys.modules.get(name)
    return None if module is None or isinstance(module, StandIn) else module


def install(name: str, doc: str | None, answers: dict[str, Any], *, package: bool) -> bool:
    """Put a stand-in for `name` in place, answering the names in `answers` itself, unless the
    real module is loaded already. Any other name loads the real module; so does `__path__` for
    a `package` (importing a submodule needs it), while a plain module has none. True if it
    put the stand-in in place."""
    parent_name, _, attribute = name.rpartition(".")
    if name in sys.modules:
        return False
    parent = importlib.import_module(parent_name)
    if attribute in vars(parent):
        return False

    def forward(attribute_name: str) -> Any:
        if attribute_name == "__path__" and not package:
            raise AttributeError(attribute_name)  # `from ... import` asks: not a package
        return getattr(real(name), attribute_name)

    stand_in = StandIn(name, doc)
    for key, value in answers.items():
        setattr(stand_in, key, value)
    stand_in.__getattr__ = forward
    sys.modules[name] = stand_in
    setattr(parent, attribute, stand_in)
    return True


def installed(name: str) -> bool:
    return isinstance(sys.modules.get(name), StandIn)
