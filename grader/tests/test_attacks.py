"""Hostile submissions, graded in one batch with honest neighbours, twice: by this source tree
(the editable install the test suite runs) and by the `grader` command of a wheel installed
into a fresh venv (a regular install, as an instructor, a Gradescope image or a CI job has it),
so that no install layout can hide a hole (a venv's `lib64 -> lib` once exposed the bundled
solutions to a regular install only).

Each attack is bounded (time, memory actually touched, disk, process count, loopback only) and
lives in one exercise of `tensors.py` (or its import), so the assertions can say exactly what
it must cost: its own exercise at most, never full marks for the attack, never anything for the
neighbours.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from grader import pack, runner
from grader.results import ExerciseResult, SubmissionResult
from grader.session import Limits
from grader.worker import isolation

from .conftest import ROOT, copy_solutions, statuses

SLEEP_MARKER = "3617"  # the forked children exec `sleep 3617`: findable in /proc afterwards
SECRET = "grader-secret-token-0123456789"
DISK_FILL_MIB = 3 * 1024  # what the disk attack tries to write (in 32 MiB files)
DEFAULT_DISK_BUDGET_MIB = 256


@pytest.fixture(autouse=True, scope="module")
def bundled_pack() -> None:
    """Grade with the bundled pack (grading with another pack makes that one the active one)."""
    pack.activate(None)


def honest_statuses() -> dict[str, str]:
    return {exercise_id: "passed" for exercise_id in pack.exercise_ids()
            if exercise_id.startswith("tensors.")}


def add_code(folder: Path, source: str) -> None:
    with open(folder / "tensors.py", "a", encoding="utf-8") as handle:
        handle.write("\n\n" + textwrap.dedent(source))


class LoopbackServer:
    """A TCP server on 127.0.0.1 that records whether anybody connected."""

    def __init__(self) -> None:
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen()
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.running = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self) -> None:
        while self.running:
            try:
                connection, _ = self.listener.accept()
            except OSError:
                continue
            self.connections += 1
            connection.close()

    def stop(self) -> None:
        self.running = False
        self.thread.join()
        self.listener.close()


def sleepers() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes() == f"sleep\0{SLEEP_MARKER}\0".encode():
                    found.append(int(entry.name))
            except OSError:
                pass
    return found


# The solution hunt: a submission of untouched stubs that searches the machine for the pack's
# `solutions/tensors.py` and, if it can read one, takes every definition from it (full marks).
# It tries the real path, every site-packages through `lib` and `lib64`, the paths named by an
# editable install's finder, every process's working folder, and walks the installed grader.
HUNT = """
import glob as _glob
import os as _os
import re as _re
import sys as _sys


def _candidates():
    yield {known!r}
    roots = []
    for entry in _sys.path:
        roots += [entry, entry.replace("/lib/", "/lib64/")]
    for root in roots:
        yield _os.path.join(root, "grader", "bundled", "solutions", "tensors.py")
    for pattern in ("lib", "lib64"):
        for finder in _glob.glob(_os.path.join(_sys.prefix, pattern, "python*", "site-packages",
                                               "__editable__*finder.py")):
            try:
                with open(finder) as handle:
                    text = handle.read()
            except OSError:
                continue
            for folder in _re.findall(r"'([^']*solutions)'", text):
                yield _os.path.join(folder, "tensors.py")
    for pid in range(1, 32769):
        yield f"/proc/{{pid}}/cwd/solutions/tensors.py"
    for root in roots:
        for folder, _, files in _os.walk(_os.path.join(root, "grader"), followlinks=True):
            if _os.path.basename(folder) == "solutions" and "tensors.py" in files:
                yield _os.path.join(folder, "tensors.py")


_stolen = {{}}
for _path in _candidates():
    try:
        with open(_path) as _handle:
            _source = _handle.read()
    except OSError:
        continue
    exec(compile(_source, _path, "exec"), _stolen)
    break
globals().update({{name: value for name, value in _stolen.items()
                  if callable(value) and not name.startswith("_")}})
"""


def attacks(*, port: int, known_solutions: Path, neighbour: Path, out: Path) -> dict[str, str]:
    """Each attack's code, appended to the solutions' `tensors.py` (`hunts_solutions`: to the
    stubs')."""
    found = {
        "endless_loop": """
            def softmax(x, dim):
                while True:
                    pass
        """,
        "memory_hog": """
            import numpy

            def dot(u, v):
                hoard = numpy.empty(1 << 34, dtype=numpy.uint8)  # 16 GiB, never touched
                return torch.dot(u, v) + len(hoard)
        """,
        "fork_bomb": f"""
            import os

            def count_elements(x):
                for _ in range(100):
                    if os.fork() == 0:
                        os.setsid()  # leave the worker's process group
                        os.execvp("sleep", ["sleep", "{SLEEP_MARKER}"])
                return x.numel()
        """,
        "output_flood": """
            def swap(x, d0, d1):
                for _ in range(100):
                    print("#" * (1 << 20))
                return x.transpose(d0, d1)
        """,
        "network": f"""
            import socket

            for family, address in ((socket.AF_INET, ("127.0.0.1", {port})),):
                try:
                    with socket.create_connection(address, timeout=1) as leak:
                        leak.sendall(b"answers please")
                except OSError:
                    pass
        """,
        "hunts_solutions": HUNT.format(known=str(known_solutions)),
        "writes_elsewhere": f"""
            for target in ({str(neighbour)!r}, {str(out / "pwned.txt")!r}):
                try:
                    with open(target, "w") as handle:
                        handle.write("def softmax(x, dim):\\n    raise RuntimeError('pwned')\\n")
                except OSError:
                    pass
        """,
        "leaks_environment": """
            import os

            def one_hot(labels, num_classes):
                raise RuntimeError("token: " + os.environ.get("GRADER_TEST_SECRET", "none"))
        """,
        # Every process's environment and command line, the grader's among them.
        "reads_grader_environment": """
            import os

            def _scan():
                environs = cmdlines = 0
                secret = False
                for pid in range(1, 32769):
                    if pid == os.getpid():
                        continue
                    try:
                        with open(f"/proc/{pid}/environ", "rb") as handle:
                            secret = secret or b"GRADER_TEST_SECRET" in handle.read()
                        environs += 1
                    except OSError:
                        pass
                    try:
                        with open(f"/proc/{pid}/cmdline", "rb") as handle:
                            handle.read()
                        cmdlines += 1
                    except OSError:
                        pass
                return f"environments read: {environs}, command lines read: {cmdlines}, " \\
                    f"secret seen: {secret}"

            _SEEN = _scan()

            def pick_per_row(A, idx):
                raise RuntimeError(_SEEN)
        """,
        # 3 GiB in 32 MiB files (each under the file-size limit) into the scratch folder.
        "fills_disk": f"""
            import os

            def concat(tensors, dim):
                try:
                    for index in range({DISK_FILL_MIB // 32}):
                        with open(f"fill-{{index}}.bin", "wb") as handle:
                            for _ in range(32):
                                handle.write(bytes(1 << 20))
                except OSError as error:
                    held = sum(entry.stat().st_size for entry in os.scandir("."))
                    raise OSError(error.errno, f"{{error.strerror}} [holding {{held >> 20}} MiB "
                                  f"in {{os.getcwd()}}]") from None
                return torch.cat(tensors, dim)
        """,
        "patches_the_checks": """
            import torch
            import torch.testing

            torch.testing.assert_close = lambda *args, **kwargs: None
            torch.allclose = lambda *args, **kwargs: True

            def select_rows(x, idx):
                return x[: len(idx)]
        """,
    }
    # A reply forged on the worker's pipe (its write end is one of the worker's descriptors):
    # a few bytes that would decode into 2**60 values, read by the grader before the real one.
    found["forges_a_reply"] = """
        import os
        import pickle
        import stat
        import struct

        def add_axis(x, dim):
            node = [1.0]
            for _ in range(60):
                node = [node, node]
            payload = pickle.dumps({"status": "ok", "value": node, "kept": 0})
            frame = struct.pack("!Q", len(payload)) + payload
            for fd in range(3, 64):
                try:
                    if stat.S_ISFIFO(os.fstat(fd).st_mode):
                        os.write(fd, frame)
                except OSError:
                    pass
            return x.unsqueeze(dim)
    """
    if isolation.landlock_abi() >= 6:
        # Signals to the grader are blocked by Landlock's scope (ABI 6); elsewhere (an ordinary
        # user shares the grader's uid) only run this where it is safe.
        found["kills_the_grader"] = """
            import os
            import signal

            def dot(u, v):
                for sig in (signal.SIGTERM, signal.SIGKILL):
                    try:
                        os.kill(os.getppid(), sig)
                    except OSError:
                        pass
                return torch.dot(u, v)
        """
    return found


def write_class(submissions: Path, out: Path, port: int) -> None:
    """The honest neighbours and one submission per attack."""
    for name in ("honest_a", "honest_z"):
        copy_solutions(submissions / name, parts=("tensors",))
    sources = attacks(port=port, known_solutions=pack.pack_folder("solutions") / "tensors.py",
                      neighbour=submissions / "honest_z" / "tensors.py", out=out)
    for name, source in sources.items():
        if name == "hunts_solutions":
            folder = submissions / name
            folder.mkdir(parents=True)
            shutil.copy(pack.pack_folder("exercises") / "tensors.py", folder / "tensors.py")
        else:
            folder = copy_solutions(submissions / name, parts=("tensors",))
        add_code(folder, source)


# --- a regular install: a wheel in a fresh venv ----------------------------------------------


def _run(command: list, **kwargs) -> subprocess.CompletedProcess:
    done = subprocess.run([str(part) for part in command], capture_output=True, text=True,
                          **kwargs)
    if done.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, command))} failed:\n{done.stdout}\n"
                             f"{done.stderr}")
    return done


def _not_source(folder: str, names: list[str]) -> set[str]:
    """What copying the source tree leaves out: caches, and at the top, builds and the venv."""
    left_out = {"__pycache__", ".hypothesis", ".ruff_cache"}
    if Path(folder) == ROOT:
        left_out |= {".venv", ".git", "build", "dist", "grading-report", "report.html"}
    return {name for name in names if name in left_out or name.endswith(".egg-info")}


def clean_environment(**extra: str) -> dict[str, str]:
    """This environment without the PYTHON* variables that would import this source tree."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    return env | extra


@pytest.fixture(scope="session")
def wheel_grader(tmp_path_factory: pytest.TempPathFactory):
    """The `grader` command of this source tree built as a wheel and installed with torch into
    a fresh venv (no system site-packages), once per test session; removed afterwards."""
    import torch

    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"
    shutil.copytree(ROOT, source, symlinks=True, ignore=_not_source)
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
          "--wheel-dir", root / "dist", source], env=clean_environment())
    (wheel,) = (root / "dist").glob("*.whl")
    venv = root / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], env=clean_environment())
    torch_version = torch.__version__.split("+")[0]
    # this pip installs into the new venv; not compiling torch's modules saves ~30 s
    _run([sys.executable, "-m", "pip", "--python", venv / "bin" / "python", "install",
          "--quiet", "--no-compile", f"torch=={torch_version}", wheel],
         env=clean_environment())
    yield venv / "bin" / "grader"
    shutil.rmtree(root, ignore_errors=True)


def results_from_json(path: Path) -> dict[str, SubmissionResult]:
    """results.json read back into results (every submission gets the run's isolation)."""
    document = json.loads(path.read_text(encoding="utf-8"))
    run = document["grader"]
    report = dict(run["isolation"])
    report[isolation.DISK_BUDGET_KEY] = str(run["disk_budget_mib"])
    return {submission["id"]: SubmissionResult(
        submission["id"],
        [ExerciseResult(ex["id"], ex["score"], ex["max_score"], ex["status"], ex["feedback"])
         for ex in submission["exercises"]],
        isolation=report) for submission in document["submissions"]}


# --- the batch, under each install -----------------------------------------------------------


@pytest.fixture(scope="module", params=["editable", pytest.param("wheel", marks=pytest.mark.slow)])
def attack_batch(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """Grade every attack and two honest neighbours in one batch, two at a time."""
    root = tmp_path_factory.mktemp("attacks")
    out = tmp_path_factory.mktemp("out")
    submissions = root / "class"
    server = LoopbackServer()
    write_class(submissions, out, server.port)
    try:
        if request.param == "wheel":
            grader = request.getfixturevalue("wheel_grader")
            venv = grader.parent.parent
            assert (venv / "lib64").is_symlink()  # the layout that once leaked the solutions
            where = _run([venv / "bin" / "python", "-c", "import grader; print(grader.__file__)"],
                         env=clean_environment(), cwd=root).stdout
            assert where.startswith(str(venv))
            _run([grader, "grade", submissions, "--out", out, "-j", "2", "--only", "tensors",
                  "--device", "cpu"], env=clean_environment(GRADER_TEST_SECRET=SECRET),
                 cwd=root, timeout=900)
            results = results_from_json(out / "results.json")
        else:
            options = runner.Options(only=("tensors",), memory_bytes=3 << 30,
                                     limits=Limits(import_seconds=10, call_seconds=3,
                                                   exercise_seconds=30))
            previous = os.environ.get("GRADER_TEST_SECRET")
            os.environ["GRADER_TEST_SECRET"] = SECRET
            try:
                results = {result.id: result for result in runner.grade_batch(
                    runner.submission_folders(submissions), options, jobs=2)}
            finally:
                if previous is None:
                    os.environ.pop("GRADER_TEST_SECRET", None)
    finally:
        server.stop()
    return results, server, out


def feedback(result: SubmissionResult, exercise_id: str) -> str:
    return {ex.id: ex.feedback for ex in result.exercises}[exercise_id]


def test_honest_neighbours_keep_full_marks(attack_batch) -> None:
    results, _, _ = attack_batch
    for name in ("honest_a", "honest_z"):
        assert statuses(results[name]) == honest_statuses(), name


@pytest.mark.parametrize("attack, exercise_id, status", [
    ("endless_loop", "tensors.softmax", "timeout"),
    ("memory_hog", "tensors.dot", "error"),
    ("leaks_environment", "tensors.one_hot", "error"),
    ("reads_grader_environment", "tensors.pick_per_row", "error"),
    ("fills_disk", "tensors.concat", "error"),
    ("patches_the_checks", "tensors.select_rows", "failed"),
    ("forges_a_reply", "tensors.add_axis", "error"),
])
def test_an_attack_costs_exactly_its_exercise(attack_batch, attack: str, exercise_id: str,
                                              status: str) -> None:
    results, _, _ = attack_batch
    expected = honest_statuses() | {exercise_id: status}
    assert statuses(results[attack]) == expected


def test_the_solutions_are_found_nowhere(attack_batch) -> None:
    """The hunt reads no solution file under either install: its stubs score nothing."""
    results, _, _ = attack_batch
    hunt = results["hunts_solutions"]
    assert hunt.score == 0
    assert set(statuses(hunt).values()) == {"error"}
    assert "Not implemented yet" in feedback(hunt, "tensors.softmax")


def test_the_solution_hunt_scores_full_marks_without_the_sandbox(tmp_path: Path) -> None:
    """The same hunt, unsandboxed, finds the solutions: the test above can fail."""
    folder = tmp_path / "hunts_solutions"
    folder.mkdir()
    shutil.copy(pack.pack_folder("exercises") / "tensors.py", folder / "tensors.py")
    add_code(folder, HUNT.format(known=str(pack.pack_folder("solutions") / "tensors.py")))
    result = runner.grade_submission(folder, runner.Options(only=("tensors",), isolate=False,
                                                            examples=2))
    assert result.score == result.max_score


def test_the_grader_environment_and_other_processes_are_hidden(attack_batch) -> None:
    results, _, _ = attack_batch
    seen = feedback(results["reads_grader_environment"], "tensors.pick_per_row")
    assert "environments read: 0, command lines read: 0, secret seen: False" in seen


def test_the_environment_holds_no_grader_secrets(attack_batch) -> None:
    results, _, _ = attack_batch
    text = feedback(results["leaks_environment"], "tensors.one_hot")
    assert "token: none" in text
    assert SECRET not in str([ex.feedback for ex in results["leaks_environment"].exercises])


def test_filling_the_disk_stops_at_the_budget(attack_batch) -> None:
    results, _, _ = attack_batch
    text = feedback(results["fills_disk"], "tensors.concat")
    assert f"disk budget of {DEFAULT_DISK_BUDGET_MIB} MiB" in text
    held = re.search(r"holding (\d+) MiB in (\S+)\]", text)
    assert held, text
    assert int(held.group(1)) <= DEFAULT_DISK_BUDGET_MIB < DISK_FILL_MIB
    scratch = Path(held.group(2)).parent
    assert scratch.name.startswith("torch-grader-")
    assert not scratch.exists()  # the scratch folder is removed after grading
    assert results["fills_disk"].isolation["disk"] == "active"
    assert results["fills_disk"].isolation[isolation.DISK_BUDGET_KEY] == "256"


def test_the_network_is_closed(attack_batch) -> None:
    results, server, _ = attack_batch
    assert server.connections == 0
    assert statuses(results["network"]) == honest_statuses()


def test_writes_outside_the_scratch_folder_fail(attack_batch) -> None:
    results, _, out = attack_batch
    assert not (out / "pwned.txt").exists()
    assert statuses(results["writes_elsewhere"]) == honest_statuses()


def test_forked_processes_do_not_outlive_grading(attack_batch) -> None:
    results, _, _ = attack_batch
    assert sleepers() == []
    fork_status = statuses(results["fork_bomb"])
    assert fork_status.pop("tensors.count_elements") in {"passed", "error"}
    assert fork_status == {k: v for k, v in honest_statuses().items()
                           if k != "tensors.count_elements"}


def test_an_output_flood_costs_at_most_its_exercise(attack_batch) -> None:
    results, _, _ = attack_batch
    flood = statuses(results["output_flood"])
    flood.pop("tensors.swap")
    assert flood == {k: v for k, v in honest_statuses().items() if k != "tensors.swap"}


def test_memory_hog_is_stopped_by_the_address_space_limit(attack_batch) -> None:
    results, _, _ = attack_batch
    assert "MemoryError" in feedback(results["memory_hog"], "tensors.dot")


def test_signals_to_the_grader_are_blocked(attack_batch) -> None:
    results, _, _ = attack_batch
    if "kills_the_grader" not in results:
        pytest.skip("no layer here blocks signals to the grader (Landlock ABI < 6)")
    assert statuses(results["kills_the_grader"]) == honest_statuses()


def test_isolation_layers_are_reported(attack_batch) -> None:
    results, _, _ = attack_batch
    report = results["honest_a"].isolation
    assert set(report) == set(isolation.LAYERS) | {isolation.DISK_BUDGET_KEY}
    assert report["limits"] == "active"
    assert report["orphans"] == "active"
    for layer in isolation.LAYERS:
        assert report[layer] == "active" or report[layer].startswith(("off:", "unavailable:"))


def children_of(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    found, frontier = [], [pid]
    while frontier:
        children = [child for parent in frontier for child in children_of(parent)]
        found += children
        frontier = children
    return found


def test_workers_die_with_a_killed_grader(tmp_path: Path) -> None:
    import signal
    import time

    folder = copy_solutions(tmp_path / "sleepy", parts=("tensors",))
    add_code(folder, """
        import time

        def from_nested(data):
            time.sleep(300)
    """)
    grader = subprocess.Popen([sys.executable, "-m", "grader", "check", str(folder), "--only",
                               "tensors.from_nested", "--report", str(tmp_path / "r.html")],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while time.monotonic() < deadline and len(workers) < 2:
            time.sleep(0.2)
            workers = descendants(grader.pid)  # the zygote and the worker it forked
        assert workers, "the worker never started"
        time.sleep(2)  # let the worker reach the student's sleep
        grader.send_signal(signal.SIGKILL)
        grader.wait()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(Path(f"/proc/{pid}").exists()
                                                  for pid in workers):
            time.sleep(0.1)
        alive = [pid for pid in workers if Path(f"/proc/{pid}").exists()
                 and "Z" not in Path(f"/proc/{pid}/stat").read_text().split()[2]]
        assert alive == []
    finally:
        if grader.poll() is None:
            grader.kill()
