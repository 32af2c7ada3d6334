"""One worker process: start it in its sandbox, talk to it with deadlines, kill it and
everything it started."""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from grader import handin
from grader.sandbox.allowlist import can_drop_uid, read_paths, runtime_dir
from grader.sandbox.cgroups import _remove_cgroup, become_subreaper, cgroup_parent
from grader.sandbox.cores import pin_worker
from grader.sandbox.errors import WorkerCrashed, WorkerDiskFull, WorkerFailure, WorkerTimeout
from grader.sandbox.scratch import DiskWatchdog, copy_submission, worker_environment
from grader.sandbox.settings import (
    GRADING_UID,
    OUTPUT_CAP_BYTES,
    STARTUP_SECONDS,
    WATCH_SECONDS,
    Settings,
)
from grader.sandbox.zygote import _bootstrap, widen_pipe, zygote
from grader.worker import isolation, wire

# --- one worker -------------------------------------------------------------------------------


class Worker:
    """A running worker process bound to one submission folder."""

    def __init__(self, submission_dir: Path, *, settings: Settings | None = None) -> None:
        self.submission_dir = Path(submission_dir)
        self.settings = settings or Settings()
        self.process: subprocess.Popen | None = None  # a fresh process (not from the zygote)
        self.pid: int | None = None  # the worker's pid, also its process group
        self.output_file: Any = None
        self.scratch: Path | None = None
        self.cgroup: Path | None = None
        self.isolation: dict[str, str] = {}
        self.notes: list[str] = []  # how the hand-in was read (zip, notebooks)
        self.starts = 0
        self.is_probe = False  # `grader.probe.run`'s own worker (not verified again)
        self.watchdog: DiskWatchdog | None = None

    def policy(self) -> isolation.Policy:
        settings = self.settings
        assert self.scratch is not None
        uid = GRADING_UID if can_drop_uid() and "uid" not in settings.disabled else None
        return isolation.Policy(
            scratch_dir=str(self.scratch),
            read_paths=list(read_paths(settings.protected_folders(), settings.cuda)),
            write_paths=[str(self.scratch), "/dev/null", "/dev/shm"],
            disk_bytes=settings.disk_bytes if "disk" not in settings.disabled else None,
            cgroup_dir=str(self.cgroup) if self.cgroup else None,
            address_space_bytes=None if settings.cuda else settings.memory_bytes,
            cpu_seconds=settings.cpu_seconds, processes=settings.processes,
            uid=uid, gid=uid,
            network="network" not in settings.disabled,
            landlock="landlock" not in settings.disabled,
            seccomp="seccomp" not in settings.disabled,
        )

    def _prepare(self) -> None:
        self.scratch = Path(tempfile.mkdtemp(prefix="torch-grader-"))
        copy = self.scratch / "submission"
        if self.submission_dir.is_file():  # a .zip handed in as the submission
            copy.mkdir()
            shutil.copyfile(self.submission_dir, copy / self.submission_dir.name)
        else:
            left_out = copy_submission(self.submission_dir, copy)
            self.notes = [f"left out (too large): {name}" for name in left_out]
        try:
            self.notes = self.notes + handin.prepare(copy)
        except handin.HandInError as error:
            self.notes = [f"could not use the submission: {error}"]
        (self.scratch / "tmp").mkdir()
        if can_drop_uid() and self.settings.isolate:
            for path in [self.scratch, *self.scratch.rglob("*")]:
                os.lchown(path, GRADING_UID, GRADING_UID)
        os.chmod(self.scratch, 0o755)
        # A probe runs no student code: it needs no pids cgroup (nor the cleanup of one).
        parent = cgroup_parent() if self.settings.isolate and not self.is_probe else None
        if parent is not None:
            group = parent / f"worker-{os.getpid()}-{id(self)}-{self.starts}"
            try:
                group.mkdir()
                (group / "pids.max").write_text(str(self.settings.processes))
                self.cgroup = group
            except OSError:
                self.cgroup = None

    def start(self) -> None:
        """Start the worker; if it cannot even start under some layer, retry without it (the
        layer is then reported as unavailable, with the reason)."""
        fallbacks = [(), ("landlock",), ("landlock", "seccomp", "network", "uid", "disk")]
        for attempt in range(len(fallbacks)):
            try:
                self._start()
            except WorkerFailure as failure:
                self.kill()
                if attempt == len(fallbacks) - 1 or not self.settings.isolate:
                    raise
                for layer in fallbacks[attempt + 1]:
                    self.settings.disabled.setdefault(
                        layer, f"the worker could not start with it ({failure})")
                continue
            for layer, reason in self.settings.disabled.items():
                self.isolation[layer] = f"unavailable: {reason}"
            self._watch_disk()
            if self.settings.isolate and not self.is_probe:
                from grader import probe

                # before any student code: UnsafeSandbox if a probe got through
                probe.verify_started(self)
            return

    def _watch_disk(self) -> None:
        """Without the disk layer (no mount namespace here), the grader enforces the budget."""
        self.watchdog = None
        if not self.settings.isolate:
            return
        state = self.isolation.get("disk", "")
        if state != isolation.ACTIVE:
            self.watchdog = DiskWatchdog(self.scratch, self.settings.disk_bytes)
            self.isolation["disk"] = f"{state or 'unavailable'}; instead the grader measures " \
                f"the scratch folder every {WATCH_SECONDS * 1000:g} ms and stops the worker " \
                "past the budget"
        self.isolation[isolation.DISK_BUDGET_KEY] = str(self.settings.disk_bytes >> 20)

    def _start(self) -> None:
        self.watchdog = None
        self._prepare()
        become_subreaper()
        self.token = f"{os.getpid()}-{id(self)}-{self.starts}"
        assert self.scratch is not None
        to_worker_read, to_worker_write = os.pipe()
        from_worker_read, from_worker_write = os.pipe()
        for pipe in (to_worker_write, from_worker_write):
            widen_pipe(pipe)
        self.output_file = tempfile.TemporaryFile()
        if self.settings.isolate:
            policy = asdict(self.policy())
        else:
            policy = {"scratch_dir": str(self.scratch), "network": False, "landlock": False,
                      "seccomp": False, "address_space_bytes": None}
        env = worker_environment(self.scratch, cuda=self.settings.cuda, token=self.token)
        self.pid = None
        if self.settings.zygote:
            try:
                self.pid = zygote().spawn(
                    policy, env, [to_worker_read, from_worker_write, self.output_file.fileno()])
            except (OSError, ValueError):
                self.settings.zygote = False  # fall back to fresh processes for good
        if self.pid is None:
            command = [sys.executable, "-s", "-B", "-c", _bootstrap(), str(runtime_dir()),
                       "fresh", str(to_worker_read), str(from_worker_write), json.dumps(policy)]
            self.process = subprocess.Popen(
                command, pass_fds=(to_worker_read, from_worker_write),
                stdin=subprocess.DEVNULL, stdout=self.output_file, stderr=subprocess.STDOUT,
                cwd=str(self.scratch), env=env, start_new_session=True,
            )
            self.pid = self.process.pid
        os.close(to_worker_read)
        os.close(from_worker_write)
        pin_worker(self.pid)
        self.to_worker = to_worker_write
        self.from_worker = from_worker_read
        os.set_blocking(from_worker_read, False)  # replies are read under their deadline
        self.starts += 1
        reply = self.request({"op": "hello"}, timeout=STARTUP_SECONDS)
        self.isolation = reply.get("isolation", {})

    def request(self, message: dict, *, timeout: float) -> dict:
        """Send one request and wait for its reply, at most `timeout` seconds."""
        if self.pid is None:
            self.start()
        self.post(wire.dumps(message))
        return self.reply(timeout=timeout)

    def post(self, payload: bytes) -> None:
        """Send one request, serialized with `wire.dumps` (its reply is read by `reply`)."""
        try:
            wire.send_payload(self.to_worker, payload)
        except (BrokenPipeError, OSError):
            self.kill()
            raise WorkerCrashed("the worker process had already ended",
                                self.output_tail()) from None

    def reply(self, *, timeout: float) -> dict:
        """Wait for the next reply, at most `timeout` seconds."""
        return self.decoded(self.reply_payload(timeout=timeout))

    def decoded(self, payload: bytes) -> dict:
        """A reply read with `reply_payload`, as plain data (an unreadable one ends the worker)."""
        try:
            return wire.loads(payload)
        except wire.WireError as error:
            self.kill()
            raise WorkerCrashed(f"the worker sent an unreadable answer ({error})",
                                self.output_tail()) from None

    def reply_payload(self, *, timeout: float) -> bytes:
        """Wait for the next reply, at most `timeout` seconds; it comes still serialized."""
        deadline = time.monotonic() + timeout
        poller = select.poll()
        poller.register(self.from_worker, select.POLLIN | select.POLLHUP)
        watchdog = self.watchdog
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.kill()
                raise WorkerTimeout(f"no answer within {timeout:g} s", self.output_tail())
            wait = remaining if watchdog is None else max(0.0, min(remaining, watchdog.due()))
            if poller.poll(wait * 1000):
                break
            if watchdog is not None:
                self._enforce(watchdog)
        try:
            reply = wire.receive_payload(self.from_worker, deadline)
        except wire.ReadTimeout:
            self.kill()
            raise WorkerTimeout(f"no whole answer within {timeout:g} s",
                                self.output_tail()) from None
        except wire.WireError as error:
            code = None
            if self.process is not None:  # a zygote's child is reaped by the zygote: no code
                try:
                    code = self.process.wait(timeout=1)
                except subprocess.TimeoutExpired:
                    code = None
            ended = isinstance(error, wire.ChannelClosed)
            self.kill()
            output = self.output_tail()
            if code is not None:
                raise WorkerCrashed(_exit_description(code), output) from None
            if ended:
                raise WorkerCrashed("the Python process running your code ended early",
                                    output) from None
            raise WorkerCrashed(f"the worker sent an unreadable answer ({error})", output) \
                from None
        if watchdog is not None and watchdog.due() <= 0:
            self._enforce(watchdog)
        return reply

    def _enforce(self, watchdog: DiskWatchdog) -> None:
        over = watchdog.over_budget()
        if over:
            self.kill()
            raise WorkerDiskFull(over, self.output_tail())

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
        """Kill the worker and everything it started (its process group and its cgroup, and
        the forks that escaped both, which the grader or the zygote adopted)."""
        if self.pid is not None:
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            if self.process is not None:
                try:
                    self.process.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    pass
                isolation.kill_adopted(self.token, self.pid, reap=True)
            elif not self.is_probe:  # a probe started nothing that could have escaped
                zygote().cleanup(self.token, self.pid)
            for fd in (self.to_worker, self.from_worker):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self.process = None
            self.pid = None
        if self.cgroup is not None:
            _remove_cgroup(self.cgroup)
            self.cgroup = None
        if self.scratch is not None:
            shutil.rmtree(self.scratch, ignore_errors=True)
            self.scratch = None

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
        hint = {"SIGXCPU": " after using up its CPU time", "SIGKILL": "",
                "SIGSEGV": " (a crash)"}.get(name, "")
        return f"the Python process running your code was killed ({name}){hint}"
    return f"the Python process running your code ended early (exit status {code})"
