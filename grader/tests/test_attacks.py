"""Hostile submissions, graded in one batch with honest neighbours.

Each attack is bounded (time, memory actually touched, process count, loopback only) and
lives in one exercise of `tensors.py` (or its import), so the assertions can say exactly what
it must cost: its own exercise at most, never full marks for the attack, never anything for the
neighbours.
"""

from __future__ import annotations

import os
import socket
import textwrap
import threading
from pathlib import Path

import pytest

from grader import isolation, pack, runner
from grader.session import Limits

from .conftest import copy_solutions, statuses

SLEEP_MARKER = "3617"  # the forked children exec `sleep 3617`: findable in /proc afterwards
SECRET = "grader-secret-token-0123456789"


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


@pytest.fixture(scope="module")
def attack_batch(tmp_path_factory: pytest.TempPathFactory):
    """Grade every attack and two honest neighbours in one batch, two at a time."""
    root = tmp_path_factory.mktemp("attacks")
    out = tmp_path_factory.mktemp("out")
    submissions = root / "class"
    server = LoopbackServer()
    solutions_file = pack.pack_folder("solutions") / "tensors.py"
    for name in ("honest_a", "honest_z"):
        copy_solutions(submissions / name, parts=("tensors",))
    attacks = {
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

            for family, address in ((socket.AF_INET, ("127.0.0.1", {server.port})),):
                try:
                    with socket.create_connection(address, timeout=1) as leak:
                        leak.sendall(b"answers please")
                except OSError:
                    pass
        """,
        "reads_solutions": f"""
            def softmax(x, dim):
                try:
                    namespace = {{}}
                    exec(open({str(solutions_file)!r}).read(), namespace)
                    return namespace["softmax"](x, dim)
                except OSError:
                    return x
        """,
        "writes_elsewhere": f"""
            for target in ({str(submissions / "honest_z" / "tensors.py")!r},
                           {str(out / "pwned.txt")!r}):
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
        "patches_the_checks": """
            import torch
            import torch.testing

            torch.testing.assert_close = lambda *args, **kwargs: None
            torch.allclose = lambda *args, **kwargs: True

            def select_rows(x, idx):
                return x[: len(idx)]
        """,
    }
    if isolation.landlock_abi() >= 6 or os.geteuid() != 0:
        # Signals to the grader are blocked by Landlock's scope (ABI 6) or, for an ordinary
        # user, by... nothing: the grader shares the uid, so only run this where it is safe.
        if isolation.landlock_abi() >= 6:
            attacks["kills_the_grader"] = """
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
    for name, source in attacks.items():
        add_code(copy_solutions(submissions / name, parts=("tensors",)), source)
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
        server.stop()
    return results, server, out


def test_honest_neighbours_keep_full_marks(attack_batch) -> None:
    results, _, _ = attack_batch
    for name in ("honest_a", "honest_z"):
        assert statuses(results[name]) == honest_statuses(), name


@pytest.mark.parametrize("attack, exercise_id, status", [
    ("endless_loop", "tensors.softmax", "timeout"),
    ("memory_hog", "tensors.dot", "error"),
    ("reads_solutions", "tensors.softmax", "failed"),
    ("leaks_environment", "tensors.one_hot", "error"),
    ("patches_the_checks", "tensors.select_rows", "failed"),
])
def test_an_attack_costs_exactly_its_exercise(attack_batch, attack: str, exercise_id: str,
                                              status: str) -> None:
    results, _, _ = attack_batch
    expected = honest_statuses() | {exercise_id: status}
    assert statuses(results[attack]) == expected


def test_memory_hog_is_stopped_by_the_address_space_limit(attack_batch) -> None:
    results, _, _ = attack_batch
    feedback = {ex.id: ex.feedback for ex in results["memory_hog"].exercises}["tensors.dot"]
    assert "MemoryError" in feedback


def test_the_environment_holds_no_grader_secrets(attack_batch) -> None:
    results, _, _ = attack_batch
    feedback = {ex.id: ex.feedback for ex in results["leaks_environment"].exercises}
    assert "token: none" in feedback["tensors.one_hot"]
    assert SECRET not in str(feedback)


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


def test_signals_to_the_grader_are_blocked(attack_batch) -> None:
    results, _, _ = attack_batch
    if "kills_the_grader" not in results:
        pytest.skip("no layer here blocks signals to the grader (Landlock ABI < 6, root)")
    assert statuses(results["kills_the_grader"]) == honest_statuses()


def test_isolation_layers_are_reported(attack_batch) -> None:
    results, _, _ = attack_batch
    report = results["honest_a"].isolation
    assert set(report) == set(isolation.LAYERS)
    assert report["limits"] == "active"
    assert report["orphans"] == "active"
    for state in report.values():
        assert state == "active" or state.startswith(("off:", "unavailable:"))


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
    import subprocess
    import sys
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
