"""Grading results as plain data, and their machine-readable forms (results.json, grades.csv).

Every renderer (terminal, HTML, JSON, CSV) takes these same objects. Timing lives in
`seconds` fields that are never written to results.json, so the file is byte-identical from run
to run for the same submissions.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from grader.failures import PASSED, SEVERITY
from grader.worker.isolation import DISK_BUDGET_KEY


def points(value: float) -> float:
    """Scores rounded so that 0.1 + 0.2 prints as 0.3."""
    return round(float(value) + 0.0, 4)


@dataclass
class CheckResult:
    """One scored property of an exercise (e.g. "leaves t unchanged")."""

    name: str
    description: str
    status: str
    score: float
    max_score: float
    feedback: str = ""


@dataclass
class ExerciseResult:
    """The verdict for one exercise of one submission."""

    id: str
    score: float
    max_score: float
    status: str
    feedback: str
    checks: list[CheckResult] = field(default_factory=list)
    summary: str = ""
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return self.status == PASSED


@dataclass
class SubmissionResult:
    """Every exercise's verdict for one submission folder."""

    id: str
    exercises: list[ExerciseResult]
    seconds: float = 0.0
    devices: tuple[str, ...] = ("cpu",)
    isolation: dict[str, str] = field(default_factory=dict)  # layer -> "active" or why not
    notes: list[str] = field(default_factory=list)  # how the hand-in was read

    @property
    def score(self) -> float:
        return points(sum(ex.score for ex in self.exercises))

    @property
    def max_score(self) -> float:
        return points(sum(ex.max_score for ex in self.exercises))

    @property
    def passed_count(self) -> int:
        return sum(ex.passed for ex in self.exercises)

    def status_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(SEVERITY, 0)
        for ex in self.exercises:
            counts[ex.status] += 1
        return counts

    def to_dict(self) -> dict:
        """Every field as plain data (JSON-safe: str, float, list, dict), timings included,
        for a result to travel between processes; `from_dict` rebuilds it exactly."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> SubmissionResult:
        """The result `to_dict` described (raises KeyError or TypeError on anything else)."""
        exercises = [ExerciseResult(**{**ex, "checks": [CheckResult(**check)
                                                        for check in ex["checks"]]})
                     for ex in data["exercises"]]
        return cls(id=data["id"], exercises=exercises, seconds=data["seconds"],
                   devices=tuple(data["devices"]), isolation=dict(data["isolation"]),
                   notes=list(data["notes"]))


def exercise_json(ex: ExerciseResult) -> dict:
    return {
        "id": ex.id, "score": points(ex.score), "max_score": points(ex.max_score),
        "status": ex.status, "feedback": ex.feedback,
        "checks": [{"name": check.name, "description": check.description,
                    "status": check.status, "score": points(check.score),
                    "max_score": points(check.max_score), "feedback": check.feedback}
                   for check in ex.checks],
    }


def submission_json(result: SubmissionResult) -> dict:
    document = {"id": result.id, "score": result.score, "max_score": result.max_score,
                "exercises": [exercise_json(ex) for ex in result.exercises]}
    if result.notes:
        document["notes"] = result.notes
    return document


def results_json(results: list[SubmissionResult], *, devices: tuple[str, ...]) -> str:
    """The results.json text of the contract (plus a `grader` block), deterministic."""
    from grader import __version__

    ordered = sorted(results, key=lambda r: r.id)
    grader = {"version": __version__, "devices": list(devices),
              "isolation": run_isolation(ordered)}
    budget = run_disk_budget(ordered)
    if budget is not None:
        grader["disk_budget_mib"] = budget
    document = {"submissions": [submission_json(r) for r in ordered], "grader": grader}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def run_isolation(results: list[SubmissionResult]) -> dict[str, str]:
    """Per layer: "active" when every worker of the run had it, else the first reason why not."""
    merged: dict[str, str] = {}
    for result in results:
        for layer, state in sorted(result.isolation.items()):
            if layer != DISK_BUDGET_KEY and merged.get(layer, "active") == "active":
                merged[layer] = state
    return merged


def run_disk_budget(results: list[SubmissionResult]) -> int | None:
    """The disk budget of each submission in this run (MiB), as the sandbox reported it."""
    budgets = {int(r.isolation[DISK_BUDGET_KEY]) for r in results
               if r.isolation.get(DISK_BUDGET_KEY, "").isdigit()}
    return max(budgets) if budgets else None


def grades_csv(results: list[SubmissionResult]) -> str:
    """One row per submission: id, score, max_score, percent, then one column per exercise."""
    ordered = sorted(results, key=lambda r: r.id)
    exercise_ids = [ex.id for ex in ordered[0].exercises] if ordered else []
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["id", "score", "max_score", "percent", *exercise_ids])
    for result in ordered:
        percent = 100 * result.score / result.max_score if result.max_score else 0.0
        writer.writerow([result.id, result.score, result.max_score, f"{percent:.1f}",
                         *[points(ex.score) for ex in result.exercises]])
    return buffer.getvalue()


def write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
