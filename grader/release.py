"""`grader release OUT`: what students receive, without the solutions or the hidden checks.

A release is a pack, and a folder students can install and run `grader check` (or plain
`pytest tests`) from:

    OUT/exercises/          the stubs they fill in
    OUT/tests/              the pack's checks, with every check marked `hidden` cut out
    OUT/pack.toml           the pack's metadata
    OUT/release.json        which checks it carries, and how they are run
    OUT/recorded.pt         the reference's recorded answers for those checks
    OUT/grader/             this grader, without any pack
    OUT/pyproject.toml, OUT/README.md

The public checks are the instructor's own checks, run the same way, except that the
reference's answers come from a record (`grader.recorded`): the release records them by
running the public checks on the solutions, then replays the record on the solutions again
and keeps only the checks that pass that way (a check that builds a reference class, or feeds
the student's own output to the reference, cannot be replayed and stays with the instructor).
"""

from __future__ import annotations

import ast
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from grader import distribution, pack, recorded
from grader.failures import PASSED

STUDENT_README = """# {title}: student release

Fill in the stubs in `exercises/`, then check your work:

    python -m venv .venv && . .venv/bin/activate
    pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu   # or your torch
    pip install -e .
    grader check exercises/

This release runs the **public checks** only: {public} checks worth {points:g} points
({left_out} more checks, some of them hidden, run when your instructor grades). Passing every
public check is a good sign, not a guarantee.

`pytest tests` runs the same checks with pytest (on `exercises/`; `--submission DIR` for
another folder). `grader check exercises/ --report report.html` writes an HTML report;
`grader list` lists the exercises.
"""


@dataclass
class ReleaseSummary:
    """What a release carries and what it leaves out (and why)."""

    carried: list[str] = field(default_factory=list)  # "exercise.id:property"
    hidden: list[str] = field(default_factory=list)
    not_replayable: dict[str, str] = field(default_factory=dict)  # check -> why
    points: float = 0.0
    files: list[str] = field(default_factory=list)


def strip_hidden_checks(source: str) -> tuple[str, list[str]]:
    """The check module's source without the test functions marked `@pytest.mark.hidden`
    (their decorators included); every other line is kept exactly as written, so the public
    checks draw the same examples. Returns the new source and the names removed."""
    tree = ast.parse(source)
    lines = source.splitlines(keepends=True)
    removed: list[tuple[int, int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and _is_hidden(node):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            removed.append((first, node.end_lineno or node.lineno, node.name))
    for first, last, _ in sorted(removed, reverse=True):
        del lines[first - 1:last]
    return "".join(lines), [name for _, _, name in removed]


def _is_hidden(node: ast.FunctionDef | ast.AsyncFunctionDef) -> bool:
    """Decorated `@pytest.mark.hidden` (or `@mark.hidden`)."""
    for decorator in node.decorator_list:
        target = decorator.func if isinstance(decorator, ast.Call) else decorator
        if isinstance(target, ast.Attribute) and target.attr == "hidden" and \
                isinstance(target.value, ast.Attribute) and target.value.attr == "mark":
            return True
    return False


def public_checks() -> tuple[list[str], list[str]]:
    """(public, hidden) checks of the pack, as "exercise.id:property"."""
    public, hidden = [], []
    for exercise in pack.exercises():
        for prop in exercise.properties:
            (hidden if prop.hidden else public).append(f"{exercise.id}:{prop.name}")
    return public, hidden


def reference_signatures() -> dict[str, dict[str, list[str]]]:
    """part -> function -> parameter names, of the solutions (names for feedback only)."""
    return {part: recorded.function_signatures(pack.solution(part)) for part in pack.parts()}


def record_answers(checks: list[str], examples: int) -> tuple[dict, list[str], dict[str, str]]:
    """Run `checks` on the solutions, recording the reference's answers; then replay them on
    the solutions. Returns the answers, the checks that replay, and why the others do not."""
    from grader import runner

    answers: dict = {}
    options = runner.Options(examples=examples, checks=frozenset(checks), shrink=False)
    with pack.answering(record=answers):
        runner.grade_submission(pack.pack_folder("solutions"), options)
    functions = reference_signatures()
    replay = runner.Options(examples=examples, checks=frozenset(checks), shrink=False)
    with pack.answering(replay=(answers, functions)):
        result = runner.grade_submission(pack.pack_folder("solutions"), replay)
    replayed, left_out = [], {}
    for exercise in result.exercises:
        for check in exercise.checks:
            name = f"{exercise.id}:{check.name}"
            if check.status == PASSED:
                replayed.append(name)
            else:
                left_out[name] = check.feedback.splitlines()[0] if check.feedback else \
                    check.status
    return answers, replayed, left_out


def build_release(out: Path, *, examples: int) -> ReleaseSummary:
    """Write the student release into `out` (which must not exist or be empty)."""
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"{out} is not empty")
    summary = ReleaseSummary()
    public, summary.hidden = public_checks()
    answers, summary.carried, summary.not_replayable = record_answers(public, examples)
    carried = set(summary.carried)
    summary.points = sum(prop.points for ex in pack.exercises() for prop in ex.properties
                         if f"{ex.id}:{prop.name}" in carried)

    chosen = pack.current()

    def without_hidden(name: str, text: str) -> str:
        return strip_hidden_checks(text)[0] if name.startswith("tests/") else text

    written: dict[str, str] = distribution.pack_sources(chosen.root, ("exercises", "tests"),
                                                        without_hidden)
    grader_files = distribution.grader_sources()
    for name, text in written.items():
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    for name, source in grader_files.items():
        target = out / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    recorded.save(answers, out / "recorded.pt")
    manifest = {
        "examples": examples,
        "checks": summary.carried,
        "points": summary.points,
        "left_out": len(summary.hidden) + len(summary.not_replayable),
        "functions": reference_signatures(),
    }
    (out / "release.json").write_text(json.dumps(manifest, indent=1), encoding="utf-8")
    from grader import __version__

    (out / "pyproject.toml").write_text(distribution.pyproject_text(
        __version__, ["exercises", "tests"], distribution.grader_packages(grader_files)),
        encoding="utf-8")
    (out / "README.md").write_text(STUDENT_README.format(
        title=chosen.title, public=len(summary.carried), points=summary.points,
        left_out=manifest["left_out"]), encoding="utf-8")
    summary.files = sorted(str(path.relative_to(out)) for path in out.rglob("*")
                           if path.is_file())
    return summary
