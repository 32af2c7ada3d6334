"""Shared test helpers: building submissions from the reference solutions, grading them once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from grader import pack, runner
from grader.results import SubmissionResult

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = Path(__file__).resolve().parent / "fixtures"
BUG_FILES = sorted((FIXTURES / "bugs").glob("*.py"))
CORRECT_STYLES = sorted(path for path in (FIXTURES / "correct").iterdir() if path.is_dir())


def copy_solutions(destination: Path, parts: tuple[str, ...] = pack.parts()) -> Path:
    """A submission folder holding the reference solution files (a correct submission)."""
    destination.mkdir(parents=True, exist_ok=True)
    for part in parts:
        shutil.copy(pack.pack_folder("solutions") / f"{part}.py", destination / f"{part}.py")
    return destination


def with_bug(destination: Path, bug_file: Path) -> tuple[Path, str]:
    """The solutions with one definition replaced by a bug file's; returns (folder, exercise)."""
    copy_solutions(destination)
    part, name = bug_file.stem.split("__")[:2]
    with open(destination / f"{part}.py", "a", encoding="utf-8") as handle:
        handle.write("\n\n" + bug_file.read_text(encoding="utf-8"))
    return destination, f"{part}.{name}"


def statuses(result: SubmissionResult) -> dict[str, str]:
    return {ex.id: ex.status for ex in result.exercises}


@pytest.fixture(scope="session")
def solutions_result() -> SubmissionResult:
    """The reference solutions, graded once for the whole test session."""
    return runner.grade_submission(pack.pack_folder("solutions"), runner.Options())


@pytest.fixture(scope="session")
def exercises_result() -> SubmissionResult:
    return runner.grade_submission(pack.pack_folder("exercises"), runner.Options())


@pytest.fixture(scope="session")
def bug_results(tmp_path_factory: pytest.TempPathFactory
                ) -> dict[str, tuple[str, SubmissionResult]]:
    """Every bug submission graded (only the part it touches: the other files are byte-for-byte
    the solutions, graded in full by `solutions_result`), two at a time."""
    root = tmp_path_factory.mktemp("bugs")
    expected: dict[str, str] = {}
    by_part: dict[str, list[Path]] = {}
    for bug_file in BUG_FILES:
        folder, exercise_id = with_bug(root / bug_file.stem, bug_file)
        expected[bug_file.stem] = exercise_id
        by_part.setdefault(exercise_id.split(".")[0], []).append(folder)
    results = {}
    for part, folders in by_part.items():
        options = runner.Options(only=(part,))
        for result in runner.grade_batch(folders, options, jobs=2):
            results[result.id] = (expected[result.id], result)
    return results


@pytest.fixture(scope="session")
def style_results() -> dict[str, SubmissionResult]:
    return {result.id: result
            for result in runner.grade_batch(CORRECT_STYLES, runner.Options(), jobs=2)}
