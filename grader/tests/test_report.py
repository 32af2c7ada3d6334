"""HTML reports: what a student and an instructor read, rendered from real results."""

from __future__ import annotations

import re

from grader.formats import report
from grader.results import CheckResult, ExerciseResult, SubmissionResult


def sample_result(name: str = "alice", softmax_status: str = "failed") -> SubmissionResult:
    softmax = ExerciseResult(
        "tensors.softmax", 0.0 if softmax_status != "passed" else 3.0, 3.0, softmax_status,
        "The returned tensor has the wrong values.",
        [CheckResult("matches", "equals torch.softmax(x, dim)", softmax_status, 0.0, 3.0,
                     "The returned tensor has the wrong values.\n  expected: tensor([0.5, 0.5])"
                     "\n  got:      tensor([nan, nan])\nSmallest failing input found:\n"
                     "  x = tensor([1000., 1000.]) <script>alert(1)</script>")],
        "softmax along dim")
    dot = ExerciseResult("tensors.dot", 1.5, 1.5, "passed", "Passed.",
                         [CheckResult("value", "returns the inner product", "passed", 1.5, 1.5)],
                         "the inner product")
    return SubmissionResult(name, [softmax, dot])


def test_submission_report_shows_scores_checks_and_feedback() -> None:
    html = report.submission_html(sample_result())
    assert "1.5 / 4.5" in html
    assert "tensors.softmax" in html and "tensors.dot" in html
    assert "equals torch.softmax(x, dim)" in html
    assert "expected: tensor([0.5, 0.5])" in html
    assert "Smallest failing input found" in html
    assert '<span class="badge failed">failed</span>' in html


def test_reports_escape_student_text_and_are_self_contained() -> None:
    html = report.submission_html(sample_result())
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;" in html
    for page in (html, report.class_html([sample_result()], devices=("cpu",))):
        assert not re.search(r"<(link|script|img)\b", page)
        assert "http://" not in page and "https://" not in page
        assert "<style>" in page


def test_class_report_has_histogram_rows_and_pass_rates() -> None:
    results = [sample_result("alice"), sample_result("bob", "passed"),
               sample_result("carol", "timeout")]
    html = report.class_html(results, devices=("cpu",))
    assert html.count("<rect") == 10
    for name in ("alice", "bob", "carol"):
        assert f'href="{name}/report.html"' in html
    softmax_row = html[html.index('<td class="exid">tensors.softmax'):]
    assert "33%" in softmax_row.split("</tr>")[0]
    dot_row = html[html.index('<td class="exid">tensors.dot'):]
    assert "100%" in dot_row.split("</tr>")[0]


def test_histogram_puts_scores_in_the_right_bins() -> None:
    bins = report.histogram([0.0, 5.0, 55.0, 100.0, 100.0])["bins"]
    assert [b["count"] for b in bins] == [2, 0, 0, 0, 0, 1, 0, 0, 0, 2]
