"""The course pack: where its stubs, solutions and examples live, and its exercises in order.

In a source checkout these are the top-level `exercises/`, `solutions/` and `examples/` folders;
in an installed wheel the same files ship as `grader/bundled/...`.
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

from grader.spec import REGISTRY, Exercise

PARTS = ("tensors", "autograd", "training", "networks")
_PACKAGE_DIR = Path(__file__).resolve().parent


def pack_folder(kind: str) -> Path:
    """`exercises`, `solutions` or `examples`: the source tree's folder, else the bundled one."""
    source = _PACKAGE_DIR.parent / kind
    if source.is_dir() and (_PACKAGE_DIR.parent / "pyproject.toml").is_file():
        return source
    return _PACKAGE_DIR / "bundled" / kind


RELEASE_MANIFEST = _PACKAGE_DIR / "bundled" / "release.json"
RECORDED_ANSWERS = _PACKAGE_DIR / "bundled" / "recorded.pt"

# How `reference()` answers: from the solutions (normally), noting every answer while
# `grader release` records, or from recorded answers (in a release, and while it verifies).
_answers: dict[str, Any] = {"record": None, "replay": None}


@cache
def release_manifest() -> dict | None:
    """In a student release (`grader release`): which checks it carries and how to run them;
    None in the instructor's grader."""
    if not RELEASE_MANIFEST.is_file():
        return None
    return json.loads(RELEASE_MANIFEST.read_text(encoding="utf-8"))


@contextmanager
def answering(*, record: dict | None = None, replay: tuple[dict, dict] | None = None
              ) -> Iterator[None]:
    """Within this block, `reference()` records its answers into `record`, or answers only
    from `replay` = (answers, function signatures) without running any solution."""
    saved = dict(_answers)
    _answers.update(record=record, replay=replay)
    try:
        yield
    finally:
        _answers.update(saved)


def reference(part: str) -> Any:
    """The reference of a part: its solution module (trusted code, loaded in the grader), or
    its recorded answers (see `grader.recorded`)."""
    from grader import recorded

    if _answers["replay"] is not None:
        answers, functions = _answers["replay"]
        return recorded.ReplayReference(part, answers, functions.get(part, {}))
    manifest = release_manifest()
    if manifest is not None:
        return recorded.ReplayReference(part, _release_answers(),
                                        manifest["functions"].get(part, {}))
    if _answers["record"] is not None:
        return recorded.RecordingReference(solution(part), part, _answers["record"])
    return solution(part)


@cache
def _release_answers() -> dict:
    from grader import recorded

    return recorded.load(RECORDED_ANSWERS)


@cache
def solution(part: str) -> ModuleType:
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
    """Every exercise of the pack, in the contract's order (part by part). In a student
    release, only the exercises and checks it carries."""
    for part in PARTS:
        importlib.import_module(f"grader.checks.{part}")
    ordered = sorted(REGISTRY.values(), key=lambda ex: PARTS.index(ex.part))
    manifest = release_manifest()
    if manifest is not None:
        carried = set(manifest["checks"])
        for exercise in ordered:
            exercise.properties = [prop for prop in exercise.properties
                                   if f"{exercise.id}:{prop.name}" in carried]
        ordered = [exercise for exercise in ordered if exercise.properties]
    return tuple(ordered)


def exercise_ids() -> list[str]:
    return [ex.id for ex in exercises()]
