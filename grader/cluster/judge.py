"""The judge: the grading process a Dask worker keeps warm, and the pipe protocol to it.

A Dask worker runs tasks on threads of a daemonic process, where forking is unsafe, namespaces
cannot be entered and a death signal follows the thread that forked. So the grading machinery
lives in a process of its own, started by exec (`python -m grader.cluster.judge PARENT_PID`):
the same judge as `grader grade` (`runner.grade_submission`), with its own zygote and the usual
sandboxed worker per submission, one core of its own, warmed up once.

Protocol: one request at a time on its stdin, one reply on its stdout, each a length-prefixed
message: requests are pickles from the Dask worker that started it (trusted: options are
opaque objects), replies are JSON (plain data: the result as `SubmissionResult.to_dict`).

It ends, killing its zygote and sandboxed workers and removing their cgroups, when its stdin
closes, on SIGTERM, and when its parent dies (it watches its parent pid: a Dask worker killed
with SIGKILL leaves its children running otherwise).
"""

from __future__ import annotations

import json
import os
import pickle
import signal
import subprocess
import sys
import threading
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path

PARENT_POLL_SECONDS = 0.2
STOP_SECONDS = 10.0  # after SIGTERM, before SIGKILL


class JudgeFailed(Exception):
    """The judge process ended, or could not answer, while grading (infrastructure, not the
    submission: its code runs in a sandboxed worker the judge survives)."""


class Cancelled(Exception):
    """The task was cancelled while its judge graded (the judge was stopped)."""


# --- the Dask worker's side -------------------------------------------------------------------


class Judge:
    """A judge process and its pipes, owned by one Dask worker (one request at a time)."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.requests: Connection | None = None
        self.replies: Connection | None = None

    def start(self) -> None:
        """Launch it (it imports torch and warms up in the background; requests wait)."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "grader.cluster.judge", str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, start_new_session=True)
        assert self.process.stdin is not None and self.process.stdout is not None
        self.requests = Connection(os.dup(self.process.stdin.fileno()), readable=False)
        self.replies = Connection(os.dup(self.process.stdout.fileno()), writable=False)
        self.process.stdin.close()
        self.process.stdout.close()

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def ask(self, request: dict, *, cancelled: Callable[[], bool] = lambda: False,
            within: float | None = None, poll_seconds: float = 0.25) -> dict:
        """Send one request and return the reply; raises `JudgeFailed` when the judge ends
        first or (after stopping it) has not answered `within` seconds, `Cancelled` (after
        stopping the judge) when `cancelled()` turns true."""
        if not self.alive:
            raise JudgeFailed(self.ending())
        assert self.requests is not None and self.replies is not None
        deadline = None if within is None else time.monotonic() + within
        try:
            self.requests.send_bytes(pickle.dumps(request))
            while not self.replies.poll(poll_seconds):
                if cancelled():
                    self.stop()
                    raise Cancelled("the task was cancelled")
                if deadline is not None and time.monotonic() > deadline:
                    self.stop()
                    raise JudgeFailed(f"its judge did not finish within {within:g} s")
            return json.loads(self.replies.recv_bytes())
        except (EOFError, OSError):
            self.stop()
            raise JudgeFailed(self.ending()) from None

    def ending(self) -> str:
        """How the judge process ended, in words."""
        code = self.process.poll() if self.process is not None else None
        if code is None:
            return "the judge process stopped answering"
        if code < 0:
            try:
                name = signal.Signals(-code).name
            except ValueError:
                name = f"signal {-code}"
            return f"the judge process was killed ({name})"
        return f"the judge process ended (exit status {code})"

    def stop(self) -> None:
        """End it: SIGTERM (it cleans up its zygote and sandboxes), SIGKILL if it lingers."""
        for connection in (self.requests, self.replies):
            if connection is not None:
                connection.close()
        self.requests = self.replies = None
        if self.process is None or self.process.poll() is not None:
            return
        try:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


# --- the judge process ------------------------------------------------------------------------


def _stop_on_sigterm(_signum: int, _frame: object) -> None:
    # SystemExit unwinds the grading in progress: its session kills the sandboxed worker and
    # removes its scratch folder and cgroup on the way out.
    raise SystemExit(0)


def _watch_parent(parent: int) -> None:
    """When the Dask worker dies, stop (it cannot close our stdin while we grade)."""
    while os.getppid() == parent:
        time.sleep(PARENT_POLL_SECONDS)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(STOP_SECONDS)
    os._exit(1)  # the main thread did not unwind: the zygote's death signal does the rest


def _claim_core() -> int | None:
    """A core of this machine no other judge has claimed (a lock held while this process
    lives), as an index among the cores this process may use; None when all are taken."""
    import fcntl
    import tempfile

    try:
        cores = sorted(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None
    for index, core in enumerate(cores):
        try:
            handle = open(Path(tempfile.gettempdir()) / f"torch-grader-core-{core}.lock", "a")
        except OSError:
            continue  # another user's lock file
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            continue
        _claimed.append(handle)
        return index
    return None


_claimed: list = []
_pack_in_use: list[str] = []  # the pack this judge grades with, once it graded


def _grade(request: dict) -> dict:
    import dataclasses

    from grader import runner
    from grader.cluster import shipping

    options = pickle.loads(request["options"])
    try:
        if request.get("pack") is not None:  # the client's pack, as this machine has it
            options = dataclasses.replace(options,
                                          pack=shipping.received_pack(request["pack"]))
        # A process collects one pack's checks, from one place, once: another pack (or the
        # same one elsewhere) needs a fresh judge.
        pack = str(getattr(options, "pack", None))
        if _pack_in_use and _pack_in_use != [pack]:
            return {"other_pack": True}
        _pack_in_use[:] = [pack]
        with shipping.received(request["shipment"]) as submission:
            result = runner.grade_submission(submission, options)
    except shipping.Unseen as unseen:
        return {"unseen": str(unseen)}
    except shipping.PackNeeded:
        return {"needs_pack": True}
    return {"result": result.to_dict()}


def doctor_facts() -> dict:
    """What `grader doctor` shows, for this machine: each sandbox layer (a worker is started
    to see), what the start-up probes tried and saw, the user, the devices, the Landlock ABI."""
    import dataclasses
    import socket
    import tempfile

    from grader import probe, sandbox
    from grader.runner import available_devices
    from grader.worker import isolation

    devices = available_devices()
    settings = sandbox.Settings(cuda="cuda" in devices, allow_unsafe=True,
                                protected=sandbox.protected_paths())
    layers: dict[str, str] = {}
    probes: list[dict] = []
    failure = None
    with tempfile.TemporaryDirectory() as empty:
        worker = sandbox.Worker(Path(empty), settings=settings)
        try:
            worker.start()
            layers = dict(worker.isolation)
            probes = [dataclasses.asdict(attempt) for attempt in probe.verify(settings)]
        except sandbox.WorkerFailure as error:
            failure = str(error)
        finally:
            worker.close()
    return {"host": socket.gethostname(), "uid": os.geteuid(), "devices": list(devices),
            "landlock_abi": isolation.landlock_abi(), "layers": layers, "probes": probes,
            "failure": failure}


def _answer(request: dict) -> dict:
    from grader.probe import UnsafeSandbox

    try:
        if request["op"] == "grade":
            return _grade(request)
        if request["op"] == "doctor":
            return {"doctor": doctor_facts()}
        return {"error": f"unknown request {request['op']!r}"}
    except UnsafeSandbox as refusal:  # a start-up probe got through: nothing is graded here
        return {"unsafe": str(refusal)}
    except Exception as error:  # noqa: BLE001 - a grader bug: reported, the judge lives on
        return {"error": f"{type(error).__name__}: {error}",
                "traceback": traceback.format_exc(limit=20)}


def main(argv: list[str]) -> None:
    """`python -m grader.cluster.judge PARENT_PID`: answer requests until stdin closes."""
    parent = int(argv[0])
    requests = Connection(os.dup(0), writable=False)
    replies = Connection(os.dup(1), readable=False)
    os.dup2(2, 1)  # stray prints go to the log, never into the protocol
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    # As in `grader grade` (whatever the Dask worker ignored): sandboxed workers inherit it.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    if os.getppid() != parent:
        return
    threading.Thread(target=_watch_parent, args=(parent,), name="watch-parent",
                     daemon=True).start()

    from grader import runner, sandbox

    try:
        sandbox.prestart()  # the zygote imports torch while this process does
        runner.warm_up_in_background()
        slot = _claim_core()
        if slot is not None:
            sandbox.pin_to_core(slot)
        while True:
            try:
                request = pickle.loads(requests.recv_bytes())
                reply = json.dumps(_answer(request)).encode()
                replies.send_bytes(reply)
            except (EOFError, OSError):  # the Dask worker closed our pipes, or is gone
                break
    finally:
        sandbox.close_zygote()


if __name__ == "__main__":
    try:
        main(sys.argv[1:])
        code = 0
    except SystemExit as done:
        code = done.code if isinstance(done.code, int) else 1
    # Like `grader`'s own exit: run the clean-ups (cgroups, the runtime copy), skip tearing
    # down torch (~0.8 s that achieves nothing).
    import atexit

    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
