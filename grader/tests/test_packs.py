"""Packs of an instructor's own: `grader new`, the second pack (`packs/ml-blocks`) end
to end, a broken pack as one `Error:` line, and the README's "Writing a pack" walkthrough run
as written.

Every pack is graded in a subprocess (`python -m grader`, `python -m pytest`): two packs' check
modules of the same name (`test_basics`) would collide in one Python process.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import scaffold
from grader.cli import main

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
ML_PACK = ROOT / "packs" / "ml-blocks"
ML_PARTS = ("metrics", "features", "clustering")

# Every example submission of the second pack: the exercise its one bug breaks (None: correct).
ML_EXAMPLES = {
    "correct-builtins": None,
    "correct-by-hand": None,
    "mse-absolute-error": "metrics.mean_squared_error",
    "accuracy-counts-instead-of-fraction": "metrics.accuracy",
    "minmax-global-range": "features.min_max_normalise",
    "minmax-constant-column-nan": "features.min_max_normalise",
    "minmax-changes-x-in-place": "features.min_max_normalise",
    "minmax-zeros-on-cpu": "features.min_max_normalise",
    "cosine-norm-over-batch": "features.cosine_similarity",
    "kmeans-largest-dot-product": "clustering.kmeans_assign",
    "kmeans-ties-to-larger-index": "clustering.kmeans_assign",
}
# The one check each bug is caught by when the exercise's other checks pass (partial credit).
ML_ONLY_CHECK = {
    "minmax-constant-column-nan": "constant_columns_become_zero",
    "minmax-zeros-on-cpu": "keeps_the_input_device",
}


def run_command(words: list[str], cwd: Path, timeout: float = 300
                ) -> subprocess.CompletedProcess:
    """`grader ...` or `pytest ...` (as a README shows it) in a fresh process of this Python."""
    program = {"grader": [sys.executable, "-m", "grader"],
               "pytest": [sys.executable, "-m", "pytest", "-p", "no:cacheprovider"]}
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("PYTEST_ADDOPTS", None)
    return subprocess.run([*program[words[0]], *words[1:]], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=timeout)


def results_of(out: Path) -> dict[str, dict]:
    """results.json, by submission id."""
    document = json.loads((out / "results.json").read_text(encoding="utf-8"))
    return {submission["id"]: submission for submission in document["submissions"]}


def statuses(submission: dict) -> dict[str, str]:
    return {exercise["id"]: exercise["status"] for exercise in submission["exercises"]}


# --- the README's "Writing a pack" ----------------------------------------------------------


def readme_section() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("\n## Writing a pack\n")
    return text[start:text.index("\n## ", start + 1)]


def code_blocks(language: str) -> list[str]:
    """The section's fenced blocks in this language ("" for blocks without one), in order."""
    return [body for lang, body in re.findall(r"^```(\w*)\n(.*?)^```$", readme_section(),
                                              re.MULTILINE | re.DOTALL) if lang == language]


def bash_commands(block: str) -> list[list[str]]:
    """The commands of a bash block, comments dropped."""
    return [words for line in block.splitlines() if (words := shlex.split(line, comments=True))]


def place_python_blocks(workdir: Path) -> list[Path]:
    """Put each python block of the section where its first line says: `# my-pack/FILE (at
    the end)` appends to FILE (one or more), `# my-pack/FILE` writes a new file."""
    placed = []
    for block in code_blocks("python"):
        header, _, body = block.partition("\n")
        targets = re.findall(r"my-pack/\S+\.py", header)
        assert header.startswith("# ") and targets, f"a python block says where it goes: {header}"
        for target in targets:
            path = workdir / target
            if "(at the end" in header:
                assert path.is_file(), f"{target}: the README appends to a file `grader new` " \
                    "did not write"
                path.write_text(path.read_text(encoding="utf-8") + "\n\n" + body,
                                encoding="utf-8")
            else:
                assert not path.exists(), target
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(body, encoding="utf-8")
            placed.append(path)
    return placed


def definitions(path: Path) -> dict[str, tuple[str, str | None]]:
    """Top-level functions of a module: name -> (signature, docstring), read without running
    it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name: (ast.unparse(node.args), ast.get_docstring(node))
            for node in tree.body if isinstance(node, ast.FunctionDef)}


def assert_stubs_match_solutions(root: Path, parts: tuple[str, ...]) -> None:
    for part in parts:
        stub_file = root / "exercises" / f"{part}.py"
        solution_file = root / "solutions" / f"{part}.py"
        stubs, solutions = definitions(stub_file), definitions(solution_file)
        assert list(stubs) == list(solutions), part
        assert ast.get_docstring(ast.parse(stub_file.read_text())) == \
            ast.get_docstring(ast.parse(solution_file.read_text())), part
        for name, (signature, doc) in stubs.items():
            assert (signature, doc) == solutions[name], f"{part}.{name}"
            assert doc and len(doc.splitlines()) >= 5, f"{part}.{name}: the docstring must teach"
        raises = [node for node in ast.walk(ast.parse(stub_file.read_text()))
                  if isinstance(node, ast.Raise)]
        assert len(raises) == len(stubs), f"{part}: every stub raises NotImplementedError"


@pytest.mark.slow
def test_new_pack_passes_its_own_checks_as_the_readme_says(tmp_path: Path) -> None:
    """The README's first block, run as written: `grader new`, `pytest`, full marks for the
    solutions, zero for the stubs."""
    outcomes = {}
    for words in bash_commands(code_blocks("bash")[0]):
        completed = run_command(words, tmp_path)
        outcomes[" ".join(words)] = (completed.returncode, completed.stdout + completed.stderr)
    assert list(outcomes) == ["grader new my-pack", "pytest my-pack/tests",
                              "grader check --pack my-pack my-pack/solutions",
                              "grader check --pack my-pack my-pack/exercises"]
    code, output = outcomes["grader new my-pack"]
    assert code == 0 and "a new pack (7 files)" in output, output
    code, output = outcomes["pytest my-pack/tests"]
    assert code == 0 and "2 passed" in output, output  # the check on cpu and its meta probe
    code, output = outcomes["grader check --pack my-pack my-pack/solutions"]
    assert code == 0 and "Total: 1.5 / 1.5" in output, output
    code, output = outcomes["grader check --pack my-pack my-pack/exercises"]
    assert code == 1, output
    assert "Total: 0 / 1.5" in output and "Not implemented yet" in output, output
    listed = {line.split()[0] for line in code_blocks("")[0].splitlines()[1:]}
    written = {str(path.relative_to(tmp_path / "my-pack"))
               for path in (tmp_path / "my-pack").rglob("*") if path.is_file()}
    assert listed == written


def test_new_pack_stubs_and_solutions_stay_in_step(tmp_path: Path) -> None:
    written = scaffold.write_new_pack(tmp_path / "course-pack")
    assert len(written) == 7
    assert 'title = "Course pack"' in (tmp_path / "course-pack" / "pack.toml").read_text()
    assert_stubs_match_solutions(tmp_path / "course-pack", ("basics",))


def test_new_refuses_a_folder_that_is_not_empty(tmp_path: Path) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "notes.txt").write_text("mine")
    result = CliRunner().invoke(main, ["new", str(tmp_path / "taken")])
    assert result.exit_code == 1
    assert result.output == f"Error: {tmp_path / 'taken'} is not empty: choose a new folder " \
        "for the pack\n"
    assert (tmp_path / "taken" / "notes.txt").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(main, ["new", str(tmp_path / "empty"), "--title", "Week 3"])
    assert result.exit_code == 0, result.output
    assert 'title = "Week 3"' in (tmp_path / "empty" / "pack.toml").read_text()


def test_new_explains_itself_with_an_example() -> None:
    result = CliRunner().invoke(main, ["new", "--help"])
    assert result.exit_code == 0
    assert "Example:" in result.output and "grader new my-pack" in result.output


@pytest.mark.slow
def test_readme_walkthrough_runs_as_written(tmp_path: Path) -> None:
    """Every python block of "Writing a pack" placed where it says into a new pack, then its
    "Run it" commands: each example loses points on its bug only (and the solutions, graded
    with them, get full marks), the failure text is the README's, and the release command
    parses."""
    scaffold.write_new_pack(tmp_path / "my-pack")
    place_python_blocks(tmp_path)
    assert_stubs_match_solutions(tmp_path / "my-pack", ("basics",))
    shutil.copytree(tmp_path / "my-pack" / "solutions", tmp_path / "my-pack" / "examples" /
                    "the-solutions")  # one grading run covers them too
    run_block = next(block for block in code_blocks("bash") if "--submission" in block)
    outcomes = {}
    for words in bash_commands(run_block):
        completed = run_command([*words, "-j", "1"] if words[:2] == ["grader", "grade"]
                                else words, tmp_path)
        outcomes[" ".join(words)] = (completed.returncode, completed.stdout + completed.stderr)
    assert list(outcomes) == [
        "pytest my-pack/tests --submission my-pack/examples/clamp-max-instead-of-min",
        "grader list --pack my-pack", "grader grade --pack my-pack --out my-pack-report"]
    code, output = outcomes["pytest my-pack/tests --submission "
                            "my-pack/examples/clamp-max-instead-of-min"]
    # relu on cpu and meta (its probe passes alone under pytest); leaky_relu's three checks on
    # cpu and its main check's meta probe
    assert code == 1 and "1 failed, 5 passed" in output, output
    shown = code_blocks("text")[0]
    assert shown in output.replace("\r", ""), output
    code, output = outcomes["grader list --pack my-pack"]
    assert code == 0 and re.search(r"basics\.leaky_relu\s+4\.5 pts", output), output
    code, output = outcomes["grader grade --pack my-pack --out my-pack-report"]
    assert code == 0, output
    graded = results_of(tmp_path / "my-pack-report")
    assert {key: (value["score"], statuses(value)) for key, value in graded.items()} == {
        "the-solutions": (6.0, {"basics.relu": "passed", "basics.leaky_relu": "passed"}),
        "correct": (6.0, {"basics.relu": "passed", "basics.leaky_relu": "passed"}),
        "clamp-max-instead-of-min": (4.5, {"basics.relu": "failed",
                                           "basics.leaky_relu": "passed"}),
        "calls-f-leaky-relu": (1.5, {"basics.relu": "passed",
                                     "basics.leaky_relu": "forbidden"}),
        "returns-x-when-all-positive": (5.0, {"basics.relu": "passed",
                                              "basics.leaky_relu": "failed"}),
    }
    hidden = next(exercise for exercise in graded["returns-x-when-all-positive"]["exercises"]
                  if exercise["id"] == "basics.leaky_relu")
    assert [check["name"] for check in hidden["checks"] if check["status"] != "passed"] == \
        ["returns_a_new_tensor"]
    (release,) = [words for block in code_blocks("bash") for words in bash_commands(block)
                  if words[:2] == ["grader", "release"]]
    completed = run_command([*release, "--help"], tmp_path)  # parses; built in test_release
    assert completed.returncode == 0 and "Example" in completed.stdout, completed.stderr


# --- the second pack: machine-learning building blocks --------------------------------------


def test_second_pack_stubs_and_solutions_stay_in_step() -> None:
    assert_stubs_match_solutions(ML_PACK, ML_PARTS)
    examples = sorted(path.name for path in (ML_PACK / "examples").iterdir() if path.is_dir())
    assert examples == sorted(ML_EXAMPLES)
    correct = sum(bug is None for bug in ML_EXAMPLES.values())
    assert (correct, len(ML_EXAMPLES) - correct) == (2, 9)  # as the README says
    assert "with two correct and nine single-bug example submissions" in \
        " ".join(readme_section().split())


@pytest.mark.slow
def test_second_pack_grades_its_examples_each_bug_on_its_exercise(tmp_path: Path) -> None:
    """The README's command, on the pack's examples plus its stubs and solutions."""
    command = "grader grade --pack packs/ml-blocks --out ml-report"
    assert command in " ".join(readme_section().split())
    submissions = tmp_path / "class"
    shutil.copytree(ML_PACK / "examples", submissions)
    shutil.copytree(ML_PACK / "exercises", submissions / "the-stubs")
    shutil.copytree(ML_PACK / "solutions", submissions / "the-solutions")
    words = shlex.split(command)
    completed = run_command([*words[:2], str(submissions), *words[2:-1], str(tmp_path / "out"),
                             "-j", "1"], ROOT, timeout=600)
    assert completed.returncode == 0, completed.stderr
    graded = results_of(tmp_path / "out")
    assert sorted(graded) == sorted([*ML_EXAMPLES, "the-stubs", "the-solutions"])
    assert graded["the-solutions"]["score"] == 14.0
    stubs = graded.pop("the-stubs")
    assert stubs["score"] == 0 and len(stubs["exercises"]) == 5
    for exercise in stubs["exercises"]:
        assert exercise["status"] == "error", exercise
        assert exercise["feedback"].count("Not implemented yet") >= 1, exercise
    graded.pop("the-solutions")
    for name, broken in ML_EXAMPLES.items():
        submission = graded[name]
        not_passed = {key for key, status in statuses(submission).items() if status != "passed"}
        if broken is None:
            assert submission["score"] == submission["max_score"] == 14.0, name
            assert not not_passed, name
            continue
        assert not_passed == {broken}, (name, statuses(submission))
        assert submission["score"] < submission["max_score"], name
        if name in ML_ONLY_CHECK:
            (exercise,) = [ex for ex in submission["exercises"] if ex["id"] == broken]
            failed = [check["name"] for check in exercise["checks"] if check["status"] != "passed"]
            assert failed == [ML_ONLY_CHECK[name]], (name, failed)


@pytest.mark.slow
def test_second_pack_runs_under_plain_pytest(tmp_path: Path) -> None:
    passing = run_command(["pytest", "-q", str(ML_PACK / "tests")], tmp_path)
    assert passing.returncode == 0, passing.stdout
    assert "11 passed" in passing.stdout, passing.stdout
    buggy = ML_PACK / "examples" / "minmax-constant-column-nan"
    failing = run_command(["pytest", "-q", str(ML_PACK / "tests"), "--submission", str(buggy)],
                          tmp_path)
    assert failing.returncode == 1, failing.stdout
    assert "1 failed, 10 passed" in failing.stdout, failing.stdout
    assert "features.min_max_normalise: constant_columns_become_zero [failed, 0 / 1 points]" \
        in failing.stdout
    assert "got:      tensor([[nan" in failing.stdout


# --- a pack that cannot be graded: one line ----------------------------------------------------


def _module_that_does_not_import(pack: Path) -> None:
    checks = pack / "tests" / "test_basics.py"
    checks.write_text(checks.read_text() + "\nfrom grader.testing import no_such_strategy\n")


def _exercise_without_solution(pack: Path) -> None:
    solution = pack / "solutions" / "basics.py"
    solution.write_text(solution.read_text().replace("def relu(", "def rectify("))


def _exercise_declared_twice(pack: Path) -> None:
    checks = pack / "tests" / "test_basics.py"
    checks.write_text(checks.read_text() + '''

@pytest.mark.exercise("basics.relu", "something else")
@pytest.mark.points(1)
def test_declared_again(ctx: Context) -> None:
    """declares the exercise again, with another summary"""
''')


def _points_missing(pack: Path) -> None:
    checks = pack / "tests" / "test_basics.py"
    checks.write_text(checks.read_text().replace("@pytest.mark.points(1)\n", ""))


@pytest.mark.slow
@pytest.mark.parametrize("command, breakage, message", [
    ("check", _module_that_does_not_import,
     r"Error: \S+/tests/test_basics\.py: the check module does not import \(ImportError: "
     r"cannot import name 'no_such_strategy' from 'grader\.testing'.*\)"),
    ("list", _exercise_without_solution,
     r"Error: exercise basics\.relu has no solution: solutions/basics\.py defines no `relu`"),
    ("list", _exercise_declared_twice,
     r"Error: tests/test_basics\.py::test_declared_again: exercise basics\.relu is declared "
     r"twice, differently \(also at tests/test_basics\.py::test_matches_the_reference\); "
     r"declare it once and reuse the marker"),
    ("list", _points_missing,
     r"Error: tests/test_basics\.py::test_matches_the_reference: a graded check needs its "
     r"points, e\.g\. @pytest\.mark\.points\(1\)"),
], ids=["module-does-not-import", "no-solution", "declared-twice", "points-missing"])
def test_a_broken_pack_is_one_error_line(tmp_path: Path, command: str, breakage,  # noqa: ANN001
                                         message: str) -> None:
    pack = tmp_path / "broken"
    scaffold.write_new_pack(pack)
    breakage(pack)
    words = ["grader", command, "--pack", str(pack)]
    if command == "check":
        words.append(str(pack / "solutions"))
    completed = run_command(words, tmp_path)
    assert completed.returncode == 1, completed.stdout + completed.stderr
    lines = completed.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in completed.stderr, completed.stderr
    assert re.fullmatch(message, lines[0]), lines[0]

