"""Gradescope's autograder format: results.json as its autograder specification describes it.

Top level `score`, `execution_time`, `output`, `output_format`, `tests`; one test per exercise
with `name`, `score`, `max_score`, `status` ("passed"/"failed"), `output`, `output_format`,
`visibility`.
"""

from __future__ import annotations

import json

from grader.failures import PASSED
from grader.results import SubmissionResult, points

DEFAULT_SUBMISSION = "/autograder/submission"
DEFAULT_RESULTS = "/autograder/results/results.json"
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")


def gradescope_json(result: SubmissionResult, *, visibility: str = "visible") -> str:
    """The results.json text Gradescope reads after `run_autograder`."""
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility must be one of {', '.join(VISIBILITIES)}")
    tests = []
    for ex in result.exercises:
        tests.append({
            "name": f"{ex.id}: {ex.summary}" if ex.summary else ex.id,
            "score": points(ex.score),
            "max_score": points(ex.max_score),
            "status": "passed" if ex.status == PASSED else "failed",
            "output": ex.feedback if ex.status == PASSED else f"[{ex.status}] {ex.feedback}",
            "output_format": "text",
            "visibility": visibility,
        })
    document = {
        "score": result.score,
        "execution_time": round(result.seconds, 2),
        "output": f"{result.passed_count} of {len(result.exercises)} exercises passed: "
                  f"{result.score:g} / {result.max_score:g} points.",
        "output_format": "text",
        "visibility": visibility,
        "tests": tests,
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"
