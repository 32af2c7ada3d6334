"""The `grader` command end to end (click's CliRunner): outputs, exit codes, one-line errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import pack
from grader.cli import main

from .conftest import copy_solutions


@pytest.fixture
def cli() -> CliRunner:
    return CliRunner()


def test_list_shows_every_exercise_with_points(cli: CliRunner) -> None:
    result = cli.invoke(main, ["list"])
    assert result.exit_code == 0
    for exercise_id in pack.exercise_ids():
        assert exercise_id in result.output
    assert "38 exercises" in result.output


@pytest.mark.parametrize("command", [[], ["check"], ["grade"], ["list"], ["doctor"],
                                     ["gradescope"], ["gradescope-zip"], ["release"]])
def test_every_command_explains_itself_with_an_example(cli: CliRunner, command: list) -> None:
    result = cli.invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert "grader " in result.output
    if command:
        assert "Example" in result.output


@pytest.mark.parametrize("arguments, message", [
    (["check", "no/such/folder"], "Error: submission folder 'no/such/folder' does not exist"),
    (["grade", "no/such/folder"], "Error: submissions folder 'no/such/folder' does not exist"),
    (["check", "solutions", "--only", "tensors.nope"], "Error: --only tensors.nope: no such"),
    (["check", "--device", "tpu"], "Error: Invalid value for '--device'"),
])
def test_wrong_arguments_get_a_one_line_error(cli: CliRunner, arguments: list,
                                              message: str) -> None:
    result = cli.invoke(main, arguments)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_check_passes_solutions_and_writes_a_report(cli: CliRunner, tmp_path: Path) -> None:
    report = tmp_path / "report.html"
    result = cli.invoke(main, ["check", str(pack.pack_folder("solutions")), "--only", "autograd",
                               "--report", str(report)])
    assert result.exit_code == 0, result.output
    assert "Total: 14.5 / 14.5" in result.output
    assert "autograd.vjp" in result.output
    assert "autograd.vjp" in report.read_text()


def test_check_fails_with_status_1_and_explains(cli: CliRunner, tmp_path: Path) -> None:
    folder = copy_solutions(tmp_path / "work", parts=("tensors",))
    source = (folder / "tensors.py").read_text()
    (folder / "tensors.py").write_text(source.replace("return torch.dot(u, v)",
                                                      "return (u * v).sum(0, keepdim=True)"))
    result = cli.invoke(main, ["check", str(folder), "--only", "tensors.dot",
                               "--report", str(tmp_path / "r.html")])
    assert result.exit_code == 1
    assert "tensors.dot: failed" in result.output
    assert "has shape (1,), but it should have shape ()" in result.output
    assert "Smallest failing input found" in result.output


def test_grade_writes_every_output(cli: CliRunner, tmp_path: Path) -> None:
    submissions = tmp_path / "class"
    copy_solutions(submissions / "alice", parts=("tensors",))
    bob = copy_solutions(submissions / "bob", parts=("tensors",))
    source = (bob / "tensors.py").read_text()
    (bob / "tensors.py").write_text(source.replace("return x.numel()", "return len(x)"))
    (submissions / "notes.txt").write_text("not a submission")
    out = tmp_path / "out"
    result = cli.invoke(main, ["grade", str(submissions), "--out", str(out), "-j", "1",
                               "--only", "tensors"])
    assert result.exit_code == 0, result.output
    document = json.loads((out / "results.json").read_text())
    assert [s["id"] for s in document["submissions"]] == ["alice", "bob"]
    alice, bob_result = document["submissions"]
    assert alice["score"] == alice["max_score"]
    bob_status = {ex["id"]: ex["status"] for ex in bob_result["exercises"]}
    assert bob_status["tensors.count_elements"] == "error"  # len() of a 0-d tensor raises
    assert list(bob_status.values()).count("passed") == len(bob_status) - 1
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert [row["id"] for row in rows] == ["alice", "bob"]
    assert float(rows[1]["tensors.count_elements"]) == 0.0
    assert (out / "alice" / "report.html").is_file()
    assert (out / "canvas.csv").read_text().startswith("Student,ID,SIS User ID")
    assert "username" in (out / "moodle.csv").read_text()
    index = (out / "index.html").read_text()
    assert 'href="bob/report.html"' in index


def test_grade_without_arguments_grades_the_bundled_examples(cli: CliRunner,
                                                             tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = cli.invoke(main, ["grade", "--out", str(out), "--only", "tensors.dot"])
    assert result.exit_code == 0, result.output
    document = json.loads((out / "results.json").read_text())
    examples = sorted(p.name for p in pack.pack_folder("examples").iterdir() if p.is_dir())
    assert [s["id"] for s in document["submissions"]] == examples


def test_results_do_not_depend_on_ci_or_a_hypothesis_database(cli: CliRunner,
                                                              tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    submissions = tmp_path / "class"
    bob = copy_solutions(submissions / "bob", parts=("tensors",))
    source = (bob / "tensors.py").read_text()
    (bob / "tensors.py").write_text(source.replace("x.amax(dim, keepdim=True)", "x.max()"))
    here = cli.invoke(main, ["grade", str(submissions), "--out", str(tmp_path / "here"),
                             "--only", "tensors.softmax", "-j", "1"])
    assert here.exit_code == 0, here.output
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / ".hypothesis" / "examples").mkdir(parents=True)
    env = {**os.environ, "CI": "true", "HYPOTHESIS_PROFILE": "ci"}
    completed = subprocess.run(
        [sys.executable, "-m", "grader", "grade", str(submissions), "--out", "out", "--only",
         "tensors.softmax"], cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300)
    assert completed.returncode == 0, completed.stderr
    expected = (tmp_path / "here" / "results.json").read_bytes()
    assert (elsewhere / "out" / "results.json").read_bytes() == expected
    assert b'"status": "failed"' in expected


def test_doctor_lists_every_isolation_layer(cli: CliRunner) -> None:
    from grader.worker import isolation

    result = cli.invoke(main, ["doctor"])
    assert result.exit_code == 0, result.output
    for layer in isolation.LAYERS:
        assert layer in result.output
        assert isolation.PROTECTS[layer] in result.output
    assert "limits    active" in result.output


def test_the_command_leaves_nothing_behind(tmp_path: Path) -> None:
    """The CLI exits without tearing torch down (os._exit: no atexit), so it removes what the
    sandbox set up itself: the zygote, its cgroup folder, the runtime copy of the worker. (Each
    run used to leave a cgroup folder and a copy behind.)"""
    import os
    import subprocess
    import sys

    private_tmp = tmp_path / "tmp"  # the run's own temporary folder: nobody else writes there
    private_tmp.mkdir()
    process = subprocess.Popen(
        [sys.executable, "-m", "grader", "check", str(copy_solutions(tmp_path / "s")), "--only",
         "tensors.dot", "--only", "autograd.vjp", "--report", str(tmp_path / "r.html")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        env={**os.environ, "TMPDIR": str(private_tmp)})
    output, _ = process.communicate(timeout=300)
    assert process.returncode == 0, output
    assert not list(private_tmp.glob("torch-grader-*")), list(private_tmp.iterdir())
    for root in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup"):
        assert not os.path.exists(os.path.join(root, f"torch-grader-{process.pid}"))
