"""Grading behaviour end to end: full marks, zero marks, and failures that cost only themselves."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from grader import pack, runner
from grader.results import results_json
from grader.session import Limits

from .conftest import copy_solutions, statuses

FAST_LIMITS = Limits(import_seconds=6, call_seconds=3, exercise_seconds=30)


def test_solutions_get_full_marks(solutions_result) -> None:
    assert statuses(solutions_result) == dict.fromkeys(pack.exercise_ids(), "passed")
    assert solutions_result.score == solutions_result.max_score > 0


def test_stubs_get_zero_cleanly(exercises_result) -> None:
    assert exercises_result.score == 0
    assert set(statuses(exercises_result).values()) == {"error"}
    for ex in exercises_result.exercises:
        assert "Not implemented yet" in ex.feedback, ex.id
        assert "Traceback" not in ex.feedback


def write(folder: Path, part: str, source: str) -> None:
    (folder / f"{part}.py").write_text(textwrap.dedent(source), encoding="utf-8")


def append(folder: Path, part: str, source: str) -> None:
    with open(folder / f"{part}.py", "a", encoding="utf-8") as handle:
        handle.write("\n\n" + textwrap.dedent(source))


def grade(folder: Path, *parts: str) -> dict:
    options = runner.Options(only=parts, limits=FAST_LIMITS)
    return runner.grade_submission(folder, options)


def test_a_syntax_error_costs_only_its_file(tmp_path: Path) -> None:
    folder = copy_solutions(tmp_path / "s", parts=("tensors", "autograd"))
    write(folder, "tensors",
          "import torch\n\ndef from_nested(data)\n    return torch.tensor(data)\n")
    result = grade(folder, "tensors", "autograd", "networks")
    by_id = {ex.id: ex for ex in result.exercises}
    assert {by_id[i].status for i in by_id if i.startswith("tensors.")} == {"error"}
    assert "SyntaxError" in by_id["tensors.softmax"].feedback
    assert "tensors.py, line 3" in by_id["tensors.softmax"].feedback
    assert {by_id[i].status for i in by_id if i.startswith("autograd.")} == {"passed"}
    assert {by_id[i].status for i in by_id if i.startswith("networks.")} == {"missing"}
    assert "no networks.py" in by_id["networks.Net"].feedback


def test_missing_name_is_missing_and_the_rest_is_graded(tmp_path: Path) -> None:
    folder = copy_solutions(tmp_path / "s", parts=("tensors",))
    source = (folder / "tensors.py").read_text()
    (folder / "tensors.py").write_text(source.replace("def swap(", "def swap_axes("))
    result = statuses(grade(folder, "tensors"))
    assert result.pop("tensors.swap") == "missing"
    assert set(result.values()) == {"passed"}


def test_endless_loop_times_out_and_the_rest_is_graded(tmp_path: Path) -> None:
    folder = copy_solutions(tmp_path / "s", parts=("tensors",))
    append(folder, "tensors", """
        def softmax(x, dim):
            while True:
                pass
    """)
    result = grade(folder, "tensors")
    by_id = {ex.id: ex for ex in result.exercises}
    assert by_id["tensors.softmax"].status == "timeout"
    assert "did not finish within 3 s" in by_id["tensors.softmax"].feedback
    others = {ex.status for ex in result.exercises if ex.id != "tensors.softmax"}
    assert others == {"passed"}


def test_a_hanging_import_times_out_that_file_only(tmp_path: Path) -> None:
    folder = copy_solutions(tmp_path / "s", parts=("tensors", "autograd"))
    append(folder, "autograd", "while True:\n    pass\n")
    result = statuses(grade(folder, "tensors", "autograd"))
    assert {v for k, v in result.items() if k.startswith("autograd.")} == {"timeout"}
    assert {v for k, v in result.items() if k.startswith("tensors.")} == {"passed"}


def test_an_import_reply_forged_on_the_pipe_costs_that_file_only(tmp_path: Path) -> None:
    """Top-level code that writes a reply of its own onto the worker's pipe, one the worker
    never writes (no names): that file's exercises are errors saying so; nothing raises."""
    folder = copy_solutions(tmp_path / "s", parts=("tensors", "autograd"))
    append(folder, "autograd", """
        import os as _os, pickle as _pickle, stat as _stat, struct as _struct

        _payload = _pickle.dumps({"status": "ok", "kept": 0})
        for _fd in range(3, 64):
            try:
                if _stat.S_ISFIFO(_os.fstat(_fd).st_mode):
                    _os.write(_fd, _struct.pack("!Q", len(_payload)) + _payload)
            except OSError:
                pass
    """)
    result = grade(folder, "tensors", "autograd")
    by_id = {ex.id: ex for ex in result.exercises}
    assert {v for k, v in statuses(result).items() if k.startswith("autograd.")} == {"error"}
    assert "sent the grader an answer it cannot read" in by_id["autograd.q_gradients"].feedback
    assert {v for k, v in statuses(result).items() if k.startswith("tensors.")} == {"passed"}


def test_a_reply_cut_short_on_the_pipe_times_out_its_exercise_only(tmp_path: Path) -> None:
    """Code that writes a header announcing 1000 bytes onto the worker's pipe and then never
    writes them: the grader stops waiting at the call's deadline, as for an endless loop."""
    folder = copy_solutions(tmp_path / "s", parts=("tensors",))
    append(folder, "tensors", """
        import os
        import stat
        import struct
        import time

        def dot(u, v):
            for fd in range(3, 64):
                try:
                    if stat.S_ISFIFO(os.fstat(fd).st_mode):
                        os.write(fd, struct.pack("!Q", 1000))
                except OSError:
                    pass
            time.sleep(600)
    """)
    result = grade(folder, "tensors")
    expected = dict.fromkeys((k for k in statuses(result) if k.startswith("tensors.")), "passed")
    assert statuses(result) == expected | {"tensors.dot": "timeout"}
    by_id = {ex.id: ex for ex in result.exercises}
    assert "did not finish within 3 s" in by_id["tensors.dot"].feedback


def test_exiting_the_interpreter_is_an_error_not_a_crash(tmp_path: Path) -> None:
    folder = copy_solutions(tmp_path / "s", parts=("tensors",))
    append(folder, "tensors", """
        import os
        import sys

        def dot(u, v):
            sys.exit(3)

        def count_elements(x):
            os._exit(0)
    """)
    result = grade(folder, "tensors")
    by_id = {ex.id: ex for ex in result.exercises}
    assert by_id["tensors.dot"].status == "error"
    assert "sys.exit" in by_id["tensors.dot"].feedback
    assert by_id["tensors.count_elements"].status == "error"
    assert "ended early" in by_id["tensors.count_elements"].feedback
    others = {ex.status for ex in result.exercises
              if ex.id not in ("tensors.dot", "tensors.count_elements")}
    assert others == {"passed"}


def test_patching_torch_comparisons_changes_no_verdict(tmp_path: Path) -> None:
    folder = copy_solutions(tmp_path / "s", parts=("tensors",))
    append(folder, "tensors", """
        import torch
        import torch.testing

        torch.allclose = lambda *args, **kwargs: True
        torch.equal = lambda *args, **kwargs: True
        torch.testing.assert_close = lambda *args, **kwargs: None

        def softmax(x, dim):
            return x.exp() / x.exp().sum(dim, keepdim=True)

        def dot(u, v):
            return (u * v).sum() + 1
    """)
    result = statuses(grade(folder, "tensors"))
    assert result.pop("tensors.softmax") == "failed"
    assert result.pop("tensors.dot") == "failed"
    assert set(result.values()) == {"passed"}


def test_output_floods_and_warnings_cost_nothing(tmp_path: Path) -> None:
    folder = copy_solutions(tmp_path / "s", parts=("tensors",))
    append(folder, "tensors", """
        import sys
        import warnings

        import torch

        def dot(u, v):
            print("x" * 100_000)
            print("noise", file=sys.stderr)
            warnings.warn("NNPACK is not supported on this machine")
            return torch.dot(u, v)
    """)
    assert statuses(grade(folder, "tensors"))["tensors.dot"] == "passed"


def test_wrong_return_type_is_an_error_with_a_clear_message(tmp_path: Path) -> None:
    folder = copy_solutions(tmp_path / "s", parts=("tensors",))
    append(folder, "tensors", """
        def select_rows(x, idx):
            return x[idx].tolist()
    """)
    by_id = {ex.id: ex for ex in grade(folder, "tensors").exercises}
    assert by_id["tensors.select_rows"].status == "error"
    assert "returned a list" in by_id["tensors.select_rows"].feedback
    assert "a torch.Tensor is expected" in by_id["tensors.select_rows"].feedback


def test_grades_are_deterministic(tmp_path: Path) -> None:
    folder = copy_solutions(tmp_path / "same", parts=("tensors",))
    append(folder, "tensors", """
        def softmax(x, dim):
            e = (x - x.max()).exp()
            return e / e.sum(dim, keepdim=True)
    """)
    first = grade(folder, "tensors")
    second = grade(folder, "tensors")
    assert results_json([first], devices=("cpu",)) == results_json([second], devices=("cpu",))
    feedback = {ex.id: ex.feedback for ex in first.exercises}["tensors.softmax"]
    assert "Smallest failing input found" in feedback
    assert not (folder / ".hypothesis").exists()
    assert not list(folder.glob("__pycache__"))


def test_results_json_follows_the_contract(solutions_result) -> None:
    document = json.loads(results_json([solutions_result], devices=("cpu",)))
    (submission,) = document["submissions"]
    assert list(submission)[:4] == ["id", "score", "max_score", "exercises"]
    assert [ex["id"] for ex in submission["exercises"]] == pack.exercise_ids()
    for ex in submission["exercises"]:
        assert list(ex)[:5] == ["id", "score", "max_score", "status", "feedback"]
        assert ex["status"] in {"passed", "failed", "error", "timeout", "missing", "forbidden"}
        assert isinstance(ex["score"], float) and isinstance(ex["max_score"], float)
    assert submission["score"] == sum(ex["score"] for ex in submission["exercises"])


@pytest.mark.parametrize("bug", ["softmax__calls_torch_softmax"])
def test_forbidden_calls_are_forbidden(bug_results, bug: str) -> None:
    exercise_id, result = bug_results[f"tensors__{bug}"]
    by_id = {ex.id: ex for ex in result.exercises}
    assert by_id[exercise_id].status == "forbidden"
    assert by_id[exercise_id].score == 0
    assert "does not allow" in by_id[exercise_id].feedback


def test_generated_examples_do_not_depend_on_loaded_modules(tmp_path: Path) -> None:
    """Hypothesis would mix literals from every loaded non-site-packages module into its
    draws; the grader turns that off, so an editable install, `--only` and a student release
    draw the same examples as everything else."""
    import subprocess
    import sys

    (tmp_path / "many_literals.py").write_text(
        "VALUES = [" + ", ".join(str(424_242 + 7 * i) for i in range(300)) + "]\n")
    script = textwrap.dedent("""
        import sys
        from hypothesis import given, strategies as st
        from grader import profile
        if sys.argv[1] == "load":
            import many_literals
        drawn = []
        @profile.grading_settings(200)
        @given(st.integers(0, 10**6))
        def collect(value):
            drawn.append(value)
        collect()
        print(drawn)
    """)
    runs = [subprocess.run([sys.executable, "-c", script, mode], cwd=tmp_path, text=True,
                           capture_output=True, check=True).stdout for mode in ("load", "skip")]
    assert runs[0] == runs[1]
    assert "424242" not in runs[0]


@pytest.mark.parametrize("dtype", ["float32", "float64", "float16", "int64", "bool"])
def test_values_close_judges_like_assert_close(dtype: str) -> None:
    """The grader's own comparison agrees with torch.testing.assert_close (NaN equals NaN,
    infinities must match, per-dtype default tolerances, explicit ones honoured)."""
    import torch
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from grader.context import values_close

    torch_dtype = getattr(torch, dtype)
    specials = [0.0, 1.0, -1.0, 1e-6, 1e6, float("nan"), float("inf"), -float("inf")]
    values = st.lists(st.sampled_from(specials) | st.floats(-1e3, 1e3), min_size=1,
                      max_size=6)

    def as_tensor(raw: list) -> torch.Tensor:
        if torch_dtype.is_floating_point:
            return torch.tensor(raw, dtype=torch.float64).to(torch_dtype)
        return torch.tensor([int(v) % 7 if v == v and abs(v) != float("inf") else 3
                             for v in raw]).to(torch_dtype)

    @settings(max_examples=150, derandomize=True, database=None, deadline=None)
    @given(values, st.lists(st.sampled_from([0.0, 1e-7, 1e-5, 1e-3, 0.5]), min_size=6,
                            max_size=6), st.sampled_from([None, (1e-3, 1e-5), (0.0, 0.0)]))
    def agree(raw: list, noise: list, tolerance: tuple | None) -> None:
        expected = as_tensor(raw)
        got = as_tensor([v + n * (1 + abs(v)) if torch_dtype.is_floating_point else v
                         for v, n in zip(raw, noise, strict=False)])
        rtol, atol = tolerance if tolerance else (None, None)
        try:
            torch.testing.assert_close(got, expected, rtol=rtol, atol=atol, equal_nan=True)
            reference = True
        except AssertionError:
            reference = False
        assert values_close(got, expected, rtol=rtol, atol=atol) == reference

    agree()


def test_a_one_job_batch_keeps_every_core() -> None:
    """One job is not pinned: from its second submission on, the worker answers a check's
    requests ahead (grader.replay) on one core while the grader compares on another."""
    import os

    before = os.sched_getaffinity(0)
    folders = [pack.pack_folder("solutions")] * 3
    during = [os.sched_getaffinity(0) for _ in runner.grade_batch(
        folders, runner.Options(only=("tensors.dot",)), jobs=1)]
    assert during == [before] * 3
    assert os.sched_getaffinity(0) == before
