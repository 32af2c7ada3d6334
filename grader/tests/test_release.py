"""`grader release`: a student release carries no solutions and no hidden checks, and its public
checks, replayed from recorded answers, judge like the instructor's grader."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from grader import pack, recorded, release, runner
from grader.failures import PASSED

from .conftest import BUG_FILES, CORRECT_STYLES, copy_solutions, with_bug

NOT_RECORDED = "no recorded answer"


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, release.ReleaseSummary]:
    out = tmp_path_factory.mktemp("release") / "student-release"
    return out, release.build_release(out, examples=runner.DEFAULT_EXAMPLES)


@pytest.fixture(scope="module")
def replay(built) -> tuple:
    """Replay mode in this process, exactly as the release runs: the recorded answers, the
    carried checks, no shrinking."""
    out, summary = built
    answers = recorded.load(out / "recorded.pt")
    functions = json.loads((out / "release.json").read_text())
    return answers, functions["functions"], frozenset(summary.carried)


def run_release_grader(out: Path, *arguments: str) -> subprocess.CompletedProcess:
    """`python -m grader ...` with the release's own grader package (not this checkout's)."""
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-m", "grader", *arguments], cwd=out,
                          env=environment, capture_output=True, text=True, timeout=300)


def test_strip_hidden_checks_removes_only_hidden_functions() -> None:
    source = (
        "import x\n\n\n"
        "@ex\n@pytest.mark.points(1)\n@given(a=st.integers())\ndef test_public(ctx, a):\n"
        "    '''doc'''\n    ctx.call(a)\n\n\n"
        "@ex\n@pytest.mark.points(1)\n@pytest.mark.hidden\n@given(a=st.integers())\n"
        "def test_secret(ctx, a):\n"
        "    ctx.call(a + 1)\n\n\n"
        "def helper():\n    return 2\n"
    )
    stripped, removed = release.strip_hidden_checks(source)
    assert removed == ["test_secret"]
    assert "secret" not in stripped and "hidden" not in stripped and "a + 1" not in stripped
    assert "@ex\n@pytest.mark.points(1)\n@given(a=st.integers())\ndef test_public(ctx, a):\n" \
        "    '''doc'''\n    ctx.call(a)\n" in stripped
    assert "def helper():\n    return 2\n" in stripped
    compile(stripped, "stripped", "exec")


def test_the_release_ships_no_solution_and_no_hidden_check(built) -> None:
    out, summary = built
    assert summary.hidden, "the pack marks some checks hidden"
    assert not any("solutions" in Path(name).parts for name in summary.files)
    release_text = "\n".join((out / name).read_text(encoding="utf-8")
                             for name in summary.files if name.endswith(".py"))
    for solution in pack.pack_folder("solutions").glob("*.py"):
        body = [line for line in solution.read_text().splitlines()
                if line.startswith("    return ")]
        assert not any(line in release_text for line in body if len(line) > 30), solution.name
    for check in summary.hidden:
        assert f"def test_{check.split(':')[1]}(" not in release_text
    manifest = json.loads((out / "release.json").read_text())
    assert set(manifest["checks"]) == set(summary.carried)
    assert not set(manifest["checks"]) & set(summary.hidden)


def test_most_public_checks_are_carried_and_the_rest_say_why(built) -> None:
    _, summary = built
    public, _ = release.public_checks()
    assert set(summary.carried) | set(summary.not_replayable) == set(public)
    assert len(summary.carried) >= 0.75 * len(public)
    assert all(why for why in summary.not_replayable.values())


def test_replayed_checks_pass_correct_styles(replay, tmp_path: Path) -> None:
    answers, functions, carried = replay
    options = runner.Options(checks=carried, shrink=False)
    with pack.answering(replay=(answers, functions)):
        for style in [copy_solutions(tmp_path / "solutions"), *CORRECT_STYLES]:
            result = runner.grade_submission(style, options)
            failed = {ex.id: ex.feedback for ex in result.exercises if ex.status != PASSED}
            assert not failed, (style.name, failed)


def test_replayed_checks_catch_every_bug_a_carried_check_catches(replay, bug_results,
                                                                tmp_path: Path) -> None:
    """The release fails a bug's exercise exactly when the full grader fails one of the
    checks the release carries, and never for want of a recorded answer."""
    answers, functions, carried = replay
    missed = []
    with pack.answering(replay=(answers, functions)):
        for bug_file in BUG_FILES:
            folder, exercise_id = with_bug(tmp_path / bug_file.stem, bug_file)
            _, full = bug_results[bug_file.stem]
            full_exercise = next(ex for ex in full.exercises if ex.id == exercise_id)
            caught_by_carried = any(f"{exercise_id}:{check.name}" in carried
                                    and check.status != PASSED
                                    for check in full_exercise.checks)
            options = runner.Options(only=(exercise_id,), checks=carried, shrink=False)
            result = runner.grade_submission(folder, options)
            exercise = result.exercises[0] if result.exercises else None
            assert exercise is None or NOT_RECORDED not in exercise.feedback, bug_file.stem
            caught = exercise is not None and exercise.status != PASSED
            if caught != caught_by_carried:
                missed.append((bug_file.stem, caught, caught_by_carried))
    assert not missed


def test_check_in_the_release_runs_the_public_checks_and_says_so(built, tmp_path: Path
                                                                  ) -> None:
    out, summary = built
    stubs = run_release_grader(out, "check", "exercises", "--report", str(tmp_path / "r.html"))
    assert stubs.returncode == 1, stubs.stdout + stubs.stderr
    assert f"Student release: running the {len(summary.carried)} public checks" in stubs.stdout
    assert "Not implemented yet" in stubs.stdout

    solution = copy_solutions(tmp_path / "solution")
    full = run_release_grader(out, "check", str(solution), "--report",
                              str(tmp_path / "s.html"))
    assert full.returncode == 0, full.stdout + full.stderr
    assert f"Total: {summary.points:g} / {summary.points:g}" in full.stdout

    refused = run_release_grader(out, "release", str(tmp_path / "again"))
    assert refused.returncode == 1 and "is itself a student release" in refused.stderr
    assert "Traceback" not in refused.stderr

    buggy, exercise_id = with_bug(tmp_path / "buggy", next(
        path for path in BUG_FILES if path.stem.startswith("tensors__softmax__")))
    caught = run_release_grader(out, "check", str(buggy), "--only", exercise_id,
                                "--report", str(tmp_path / "b.html"))
    assert caught.returncode == 1
    assert f"{exercise_id}: " in caught.stdout  # its failure details


def test_the_release_public_checks_run_with_plain_pytest(built, tmp_path: Path) -> None:
    """`pytest tests` in a release checks the stubs; `--submission` another folder."""
    out, _ = built
    environment = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}

    def plain_pytest(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pytest", "tests", "-q", "-p",
                               "no:cacheprovider", *arguments], cwd=out, env=environment,
                              capture_output=True, text=True, timeout=600)

    stubs = plain_pytest("-k", "softmax or dot")
    assert stubs.returncode == 1, stubs.stdout + stubs.stderr
    assert "Not implemented yet" in stubs.stdout
    solution = copy_solutions(tmp_path / "solution")
    full = plain_pytest("--submission", str(solution))
    assert full.returncode == 0, full.stdout[-3000:] + full.stderr[-3000:]
    assert " passed" in full.stdout and "failed" not in full.stdout
    assert not (out / ".hypothesis").exists()


def test_release_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from grader.cli import main

    (tmp_path / "keep.txt").write_text("mine")
    result = CliRunner().invoke(main, ["release", str(tmp_path)])
    assert result.exit_code != 0
    assert "is not empty" in result.output
    assert (tmp_path / "keep.txt").read_text() == "mine"
