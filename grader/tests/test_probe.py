"""The start-up probe: contained by the sandbox here, it gets through once a layer is removed or
the allow-list has a hole, and then grading stops with one line (or goes on with
--allow-unsafe); it costs a few ms."""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import cli, pack, probe, sandbox

from .conftest import copy_solutions


@pytest.fixture(autouse=True, scope="module")
def bundled_pack() -> None:
    """Grade with the bundled pack (grading with another pack makes that one the active one)."""
    pack.activate(None)


@pytest.fixture(autouse=True)
def fresh_verdicts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test probes for itself (verdicts are kept per process)."""
    monkeypatch.setattr(probe, "_verified", {})


def settings(**changes: object) -> sandbox.Settings:
    return sandbox.Settings(protected=sandbox.protected_paths(), **changes)


def test_every_probe_is_contained_here() -> None:
    probes = probe.run(settings())
    protected_file, environment = probes
    assert any(Path(protected_file.path).is_relative_to(folder)
               for folder in sandbox.protected_paths())
    assert environment.path == f"/proc/{os.getpid()}/environ"
    for attempt in probes:
        assert attempt.contained, attempt
        assert attempt.saw.startswith("denied (PermissionError"), attempt
        assert attempt.layer_state == "active"


def test_without_landlock_the_probes_get_through() -> None:
    # As an ordinary user the worker's namespaces sit in a user namespace of their own, which
    # alone refuses the grader's environ (reading it needs ptrace rights there): remove them too.
    removed = dict.fromkeys(("landlock", "network", "disk"), "removed by this test")
    probes = probe.run(settings(disabled=removed))
    protected_file, environment = probes
    assert not protected_file.contained
    assert protected_file.saw == "read 64 bytes"
    assert protected_file.layer_state.startswith("unavailable: removed by this test")
    if not sandbox.can_drop_uid():  # a dropped uid alone keeps the grader's environ closed
        assert not environment.contained
        assert environment.saw == "read 64 bytes"
    with pytest.raises(probe.UnsafeSandbox, match="The landlock layer must stop that"):
        probe.verify(settings(disabled=removed))
    assert probe.verify(settings(disabled=removed, allow_unsafe=True))


def test_an_ordinary_users_namespace_also_hides_the_grader_environment() -> None:
    if os.geteuid() == 0:
        pytest.skip("root's workers use no user namespace")
    _, environment = probe.run(settings(disabled={"landlock": "removed by this test"}))
    assert environment.contained, environment


@pytest.fixture
def leaky_allow_list(monkeypatch: pytest.MonkeyPatch) -> Path:
    """The allow-list with the solutions folder granted, as a venv's `lib64` link once did."""
    solutions = pack.pack_folder("solutions").resolve()
    original = sandbox.read_paths

    def leaky(*args: object, **kwargs: object) -> tuple[str, ...]:
        return (*original(*args, **kwargs), str(solutions))

    monkeypatch.setattr(sandbox.process, "read_paths", leaky)
    return solutions


def test_a_hole_in_the_allow_list_stops_grading_with_one_line(leaky_allow_list: Path,
                                                                tmp_path: Path) -> None:
    folder = copy_solutions(tmp_path / "s", parts=("tensors",))
    runner = CliRunner()
    for command in (["check", str(folder), "--report", str(tmp_path / "r.html")],
                    ["grade", str(tmp_path), "--out", str(tmp_path / "out"), "-j", "1"]):
        result = runner.invoke(cli.main, [*command, "--only", "tensors.dot", "--device", "cpu"])
        assert result.exit_code == 1, result.output
        errors = [line for line in result.output.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, result.output
        assert errors[0].startswith("Error: refusing to grade: a probe worker could read a "
                                    f"protected file (solutions, checks, examples): "
                                    f"{leaky_allow_list}")
        assert "The landlock layer must stop that (here: active)" in errors[0]
        assert "Traceback" not in result.output
    assert not (tmp_path / "out" / "results.json").exists()


def test_allow_unsafe_grades_anyway(leaky_allow_list: Path, tmp_path: Path) -> None:
    folder = copy_solutions(tmp_path / "s", parts=("tensors",))
    result = CliRunner().invoke(cli.main, ["check", str(folder), "--only", "tensors.dot",
                                           "--device", "cpu", "--allow-unsafe",
                                           "--report", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert "Total: 1.5 / 1.5" in result.output


def test_the_first_worker_probes_before_any_student_code(tmp_path: Path) -> None:
    folder = copy_solutions(tmp_path / "s", parts=("tensors",))
    with open(folder / "tensors.py", "a") as handle:
        handle.write("\n\nraise SystemExit('imported')\n")  # would end a worker that imports it
    with sandbox.Worker(folder, settings=settings()) as worker:
        worker.start()
        (probes,) = probe._verified.values()
        assert [attempt.contained for attempt in probes] == [True, True]
        assert worker.pid is not None  # still running: the submission was never imported


def test_the_probe_costs_a_millisecond_or_two(tmp_path: Path) -> None:
    """What a `grade`/`check` pays for the proof: one round trip to its first worker, which
    starts anyway (target: < 50 ms)."""
    with sandbox.Worker(tmp_path, settings=settings()) as worker:
        worker.is_probe = True
        worker.start()
        costs = []
        for _ in range(20):
            started = time.perf_counter()
            probe.attempt(worker)
            costs.append(time.perf_counter() - started)
    assert statistics.median(costs) < 0.05, costs


def test_doctor_shows_what_each_probe_tried_and_saw() -> None:
    result = CliRunner().invoke(cli.main, ["doctor"])
    assert result.exit_code == 0, result.output
    assert result.output.count("tried: read ") == 2
    assert f"tried: read /proc/{os.getpid()}/environ" in result.output
    assert result.output.count("saw:   denied (PermissionError") == 2
    assert result.output.count("contained") == 2
    assert "refuse to grade" not in result.output
