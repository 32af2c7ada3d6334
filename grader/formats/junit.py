"""JUnit XML: one testsuite per submission, one testcase per exercise, points as properties.

Readable by the usual JUnit consumers (GitHub test reporters, GitLab, Jenkins): an exception or
wrong return type is an `<error>`; any other status but passed (failed, timeout, missing,
forbidden) is a `<failure>`, its type the status: a missing exercise is lost, not skipped.
"""

from __future__ import annotations

from xml.etree import ElementTree

from grader.failures import ERROR, PASSED
from grader.results import SubmissionResult, points


def junit_xml(results: list[SubmissionResult]) -> str:
    """The XML text of a JUnit report for these submissions (sorted by id)."""
    root = ElementTree.Element("testsuites", name="torch-grader")
    total_tests = total_failures = total_errors = 0
    for result in sorted(results, key=lambda r: r.id):
        failures = sum(ex.status not in (PASSED, ERROR) for ex in result.exercises)
        errors = sum(ex.status == ERROR for ex in result.exercises)
        suite = ElementTree.SubElement(
            root, "testsuite", name=result.id, tests=str(len(result.exercises)),
            failures=str(failures), errors=str(errors), skipped="0",
            time=f"{result.seconds:.3f}")
        properties = ElementTree.SubElement(suite, "properties")
        for name, value in (("score", result.score), ("max_score", result.max_score)):
            ElementTree.SubElement(properties, "property", name=name, value=f"{value:g}")
        for ex in result.exercises:
            case = ElementTree.SubElement(suite, "testcase", classname=f"{result.id}.{ex.id}",
                                          name=ex.id, time=f"{ex.seconds:.3f}")
            case_properties = ElementTree.SubElement(case, "properties")
            for name, value in (("score", f"{points(ex.score):g}"),
                                ("max_score", f"{points(ex.max_score):g}"), ("status", ex.status)):
                ElementTree.SubElement(case_properties, "property", name=name, value=value)
            if ex.status == PASSED:
                continue
            tag = "error" if ex.status == ERROR else "failure"
            first_line = ex.feedback.splitlines()[0] if ex.feedback else ex.status
            element = ElementTree.SubElement(case, tag, type=ex.status,
                                             message=first_line[:300])
            element.text = ex.feedback
        total_tests += len(result.exercises)
        total_failures += failures
        total_errors += errors
    root.set("tests", str(total_tests))
    root.set("failures", str(total_failures))
    root.set("errors", str(total_errors))
    ElementTree.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + \
        ElementTree.tostring(root, encoding="unicode") + "\n"
