"""Self-contained HTML reports (Jinja2): one per submission, and the class summary.

The templates live in `templates/` (shipped as `grader/templates` in the wheel); they hold no
logic beyond loops and conditions, so everything they show is computed here. Styles are inlined:
a report works offline and as an e-mail attachment.
"""

from __future__ import annotations

import statistics
from collections import Counter
from pathlib import Path

import jinja2

from grader import __version__
from grader.failures import PASSED, SEVERITY
from grader.results import SubmissionResult, points

PART_TITLES = {"tensors": "Part 1: tensor operations", "autograd": "Part 2: autograd",
               "training": "Part 3: the training loop", "networks": "Part 4: nn.Module networks"}


def template_folder() -> Path:
    """The source tree's top-level `templates/`, else the installed `grader/templates/`."""
    package = Path(__file__).resolve().parents[1]
    source = package.parent / "templates"
    return source if (source / "report.html").is_file() else package / "templates"


def environment() -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.FileSystemLoader(template_folder()),
                              autoescape=jinja2.select_autoescape(["html"], default=True),
                              undefined=jinja2.StrictUndefined)


def submission_html(result: SubmissionResult) -> str:
    """The student's report: total, then every exercise with what was checked and why it failed."""
    parts = []
    for ex in result.exercises:
        part = ex.id.split(".", 1)[0]
        if not parts or parts[-1]["name"] != part:
            parts.append({"name": part, "title": PART_TITLES.get(part, part), "exercises": [],
                          "score": 0.0, "max_score": 0.0})
        parts[-1]["exercises"].append(ex)
        parts[-1]["score"] = points(parts[-1]["score"] + ex.score)
        parts[-1]["max_score"] = points(parts[-1]["max_score"] + ex.max_score)
    counts = list(result.status_counts().items())
    percent = 100 * result.score / result.max_score if result.max_score else 0
    return environment().get_template("report.html").render(
        submission=result, parts=parts, counts=counts, percent=f"{percent:.1f}",
        devices=result.devices, version=__version__)


def histogram(percents: list[float], *, bins: int = 10, width: int = 560,
              height: int = 160) -> dict:
    """Bars for the score histogram (0-10%, ..., 90-100%), already laid out for the SVG."""
    counts = [0] * bins
    for percent in percents:
        counts[min(int(percent // (100 / bins)), bins - 1)] += 1
    tallest = max(counts) or 1
    bar_width = width / bins
    bars = []
    for index, count in enumerate(counts):
        bar_height = round((height - 20) * count / tallest, 1)
        bars.append({"x": round(index * bar_width + 2, 1), "width": round(bar_width - 4, 1),
                     "y": round(height - bar_height, 1), "height": bar_height, "count": count,
                     "label": f"{index * 100 // bins}-{(index + 1) * 100 // bins}"})
    return {"bins": bars, "width": width, "height": height}


def class_html(results: list[SubmissionResult], *, devices: tuple[str, ...],
               report_name: str = "report.html") -> str:
    """The instructor's summary: score histogram, per-student rows, per-exercise pass rates."""
    ordered = sorted(results, key=lambda r: r.id)
    rows, percents = [], []
    for result in ordered:
        percent = 100 * result.score / result.max_score if result.max_score else 0.0
        percents.append(percent)
        problems = [(status, count) for status, count in result.status_counts().items()
                    if status != PASSED and count]
        rows.append({"id": result.id, "link": f"{result.id}/{report_name}", "score": result.score,
                     "max_score": result.max_score, "percent": percent,
                     "passed": result.passed_count, "total": len(result.exercises),
                     "problems": problems})
    exercises = []
    if ordered:
        for index, first in enumerate(ordered[0].exercises):
            column = [r.exercises[index] for r in ordered]
            problems = Counter(ex.status for ex in column if ex.status != PASSED)
            top = max(problems.items(), key=lambda item: (item[1], SEVERITY.index(item[0])),
                      default=(None, 0))
            exercises.append({
                "id": first.id, "max_score": first.max_score,
                "rate": 100 * sum(ex.passed for ex in column) / len(column),
                "mean": statistics.fmean(ex.score for ex in column),
                "top_problem": top[0], "top_count": top[1]})
    scores = [r.score for r in ordered]
    return environment().get_template("index.html").render(
        submissions=ordered, rows=rows, exercises=exercises, histogram=histogram(percents),
        mean=statistics.fmean(scores) if scores else 0.0,
        median=statistics.median(scores) if scores else 0.0,
        max_score=ordered[0].max_score if ordered else 0.0, devices=devices,
        version=__version__)
