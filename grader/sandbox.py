"""The grader's side of a worker process: prepare its sandbox, start it, talk to it with
deadlines, kill it and everything it started.

Every worker gets a scratch folder holding a copy of the submission (so it can change nothing of
the original, of other submissions or of the output), a minimal environment (no secrets of the
grader's), a pids cgroup where the machine allows one, and an isolation policy that the worker
applies to itself before running student code (`grader.isolation`). Only a runtime copy of the
worker's own modules is importable in it: never the checks or the solutions.

When a request runs past its deadline or the worker dies (an endless loop, `os._exit`, a crash),
every process of the worker is killed and the caller gets `WorkerTimeout` / `WorkerCrashed`;
`restart()` gives a fresh worker for the rest.
"""

from __future__ import annotations

import atexit
import glob
import json
import os
import select
import shutil
import signal
import site
import subprocess
import sys
import sysconfig
import tempfile
import time
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from grader import handin, isolation, wire

# Importing torch in a fresh worker takes ~1.5 s here; allow for slow, loaded machines.
STARTUP_SECONDS = 120.0
OUTPUT_CAP_BYTES = 64 * 1024
SUBMISSION_CAP_BYTES = 32 << 20
SUBMISSION_CAP_FILES = 500
GRADING_UID = 65534  # nobody: used only when the Python installation is readable by it
WORKER_MODULES = ("__init__.py", "worker.py", "wire.py", "codec.py", "fixtures.py",
                  "isolation.py")
SYSTEM_READ_PATHS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/sys",
                     "/opt/conda", "/usr/local")
# Devices a worker may use (not /dev as a whole: as root that would include raw disks).
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/shm")
# The system files of /proc that Python, torch and its libraries read (CPU, memory, kernel
# settings); every /proc/<pid> but the worker's own stays closed.
PROC_FILES = ("cpuinfo", "meminfo", "stat", "loadavg", "uptime", "version", "filesystems",
              "cgroups", "swaps", "vmstat", "sys")
DEFAULT_DISK_BUDGET = 256 << 20
WATCH_SECONDS = 0.05  # how often the disk watchdog measures (only without the disk layer)
CGROUP_ROOTS = ("/sys/fs/cgroup/pids", "/sys/fs/cgroup")
PR_SET_CHILD_SUBREAPER = 36


class WorkerFailure(Exception):
    """The worker did not answer; `output` is the tail of what the student's code printed."""

    def __init__(self, message: str, output: str = "") -> None:
        super().__init__(message)
        self.output = output


class WorkerTimeout(WorkerFailure):
    """A request ran past its deadline; the worker was killed."""


class WorkerCrashed(WorkerFailure):
    """The worker process ended (exit, crash, killed) while a request was in flight."""


class WorkerDiskFull(WorkerCrashed):
    """The worker wrote more than the disk budget; the grader's watchdog stopped it."""


@dataclass
class Settings:
    """How to isolate workers (the machine decides what is available)."""

    isolate: bool = True
    memory_bytes: int | None = 2 << 30  # address space beyond a worker with torch imported
    cpu_seconds: int = 600
    processes: int = 64
    cuda: bool = False
    zygote: bool = True  # fork workers from a warm process that has imported torch
    # folders no worker may read (the pack's solutions, checks, examples; the grader package),
    # wherever they are installed; empty: `protected_paths()`
    protected: tuple[Path, ...] = ()
    disk_bytes: int = DEFAULT_DISK_BUDGET  # all files one submission's worker writes, in total
    allow_unsafe: bool = False  # grade even when a start-up probe got through (see `verify`)
    # layers switched off after a worker could not start with them, and why
    disabled: dict[str, str] = field(default_factory=dict)

    def protected_folders(self) -> tuple[Path, ...]:
        return tuple(self.protected) or protected_paths()


# --- what the machine offers (probed once per grader process) ---------------------------------


@cache
def runtime_dir() -> Path:
    """A private copy of the worker's modules: the only `grader` the worker can import."""
    root = Path(tempfile.mkdtemp(prefix="torch-grader-runtime-"))
    os.chmod(root, 0o755)
    package = root / "grader"
    package.mkdir()
    source = Path(__file__).resolve().parent
    for name in WORKER_MODULES:
        shutil.copy(source / name, package / name)
    atexit.register(shutil.rmtree, root, True)
    return root


def protected_paths(pack_folders: tuple[Path, ...] | None = None) -> tuple[Path, ...]:
    """What a worker must never read, wherever it is installed: the grader package (in a wheel
    it holds the bundled pack), the bundled pack's and the graded pack's solutions, checks,
    examples and recorded answers (`pack.Pack.protected`; `pack_folders`, else the active
    pack's)."""
    from grader import pack

    folders = [Path(__file__).resolve().parent]
    try:
        folders += pack.load(None).protected
    except pack.PackError:
        pass  # no usable bundled pack here: the graded one is protected below
    folders += pack.current().protected if pack_folders is None else pack_folders
    return tuple(dict.fromkeys(Path(folder).resolve() for folder in folders))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _allow_all_but(path: Path, protected: tuple[Path, ...], allowed: list[str]) -> None:
    """Allow `path` except the protected folders below it. Landlock only adds permissions and
    opens each granted path through its links, so the test is on real paths: a granted path
    whose real target holds a protected folder is split like any other folder."""
    real = path.resolve()
    if not real.exists() or any(_inside(real, folder) for folder in protected):
        return
    below = [folder for folder in protected if real in folder.parents]
    if not below:
        allowed.append(str(real))
        return
    try:
        children = sorted(real.iterdir())
    except OSError:
        return
    for child in children:
        # A link inside a split folder is left out: its target is either in this folder
        # (granted on its own) or elsewhere, where granting the folder whole would not reach.
        if not child.is_symlink():
            _allow_all_but(child, below, allowed)


def _python_roots() -> set[Path]:
    roots = {Path(sys.base_prefix), Path(sys.prefix), Path(sys.executable).resolve().parent,
             Path(sysconfig.get_paths()["stdlib"])}
    return roots | {Path(p) for p in site.getsitepackages() + [site.getusersitepackages()]}


@cache
def read_paths(protected: tuple[Path, ...] = (), cuda: bool = False) -> tuple[str, ...]:
    """Everything a worker may read: the system and the Python installation minus the protected
    folders, a few devices, and in /proc a few system files (the worker adds its own entries,
    `/proc/self`); never another process's. Every path is resolved before it is granted."""
    protected = tuple(Path(folder).resolve() for folder in protected)
    devices = list(DEVICES) + (sorted(glob.glob("/dev/nvidia*")) if cuda else [])
    allowed: list[str] = []
    for root in sorted({Path(p) for p in (*SYSTEM_READ_PATHS, *devices)} | _python_roots()):
        _allow_all_but(root, protected, allowed)
    proc = PROC_FILES + (("driver",) if cuda else ())  # the NVIDIA driver's /proc/driver/nvidia
    allowed += [f"/proc/{name}" for name in proc if os.path.exists(f"/proc/{name}")]
    allowed += ["/proc/self", str(runtime_dir())]
    return tuple(dict.fromkeys(allowed))


def _readable_by_others(path: Path) -> bool:
    path = path.resolve()
    for ancestor in [*reversed(path.parents), path]:
        try:
            mode = ancestor.stat().st_mode
        except OSError:
            return False
        if ancestor.is_dir() and not mode & 0o001:
            return False
    return bool(path.stat().st_mode & 0o004)


@cache
def can_drop_uid() -> bool:
    """As root, a grading uid is used only if it can still run Python and import torch."""
    if os.geteuid() != 0:
        return False
    import importlib.util

    torch_spec = importlib.util.find_spec("torch")
    needed = [Path(sys.executable), Path(sysconfig.get_paths()["stdlib"]) / "os.py"]
    if torch_spec and torch_spec.origin:
        needed.append(Path(torch_spec.origin))
    return all(_readable_by_others(path) for path in needed)


@cache
def cgroup_parent() -> Path | None:
    """A pids cgroup folder where this process may create per-worker groups, or None."""
    for root in CGROUP_ROOTS:
        base = Path(root)
        if not (base / "cgroup.procs").exists():
            continue
        if base.name != "pids" and "pids" not in _read(base / "cgroup.controllers"):
            continue
        parent = base / f"torch-grader-{os.getpid()}"
        try:
            parent.mkdir(exist_ok=True)
            if base.name != "pids":  # cgroup v2: delegate the pids controller to the children
                (parent / "cgroup.subtree_control").write_text("+pids")
            probe = parent / "probe"
            probe.mkdir(exist_ok=True)
            (probe / "pids.max").write_text("8")
            probe.rmdir()
        except OSError:
            try:
                parent.rmdir()
            except OSError:
                pass
            continue
        atexit.register(_remove_cgroup, parent)
        return parent
    return None


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _kill_cgroup(group: Path) -> None:
    for _ in range(20):
        pids = [int(pid) for pid in _read(group / "cgroup.procs").split()]
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        time.sleep(0.01)


def _remove_cgroup(group: Path) -> None:
    if not group.exists():
        return
    for child in [path for path in group.iterdir() if path.is_dir()]:
        _remove_cgroup(child)
    _kill_cgroup(group)
    for _ in range(50):
        try:
            group.rmdir()
            return
        except OSError:
            time.sleep(0.02)


@cache
def become_subreaper() -> bool:
    """Orphans of our workers (a fork that called setsid) are re-parented to this process
    instead of init, so they can be found and killed even without a cgroup."""
    try:
        return isolation.libc().prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0
    except (AttributeError, OSError):
        return False


def copy_submission(source: Path, destination: Path) -> list[str]:
    """Copy a submission (links as links, size-capped); returns what was left out."""
    left_out = []
    total = copied = 0
    destination.mkdir(parents=True)
    for path in sorted(source.rglob("*")):
        relative = path.relative_to(source)
        if any(part.startswith(".") or part == "__pycache__" for part in relative.parts):
            continue
        target = destination / relative
        if path.is_symlink():
            target.symlink_to(os.readlink(path))
        elif path.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        elif path.is_file():
            size = path.stat().st_size
            if total + size > SUBMISSION_CAP_BYTES or copied >= SUBMISSION_CAP_FILES:
                left_out.append(str(relative))
                continue
            total += size
            copied += 1
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return left_out


def worker_environment(scratch: Path, *, cuda: bool, token: str) -> dict[str, str]:
    """A minimal environment: nothing of the grader's (tokens, paths) leaks to the student.
    `token` marks the worker's processes (see `kill_strays`)."""
    env = {"TORCH_GRADER_WORKER": token, "PATH": "/usr/local/bin:/usr/bin:/bin",
           "HOME": str(scratch),
           "TMPDIR": str(scratch / "tmp"), "LANG": "C.UTF-8", "PYTHONHASHSEED": "0",
           "PYTHONDONTWRITEBYTECODE": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONIOENCODING": "utf-8"}
    if cuda:
        for name in ("CUDA_VISIBLE_DEVICES", "LD_LIBRARY_PATH", "CUDA_HOME"):
            if name in os.environ:
                env[name] = os.environ[name]
    else:
        env["CUDA_VISIBLE_DEVICES"] = ""  # then pick_device() must answer cpu
    return env


class DiskWatchdog:
    """Measures a scratch folder (blocks really used, files) where no tmpfs caps it. It looks
    every WATCH_SECONDS while the worker runs, so a submission can overshoot the budget by
    what it writes in that time (tens of MiB on a fast disk) before it is stopped."""

    def __init__(self, folder: Path | None, budget: int) -> None:
        self.folder = folder
        self.budget = budget
        self.checked = time.monotonic()
        self.used = 0  # bytes at the last measurement

    def due(self) -> float:
        """Seconds until the next measurement."""
        return self.checked + WATCH_SECONDS - time.monotonic()

    def over_budget(self) -> str | None:
        """Why the folder is over budget, or None."""
        self.checked = time.monotonic()
        used = files = 0
        pending = [str(self.folder)] if self.folder else []
        while pending:
            try:
                entries = list(os.scandir(pending.pop()))
            except OSError:
                continue
            for entry in entries:
                files += 1
                try:
                    used += entry.stat(follow_symlinks=False).st_blocks * 512
                    if entry.is_dir(follow_symlinks=False):
                        pending.append(entry.path)
                except OSError:
                    continue
            if used > self.budget or files > isolation.DISK_INODES:
                self.used = used
                return disk_budget_text(self.budget)
        self.used = used
        return None


def disk_budget_text(budget: int) -> str:
    return (f"your code wrote more than this submission's disk budget of {budget >> 20} MiB "
            "(all files it writes, together), so it was stopped")


# --- the zygote: a warm process that forks workers -------------------------------------------


class Zygote:
    """A process that imported torch (and computed nothing) and forks one worker per
    submission: a worker then starts in milliseconds instead of the ~1.5 s of `import torch`."""

    def __init__(self) -> None:
        self.process: subprocess.Popen | None = None
        self.control: Any = None

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
        atexit.register(self.close)

    def _ask(self, message: dict, fds: list[int]) -> int:
        import socket

        if self.process is None or self.process.poll() is not None:
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


def allowed_cores() -> set[int] | None:
    try:
        return set(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return None


def set_cores(cores: set[int] | None) -> None:
    """Let this process and its zygote run on `cores` (undoes `pin_to_core`)."""
    if not cores:
        return
    try:
        os.sched_setaffinity(0, cores)
        warm = zygote()
        if warm.process is not None:
            os.sched_setaffinity(warm.process.pid, cores)
    except (AttributeError, OSError):
        pass


def pin_to_core(slot: int) -> None:
    """Run this grader process, its zygote and every worker it forks on one core (slot `slot`
    of the cores this process may use). Judge and worker take turns (a request, then its
    reply), so one core serves both; waking the other side on the same core is ~3x faster
    than across cores, and parallel jobs on distinct cores never compete."""
    cores = sorted(allowed_cores() or ())
    if cores:  # elsewhere (not Linux) unpinned is fine
        set_cores({cores[slot % len(cores)]})


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
        self.to_worker = to_worker_write
        self.from_worker = from_worker_read
        self.starts += 1
        reply = self.request({"op": "hello"}, timeout=STARTUP_SECONDS)
        self.isolation = reply.get("isolation", {})

    def request(self, message: dict, *, timeout: float) -> dict:
        """Send one request and wait for its reply, at most `timeout` seconds."""
        if self.pid is None:
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
            reply = wire.receive(self.from_worker)
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


def _bootstrap() -> str:
    from grader.worker import BOOTSTRAP

    return BOOTSTRAP


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
