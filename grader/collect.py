"""A pack's checks, collected once per grading process by pytest, and run one at a time.

`checks_of(pack)` starts one pytest session over the pack's `tests/` (with `grader.plugin` and
a `Driver` that tells the plugin that `grader` drives it), collects it once, and keeps it for
every submission the process grades. `PackChecks.run` runs one collected item with pytest's own
run protocol (fixtures, hooks, reports) and returns the outcome its report carried.
"""

from __future__ import annotations

import atexit
import sys
from functools import cache
from pathlib import Path

import pytest

from grader.pack import Pack, PackError, release_manifest, solution
from grader.spec import (
    CPU_ONLY,
    DEVICE_PROBE_DESCRIPTION,
    DEVICE_PROBE_NAME,
    EACH_DEVICE,
    META,
    META_EXAMPLES,
    Exercise,
    Property,
)

# pytest's built-in plugins a grading session does without: no terminal output, no cache
# written into the pack, no capture of the grader's own output, no global handlers.
_QUIET = ["-p", "no:terminal", "-p", "no:cacheprovider", "-p", "no:faulthandler",
          "-p", "no:logging", "-p", "no:pastebin", "-p", "no:junitxml", "-p", "no:stepwise",
          "-p", "no:randomly", "--capture=no", "-o", "addopts="]


@cache
def pack_root_of(test_file: Path) -> Path:
    """The pack a test module belongs to: the nearest folder above it with pack metadata."""
    for folder in Path(test_file).resolve().parents:
        if (folder / "pack.toml").is_file():
            return folder
        pyproject = folder / "pyproject.toml"
        if pyproject.is_file() and "[tool.grader]" in pyproject.read_text(encoding="utf-8"):
            return folder
    raise PackError(f"{test_file} is not in a pack (no pack.toml above it)")


def _location(item: pytest.Item, root: Path) -> str:
    path = Path(item.path)
    relative = path.relative_to(root) if root in path.parents else path
    return f"{relative}::{item.originalname if isinstance(item, pytest.Function) else item.name}"


def _marker_value(item: pytest.Item, name: str, default: object = None) -> object:
    marker = item.get_closest_marker(name)
    if marker is None:
        return default
    if marker.args:
        return marker.args[0]
    return marker.kwargs.get("points", marker.kwargs.get("n", default))


def build_exercises(pack: Pack, items: list[pytest.Item]) -> list[Exercise]:
    """The pack's exercises, in pack order, from its collected items (each marked
    `exercise`); raises `PackError` with one line naming the test and the fix."""
    exercises: dict[str, Exercise] = {}
    declared_at: dict[str, str] = {}
    properties: dict[tuple[str, str], Property] = {}
    for item in items:
        marker = item.get_closest_marker("exercise")
        location = _location(item, pack.root)
        if marker is None or not marker.args or not isinstance(marker.args[0], str):
            raise PackError(f"{location}: @pytest.mark.exercise needs the exercise id, e.g. "
                            "@pytest.mark.exercise(\"tensors.dot\")")
        exercise_id = marker.args[0]
        part, _, name = exercise_id.partition(".")
        if not name or part not in pack.parts:
            raise PackError(f"{location}: exercise id {exercise_id!r} must be `<part>.<name>` "
                            f"with a part of the pack ({', '.join(pack.parts)})")
        summary = marker.args[1] if len(marker.args) > 1 else marker.kwargs.get("summary", "")
        declaration = Exercise(exercise_id, summary, tuple(marker.kwargs.get("forbid", ())),
                               inputs_unchanged=bool(marker.kwargs.get("inputs_unchanged", True)))
        exercise = exercises.get(exercise_id)
        if exercise is None:
            exercises[exercise_id] = exercise = declaration
            declared_at[exercise_id] = location
        elif (declaration.summary and exercise.summary and declaration.summary
              != exercise.summary) or declaration.forbid != exercise.forbid or \
                declaration.inputs_unchanged != exercise.inputs_unchanged:
            raise PackError(f"{location}: exercise {exercise_id} is declared twice, differently "
                            f"(also at {declared_at[exercise_id]}); declare it once and reuse "
                            "the marker")
        elif not exercise.summary:
            exercise.summary = declaration.summary
        points = _marker_value(item, "points")
        if not isinstance(points, (int, float)) or isinstance(points, bool) or points < 0:
            raise PackError(f"{location}: a graded check needs its points, e.g. "
                            "@pytest.mark.points(1)")
        function_name = item.originalname if isinstance(item, pytest.Function) else item.name
        device = device_of(item)
        case = _case_id(item, device)
        prop_name = function_name.removeprefix("test_") + case
        if device == META:
            probe_points = _marker_value(item, "device_probe", 0)
            prop = _property(properties, exercise, DEVICE_PROBE_NAME + case, location,
                             description=DEVICE_PROBE_DESCRIPTION, points=float(probe_points),
                             devices=META, max_examples=META_EXAMPLES, probe_of=prop_name)
        else:
            examples = _marker_value(item, "examples")
            devices_marker = item.get_closest_marker("devices")
            prop = _property(
                properties, exercise, prop_name, location,
                description=_description(item, function_name), points=float(points),
                devices=CPU_ONLY if devices_marker and "cpu" in devices_marker.args
                else EACH_DEVICE,
                max_examples=examples if isinstance(examples, int) else None,
                hidden=item.get_closest_marker("hidden") is not None)
        if device in prop.items:
            raise PackError(f"{location}: exercise {exercise_id} has two checks named "
                            f"{prop.name!r}; give each check its own name")
        prop.items[device] = item
        item.stash[_check_key()] = (exercise, prop)
    ordered = sorted(exercises.values(), key=lambda ex: pack.parts.index(ex.part))
    manifest = release_manifest(pack)
    if manifest is None:
        for exercise in ordered:
            if not hasattr(solution(exercise.part, pack), exercise.name):
                raise PackError(f"exercise {exercise.id} has no solution: "
                                f"solutions/{exercise.part}.py defines no `{exercise.name}`")
    else:  # a student release: only the checks it carries
        carried = set(manifest["checks"])
        for exercise in ordered:
            exercise.properties = [prop for prop in exercise.properties
                                   if f"{exercise.id}:{prop.name}" in carried]
        ordered = [exercise for exercise in ordered if exercise.properties]
    return ordered


def device_of(item: pytest.Item) -> str:
    """The device a collected check runs on: its `ctx` parameter (`cpu` when it has none)."""
    return item.callspec.params.get("ctx", "cpu") if hasattr(item, "callspec") else "cpu"


def _case_id(item: pytest.Item, device: str) -> str:
    """`[3]` for `test_x[cpu-3]` (a parametrized check: each case is a check of its own),
    `""` for `test_x[cpu]`: the device is not part of a check's name."""
    if not isinstance(item, pytest.Function) or item.name == item.originalname:
        return ""
    tokens = item.name[len(item.originalname):].strip("[]").split("-")
    if device in tokens:
        tokens.remove(device)
    return f"[{'-'.join(tokens)}]" if tokens else ""


def _check_key():  # noqa: ANN202 - the plugin's stash key (imported late: no cycle)
    from grader.plugin import CHECK_KEY

    return CHECK_KEY


def _property(properties: dict[tuple[str, str], Property], exercise: Exercise, name: str,
              location: str, **fields: object) -> Property:
    """The exercise's property of that name, created (in collection order) on first sight."""
    key = (exercise.id, name)
    if key not in properties:
        properties[key] = Property(name=name, location=location, **fields)  # type: ignore[arg-type]
        exercise.properties.append(properties[key])
    return properties[key]


def _description(item: pytest.Item, function_name: str) -> str:
    import inspect

    function = getattr(item, "function", None)
    doc = inspect.getdoc(function) if function is not None else None
    return " ".join((doc or function_name.removeprefix("test_").replace("_", " ")).split())


class PackChecks:
    """One pack's checks, collected once by pytest, run on demand."""

    def __init__(self, pack: Pack) -> None:
        from _pytest.config import _prepareconfig

        from grader import plugin

        self.pack = pack
        self._errors: list[str] = []
        args = [str(pack.folder("tests")), "--rootdir", str(pack.root), "--confcutdir",
                str(pack.root), "-p", "grader.plugin", *_QUIET]
        self.config = _prepareconfig(args, plugins=[plugin.Driver(), self])
        self.config._do_configure()
        self.session = pytest.Session.from_config(self.config)
        self.config.hook.pytest_sessionstart(session=self.session)
        try:
            self.config.hook.pytest_collection(session=self.session)
        except PackError:
            self.close()
            raise
        if self._errors:
            self.close()
            raise PackError(self._errors[0])
        grading = self.config.stash[plugin.GRADING_KEY]
        self.exercises: tuple[Exercise, ...] = tuple(grading.exercises.get(pack.root, ()))
        if not self.exercises and release_manifest(pack) is None:
            self.close()
            raise PackError(f"{pack.folder('tests')} has no graded checks: mark a test with "
                            "@pytest.mark.exercise(...) and @pytest.mark.points(...)")

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """A check module that does not import: one line naming it and the error."""
        if report.failed:
            lines = [line for line in report.longreprtext.strip().splitlines() if line.strip()]
            where = report.nodeid or str(self.pack.folder("tests"))
            detail = next((line.lstrip("E ").strip() for line in reversed(lines)
                           if line.startswith("E ")), lines[-1] if lines else "")
            self._errors.append(f"{self.pack.root / where}: the check module does not import "
                                f"({detail})")

    def run(self, item: pytest.Item, run: object) -> tuple[str, str]:
        """Run one item with pytest's run protocol under `run` (a `plugin.Run`): its
        (status, feedback) as its report said."""
        from _pytest.runner import runtestprotocol

        from grader import plugin
        from grader.failures import ERROR

        grading = self.config.stash[plugin.GRADING_KEY]
        grading.run = run  # type: ignore[assignment]
        try:
            runtestprotocol(item, log=True, nextitem=None)
        finally:
            grading.run = None
        outcome = plugin.take_outcome(item.nodeid)
        if outcome is None:
            return ERROR, ("The grader could not run this check (it reported no outcome). "
                           "Please tell your instructor.")
        return outcome

    def close(self) -> None:
        if getattr(self, "_closed", False):
            return
        self._closed = True
        try:
            self.config.hook.pytest_sessionfinish(session=self.session, exitstatus=0)
        finally:
            self.config._ensure_unconfigure()


_collected: dict[Path, PackChecks] = {}


def checks_of(pack: Pack) -> PackChecks:
    """The pack's collected checks (collected at the first call in this process)."""
    if pack.root not in _collected:
        _collected[pack.root] = PackChecks(pack)
    return _collected[pack.root]


@atexit.register
def _close_all() -> None:
    for checks in _collected.values():
        try:
            checks.close()
        except Exception:  # noqa: BLE001 - at exit: nothing left to report to
            pass
    _collected.clear()


def forget(pack: Pack) -> None:
    """Close a pack's session and unload its check modules (tests that grade several packs
    with the same module names in one process)."""
    checks = _collected.pop(pack.root, None)
    if checks is not None:
        checks.close()
    tests = str(pack.folder("tests"))
    for name, module in list(sys.modules.items()):
        if (getattr(module, "__file__", None) or "").startswith(tests):
            del sys.modules[name]
