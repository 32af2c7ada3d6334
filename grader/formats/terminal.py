"""Plain-text renderings for the terminal: the per-exercise table and the failure details."""

from __future__ import annotations

import click

from grader.failures import PASSED
from grader.results import ExerciseResult, SubmissionResult

STATUS_COLORS = {"passed": "green", "failed": "red", "error": "magenta", "timeout": "yellow",
                 "missing": "bright_black", "forbidden": "red"}
MARKS = {"passed": "✓", "failed": "✗", "error": "!", "timeout": "⏱", "missing": "?",
         "forbidden": "⊘"}


def exercise_line(ex: ExerciseResult, width: int = 32) -> str:
    status = click.style(f"{MARKS.get(ex.status, '')} {ex.status:<9}",
                         fg=STATUS_COLORS.get(ex.status))
    return f"  {ex.id:<{width}} {status} {ex.score:>5g} / {ex.max_score:<4g}"


def table(result: SubmissionResult) -> str:
    width = max((len(ex.id) for ex in result.exercises), default=20)
    lines = [exercise_line(ex, width) for ex in result.exercises]
    counts = ", ".join(f"{count} {status}" for status, count in result.status_counts().items()
                       if count)
    lines.append("")
    lines.append(click.style(f"  Total: {result.score:g} / {result.max_score:g}", bold=True)
                 + f"   ({counts})")
    return "\n".join(lines)


def failure_details(result: SubmissionResult) -> str:
    """What went wrong, exercise by exercise (the same words as the HTML report)."""
    blocks = []
    for ex in result.exercises:
        if ex.status == PASSED:
            continue
        header = click.style(f"{ex.id}: {ex.status}", fg=STATUS_COLORS.get(ex.status), bold=True)
        body = "\n".join("    " + line for line in ex.feedback.splitlines())
        blocks.append(f"{header}\n{body}")
    return "\n\n".join(blocks)
