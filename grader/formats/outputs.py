"""Writing a grading run's files: results.json, grades.csv, index.html and one report each."""

from __future__ import annotations

from pathlib import Path

from grader.formats import gradebook, gradescope, junit, report
from grader.results import SubmissionResult, grades_csv, results_json, write_text


def write_submission_report(result: SubmissionResult, path: Path) -> Path:
    write_text(path, report.submission_html(result))
    return path


def write_class_outputs(results: list[SubmissionResult], out_dir: Path, *,
                        devices: tuple[str, ...],
                        assignment: str = "PyTorch basics") -> dict[str, Path]:
    """Every file of `grader grade --out OUT`; returns what was written, by kind."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = {"results": out_dir / "results.json", "grades": out_dir / "grades.csv",
               "canvas": out_dir / "canvas.csv", "moodle": out_dir / "moodle.csv",
               "index": out_dir / "index.html"}
    write_text(written["results"], results_json(results, devices=devices))
    write_text(written["grades"], grades_csv(results))
    write_text(written["canvas"], gradebook.canvas_csv(results, assignment=assignment))
    write_text(written["moodle"], gradebook.moodle_csv(results, assignment=assignment))
    for result in results:
        write_submission_report(result, out_dir / result.id / "report.html")
    write_text(written["index"], report.class_html(results, devices=devices))
    return written


def write_junit(results: list[SubmissionResult], path: Path) -> Path:
    write_text(path, junit.junit_xml(results))
    return path


def write_gradescope(result: SubmissionResult, path: Path, *, visibility: str) -> Path:
    write_text(path, gradescope.gradescope_json(result, visibility=visibility))
    return path
