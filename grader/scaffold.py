"""`grader new`: a new pack with one working exercise, to copy from when adding the next.

The pack it writes passes its own checks at once: `pytest DIR/tests` passes on the solutions,
`grader check --pack DIR DIR/solutions` gives full marks and `grader check --pack DIR
DIR/exercises` gives zero ("not implemented yet"). Its example exercise, `basics.relu`, shows
each piece an exercise needs: a stub whose docstring teaches, a reference solution with the
same signature and docstring, and a check (a pytest test with markers and `@given`).
"""

from __future__ import annotations

from pathlib import Path

PACK_TOML = '''\
# A pack for torch-grader: `grader check --pack . SUBMISSION`, `pytest tests`.
title = "{title}"
parts = ["basics"]  # one <part>.py per part in exercises/ and solutions/, in this order
examples = 12       # generated examples per check (`--examples N` overrides it)
'''

_DOCSTRING = '''\
    """Apply the rectified linear unit to every element of `x`.

    relu(v) is v when v > 0 and 0 otherwise. Return a new tensor with the shape,
    dtype and device of `x`; leave `x` itself unchanged.

    >>> relu(torch.tensor([-2.0, 0.0, 3.0]))
    tensor([0., 0., 3.])

    Pitfall: `x.clamp(max=0)` keeps the negative values; the lower bound is `min`.
    """
'''

MODULE_DOCSTRING = '''\
"""Basics: elementwise functions on tensors.

Every function returns a new tensor on the device of its input and leaves its input
unchanged.
"""

import torch
'''

STUB = MODULE_DOCSTRING + '''

def relu(x: torch.Tensor) -> torch.Tensor:
''' + _DOCSTRING + '''\
    raise NotImplementedError("relu: your code here")
'''

SOLUTION = MODULE_DOCSTRING + '''

def relu(x: torch.Tensor) -> torch.Tensor:
''' + _DOCSTRING + '''\
    return x.clamp(min=0)
'''

CONFTEST = '''\
"""The checks run with torch-grader's pytest plugin: the `ctx` fixture, the markers
(`exercise`, `points`, `hidden`, `devices`, `examples`, `device_probe`), the grading
hypothesis profile and `--submission DIR`."""

pytest_plugins = ["grader.plugin"]
'''

CHECKS = '''\
"""Checks for `basics.py`."""

import pytest
import torch
from hypothesis import given

from grader.testing import FLOAT_DTYPES, Context, tensors

relu = pytest.mark.exercise("basics.relu", "max(v, 0) for every element")


@relu
@pytest.mark.points(1)
@pytest.mark.device_probe(0.5)
@given(x=tensors(dtype=FLOAT_DTYPES))
def test_matches_the_reference(ctx: Context, x: torch.Tensor) -> None:
    """returns max(v, 0) for every element, with the shape and dtype of x"""
    reply = ctx.call(x)
    ctx.expect_tensor(reply.value, ctx.reference(x))
'''

CORRECT_EXAMPLE = '''\
import torch


def relu(x):
    return torch.where(x > 0, x, torch.zeros_like(x))
'''

BUGGY_EXAMPLE = '''\
import torch


def relu(x):
    return x.clamp(max=0)
'''


def files(title: str) -> dict[str, str]:
    """The new pack's files: relative path -> text."""
    return {
        "pack.toml": PACK_TOML.format(title=title.replace("\\", "\\\\").replace('"', '\\"')),
        "exercises/basics.py": STUB,
        "solutions/basics.py": SOLUTION,
        "tests/conftest.py": CONFTEST,
        "tests/test_basics.py": CHECKS,
        "examples/correct/basics.py": CORRECT_EXAMPLE,
        "examples/clamp-max-instead-of-min/basics.py": BUGGY_EXAMPLE,
    }


def default_title(path: Path) -> str:
    """`my-course_pack` -> `My course pack`."""
    words = path.resolve().name.replace("-", " ").replace("_", " ").split()
    return " ".join(words).capitalize() or "My pack"


def write_new_pack(path: Path, *, title: str | None = None) -> list[Path]:
    """Write a working pack into `path` (created, or an empty folder); returns the files
    written. Raises `FileExistsError` when `path` is a file or a folder that is not empty."""
    path = Path(path)
    if path.exists() and (not path.is_dir() or any(path.iterdir())):
        what = "a file" if not path.is_dir() else "not empty"
        raise FileExistsError(f"{path} is {what}: choose a new folder for the pack")
    written = []
    for relative, text in files(title or default_title(path)).items():
        target = path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return written
