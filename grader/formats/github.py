"""GitHub Classroom / Actions: the `Points X/Y` line, a Markdown job summary, and `::error`
annotations on the student's files, as GitHub's workflow commands document them.

An annotation sits on the line the feedback names (where the student's code raised), else on
the line where the submission defines the exercise's function or class, found by parsing the
file with `ast`: no student code runs here.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from grader.failures import PASSED
from grader.results import SubmissionResult

_WHERE = re.compile(r"at (?P<file>\w+\.py), line (?P<line>\d+)")


def points_line(result: SubmissionResult) -> str:
    """The line GitHub Classroom's autograder reads for the score."""
    return f"Points {result.score:g}/{result.max_score:g}"


def _escape(text: str, *, property_value: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if property_value:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def module_statements(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Every statement that runs at import time: `body`, and the blocks of its if, try, with
    and loop statements, but not the bodies of functions and classes."""
    for statement in body:
        yield statement
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for field in ("body", "orelse", "finalbody"):
            yield from module_statements(getattr(statement, field, []))
        for handler in getattr(statement, "handlers", []):
            yield from module_statements(handler.body)


def bound_names(statement: ast.stmt) -> set[str]:
    """The module-level names a statement binds: def, class, assignment or import."""
    if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
        return {statement.name}
    if isinstance(statement, (ast.Import, ast.ImportFrom)):
        return {(alias.asname or alias.name).split(".")[0] for alias in statement.names}
    targets = (statement.targets if isinstance(statement, ast.Assign) else
               [statement.target] if isinstance(statement, ast.AnnAssign)
               else [])
    return {node.id for target in targets for node in ast.walk(target)
            if isinstance(node, ast.Name)}


def definition_line(source: str, name: str) -> int | None:
    """The line where `source` defines `name` at module level (the last definition, the one
    Python keeps); None when it does not, or when the source does not parse."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    lines = [statement.lineno for statement in module_statements(tree.body)
             if name in bound_names(statement)]
    return max(lines, default=None)


def part_file(submission: Path, part: str, parts: set[str]) -> tuple[str, str | None]:
    """The student's file that holds `part`, and its Python source: `<part>.py`; else the
    notebook it came from (no source: notebook lines are not file lines); else `<part>.py`
    without source (a zip, or no such file)."""
    if submission.is_dir():
        module = submission / f"{part}.py"
        if module.is_file():
            return module.name, module.read_text(encoding="utf-8", errors="replace")
        notebooks = sorted(submission.glob("*.ipynb"))
        named_for_part = [nb for nb in notebooks if nb.stem == part]
        holding_every_part = [nb for nb in notebooks if nb.stem not in parts]
        if named_for_part or holding_every_part:
            return (named_for_part or holding_every_part)[0].name, None
    return f"{part}.py", None


def annotation_place(exercise_id: str, feedback: str, submission: Path | None,
                     parts: set[str]) -> tuple[str, int]:
    """(file, line) for an exercise's annotation: where its code raised when the feedback
    says so and that file is the student's, else where it defines the exercise, else line 1."""
    part, name = exercise_id.split(".", 1)
    where = _WHERE.search(feedback)
    # a zip's files are not in the repository either way: its line is the best there is
    if where and (submission is None or not submission.is_dir()
                  or (submission / where["file"]).is_file()):
        return where["file"], int(where["line"])
    if submission is None:
        return f"{part}.py", 1
    file_name, source = part_file(submission, part, parts)
    line = definition_line(source, name) if source is not None else None
    return file_name, line or 1


def annotations(result: SubmissionResult, *, submission: Path | None = None) -> list[str]:
    """One `::error` workflow command per exercise that did not pass. With the `submission`
    folder it points at the student's line (see `annotation_place`); without it, at the line
    the feedback names or line 1 of `<part>.py`."""
    parts = {ex.id.split(".", 1)[0] for ex in result.exercises}
    lines = []
    for ex in result.exercises:
        if ex.status == PASSED:
            continue
        file_name, line = annotation_place(ex.id, ex.feedback, submission, parts)
        title = f"{ex.id}: {ex.status} ({ex.score:g}/{ex.max_score:g})"
        lines.append(f"::error file={_escape(file_name, property_value=True)},line={line},"
                     f"title={_escape(title, property_value=True)}::{_escape(ex.feedback)}")
    return lines


def job_summary(result: SubmissionResult) -> str:
    """Markdown for $GITHUB_STEP_SUMMARY: the score, then a table of every exercise."""
    rows = ["| exercise | status | points |", "|---|---|---|"]
    for ex in result.exercises:
        mark = "✅" if ex.status == PASSED else "❌"
        rows.append(f"| `{ex.id}` | {mark} {ex.status} | {ex.score:g} / {ex.max_score:g} |")
    failures = [f"<details><summary><code>{ex.id}</code>: {ex.status}</summary>\n\n```\n"
                f"{ex.feedback}\n```\n</details>" for ex in result.exercises
                if ex.status != PASSED]
    return "\n".join([f"## PyTorch basics: {result.score:g} / {result.max_score:g} points", "",
                      *rows, "", *failures]) + "\n"
