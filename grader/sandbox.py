"""The grader's side of a worker process: start it, talk to it with deadlines, kill it.

One worker per submission; torch is imported once in it. When a request runs past its deadline
or the worker dies (an infinite loop, `os._exit`, a crash), the whole process group is killed and
the caller gets `WorkerTimeout` / `WorkerCrashed`; `restart()` gives a fresh worker for the rest.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from grader import wire

# Importing torch in a fresh worker takes ~1.5 s here; allow for slow, loaded machines.
STARTUP_SECONDS = 120.0
OUTPUT_CAP_BYTES = 64 * 1024


class WorkerFailure(Exception):
    """The worker did not answer; `output` is the tail of what the student's code printed."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class WorkerTimeout(WorkerFailure):
    """A request ran past its deadline; the worker was killed."""


class WorkerCrashed(WorkerFailure):
    """The worker process ended (exit, crash, killed) while a request was in flight."""


class Worker:
    """A running worker process bound to one submission folder."""

    def __init__(self, submission_dir: Path, *, env: dict[str, str] | None = None) -> None:
        self.submission_dir = Path(submission_dir)
        self.env = env
        self.process: subprocess.Popen | None = None
        self.output_file: Any = None
        self.starts = 0

    def start(self) -> None:
        to_worker_read, to_worker_write = os.pipe()
        from_worker_read, from_worker_write = os.pipe()
        self.output_file = tempfile.TemporaryFile()
        env = dict(os.environ if self.env is None else self.env)
        env.setdefault("OMP_NUM_THREADS", "1")
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONHASHSEED"] = "0"
        package_root = str(Path(__file__).resolve().parent.parent)
        env["PYTHONPATH"] = package_root + os.pathsep + env.get("PYTHONPATH", "")
        self.process = subprocess.Popen(
            [sys.executable, "-B", "-m", "grader.worker", str(to_worker_read),
             str(from_worker_write), str(self.submission_dir.resolve())],
            pass_fds=(to_worker_read, from_worker_write),
            stdin=subprocess.DEVNULL, stdout=self.output_file, stderr=subprocess.STDOUT,
            cwd=str(self.submission_dir), env=env, start_new_session=True,
        )
        os.close(to_worker_read)
        os.close(from_worker_write)
        self.to_worker = to_worker_write
        self.from_worker = from_worker_read
        self.starts += 1
        self.request({"op": "hello"}, timeout=STARTUP_SECONDS)

    def request(self, message: dict, *, timeout: float) -> dict:
        """Send one request and wait for its reply, at most `timeout` seconds."""
        if self.process is None:
            self.start()
        try:
            wire.send(self.to_worker, message)
        except (BrokenPipeError, OSError):
            self.kill()
            raise WorkerCrashed("the worker process had already ended",
                                self.output_tail()) from None
        deadline = time.monotonic() + timeout
        poller = select.poll()
        poller.register(self.from_worker, select.POLLIN | select.POLLHUP)
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise WorkerTimeout(f"no answer within {timeout:g} s", self.output_tail())
            if poller.poll(remaining * 1000):
                break
        try:
            return wire.receive(self.from_worker)
        except wire.WireError as error:
            code = self.process.poll() if self.process else None
            self.kill()
            output = self.output_tail()
            if code is None:
                raise WorkerCrashed(f"the worker sent an unreadable answer ({error})", output) \
                    from None
            raise WorkerCrashed(_exit_description(code), output) from None

    def output_tail(self) -> str:
        """The last bytes the student's code printed (capped)."""
        if self.output_file is None:
            return ""
        try:
            self.output_file.seek(0, os.SEEK_END)
            size = self.output_file.tell()
            self.output_file.seek(max(0, size - OUTPUT_CAP_BYTES))
            return self.output_file.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""

    def kill(self) -> None:
        """Kill the worker and everything it started."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        for fd in (self.to_worker, self.from_worker):
            try:
                os.close(fd)
            except OSError:
                pass
        self.process = None

    def restart(self) -> None:
        self.kill()
        self.start()

    def close(self) -> None:
        self.kill()
        if self.output_file is not None:
            self.output_file.close()
            self.output_file = None

    def __enter__(self) -> Worker:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _exit_description(code: int) -> str:
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the Python process running your code was killed ({name})"
    return f"the Python process running your code ended early (exit status {code})"
