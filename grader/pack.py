"""The course pack: where its stubs, solutions and examples live, and its exercises in order.

In a source checkout these are the top-level `exercises/`, `solutions/` and `examples/` folders;
in an installed wheel the same files ship as `grader/bundled/...`.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from functools import cache
from pathlib import Path
from types import ModuleType

from grader.spec import REGISTRY, Exercise

PARTS = ("tensors", "autograd", "training", "networks")
_PACKAGE_DIR = Path(__file__).resolve().parent


def pack_folder(kind: str) -> Path:
    """`exercises`, `solutions` or `examples`: the source tree's folder, else the bundled one."""
    source = _PACKAGE_DIR.parent / kind
    if source.is_dir() and (_PACKAGE_DIR.parent / "pyproject.toml").is_file():
        return source
    return _PACKAGE_DIR / "bundled" / kind


@cache
def reference(part: str) -> ModuleType:
    """The reference solution module of a part (trusted code, loaded in the grader)."""
    path = pack_folder("solutions") / f"{part}.py"
    name = f"grader_reference_{part}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FileNotFoundError(path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@cache
def exercises() -> tuple[Exercise, ...]:
    """Every exercise of the pack, in the contract's order (part by part)."""
    for part in PARTS:
        importlib.import_module(f"grader.checks.{part}")
    ordered = sorted(REGISTRY.values(), key=lambda ex: PARTS.index(ex.part))
    return tuple(ordered)


def exercise_ids() -> list[str]:
    return [ex.id for ex in exercises()]
