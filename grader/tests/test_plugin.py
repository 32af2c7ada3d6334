"""The pytest plugin and the collected session: what an instructor's pytest habits become when
`grader` runs a pack (fixtures, parametrize, classes, hidden checks, device probes), and that
pytest collects a pack once per grading process."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from grader import collect, pack, runner
from grader.failures import FAILED, PASSED

SOLUTION = """
import torch


def double(x):
    return 2 * x


def scale(t, k):
    return t * k
"""

BUGGY = """
import torch


def double(x):
    return 15 if x == 7 else 2 * x


def scale(t, k):
    return torch.zeros(t.shape, dtype=t.dtype) + t * k   # a CPU tensor: a device bug
"""

CHECKS = '''
import pytest
import torch
from hypothesis import given, strategies as st

from grader.testing import Context, tensors

double = pytest.mark.exercise("arith.double", "twice x")


@double
@pytest.mark.points(1)
@given(x=st.integers(-5, 5))
def test_doubles(ctx: Context, x: int) -> None:
    """returns 2 * x"""
    reply = ctx.call(x)
    ctx.expect(reply.value == ctx.reference(x), f"2 * {x} is {ctx.reference(x)}, not "
               f"{reply.value}")


@double
@pytest.mark.points(0.5)
@pytest.mark.parametrize("x", [0, 7])
def test_known_values(ctx: Context, x: int) -> None:
    """doubles a few values students get wrong"""
    reply = ctx.call(x)
    ctx.expect(reply.value == 2 * x, f"2 * {x} is {2 * x}, not {reply.value}")


@double
@pytest.mark.points(0.5)
@pytest.mark.hidden
def test_returns_an_int(ctx: Context) -> None:
    """returns an int for an int"""
    ctx.expect_type(ctx.call(3).value, int, "the result", "an int")


@pytest.mark.exercise("arith.scale", "t times k")
class TestScale:
    @pytest.mark.points(1)
    @pytest.mark.device_probe(0.5)
    @given(t=tensors(dtype=(torch.float32,), max_dims=2))
    def test_scales(self, ctx: Context, t: torch.Tensor, factor: int) -> None:
        """multiplies every element by k"""
        reply = ctx.call(t, factor)
        ctx.expect_tensor(reply.value, ctx.reference(t, factor))
'''

CONFTEST = '''
import pytest

pytest_plugins = ["grader.plugin"]


@pytest.fixture
def factor() -> int:
    return 3
'''


@pytest.fixture(scope="module")
def small_pack(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("packs") / "arith-pack"
    for folder in ("exercises", "solutions", "tests", "examples/good", "examples/buggy",
                   "examples/nonzero"):
        (root / folder).mkdir(parents=True)
    (root / "pack.toml").write_text('title = "Arithmetic"\nparts = ["arith"]\nexamples = 6\n')
    (root / "solutions" / "arith.py").write_text(SOLUTION)
    (root / "examples" / "good" / "arith.py").write_text(SOLUTION)
    (root / "examples" / "buggy" / "arith.py").write_text(BUGGY)
    (root / "examples" / "nonzero" / "arith.py").write_text(SOLUTION.replace(
        "    return t * k", "    t.nonzero()  # fine, though the meta device cannot run it\n"
        "    return t * k"))
    (root / "exercises" / "arith.py").write_text(
        "def double(x):\n    raise NotImplementedError\n\n\n"
        "def scale(t, k):\n    raise NotImplementedError\n")
    (root / "tests" / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (root / "tests" / "test_arith_plugin_pack.py").write_text(textwrap.dedent(CHECKS))
    yield root
    collect.forget(pack.load(root))


def checks_of(result) -> dict[str, tuple[str, float]]:
    return {f"{ex.id}:{check.name}": (check.status, check.score)
            for ex in result.exercises for check in ex.checks}


def test_pytest_habits_become_scored_checks(small_pack: Path) -> None:
    options = runner.Options(pack=small_pack, examples=6)
    good = runner.grade_submission(small_pack / "examples" / "good", options)
    assert checks_of(good) == {
        "arith.double:doubles": (PASSED, 1.0),
        "arith.double:known_values[0]": (PASSED, 0.5),
        "arith.double:known_values[7]": (PASSED, 0.5),
        "arith.double:returns_an_int": (PASSED, 0.5),
        "arith.scale:scales": (PASSED, 1.0),
        "arith.scale:keeps_the_input_device": (PASSED, 0.5),
    }
    assert [ex.summary for ex in good.exercises] == ["twice x", "t times k"]
    described = {check.name: check.description for ex in good.exercises for check in ex.checks}
    assert described["doubles"] == "returns 2 * x"

    buggy = checks_of(runner.grade_submission(small_pack / "examples" / "buggy", options))
    assert buggy["arith.double:known_values[0]"] == (PASSED, 0.5)
    assert buggy["arith.double:known_values[7]"] == (FAILED, 0.0)
    assert buggy["arith.scale:scales"] == (PASSED, 1.0)
    assert buggy["arith.scale:keeps_the_input_device"][0] != PASSED

    nonzero = runner.grade_submission(small_pack / "examples" / "nonzero", options)
    assert nonzero.score == nonzero.max_score, checks_of(nonzero)

    stubs = runner.grade_submission(small_pack / "exercises", options)
    assert stubs.score == 0
    assert all("Not implemented yet" in ex.feedback for ex in stubs.exercises)


def test_the_pack_is_collected_once_per_process(small_pack: Path) -> None:
    options = runner.Options(pack=small_pack, examples=2)
    chosen = pack.load(small_pack)
    before = collect.checks_of(chosen)
    items = [id(item) for ex in before.exercises for p in ex.properties
             for item in p.items.values()]
    runner.grade_submission(small_pack / "examples" / "good", options)
    runner.grade_submission(small_pack / "examples" / "buggy", options)
    after = collect.checks_of(chosen)
    assert after is before
    assert [id(item) for ex in after.exercises for p in ex.properties
            for item in p.items.values()] == items


def test_plain_pytest_checks_the_solutions_and_a_submission(small_pack: Path) -> None:
    def plain(*arguments: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "pytest", str(small_pack / "tests"), "-q",
                               "-p", "no:cacheprovider", *arguments], capture_output=True,
                              text=True, timeout=300, cwd=small_pack)

    solutions = plain()
    assert solutions.returncode == 0, solutions.stdout + solutions.stderr
    assert "6 passed" in solutions.stdout  # 5 checks, one also on the meta device
    buggy = plain("--submission", str(small_pack / "examples" / "buggy"))
    assert buggy.returncode == 1
    assert "arith.double: known_values[7] [failed, 0 / 0.5 points]" in buggy.stdout
    assert "2 * 7 is 14, not 15" in buggy.stdout
    assert "keeps_the_input_device" in buggy.stdout
    assert not (small_pack / ".hypothesis").exists()
    assert not (small_pack / "tests" / ".hypothesis").exists()


def test_a_check_taking_ctx_without_an_exercise_is_one_clear_error(small_pack: Path,
                                                                  tmp_path: Path) -> None:
    import shutil

    broken = tmp_path / "broken-pack"
    shutil.copytree(small_pack, broken)
    with open(broken / "tests" / "test_arith_plugin_pack.py", "a") as handle:
        handle.write("\n\ndef test_forgot_the_marker(ctx):\n    ctx.call(1)\n")
    outcome = subprocess.run([sys.executable, "-m", "grader", "list", "--pack", str(broken)],
                             capture_output=True, text=True, timeout=300)
    assert outcome.returncode == 1
    assert outcome.stderr.strip().splitlines() == [
        "Error: tests/test_arith_plugin_pack.py::test_forgot_the_marker: takes `ctx` but says "
        "no exercise: add @pytest.mark.exercise(\"<part>.<name>\") to it, its class or module"]
