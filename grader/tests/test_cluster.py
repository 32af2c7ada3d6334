"""Grading on a Dask cluster (`grader.cluster`): the same results as the local pool, retries
after a worker dies, Ctrl-C, a real `dask scheduler` / `dask worker` pair, `doctor`.

Everything runs on loopback with bounded waits; the classes are small and graded on one part.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from grader import pack, runner
from grader.cli import _options, main
from grader.cluster import shipping
from grader.results import CheckResult, ExerciseResult, SubmissionResult, results_json
from grader.session import Limits
from grader.worker import isolation

from .conftest import copy_solutions

ONLY = ("tensors",)
SLEEP_SECONDS = 6  # a submission whose import sleeps: long enough to kill its worker mid-grade
WAIT_SECONDS = 240  # the longest any step may take on a loaded 2-core machine


# --- helpers ----------------------------------------------------------------------------------


def _processes() -> dict[int, tuple[int, str, str]]:
    """pid -> (parent pid, state, command line) of every process."""
    table = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                command = handle.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        table[int(entry)] = (int(fields[1]), fields[0], command)
    return table


def descendants(pid: int) -> dict[int, int]:
    """pid -> depth below `pid` of every live descendant (1: children)."""
    table = _processes()
    found, frontier, depth = {}, [pid], 0
    while frontier:
        depth += 1
        frontier = [child for child, (parent, _, _) in table.items() if parent in frontier
                    and child not in found]
        found.update(dict.fromkeys(frontier, depth))
    return found


def alive(pids: list[int]) -> list[int]:
    """Those still running (a zombie has ended: it only waits to be reaped)."""
    table = _processes()
    return [pid for pid in pids if pid in table and table[pid][1] != "Z"]


def wait_until(condition: Callable[[], object], seconds: float, what: str) -> object:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"waited {seconds:g} s for {what}")


def grading_under(pid: int) -> list[int] | None:
    """While a submission is graded below `pid` (a Dask worker, or the grader): every process
    below it, once a judge's zygote has forked the sandboxed worker (depth 3 below a worker)."""
    below = descendants(pid)
    table = _processes()
    forked = [child for child in below if "zygote" in table.get(child, (0, "", ""))[2]
              and table.get(table[child][0], (0, "", ""))[2].find("zygote") >= 0]
    return list(below) if forked else None


def files_of(folder: Path) -> dict[str, bytes]:
    return {str(path.relative_to(folder)): path.read_bytes()
            for path in sorted(folder.rglob("*")) if path.is_file()}


def slow_submission(folder: Path, seconds: float = SLEEP_SECONDS) -> Path:
    """Correct, but its tensors.py sleeps while it is imported."""
    copy_solutions(folder, ("tensors",))
    source = (folder / "tensors.py").read_text()
    (folder / "tensors.py").write_text(f"import time\ntime.sleep({seconds})\n{source}")
    return folder


# --- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_class(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The bundled examples, plus a .zip hand-in."""
    root = tmp_path_factory.mktemp("class")
    for example in runner.submission_folders(pack.pack_folder("examples")):
        shutil.copytree(example, root / example.name)
    with zipfile.ZipFile(root / "eve.zip", "w") as archive:
        archive.write(pack.pack_folder("solutions") / "tensors.py", "tensors.py")
    return root


@pytest.fixture(scope="module")
def graded_locally(small_class: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`grader grade` of the small class with the local pool: the reference outputs."""
    out = tmp_path_factory.mktemp("local") / "out"
    result = CliRunner().invoke(main, ["grade", str(small_class), "--out", str(out), "-j", "2",
                                       "--only", *ONLY])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(scope="module")
def cluster() -> Iterator:
    """A LocalCluster of 2 single-threaded workers, through the Python API."""
    pytest.importorskip("distributed")
    from grader.cluster.client import Cluster

    with Cluster("local:2") as connected:
        yield connected
        table = _processes()
        judges = [pid for pid in descendants(os.getpid()) if "grader.cluster.judge" in
                  table[pid][2]]
        assert judges
        below = judges + [pid for judge in judges for pid in descendants(judge)]
    wait_until(lambda: not alive(below), 60, "the judges, zygotes and sandboxes to end")


# --- plain data -------------------------------------------------------------------------------


def test_a_result_survives_its_plain_data_round_trip_exactly() -> None:
    check = CheckResult("values", "equals torch.softmax", "failed", 0.1 + 0.2, 1.5,
                        "got nan — «x» = 1e-300")
    exercise = ExerciseResult("tensors.softmax", 0.30000000000000004, 2.5, "failed",
                              "[failed] ...", [check], "softmax along dim", 0.123456789)
    result = SubmissionResult("zoë", [exercise], 1.0 / 3.0, ("cpu", "cuda"),
                              {"landlock": "active", "uid": "off: not root"}, ["a note"])
    data = json.loads(json.dumps(result.to_dict()))
    assert SubmissionResult.from_dict(data) == result
    assert SubmissionResult.from_dict(data).to_dict() == result.to_dict()


def test_a_shipment_arrives_as_the_same_files_under_the_same_name(tmp_path: Path) -> None:
    submission = copy_solutions(tmp_path / "ada", ("tensors",))
    (submission / "notebooks").mkdir()
    (submission / "notebooks" / "Part 1.ipynb").write_text("{}")
    (submission / ".git").mkdir()
    (submission / ".git" / "config").write_text("secret")
    (submission / "link.py").symlink_to("/etc/passwd")
    with open(submission / "data.bin", "wb") as handle:  # beyond the sandbox's cap: size only
        handle.truncate(shipping.SUBMISSION_CAP_BYTES + 1)
    shipment = shipping.ship(submission, by_path=False)
    assert shipping.shipped_size(shipment) < 1 << 20
    with shipping.received(shipment) as received:
        assert received.name == "ada" and received != submission
        assert sorted(str(p.relative_to(received)) for p in received.rglob("*")) == \
            ["data.bin", "link.py", "notebooks", "notebooks/Part 1.ipynb", "tensors.py"]
        assert (received / "tensors.py").read_bytes() == (submission / "tensors.py").read_bytes()
        assert os.readlink(received / "link.py") == "/etc/passwd"
        assert (received / "data.bin").stat().st_size == shipping.SUBMISSION_CAP_BYTES + 1
        assert shipping.ship(received, by_path=False)["digest"] == shipment["digest"]
    assert not received.exists()

    by_path = shipping.ship(submission, by_path=True)
    with shipping.received(by_path) as received:
        assert received == submission.resolve()
    (submission / "tensors.py").write_text("# changed after shipping\n")
    with pytest.raises(shipping.Unseen), shipping.received(by_path):
        pass

    archive = tmp_path / "eve.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("tensors.py", "x = 1\n")
    with shipping.received(shipping.ship(archive, by_path=False)) as received:
        assert received.name == "eve.zip" and received.read_bytes() == archive.read_bytes()


def test_a_shipped_pack_is_unpacked_once_under_its_own_name() -> None:
    root = pack.current().root
    shipment = shipping.ship_pack(root, by_path=False)
    names = [relative for relative, _, _ in shipment["contents"]]
    assert "pack.toml" in names and "tests" in names and "solutions" in names
    assert not any(name.startswith("examples") or "__pycache__" in name for name in names)
    received = shipping.received_pack(shipment)
    assert received.name == root.name and received != root
    assert shipping.received_pack(shipment) == received  # once per process
    assert shipping.received_pack(shipping.reference(shipment)) == received
    with pytest.raises(shipping.PackNeeded):
        shipping.received_pack({**shipping.reference(shipment), "digest": "0" * 64})
    assert pack.load(received).title == pack.load(root).title
    assert shipping.ship_pack(received, by_path=False)["digest"] == shipment["digest"]
    assert shipping.received_pack(shipping.ship_pack(root, by_path=True)) == root


# --- the command line -------------------------------------------------------------------------


def test_scheduler_mistakes_get_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    cli = CliRunner()
    folder = str(pack.pack_folder("examples"))
    for arguments, message in [
        (["grade", folder, "--scheduler", "local:0"], "Error: --scheduler local:0: N in local:N"),
        (["grade", folder, "-j", "2", "--scheduler", "local:2"], "Error: -j and --scheduler"),
    ]:
        result = cli.invoke(main, arguments)
        assert result.exit_code == 1 and message in result.output, result.output
        assert "Traceback" not in result.output

    pytest.importorskip("distributed")
    monkeypatch.setattr("grader.cluster.client.CONNECT_SECONDS", 1)
    result = cli.invoke(main, ["grade", folder, "--scheduler", "tcp://127.0.0.1:9"])
    assert result.exit_code == 1, result.output
    assert result.output.startswith("Error: --scheduler tcp://127.0.0.1:9: cannot connect")

    monkeypatch.setitem(sys.modules, "distributed", None)  # as if the extra were not installed
    for command in (["grade", folder], ["doctor"]):
        result = cli.invoke(main, [*command, "--scheduler", "local:2"])
        assert result.exit_code == 1
        assert result.output == ("Error: --scheduler needs Dask's distributed: "
                                 "pip install 'torch-grader[dask]'\n")


def test_importing_the_grader_does_not_import_dask() -> None:
    code = "import sys, grader.cli, grader.cluster; print('distributed' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True).stdout == "False\n"


@pytest.mark.slow
def test_a_local_cluster_grades_a_class_byte_for_byte_like_the_local_pool(
        small_class: Path, graded_locally: Path, tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["grade", str(small_class), "--out", str(out),
                                       "--scheduler", "local:2", "--only", *ONLY])
    assert result.exit_code == 0, result.output
    assert "Grading on a local cluster: 2 workers, 2 threads" in result.output
    assert "Graded 5 submissions" in result.output
    assert files_of(out) == files_of(graded_locally)  # results.json, CSVs, every report


# --- faults, on one LocalCluster --------------------------------------------------------------


@pytest.mark.slow
def test_submissions_sent_as_bytes_grade_the_same(cluster, small_class: Path,  # noqa: ANN001
                                                  graded_locally: Path) -> None:
    options = _options("all", 12, ONLY)
    results = list(cluster.grade(runner.submission_folders(small_class), options,
                                 ship="bytes"))
    assert results_json(results, devices=options.devices) == \
        (graded_locally / "results.json").read_text(encoding="utf-8")


def _grade_in_background(cluster, folders: list[Path]) -> tuple[threading.Thread, list]:  # noqa: ANN001
    results: list = []

    def grade() -> None:
        results.extend(cluster.grade(folders, _options("all", 12, ONLY)))

    thread = threading.Thread(target=grade, daemon=True)
    thread.start()
    return thread, results


WORKER_PIDS: dict[str, int] = {}  # Dask worker address -> its process id
KILLED: set[int] = set()


def _kill_the_worker_grading(cluster, index: int) -> list[int]:  # noqa: ANN001
    """SIGKILL the Dask worker process grading folders[index] once its sandboxed worker runs;
    returns the processes it had below it (its judge, zygote, sandboxed worker)."""

    def grading_worker() -> tuple[int, list[int]] | None:
        try:
            ours = {future.key for future in list(cluster.outstanding)}  # this run's tasks
        except RuntimeError:  # changed while copied
            return None
        for address, keys in cluster.client.processing().items():
            if any(key in ours and key.rsplit("-", 2)[1] == str(index) for key in keys):
                if address not in WORKER_PIDS:  # asked once: a dead worker would not answer
                    WORKER_PIDS.update(cluster.client.run(os.getpid, workers=[address]))
                pid = WORKER_PIDS[address]
                if pid in KILLED:  # the scheduler has not noticed yet
                    return None
                below = grading_under(pid)
                return (pid, below) if below else None
        return None

    pid, below = wait_until(grading_worker, WAIT_SECONDS, "the submission to be graded")
    os.kill(pid, signal.SIGKILL)
    KILLED.add(pid)
    return below


@pytest.mark.slow
def test_a_worker_killed_mid_grade_costs_one_retry_and_nothing_is_lost(
        cluster, tmp_path: Path) -> None:  # noqa: ANN001
    folders = [copy_solutions(tmp_path / "ok", ("tensors",)), slow_submission(tmp_path / "slow")]
    thread, results = _grade_in_background(cluster, folders)
    below = _kill_the_worker_grading(cluster, 1)
    wait_until(lambda: not alive(below), 30, "the judge, zygote and sandbox to end")
    thread.join(WAIT_SECONDS)
    assert not thread.is_alive()
    assert sorted(result.id for result in results) == ["ok", "slow"]
    for result in results:
        assert {ex.status for ex in result.exercises} == {"passed"}, result.id
    assert cluster.failed == []


def _two_deaths_make_an_infrastructure_error(cluster, tmp_path: Path) -> None:  # noqa: ANN001
    folders = [copy_solutions(tmp_path / "ok", ("tensors",)), slow_submission(tmp_path / "slow")]
    thread, results = _grade_in_background(cluster, folders)
    below = _kill_the_worker_grading(cluster, 1)
    below += _kill_the_worker_grading(cluster, 1)
    wait_until(lambda: not alive(below), 30, "the judges, zygotes and sandboxes to end")
    thread.join(WAIT_SECONDS)
    assert not thread.is_alive()
    by_id = {result.id: result for result in results}
    assert sorted(by_id) == ["ok", "slow"]
    assert {ex.status for ex in by_id["ok"].exercises} == {"passed"}
    slow = by_id["slow"]
    assert [ex.id for ex in slow.exercises] == [ex.id for ex in by_id["ok"].exercises]
    assert slow.score == 0 and slow.max_score == by_id["ok"].max_score
    for exercise in slow.exercises:
        assert exercise.status == "error"
        assert exercise.feedback.startswith("Not graded: the grading infrastructure failed "
                                            "twice on this submission (the Dask workers")
    assert cluster.failed == ["slow"]


class HangingOptions(runner.Options):
    """Options that never finish unpickling: the judge given them hangs (as a judge stuck in
    native code would), while the client reads their limits as usual."""

    def __reduce__(self) -> tuple:
        return (time.sleep, (600,))


@pytest.mark.slow
def test_a_hung_judge_is_stopped_and_its_submission_given_up_after_two_tries(
        cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: ANN001
    from grader import given_up

    monkeypatch.setattr(given_up, "GRACE_SECONDS", 1.0)
    options = HangingOptions(only=("tensors.dot",), limits=Limits(submission_seconds=2.0))
    failed_before = list(cluster.failed)  # (the cluster is shared by the module's tests)
    started = time.monotonic()
    results = list(cluster.grade([copy_solutions(tmp_path / "hangs", ("tensors",))], options))
    assert time.monotonic() - started < 120
    assert cluster.failed == [*failed_before, "hangs"]
    cluster.failed[:] = failed_before
    assert [result.id for result in results] == ["hangs"]
    (exercise,) = results[0].exercises
    assert exercise.status == "error"
    assert "failed twice" in exercise.feedback
    assert "its judge did not finish within 3 s" in exercise.feedback
    # the stopped judges were replaced: the cluster grades on
    (after,) = cluster.grade([copy_solutions(tmp_path / "after", ("tensors",))],
                             runner.Options(only=("tensors.dot",)))
    assert {ex.status for ex in after.exercises} == {"passed"}


@pytest.mark.slow
def test_after_two_worker_deaths_a_submission_is_an_explicit_infrastructure_error(
        cluster, tmp_path: Path) -> None:  # noqa: ANN001
    # local:N sets the scheduler's allowed-failures to 1: it gives up after the second death
    _two_deaths_make_an_infrastructure_error(cluster, tmp_path)


@pytest.mark.slow
def test_ctrl_c_cancels_cleanly_and_leaves_no_process_behind(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    slow_submission(tmp_path / "class" / "slow")
    grading = subprocess.Popen(
        [sys.executable, "-m", "grader", "grade", str(tmp_path / "class"), "--out",
         str(tmp_path / "out"), "--scheduler", "local:1", "--only", *ONLY],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        below = wait_until(lambda: grading_under(grading.pid), WAIT_SECONDS,
                           "the submission to be graded")
        os.killpg(grading.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        output, _ = grading.communicate(timeout=60)
    finally:
        if grading.poll() is None:
            grading.kill()
    assert grading.returncode == 1, output
    assert b"Aborted!" in output
    wait_until(lambda: not alive(below), 30, "every process of the grading to end")
    assert not (tmp_path / "out").exists()


# --- a real scheduler and workers -------------------------------------------------------------


@pytest.fixture(scope="module")
def scheduler_address(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`dask scheduler` and `dask worker` (2 processes of one thread) on 127.0.0.1."""
    distributed = pytest.importorskip("distributed")
    folder = tmp_path_factory.mktemp("dask")
    scheduler_file = folder / "scheduler.json"
    log = open(folder / "dask.log", "wb")  # noqa: SIM115
    common = {"stdout": log, "stderr": log, "start_new_session": True, "cwd": folder}
    scheduler = subprocess.Popen([sys.executable, "-m", "dask", "scheduler", "--host",
                                  "127.0.0.1", "--port", "0", "--no-dashboard",
                                  "--scheduler-file", str(scheduler_file)], **common)
    workers, below = None, []
    try:
        wait_until(scheduler_file.exists, 60, "the scheduler to start")
        address = json.loads(scheduler_file.read_text())["address"]
        workers = subprocess.Popen([sys.executable, "-m", "dask", "worker", address,
                                    "--nworkers", "2", "--nthreads", "1", "--no-dashboard",
                                    "--host", "127.0.0.1", "--local-directory", str(folder)],
                                   **common)
        with distributed.Client(address, timeout=30) as client:
            client.wait_for_workers(2, timeout=120)
        yield address
        below = list(descendants(workers.pid))
        assert any("grader.cluster.judge" in _processes().get(pid, (0, "", ""))[2]
                   for pid in below)
    finally:
        for process in (workers, scheduler):
            if process is not None:
                process.terminate()
                try:
                    process.wait(60)
                except subprocess.TimeoutExpired:
                    process.kill()
        log.close()
    wait_until(lambda: not alive(below), 30, "the workers' judges to end with them")


@pytest.mark.slow
def test_a_dask_scheduler_and_workers_grade_the_bundled_examples(
        scheduler_address: str, graded_locally: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["grade", "--out", str(out), "--scheduler",
                                       scheduler_address, "--only", *ONLY])
    assert result.exit_code == 0, result.output
    assert f"Grading on {scheduler_address}: 2 workers, 2 threads" in result.output
    graded = json.loads((out / "results.json").read_text())
    expected = json.loads((graded_locally / "results.json").read_text())
    assert graded["grader"] == expected["grader"]
    assert graded["submissions"] == [submission for submission in expected["submissions"]
                                     if submission["id"] != "eve"]
    for name in ("ada", "ben", "cleo", "dev"):
        assert (out / name / "report.html").read_bytes() == \
            (graded_locally / name / "report.html").read_bytes()


@pytest.mark.slow
def test_a_scheduler_allowing_more_deaths_still_gets_one_retry(scheduler_address: str,
                                                                tmp_path: Path) -> None:
    # `dask scheduler` allows 3 deaths per task: the client stops the third attempt itself
    from grader.cluster.client import Cluster

    with Cluster(scheduler_address) as connected:
        _two_deaths_make_an_infrastructure_error(connected, tmp_path)


@pytest.mark.slow
def test_ctrl_c_stops_the_grading_on_a_cluster_that_keeps_running(scheduler_address: str,
                                                                   tmp_path: Path) -> None:
    import distributed

    with distributed.Client(scheduler_address, timeout=30) as client:
        workers = list(client.run(os.getpid).values())
    slow_submission(tmp_path / "class" / "slow", seconds=50)
    grading = subprocess.Popen(
        [sys.executable, "-m", "grader", "grade", str(tmp_path / "class"), "--out",
         str(tmp_path / "out"), "--scheduler", scheduler_address, "--only", *ONLY],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        def sandboxes() -> list[int]:  # forked by a zygote below a Dask worker
            table = _processes()
            parent = {pid: table.get(pid, (0, "", ""))[0] for pid in table}
            command = {pid: entry[2] for pid, entry in table.items()}
            return [pid for worker in workers for pid in descendants(worker)
                    if "zygote" in command.get(pid, "")
                    and "zygote" in command.get(parent.get(pid, 0), "")]

        below = wait_until(sandboxes, WAIT_SECONDS, "the submission to be graded")
        os.killpg(grading.pid, signal.SIGINT)
        output, _ = grading.communicate(timeout=60)
    finally:
        if grading.poll() is None:
            grading.kill()
    assert grading.returncode == 1 and b"Aborted!" in output, output
    # its judge was stopped long before the submission's 50 s sleep would have ended
    wait_until(lambda: not alive(below), 20, "the grading on the worker to stop")
    assert alive(workers) == workers


def test_doctor_reports_every_workers_layers(scheduler_address: str,
                                             graded_locally: Path) -> None:
    result = CliRunner().invoke(main, ["doctor", "--scheduler", scheduler_address])
    assert result.exit_code == 0, result.output
    assert len(re.findall(r"^Worker tcp://127\.0\.0\.1:\d+$", result.output, re.M)) == 2
    local = json.loads((graded_locally / "results.json").read_text())["grader"]["isolation"]
    for layer in isolation.LAYERS:
        lines = re.findall(rf"^  {layer} +(.+)$", result.output, re.M)
        assert len(lines) == 2, (layer, result.output)
        if local.get(layer) == isolation.ACTIVE:
            assert lines == ["active", "active"], (layer, result.output)
    assert result.output.count("    contained") >= 2 and "GOT THROUGH" not in result.output
