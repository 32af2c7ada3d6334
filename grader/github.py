"""GitHub Classroom / Actions: the `Points X/Y` line, a Markdown job summary, and `::error`
annotations on the student's files, as GitHub's workflow commands document them."""

from __future__ import annotations

import re

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


def annotations(result: SubmissionResult) -> list[str]:
    """One `::error` workflow command per exercise that did not pass, pointing at the line
    of the student's file where it failed when the feedback says so."""
    lines = []
    for ex in result.exercises:
        if ex.status == PASSED:
            continue
        part = ex.id.split(".", 1)[0]
        where = _WHERE.search(ex.feedback)
        file_name, line = (where["file"], where["line"]) if where else (f"{part}.py", "1")
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
