"""Gradebook CSVs for LMS import: Canvas and Moodle (the submission id is the student login).

Canvas ("Import" in the Gradebook) matches students by `SIS Login ID` and reads one column per
assignment, after the `Student, ID, SIS User ID, SIS Login ID, Section` columns; a
`Points Possible` row gives the maximum. Moodle ("Import > CSV file") maps an identifier
column (`username`) to a user field and each other column to a grade item.
"""

from __future__ import annotations

import csv
import io

from grader.results import SubmissionResult

CANVAS_IDENTITY = ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]


def _rows(results: list[SubmissionResult]) -> list[SubmissionResult]:
    return sorted(results, key=lambda r: r.id)


def canvas_csv(results: list[SubmissionResult], *, assignment: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CANVAS_IDENTITY, assignment])
    maximum = max((r.max_score for r in results), default=0.0)
    writer.writerow(["Points Possible", "", "", "", "", f"{maximum:g}"])
    for result in _rows(results):
        writer.writerow([result.id, "", "", result.id, "", f"{result.score:g}"])
    return buffer.getvalue()


def moodle_csv(results: list[SubmissionResult], *, assignment: str) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["username", assignment])
    for result in _rows(results):
        writer.writerow([result.id, f"{result.score:g}"])
    return buffer.getvalue()
