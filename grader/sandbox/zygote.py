"""The zygote's judge side: start the warm process (`grader.worker.zygote`), ask it
for workers, close it."""

from __future__ import annotations

import atexit
import json
import os
import signal
import subprocess
import sys
import tempfile
from functools import cache
from pathlib import Path
from typing import Any

from grader.sandbox.allowlist import runtime_dir
from grader.sandbox.scratch import worker_environment
from grader.sandbox.settings import STARTUP_SECONDS

# --- the zygote: a warm process that forks workers -------------------------------------------


class Zygote:
    """A process that imported torch (and computed nothing) and forks one worker per
    submission: a worker then starts in milliseconds instead of the ~1.5 s of `import torch`."""

    def __init__(self) -> None:
        import multiprocessing

        self.process: subprocess.Popen | None = None
        self.control: Any = None
        self.owner = os.getpid()  # the process that started it (and may wait for it)
        # A forked judge (`grader check`'s second) shares the control socket:
        # one request and its answer at a time, across processes.
        self.lock = multiprocessing.get_context("fork").Lock()

    def start(self) -> None:
        """Launch it (it imports torch in the background; the first fork waits for that)."""
        import socket

        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        scratch = Path(tempfile.gettempdir())
        self.process = subprocess.Popen(
            [sys.executable, "-s", "-B", "-c", _bootstrap(), str(runtime_dir()), "zygote",
             str(theirs.fileno())],
            pass_fds=(theirs.fileno(),), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL, cwd="/", start_new_session=True,
            env=worker_environment(scratch, cuda=True, token="zygote"))
        theirs.close()
        ours.settimeout(STARTUP_SECONDS)
        self.control = ours
        self.owner = os.getpid()
        atexit.register(self.close)

    def ended(self) -> bool:
        """Whether the zygote is gone. A forked judge cannot wait for its parent's child (it
        would read ECHILD as "ended" and start a zygote of its own): it asks the kernel."""
        if self.process is None:
            return True
        if os.getpid() == self.owner:
            return self.process.poll() is not None
        try:
            os.kill(self.process.pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            pass
        return False

    def _ask(self, message: dict, fds: list[int]) -> int:
        import socket

        with self.lock:
            if self.ended():
                self.close()
                self.start()
            socket.send_fds(self.control, [json.dumps(message).encode()], fds)
            answer = b""
            while not answer.endswith(b"\n"):
                chunk = self.control.recv(64)
                if not chunk:
                    raise OSError("the zygote ended")
                answer += chunk
            return int(answer)

    def spawn(self, policy: dict, env: dict[str, str], fds: list[int]) -> int:
        """Fork a worker that reads requests from fds[0], replies on fds[1] and prints to
        fds[2]; returns its pid (also its process group)."""
        return self._ask({"op": "fork", "policy": policy, "env": env}, fds)

    def cleanup(self, token: str, group: int) -> None:
        """Kill what a finished worker left behind (the zygote adopts orphaned forks)."""
        try:
            self._ask({"op": "cleanup", "token": token, "group": group}, [])
        except OSError:
            pass

    def close(self) -> None:
        if self.control is not None:
            self.control.close()
            self.control = None
        if self.process is not None and os.getpid() != self.owner:
            self.process = None  # a forked judge's copy: the zygote is its parent's to stop
        if self.process is not None:
            try:
                os.killpg(self.process.pid, signal.SIGKILL)
            except OSError:
                pass
            self.process.wait()
            self.process = None


@cache
def zygote() -> Zygote:
    """This process's zygote (each child gets its own environment, CUDA settings included)."""
    return Zygote()


def close_zygote() -> None:
    """Stop this process's zygote, if it was started."""
    if zygote.cache_info().currsize:
        zygote().close()


def replace_zygote() -> None:
    """Stop this process's zygote and start a fresh one, with a fresh channel and lock (a
    forked batch job that died while asking for a worker may have left them half used)."""
    close_zygote()
    zygote.cache_clear()
    prestart()


def prestart() -> None:
    """Start the zygote now, so its `import torch` overlaps with the grader's own."""
    warm = zygote()
    if warm.process is None:
        warm.start()


def widen_pipe(fd: int) -> None:
    """Give a pipe a 1 MiB buffer (Linux's default is 64 KiB): a large reply (a network's
    weights) then crosses in a few writes instead of one context switch per 64 KiB."""
    try:
        import fcntl

        fcntl.fcntl(fd, getattr(fcntl, "F_SETPIPE_SZ", 1031), 1 << 20)
    except (ImportError, OSError):
        pass  # not Linux, or over /proc/sys/fs/pipe-max-size: the default works, slower




def _bootstrap() -> str:
    from grader.worker.server import BOOTSTRAP

    return BOOTSTRAP
