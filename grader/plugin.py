"""The grader's pytest plugin: what turns a pack's pytest tests into graded checks.

A pack's `tests/conftest.py` loads it with `pytest_plugins = ["grader.plugin"]`. It gives the
pack's tests:

- markers that say what a test grades: `exercise(id, summary, forbid=..., inputs_unchanged=...)`
  (on the test, its class or its module), `points(n)`, `hidden`, `devices("cpu")`,
  `examples(n)` and `device_probe(points)`;
- the `ctx` fixture: a `grader.context.Context` bound to the exercise, the submission's
  isolated worker and one device (tests that take `ctx` are parametrized by device:
  `test_x[cpu]`, `test_x[cuda]` where there is a GPU, `test_x[meta]` for a device probe);
- the grading hypothesis profile (`grader.profile`), so two runs draw the same examples;
- options: `--submission DIR` (default: the pack's solutions; in a student release, its
  stubs), `--examples N`.

Under plain pytest a check fails with the feedback a student reads, its points included.
Under `grader`, `grader.collect` runs the same items one at a time and reads each outcome from
the reports (`pytest_runtest_logreport`), never from printed output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from grader import (
    prng,
    profile,  # noqa: F401 - registers the grading profile, fixes the constants
)
from grader.failures import (
    ERROR,
    PASSED,
    Abort,
    Mismatch,
    StudentError,
)
from grader.spec import META, META_EXAMPLES, Exercise, Property

MARKERS = {
    "exercise": "exercise(id, summary='', *, forbid=(), inputs_unchanged=True): the exercise "
                "this check grades (`<part>.<name>`), on the test, its class or module",
    "points": "points(n): what the check is worth (required on every graded check)",
    "hidden": "hidden: graded as usual, but left out of the student release",
    "devices": "devices('cpu'): run on the CPU only (default: every available device)",
    "examples": "examples(n): at most n generated examples for this check",
    "device_probe": "device_probe(points): also run this check with inputs on the meta "
                    "device, worth `points`: catches tensors created on the wrong device",
}
OUTCOME_STATUS = "grader_status"
OUTCOME_FEEDBACK = "grader_feedback"
CHECK_KEY = pytest.StashKey["tuple[Exercise, Property]"]()


@dataclass
class Run:
    """What `grader` asks of the next run of a check (set by `grader.collect`)."""

    session: Any  # grader.session.SubmissionSession
    examples: int
    shrink: bool = True
    budget_seconds: float = 60.0


@dataclass
class Grading:
    """The plugin's state for one pytest session."""

    driven: bool  # True when `grader` drives the session, False under plain pytest
    submission: str | None = None  # --submission
    examples: int | None = None  # --examples
    run: Run | None = None
    exercises: dict[Path, list[Exercise]] = field(default_factory=dict)  # per pack root
    sessions: dict[Path, Any] = field(default_factory=dict)  # plain pytest: per pack root


GRADING_KEY = pytest.StashKey[Grading]()


class Driver:
    """Registered by `grader.collect` to say that `grader`, not a person, runs this session."""


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("grader", "torch-grader (checks of a pack)")
    group.addoption("--submission", default=None, metavar="DIR",
                    help="the submission the pack's checks grade, isolated as `grader check` "
                    "isolates it (default: the pack's solutions)")
    group.addoption("--examples", type=int, default=None, metavar="N",
                    help="generated examples per check (default: the pack's)")


def pytest_configure(config: pytest.Config) -> None:
    for line in MARKERS.values():
        config.addinivalue_line("markers", line)
    import hypothesis

    from grader import lazy_shapes

    hypothesis.settings.load_profile(profile.PROFILE)
    lazy_shapes.install()  # references' backward passes need not import sympy
    driven = any(isinstance(plugin, Driver) for plugin in config.pluginmanager.get_plugins())
    config.stash[GRADING_KEY] = Grading(driven=driven,
                                        submission=config.getoption("submission", None),
                                        examples=config.getoption("examples", None))


def pytest_unconfigure(config: pytest.Config) -> None:
    grading = config.stash.get(GRADING_KEY, None)
    if grading is not None:
        for session in grading.sessions.values():
            session.close()
        grading.sessions.clear()


# --- collection -----------------------------------------------------------------------------


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A graded check that takes `ctx` runs once per device."""
    definition = metafunc.definition
    if definition.get_closest_marker("exercise") is None or "ctx" not in metafunc.fixturenames:
        return
    devices = ["cpu"]
    devices_marker = definition.get_closest_marker("devices")
    if (devices_marker is None or "cpu" not in devices_marker.args) and _cuda_available():
        devices.append("cuda")
    if definition.get_closest_marker("device_probe") is not None:
        devices.append(META)
    metafunc.parametrize("ctx", devices, indirect=True, ids=devices)


def _cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config,
                                  items: list[pytest.Item]) -> None:
    """Turn the marked items into the pack's exercises; a pack error stops the session with
    one line (under plain pytest) or reaches `grader` as a `PackError`."""
    from grader import collect
    from grader.pack import PackError, load

    grading = config.stash[GRADING_KEY]
    by_pack: dict[Path, list[pytest.Item]] = {}
    for item in items:
        if item.get_closest_marker("exercise") is not None:
            by_pack.setdefault(collect.pack_root_of(Path(item.path)), []).append(item)
        elif "ctx" in getattr(item, "fixturenames", ()):
            message = (f"{item.nodeid}: takes `ctx` but says no exercise: add "
                       "@pytest.mark.exercise(\"<part>.<name>\") to it, its class or module")
            if grading.driven:
                raise PackError(message)
            raise pytest.UsageError(message)
    kept_ids = {id(item) for item in items}
    for root, pack_items in by_pack.items():
        try:
            chosen = load(root)
            grading.exercises[root] = collect.build_exercises(chosen, pack_items)
        except PackError as error:
            if grading.driven:
                raise
            raise pytest.UsageError(str(error)) from None
        graded = {id(item) for exercise in grading.exercises[root]
                  for prop in exercise.properties for item in prop.items.values()}
        kept_ids -= {id(item) for item in pack_items if id(item) not in graded}
    deselected = [item for item in items if id(item) not in kept_ids]
    if deselected:  # in a student release: the checks it does not carry
        config.hook.pytest_deselected(items=deselected)
        items[:] = [item for item in items if id(item) in kept_ids]


# --- the ctx fixture ------------------------------------------------------------------------


@pytest.fixture
def ctx(request: pytest.FixtureRequest) -> Any:
    """The check's toolbox (`grader.context.Context`): `ctx.call(...)` runs the student's
    function in the isolated worker, `ctx.reference(...)` the solution here, and the
    `ctx.expect_*` methods compare them."""
    from grader import pack
    from grader.context import Context

    grading = request.config.stash[GRADING_KEY]
    exercise, _ = request.node.stash[CHECK_KEY]
    device = getattr(request, "param", "cpu")
    root = _pack_of(request.node)
    if grading.driven:
        assert grading.run is not None, "grader.collect sets the run before each check"
        session, budget = grading.run.session, grading.run.budget_seconds
    else:
        from grader.session import Limits

        session, budget = plain_session(grading, root), Limits().exercise_seconds
    reference = pack.reference(exercise.part, pack.load(root))
    session.prepare_check(exercise.part)
    return Context(exercise, session, reference, device, budget_seconds=budget)


def _pack_of(item: pytest.Item) -> Path:
    from grader import collect

    return collect.pack_root_of(Path(item.path))


def plain_session(grading: Grading, root: Path) -> Any:
    """Under plain pytest: the submission's worker, started once for the whole session."""
    from grader import pack
    from grader.runner import Options
    from grader.session import SubmissionSession

    if root not in grading.sessions:
        chosen = pack.load(root)
        if grading.submission:
            folder = Path(grading.submission)
        elif pack.release_manifest(chosen) is not None:
            folder = chosen.folder("exercises")
        else:
            folder = chosen.folder("solutions")
        if not folder.exists():
            raise pytest.UsageError(f"--submission {folder}: no such folder")
        options = Options(pack=chosen.root)
        grading.sessions[root] = SubmissionSession(folder, limits=options.limits,
                                                   settings=options.sandbox_settings())
    return grading.sessions[root]


# --- running a check ------------------------------------------------------------------------


@pytest.hookimpl(tryfirst=True)
def pytest_pyfunc_call(pyfuncitem: pytest.Function) -> bool | None:
    check = pyfuncitem.stash.get(CHECK_KEY, None)
    if check is None:
        return None
    exercise, prop = check
    grading = pyfuncitem.config.stash[GRADING_KEY]
    from grader.collect import device_of

    device = device_of(pyfuncitem)
    pyfuncitem.user_properties[:] = [entry for entry in pyfuncitem.user_properties
                                     if entry[0] not in (OUTCOME_STATUS, OUTCOME_FEEDBACK)]
    funcargs = {name: pyfuncitem.funcargs[name]
                for name in pyfuncitem._fixtureinfo.argnames}
    if grading.driven:
        assert grading.run is not None
        examples, shrink = grading.run.examples, grading.run.shrink
        status, message = run_check(pyfuncitem.obj, funcargs, prop, examples, shrink,
                                    script_key=(str(pyfuncitem.path), pyfuncitem.nodeid))
    else:
        from grader import pack

        chosen = pack.load(_pack_of(pyfuncitem))
        early = prerequisite(exercise, plain_session(grading, chosen.root))
        examples = grading.examples or chosen.examples
        status, message = early or run_check(
            pyfuncitem.obj, funcargs, prop, examples, True,
            script_key=(str(pyfuncitem.path), pyfuncitem.nodeid))
    if device == "cuda" and status != PASSED:
        message = "On the GPU (cuda): " + message
    pyfuncitem.user_properties += [(OUTCOME_STATUS, status), (OUTCOME_FEEDBACK, message)]
    if status != PASSED:
        pytest.fail(failure_text(exercise, prop, status, message), pytrace=False)
    return True


def failure_text(exercise: Exercise, prop: Property, status: str, message: str) -> str:
    """What plain pytest shows for a check that did not pass: what a student reads."""
    return (f"{exercise.id}: {prop.name} [{status}, 0 / {prop.points:g} points]\n"
            f"{prop.description}:\n{message}")


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """Under `grader`: the outcome of each run, from its report."""
    properties = dict(report.user_properties)
    if OUTCOME_STATUS in properties and report.when == "call":
        outcome = (properties[OUTCOME_STATUS], properties[OUTCOME_FEEDBACK])
    elif report.failed and report.when == "setup":
        lines = report.longreprtext.strip().splitlines()
        outcome = (ERROR, "The grader could not set up this check ("
                   + (lines[-1] if lines else "setup failed") + "). Please tell your instructor.")
    else:
        return
    _last_outcomes[report.nodeid] = outcome


_last_outcomes: dict[str, tuple[str, str]] = {}


def take_outcome(nodeid: str) -> tuple[str, str] | None:
    """The outcome the last run of this item reported (once)."""
    return _last_outcomes.pop(nodeid, None)


def prerequisite(exercise: Exercise, session: Any) -> tuple[str, str] | None:
    """Why the exercise cannot be checked at all (its file or name is missing, it does not
    import), as (status, message); None when it can."""
    from grader.failures import MISSING, TIMEOUT

    state = session.part(exercise.part)
    if state.status != "ok":
        return (MISSING if state.status == "missing" else
                TIMEOUT if state.status == "timeout" else ERROR, state.message)
    if exercise.name not in state.names:
        return (MISSING, f"{exercise.part}.py has no `{exercise.name}`: define it with exactly "
                "this name (see the exercise stub).")
    return None


def run_check(function: Any, funcargs: dict[str, Any], prop: Property, examples: int,
              shrink: bool, *, script_key: tuple | None = None) -> tuple[str, str]:
    """Run one check (a hypothesis test or a plain function) once: (status, feedback).

    With a `script_key`, what the check asks the worker is sent ahead when it passed before
    in this process, and the check passes without running when every reply is the one it got
    then (`grader.replay`): the same verdict, for the worker's work alone."""
    from grader import pack
    from grader.context import Context

    session = next((value.session for value in funcargs.values()
                    if isinstance(value, Context)), None)
    answers = pack.answer_source()
    if session is None or script_key is None or answers is None:
        return _run_check(function, funcargs, prop, examples, shrink)
    session.begin_check((*script_key, examples, shrink, answers))
    status = None
    try:
        if session.verify_check():  # every reply as when it passed: it passes again
            status, message = PASSED, ""
        else:
            status, message = _run_check(function, funcargs, prop, examples, shrink)
    finally:
        session.end_check(passed=status == PASSED)
    return status, message


def _run_check(function: Any, funcargs: dict[str, Any], prop: Property, examples: int,
               shrink: bool) -> tuple[str, str]:
    import hypothesis

    from grader.profile import grading_settings
    from grader.recorded import NotRecorded

    count = examples if prop.max_examples is None else max(1, min(prop.max_examples, examples))
    if prop.devices == META:
        count = min(count, META_EXAMPLES)
    target = getattr(function, "__func__", function)
    if hypothesis.is_hypothesis_test(target):
        target._hypothesis_internal_use_settings = grading_settings(count, shrink)
        _seed_once(target)  # from the check's own source: first, before the wrapper below
        _reset_worker_objects_between_examples(target)
    try:
        with prng.restored_after():
            function(**funcargs)
    except Abort as abort:
        return abort.status, abort.message
    except hypothesis.errors.Unsatisfiable:
        return PASSED, ""  # every example was inconclusive (e.g. unsupported on meta)
    except (Mismatch, StudentError) as failure:
        return failure.status, str(failure)
    except BaseException as error:  # noqa: BLE001 - hypothesis groups, flaky reruns, bugs
        inner = _unwrap(error)
        if isinstance(inner, NotRecorded):
            return ERROR, ("This check has no recorded answer for one of its inputs in this "
                           "student release; your instructor's grading runs it in full.")
        if isinstance(inner, (Mismatch, StudentError)):
            return inner.status, str(inner)
        if isinstance(inner, Abort):
            return inner.status, inner.message
        if isinstance(inner, (KeyboardInterrupt, SystemExit)):
            raise
        if isinstance(inner, AssertionError):  # a plain `assert` in a check
            return "failed", str(inner) or "an assertion of this check failed"
        return ERROR, (f"The grader could not finish this check ({type(inner).__name__}: "
                       f"{inner}). Please tell your instructor.")
    return PASSED, ""


def _unwrap(error: BaseException) -> BaseException:
    """Hypothesis wraps some failures (flaky, grouped); find the student-facing one."""
    while isinstance(error, BaseExceptionGroup) and error.exceptions:
        error = error.exceptions[0]
    return error


def _seed_once(test: Any) -> None:
    """The check's derandomized seed, computed once per process instead of on every run.

    A derandomized hypothesis test seeds itself from a digest of its source, which hypothesis
    recomputes (tokenizing the source) on each run: ~1.5 ms a check and submission. The same
    seed, set once, draws the same examples."""
    if getattr(test, "_grader_seeded", False):
        return
    test._grader_seeded = True
    try:  # hypothesis's own helpers (private: without them, hypothesis digests every run)
        from hypothesis.internal.compat import int_from_bytes
        from hypothesis.internal.reflection import function_digest
    except ImportError:
        return
    digest = function_digest(test.hypothesis.inner_test)
    test._hypothesis_internal_use_seed = int_from_bytes(digest)
    test._hypothesis_internal_database_key = digest


def _reset_worker_objects_between_examples(test: Any) -> None:
    """Objects the worker keeps for one example (a model, an optimizer) are dropped before
    the next one (hypothesis runs `inner_test` once per example)."""
    inner = test.hypothesis.inner_test
    if getattr(inner, "_grader_resets", False):
        return

    def each_example(*args: Any, **kwargs: Any) -> Any:
        from grader.context import Context

        for value in (*args, *kwargs.values()):
            if isinstance(value, Context):
                value.session.reset()
        return inner(*args, **kwargs)

    each_example._grader_resets = True  # type: ignore[attr-defined]
    test.hypothesis.inner_test = each_example
