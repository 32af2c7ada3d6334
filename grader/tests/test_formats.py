"""Platform formats parsed back and checked against their specs: JUnit XML, Gradescope."""

from __future__ import annotations

import json
import re
from pathlib import Path

import junitparser
import pytest
from click.testing import CliRunner

from grader.cli import main
from grader.formats import gradescope, junit
from grader.results import CheckResult, ExerciseResult, SubmissionResult

from .conftest import copy_solutions


def sample(name: str = "alice") -> SubmissionResult:
    def exercise(exercise_id: str, status: str, score: float) -> ExerciseResult:
        why = "" if status == "passed" else f"{status}: <why> & how"
        return ExerciseResult(exercise_id, score, 2.0, status, why or "Passed.",
                              [CheckResult("c", "d", status, score, 2.0, why)], "what it does")

    return SubmissionResult(name, [exercise("tensors.dot", "passed", 2.0),
                                   exercise("tensors.softmax", "failed", 0.5),
                                   exercise("tensors.swap", "error", 0.0),
                                   exercise("tensors.split", "missing", 0.0)], seconds=1.5)


def test_junit_xml_parses_with_a_junit_library(tmp_path: Path) -> None:
    path = tmp_path / "junit.xml"
    path.write_text(junit.junit_xml([sample("bob"), sample("alice")]))
    xml = junitparser.JUnitXml.fromfile(str(path))
    suites = list(xml)
    assert [suite.name for suite in suites] == ["alice", "bob"]
    suite = suites[0]
    assert (suite.tests, suite.failures, suite.errors) == (4, 2, 1)
    cases = {case.name: case for case in suite}
    assert set(cases) == {"tensors.dot", "tensors.softmax", "tensors.swap", "tensors.split"}
    assert cases["tensors.dot"].is_passed
    (failure,) = cases["tensors.softmax"].result
    assert isinstance(failure, junitparser.Failure) and failure.type == "failed"
    assert "<why> & how" in failure.text
    (error,) = cases["tensors.swap"].result
    assert isinstance(error, junitparser.Error)
    from xml.etree import ElementTree

    case = ElementTree.parse(path).find(".//testcase[@classname='alice.tensors.softmax']")
    properties = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert properties == {"score": "0.5", "max_score": "2", "status": "failed"}


def test_gradescope_results_have_every_required_field() -> None:
    document = json.loads(gradescope.gradescope_json(sample(), visibility="after_due_date"))
    assert document["score"] == 2.5
    assert isinstance(document["execution_time"], float)
    assert document["output"].startswith("1 of 4 exercises passed")
    assert len(document["tests"]) == 4
    for test in document["tests"]:
        assert set(test) >= {"name", "score", "max_score", "status", "output",
                             "output_format", "visibility"}
        assert test["status"] in {"passed", "failed"}
        assert test["visibility"] == "after_due_date"
    assert [t["status"] for t in document["tests"]] == ["passed", "failed", "failed", "failed"]
    outputs = [t["output"] for t in document["tests"]]
    assert outputs[0] == "✓ d (2 / 2)"
    assert outputs[1] == "[failed]\n✗ d (0.5 / 2)\n    failed: <why> & how"
    assert outputs[2] == "[error]\n✗ d (0 / 2)\n    error: <why> & how"
    with pytest.raises(ValueError):
        gradescope.gradescope_json(sample(), visibility="sometimes")


def test_gradescope_command_grades_and_writes_results(tmp_path: Path) -> None:
    submission = copy_solutions(tmp_path / "submission", parts=("networks",))
    results = tmp_path / "results" / "results.json"
    outcome = CliRunner().invoke(main, ["gradescope", "--submission", str(submission),
                                        "--results", str(results), "--examples", "3"])
    assert outcome.exit_code == 0, outcome.output
    document = json.loads(results.read_text())
    by_name = {t["name"].split(":")[0]: t for t in document["tests"]}
    assert by_name["networks.Net"]["status"] == "passed"
    assert by_name["tensors.dot"]["status"] == "failed"  # no tensors.py: missing
    assert document["score"] == sum(t["score"] for t in document["tests"])


def test_gradescope_output_names_the_status_once_then_each_check(tmp_path: Path) -> None:
    submission = copy_solutions(tmp_path / "submission", parts=("tensors",))
    with open(submission / "tensors.py", "a", encoding="utf-8") as handle:
        handle.write("\n\ndef softmax(x, dim):\n    e = torch.exp(x)\n"
                     "    return e / e.sum(dim=dim, keepdim=True)\n")
    results = tmp_path / "results.json"
    outcome = CliRunner().invoke(main, ["gradescope", "--submission", str(submission),
                                        "--results", str(results), "--examples", "5"])
    assert outcome.exit_code == 0, outcome.output
    by_id = {t["name"].split(":")[0]: t for t in json.loads(results.read_text())["tests"]}
    softmax = by_id["tensors.softmax"]["output"].splitlines()
    assert softmax[0] == "[failed]"
    assert softmax[1].startswith("✗ equals torch.softmax(x, dim)")
    assert softmax[2] == "    The returned tensor has the wrong values."
    assert sum("[failed]" in line for line in softmax) == 1
    missing = by_id["autograd.q_gradients"]["output"].splitlines()
    assert missing[0] == "[missing] there is no autograd.py in the submission"
    assert len(missing) > 2 and all(line.startswith("✗ ") for line in missing[1:])
    assert by_id["tensors.dot"]["output"].startswith("✓ ")


def test_check_writes_junit_on_request(tmp_path: Path) -> None:
    submission = copy_solutions(tmp_path / "work", parts=("autograd",))
    path = tmp_path / "junit.xml"
    outcome = CliRunner().invoke(main, ["check", str(submission), "--only", "autograd",
                                        "--junit", str(path), "--report",
                                        str(tmp_path / "r.html")])
    assert outcome.exit_code == 0, outcome.output
    suite = next(iter(junitparser.JUnitXml.fromfile(str(path))))
    assert suite.tests == 6 and suite.failures == 0 and suite.errors == 0


def test_github_mode_prints_points_annotations_and_a_summary(tmp_path: Path,
                                                              monkeypatch) -> None:
    submission = copy_solutions(tmp_path / "work", parts=("tensors",))
    source = (submission / "tensors.py").read_text()
    (submission / "tensors.py").write_text(source.replace("return torch.dot(u, v)",
                                                          "return torch.dot(u, v).item()"))
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    arguments = ["check", str(submission), "--only", "tensors.dot", "--only", "tensors.swap",
                 "--github", "--report", str(tmp_path / "r.html")]
    outcome = CliRunner().invoke(main, [*arguments, "--min-score", "1"])
    assert outcome.exit_code == 0, outcome.output  # 1.5 (swap) >= 1
    lines = outcome.output.splitlines()
    assert "Points 1.5/3" in lines
    (annotation,) = [line for line in lines if line.startswith("::error ")]
    assert annotation.startswith("::error file=tensors.py,line=")
    assert "title=tensors.dot%3A error" in annotation
    assert "%0A" in annotation and "\n" not in annotation
    text = summary.read_text()
    assert "1.5 / 3 points" in text and "| `tensors.dot` | ❌ error | 0 / 1.5 |" in text
    failing = CliRunner().invoke(main, [*arguments, "--min-score", "2"])
    assert failing.exit_code == 1


def test_github_annotations_point_at_the_students_lines(tmp_path: Path) -> None:
    submission = copy_solutions(tmp_path / "work", parts=("tensors",))
    solution_lines = (submission / "tensors.py").read_text().count("\n")
    with open(submission / "tensors.py", "a", encoding="utf-8") as handle:
        handle.write("\n\ndef softmax(x, dim):\n    return x\n"  # a wrong value
                     "\n\ndef dot(u, v):\n    raise ValueError('no')\n")
    softmax_line, raise_line = solution_lines + 3, solution_lines + 8
    outcome = CliRunner().invoke(main, ["check", str(submission), "--only", "tensors.softmax",
                                        "--only", "tensors.dot", "--github", "--examples", "5",
                                        "--report", str(tmp_path / "r.html")])
    assert outcome.exit_code == 1, outcome.output
    places = dict(re.findall(r"^::error file=tensors\.py,line=(\d+),title=(tensors\.\w+)",
                             outcome.output, re.MULTILINE))
    assert places == {str(softmax_line): "tensors.softmax", str(raise_line): "tensors.dot"}


def test_gradescope_zip_holds_the_scripts_and_an_installable_grader(tmp_path: Path) -> None:
    import os
    import subprocess
    import sys
    import zipfile

    path = tmp_path / "autograder.zip"
    outcome = CliRunner().invoke(main, ["gradescope-zip", str(path), "--visibility", "hidden"])
    assert outcome.exit_code == 0, outcome.output
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        assert {"setup.sh", "run_autograder", "pyproject.toml", "grader/cli.py", "pack.toml",
                "tests/test_tensors.py", "tests/conftest.py", "grader/templates/report.html",
                "solutions/tensors.py", "exercises/tensors.py"} <= names
        assert not any(name.startswith("grader/tests/") for name in names)
        assert archive.getinfo("run_autograder").external_attr >> 16 & 0o111
        assert "--visibility hidden" in archive.read("run_autograder").decode()
        assert "torch==2.13.0" in archive.read("setup.sh").decode()
        archive.extractall(tmp_path / "source")
    probe = subprocess.run(
        [sys.executable, "-c", "from grader import pack; from grader.formats import report; "
         "print(pack.pack_folder('solutions')); print(report.template_folder()); "
         "print(len(pack.exercises()))"],
        cwd=tmp_path / "source", capture_output=True, text=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path / "source")})
    assert probe.returncode == 0, probe.stderr
    solutions, templates, count = probe.stdout.split()
    assert solutions == str(tmp_path / "source" / "solutions")
    assert templates == str(tmp_path / "source" / "grader" / "templates")
    assert count == "38"


def test_gradebook_csvs_import_into_canvas_and_moodle() -> None:
    import csv

    from grader.formats import gradebook

    results = [sample("bob"), sample("alice")]
    canvas = list(csv.reader(gradebook.canvas_csv(results, assignment="HW1").splitlines()))
    assert canvas[0] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section", "HW1"]
    assert canvas[1][0] == "Points Possible" and canvas[1][5] == "8"
    assert [row[3] for row in canvas[2:]] == ["alice", "bob"]
    assert [row[5] for row in canvas[2:]] == ["2.5", "2.5"]
    moodle = list(csv.DictReader(gradebook.moodle_csv(results, assignment="HW1").splitlines()))
    assert moodle == [{"username": "alice", "HW1": "2.5"}, {"username": "bob", "HW1": "2.5"}]
