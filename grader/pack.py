"""Packs: an instructor's folder of stubs, solutions and checks, and which one is in use.

A pack is a folder holding

    exercises/    the student stubs, one `<part>.py` per part
    solutions/    the reference solutions (same files)
    tests/        the checks: pytest test modules (with a conftest.py loading `grader.plugin`)
    examples/     optional: example submissions, one folder each (`grader grade` without
                  SUBMISSIONS grades them)
    pack.toml     its metadata (or `[tool.grader]` in its pyproject.toml)

The metadata says `title`, `parts` (the part files, in the order exercises are listed) and
`examples` (generated examples per check by default). The bundled "PyTorch basics" pack is this
repository's top level (`pack.toml`); an installed wheel ships it as `grader/bundled/`. A
student release (`grader release`) is a pack too: it has no solutions, and a `release.json`
with the recorded reference answers (`recorded.pt`) stands in for them.

One pack is active per process (`activate`, from `--pack`); the functions below answer for it.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from types import ModuleType
from typing import Any

_PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_EXAMPLES = 12


class PackError(Exception):
    """A pack that cannot be used: the message is one line naming the file and the fix."""


@dataclass(frozen=True)
class Pack:
    """A pack's folder and metadata."""

    root: Path
    title: str
    parts: tuple[str, ...]
    examples: int = DEFAULT_EXAMPLES

    def folder(self, kind: str) -> Path:
        """`exercises`, `solutions`, `tests` or `examples`."""
        return self.root / kind

    @property
    def release_manifest_path(self) -> Path:
        return self.root / "release.json"

    @property
    def recorded_answers_path(self) -> Path:
        return self.root / "recorded.pt"

    @property
    def protected(self) -> tuple[Path, ...]:
        """What student code must never read: the solutions, the checks, the examples, the
        recorded answers (the whole pack but its stubs)."""
        return tuple(path.resolve() for path in (
            self.folder("solutions"), self.folder("tests"), self.folder("examples"),
            self.recorded_answers_path) if path.exists())


def bundled_root() -> Path:
    """The bundled pack: the source tree's top level, else the installed `grader/bundled/`."""
    source = _PACKAGE_DIR.parent
    if (source / "pack.toml").is_file() and (source / "tests").is_dir():
        return source
    return _PACKAGE_DIR / "bundled"


def _metadata(root: Path) -> dict[str, Any]:
    for name, table in (("pack.toml", None), ("pyproject.toml", "grader")):
        path = root / name
        if not path.is_file():
            continue
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise PackError(f"{path}: not valid TOML ({error})") from None
        if table is None:
            return data
        if table in data.get("tool", {}):
            return data["tool"][table]
    raise PackError(f"{root} is not a pack: it has no pack.toml (or [tool.grader] in "
                    "pyproject.toml); `grader new DIR` writes a working one")


@cache
def load(root: Path | None = None) -> Pack:
    """The pack at `root` (the bundled one when None), its metadata checked."""
    root = (Path(root) if root is not None else bundled_root()).resolve()
    if not root.is_dir():
        raise PackError(f"pack folder {str(root)!r} does not exist")
    meta = _metadata(root)
    tests = root / "tests"
    if not tests.is_dir():
        raise PackError(f"{root} has no tests/ folder: a pack's checks live in tests/")
    if not (root / "solutions").is_dir() and not (root / "release.json").is_file():
        raise PackError(f"{root} has no solutions/ folder (the reference solutions)")
    parts = meta.get("parts")
    if parts is None:
        parts = sorted(path.stem for path in (root / "solutions").glob("*.py"))
    if not isinstance(parts, list) or not all(isinstance(p, str) and p.isidentifier()
                                              for p in parts):
        raise PackError(f"{root}: `parts` must be a list of module names, e.g. "
                        "[\"tensors\", \"autograd\"]")
    examples = meta.get("examples", DEFAULT_EXAMPLES)
    if not isinstance(examples, int) or examples < 1:
        raise PackError(f"{root}: `examples` must be a positive whole number")
    return Pack(root=root, title=str(meta.get("title", root.name)), parts=tuple(parts),
                examples=examples)


_active: list[Pack] = []


def activate(root: Path | None) -> Pack:
    """Make the pack at `root` (None: the bundled one) the one this process grades with."""
    chosen = load(Path(root).resolve() if root is not None else None)
    _active[:] = [chosen]
    return chosen


@contextmanager
def activated(root: Path | None) -> Iterator[Pack]:
    """Within this block the pack at `root` is active (None: leave the active one); the one
    active before comes back after it."""
    before = list(_active)
    try:
        yield activate(root) if root is not None else current()
    finally:
        _active[:] = before


def current() -> Pack:
    if not _active:
        _active.append(load(None))
    return _active[0]


def parts() -> tuple[str, ...]:
    return current().parts


def pack_folder(kind: str) -> Path:
    """`exercises`, `solutions`, `tests` or `examples` of the active pack."""
    return current().folder(kind)


# How `reference()` answers: from the solutions (normally), noting every answer while
# `grader release` records, or from recorded answers (in a release, and while it verifies).
_answers: dict[str, Any] = {"record": None, "replay": None, "block": 0}


def release_manifest(chosen: Pack | None = None) -> dict | None:
    """In a student release (`grader release`): which checks it carries and how to run them;
    None in the instructor's grader."""
    return _manifest((chosen or current()).release_manifest_path)


@cache
def _manifest(path: Path) -> dict | None:
    if not path.is_file():
        return None
    return json.loads(path.read_text(encoding="utf-8"))


@contextmanager
def answering(*, record: dict | None = None, replay: tuple[dict, dict] | None = None
              ) -> Iterator[None]:
    """Within this block, `reference()` records its answers into `record`, or answers only
    from `replay` = (answers, function signatures) without running any solution."""
    saved = dict(_answers)
    _answer_blocks[0] += 1
    _answers.update(record=record, replay=replay, block=_answer_blocks[0])
    try:
        yield
    finally:
        _answers.clear()
        _answers.update(saved)


_answer_blocks = [0]


def answer_source() -> tuple | None:
    """Where references answer from now, for `grader.replay` to keep its scripts apart: None
    while answers are being recorded (every check must then run to record them)."""
    if _answers["record"] is not None:
        return None
    return ("answers", _answers["block"])


def reference(part: str, chosen: Pack | None = None) -> Any:
    """The reference of a part: its solution module (trusted code, loaded in the grader), or
    its recorded answers (see `grader.recorded`)."""
    from grader import recorded

    chosen = chosen or current()
    if _answers["replay"] is not None:
        answers, functions = _answers["replay"]
        return recorded.ReplayReference(part, answers, functions.get(part, {}))
    manifest = release_manifest(chosen)
    if manifest is not None:
        return recorded.ReplayReference(part, _release_answers(chosen.recorded_answers_path),
                                        manifest["functions"].get(part, {}))
    if _answers["record"] is not None:
        return recorded.RecordingReference(solution(part, chosen), part, _answers["record"])
    return solution(part, chosen)


@cache
def _release_answers(path: Path) -> dict:
    from grader import recorded

    return recorded.load(path)


def solution(part: str, chosen: Pack | None = None) -> ModuleType:
    """The reference solution module of a part (trusted code, loaded in the grader)."""
    return _solution_module((chosen or current()).folder("solutions") / f"{part}.py")


@cache
def _solution_module(path: Path) -> ModuleType:
    if not path.is_file():
        raise PackError(f"{path} does not exist: every part needs its reference solution")
    digest = hashlib.sha1(str(path.parent).encode()).hexdigest()[:8]
    name = f"grader_reference_{digest}_{path.stem}"
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise PackError(f"{path} cannot be imported")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # noqa: BLE001 - an instructor's solution that does not import
        del sys.modules[name]
        raise PackError(f"{path} does not import: {type(error).__name__}: {error}") from None
    return module


def exercises():  # noqa: ANN201 - tuple[spec.Exercise, ...]; spec imports pytest lazily
    """Every exercise of the active pack, in pack order (part by part), from its collected
    checks. In a student release, only the exercises and checks it carries."""
    from grader import collect

    return collect.checks_of(current()).exercises


def exercise_ids() -> list[str]:
    return [ex.id for ex in exercises()]
