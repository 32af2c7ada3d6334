"""GitHub annotations: which file and line each `::error` points at, read back from the
workflow command it prints."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest

from grader.formats import github
from grader.results import ExerciseResult, SubmissionResult

STUDENT_FILE = '''import torch


@torch.no_grad()
def softmax(x, dim):
    return x


class Net(torch.nn.Module):
    def dot(self):  # a method, not the module's `dot`
        pass


if True:
    try:
        from math import prod as dot
    except ImportError:
        pass

def softmax(x, dim):  # the definition Python keeps
    return x.exp()
'''


@pytest.mark.parametrize(("name", "line"), [("softmax", 20), ("Net", 9), ("dot", 16),
                                            ("swap", None), ("torch", 1)])
def test_definition_line_finds_the_definition_python_keeps(name: str, line: int | None) -> None:
    assert github.definition_line(STUDENT_FILE, name) == line


def test_definition_line_is_none_when_the_file_does_not_parse() -> None:
    assert github.definition_line("def softmax(x, dim:\n", "softmax") is None


def failing(exercise_id: str, feedback: str) -> SubmissionResult:
    return SubmissionResult("work", [ExerciseResult(exercise_id, 0.0, 1.0, "failed", feedback)])


def place(result: SubmissionResult, submission: Path | None) -> tuple[str, int]:
    (annotation,) = github.annotations(result, submission=submission)
    found = re.match(r"::error file=(?P<file>[^,]+),line=(?P<line>\d+),title=", annotation)
    assert found, annotation
    return found["file"], int(found["line"])


def test_a_wrong_value_points_at_the_definition(tmp_path: Path) -> None:
    (tmp_path / "tensors.py").write_text(STUDENT_FILE)
    wrong = failing("tensors.softmax", "The returned tensor has the wrong values.")
    assert place(wrong, tmp_path) == ("tensors.py", 20)
    assert place(failing("tensors.Net", "wrong"), tmp_path) == ("tensors.py", 9)


def test_a_raise_points_at_the_line_that_raised(tmp_path: Path) -> None:
    (tmp_path / "tensors.py").write_text(STUDENT_FILE)
    raised = failing("tensors.softmax", "Your code raised an error: ValueError: no\n"
                                        "  at tensors.py, line 21: return x.exp()")
    assert place(raised, tmp_path) == ("tensors.py", 21)


def test_line_1_when_the_name_or_the_file_is_missing(tmp_path: Path) -> None:
    (tmp_path / "tensors.py").write_text(STUDENT_FILE)
    assert place(failing("tensors.swap", "tensors.py has no `swap`"), tmp_path) == \
        ("tensors.py", 1)
    assert place(failing("networks.Net", "there is no networks.py"), tmp_path) == \
        ("networks.py", 1)
    (tmp_path / "autograd.py").write_text("def vjp(:\n")
    assert place(failing("autograd.vjp", "does not parse"), tmp_path) == ("autograd.py", 1)


def notebook(path: Path, source: str) -> None:
    path.write_text(json.dumps({"cells": [{"cell_type": "code", "source": source}]}))


def test_code_from_a_notebook_points_at_the_notebook(tmp_path: Path) -> None:
    part_notebook, whole_notebook = tmp_path / "part", tmp_path / "whole"
    part_notebook.mkdir()
    whole_notebook.mkdir()
    notebook(part_notebook / "tensors.ipynb", STUDENT_FILE)
    notebook(whole_notebook / "homework.ipynb", STUDENT_FILE)
    # the grader graded a tensors.py written from the notebook: that file is not the student's
    raised = failing("tensors.softmax", "Your code raised an error\n  at tensors.py, line 21: x")
    assert place(raised, part_notebook) == ("tensors.ipynb", 1)
    assert place(failing("tensors.softmax", "wrong"), part_notebook) == ("tensors.ipynb", 1)
    from_whole = failing("tensors.softmax", "raised\n  at _notebook.py, line 21: x")
    assert place(from_whole, whole_notebook) == ("homework.ipynb", 1)


def test_a_zip_keeps_the_line_that_raised(tmp_path: Path) -> None:
    archive = tmp_path / "work.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("tensors.py", STUDENT_FILE)
    raised = failing("tensors.softmax", "raised\n  at tensors.py, line 21: x")
    assert place(raised, archive) == ("tensors.py", 21)
    assert place(failing("tensors.softmax", "wrong"), archive) == ("tensors.py", 1)
