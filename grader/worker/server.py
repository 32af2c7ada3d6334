"""The worker: the only process that imports and runs a student's submission.

Forked by the zygote (`grader.worker.zygote`) or started fresh by `grader.sandbox.Worker`
(`BOOTSTRAP` below), it isolates itself (`grader.worker.isolation`), imports torch once, then
answers requests read from FD_IN with plain-data replies on FD_OUT (see `grader.worker.wire`).
It holds no reference solutions and no checks: it only calls what it is asked to call and
reports what came back, so nothing the submission does here can change a verdict, which the
grader computes on its own side. Its stdout/stderr belong to the student (captured by the
parent).
"""

from __future__ import annotations

import errno
import functools
import importlib
import os
import random
import re
import sys
import traceback
from pathlib import Path
from typing import Any

# A part is a file `<part>.py` of the submission, named by the pack: a plain module name.
PART_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Worker:
    """Answers the grader's requests about one submission."""

    isolation: dict[str, str] = {}
    disk_budget: int | None = None  # bytes, when the scratch folder is a tmpfs of that size

    def __init__(self, submission_dir: Path) -> None:
        self.submission_dir = submission_dir.resolve()
        self.modules: dict[str, Any] = {}
        self.handles: dict[int, Any] = {}
        self.next_handle = 1

    # -- requests ------------------------------------------------------------------------------

    def handle(self, request: dict) -> dict:
        operation = request.get("op")
        if operation == "hello":
            import torch

            return {"status": "ok", "pid": os.getpid(), "cuda": torch.cuda.is_available(),
                    "isolation": self.isolation}
        if operation == "load":
            return self.load(request["part"])
        if operation == "call":
            return self.call(request)
        if operation == "probe":  # the start-up probe (`grader.probe`), before any student code
            return {"status": "ok", "reads": [try_read(path) for path in request["paths"]]}
        return {"status": "error", "error": {"type": "ProtocolError", "message": str(operation)}}

    def load(self, part: str) -> dict:
        """Import one part of the submission; report its public names, or why it failed."""
        if not PART_NAME.fullmatch(part):
            return {"status": "error", "error": {"type": "ProtocolError", "message": part}}
        path = self.submission_dir / f"{part}.py"
        if not path.is_file():
            return {"status": "missing", "file": path.name}
        try:
            module = importlib.import_module(part)
        except BaseException as error:  # noqa: BLE001 - SystemExit included: it is the student's
            return {"status": "error", "error": describe_error(error, self.submission_dir)}
        if Path(getattr(module, "__file__", "") or "").resolve() != path.resolve():
            return {"status": "error", "error": {
                "type": "ImportError", "where": path.name,
                "message": f"importing {part} found another module than {path.name}"}}
        self.modules[part] = module
        return {"status": "ok", "names": sorted(n for n in vars(module) if not n.startswith("_"))}

    def resolve(self, target: dict) -> Any:
        from grader.worker import fixtures

        if "handle" in target:
            obj = self.handles[target["handle"]]
            return getattr(obj, target["method"]) if target.get("method") else obj
        if "fixture" in target:
            return fixtures.WORKER_FIXTURES[target["fixture"]]
        module = self.modules[target["part"]]
        return getattr(module, target["name"])

    def keep(self, obj: Any) -> int:
        number = self.next_handle
        self.next_handle += 1
        self.handles[number] = obj
        return number

    def build(self, request: dict) -> dict | None:
        """Build a fixture and keep it under the number the grader chose; a reply saying why
        not, or None."""
        from grader.worker import codec, fixtures

        name = request["target"].get("fixture")
        try:
            function = fixtures.WORKER_FIXTURES[name]
            args = codec.decode_input(request.get("args", []), self.handles)
            seed_all(int(request.get("seed", 0)))
            self.handles[int(request["keep_as"])] = function(*args)
        except Exception as error:  # noqa: BLE001 - a grader's bug, reported as such
            return {"status": "error", "deferred_failed": str(name),
                    "error": describe_error(error, self.submission_dir)}
        return None

    def call(self, request: dict) -> dict:
        """Call the target with decoded inputs; report the result and what happened to inputs."""
        from grader.worker import codec

        if request.get("reset"):  # the previous example's objects (see session.reset)
            self.handles.clear()
            self.next_handle = 1  # numbered from 1 again: the same calls, the same numbers
        for fixture in request.get("before", ()):  # objects built for this call (session.defer)
            failure = self.build(fixture)
            if failure is not None:
                return failure
        try:
            function = self.resolve(request["target"])
        except (KeyError, AttributeError) as error:
            return {"status": "missing", "message": str(error)}
        args = codec.decode_input(request.get("args", []), self.handles)
        kwargs = codec.decode_input(request.get("kwargs", {KIND: "dict", "items": []}),
                                    self.handles) if request.get("kwargs") else {}
        seed_all(int(request.get("seed", 0)))
        monitor = _monitor(request.get("forbid", ()), request.get("watch_autograd", False))
        try:
            if monitor is None:
                result = function(*args, **kwargs)
            else:
                with monitor:
                    result = function(*args, **kwargs)
        except BaseException as error:  # noqa: BLE001 - SystemExit is the student's error too
            reply = {"status": "error", "error": describe_error(error, self.submission_dir)}
            if monitor is not None and monitor.forbidden:
                reply["forbidden"] = sorted(monitor.forbidden)
            return reply
        reply: dict[str, Any] = {"status": "ok"}
        if monitor is not None:
            reply["forbidden"] = sorted(monitor.forbidden)
            reply["autograd_ran"] = monitor.autograd_ran
        if request.get("keep"):
            reply["value"] = {codec.KIND: "handle", "number": self.keep(result),
                              "type": type(result).__name__}
        else:
            reply["value"] = codec.encode(result, handle_for=self.keep)
        reply["result_is_arg"] = next((i for i, arg in enumerate(args) if result is arg), None)
        reply["result_shares_with"] = shared_memory_indices(result, args)
        if request.get("report_args"):
            reply["args_after"] = [codec.encode(arg, handle_for=self.keep) for arg in args]
        return reply


KIND = "__kind__"


def seed_all(seed: int) -> None:
    """Seed torch, random and NumPy before running anything: the same call, the same draws."""
    import numpy as np

    from grader.worker import fixtures

    fixtures.seed_everything(seed)
    random.seed(seed)
    np.random.seed(seed % (2**32))


def try_read(path: str) -> dict:
    """What a submission would get from reading `path`: bytes, or the error."""
    try:
        with open(path, "rb") as handle:
            return {"read": len(handle.read(64))}
    except OSError as error:
        return {"error": f"{type(error).__name__}: {error.strerror or error}"}


def _memory_range(value: Any) -> tuple[int, int] | None:
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        if value.device.type == "meta":
            return None
        storage = value.untyped_storage()
        start = storage.data_ptr()
        return (start, start + storage.nbytes()) if storage.nbytes() else None
    if isinstance(value, np.ndarray):
        low, high = np.lib.array_utils.byte_bounds(value) if hasattr(np.lib, "array_utils") \
            else np.byte_bounds(value)
        return (low, high) if high > low else None
    return None


def shared_memory_indices(result: Any, args: list) -> list[int]:
    """Indices of the arguments whose memory overlaps the result's (aliasing, storage sharing)."""
    result_range = _memory_range(result)
    if result_range is None:
        return []
    shared = []
    for index, arg in enumerate(args):
        arg_range = _memory_range(arg)
        if arg_range and arg_range[0] < result_range[1] and result_range[0] < arg_range[1]:
            shared.append(index)
    return shared


def _monitor(forbid: Any, watch_autograd: bool) -> Any:
    """A dispatch mode that notes forbidden aten ops and whether autograd's backward ran."""
    if not forbid and not watch_autograd:
        return None
    return _monitor_class()(frozenset(forbid))


@functools.cache
def _monitor_class() -> type:
    """The dispatch mode's class, made once (making a class costs more than most calls)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    current_graph_task = torch._C._current_graph_task_id

    class CallMonitor(TorchDispatchMode):
        def __init__(self, forbidden_ops: frozenset[str]) -> None:
            super().__init__()
            self.forbidden_ops = forbidden_ops
            self.forbidden: set[str] = set()
            self.autograd_ran = False

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            if self.forbidden_ops:
                name = str(func.overloadpacket)
                if name in self.forbidden_ops or str(func) in self.forbidden_ops:
                    self.forbidden.add(name)
            if not self.autograd_ran and current_graph_task() != -1:
                self.autograd_ran = True
            return func(*args, **(kwargs or {}))

    return CallMonitor


_ADDRESS = re.compile(r"0x[0-9a-fA-F]{4,}")


def describe_error(error: BaseException, submission_dir: Path) -> dict:
    """The student-facing facts of an exception: type, message, and where in their files."""
    kind = type(error).__name__
    if isinstance(error, SystemExit):
        message = f"your code called exit() / sys.exit({error.code!r})"
    elif isinstance(error, SyntaxError):
        message = f"{error.msg}"
        if error.text:
            message += f": {error.text.strip()}"
    else:
        try:
            message = str(error)
        except Exception:  # noqa: BLE001
            message = "(the error message could not be read)"
    if isinstance(error, OSError) and error.errno == errno.ENOSPC and Worker.disk_budget:
        message += (f" (your code wrote more than this submission's disk budget of "
                    f"{Worker.disk_budget >> 20} MiB: all files it writes, together)")
    message = _ADDRESS.sub("0x...", message)
    if len(message) > 600:
        message = message[:597] + "..."
    frames = []
    for frame in traceback.extract_tb(error.__traceback__):
        path = Path(frame.filename)
        if path.parent.resolve() == submission_dir:
            frames.append({"file": path.name, "line": frame.lineno, "function": frame.name,
                           "code": (frame.line or "").strip()})
    where = None
    if isinstance(error, SyntaxError) and error.filename:
        where = f"{Path(error.filename).name}, line {error.lineno}"
    elif frames:
        where = f"{frames[-1]['file']}, line {frames[-1]['line']}"
    return {"type": kind, "message": message, "where": where, "frames": frames[-5:]}


def serve(fd_in: int, fd_out: int, submission_dir: Path) -> None:
    """The request loop: one reply per request until the grader closes the channel."""
    from grader.worker import wire

    worker = Worker(submission_dir)
    script: Script | None = None
    while True:
        try:
            request = wire.receive(fd_in)
        except wire.WireError:
            return
        operation = request.get("op")
        if operation == "script":  # a check's requests, sent ahead (grader.replay)
            script = Script(request.get("requests", []))
            script.step(worker, fd_out)
        elif operation == "step" and script is not None:
            script.step(worker, fd_out)
        else:
            script = None
            wire.send_payload(fd_out, answer(worker, request))


class Script:
    """A check's requests, sent ahead: each "step" answers the next one (the first is answered
    at once). The grader says "step" only once it has the previous reply and found it to be
    the recorded one, so nothing here runs that the check would not have asked, and nothing
    here learns what the grader expects."""

    def __init__(self, requests: list[bytes]) -> None:
        self.requests = requests
        self.next = 0

    def step(self, worker: Worker, fd_out: int) -> None:
        from grader.worker import wire

        if self.next < len(self.requests):
            self.next += 1
            wire.send_payload(fd_out, answer(worker, wire.loads(self.requests[self.next - 1])))


def answer(worker: Worker, request: dict) -> bytes:
    """Handle one request; its reply, serialized (a reply is always owed)."""
    from grader.worker import wire

    try:
        reply = worker.handle(request)
    except BaseException as error:  # noqa: BLE001 - keep answering
        reply = {"status": "error", "error": describe_error(error, worker.submission_dir)}
    reply["kept"] = len(worker.handles)  # the grader resets only when something is kept
    try:
        return wire.dumps(reply)
    except Exception as error:  # noqa: BLE001 - e.g. an unencodable value
        return wire.dumps({"status": "error", "error": {
            "type": type(error).__name__, "message": f"the result could not be sent: {error}"}})


def run_isolated(fd_in: int, fd_out: int, policy_json: str) -> None:
    """Isolate this process, then serve. Torch is imported already (zygote) or right after
    isolation (a fresh process): once per worker, never per exercise."""
    import json

    from grader.worker import isolation

    policy = isolation.Policy(**json.loads(policy_json))
    for stream in (sys.stdout, sys.stderr):  # what the student prints survives an os._exit
        stream.reconfigure(line_buffering=True)
    # Isolation first: nothing of the student's has run yet, so this report can be trusted.
    report = isolation.apply(policy)
    submission_dir = Path(policy.scratch_dir) / "submission"
    os.chdir(submission_dir)
    import torch

    from grader.worker import lazy_dynamo

    lazy_dynamo.install()  # a no-op when forked from the zygote, which installed it
    torch.set_num_threads(1)
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    sys.path.insert(0, str(submission_dir))
    sys.dont_write_bytecode = True  # never write __pycache__ into a student's folder
    Worker.isolation = report
    if report.get("disk") == isolation.ACTIVE:
        Worker.disk_budget = policy.disk_bytes
    serve(fd_in, fd_out, submission_dir)
    os._exit(0)


def main(argv: list[str]) -> None:
    """`FD_IN FD_OUT POLICY_JSON`: a fresh worker process."""
    run_isolated(int(argv[0]), int(argv[1]), argv[2])


# Run as `python -s -B -c BOOTSTRAP RUNTIME_DIR FD_IN FD_OUT POLICY_JSON`: only the runtime copy
# of the worker's modules is importable as `grader` (never the grader's checks or solutions).
BOOTSTRAP = (
    "import sys; sys.path[:] = [p for p in sys.path if p not in ('', '.')]; "
    "sys.path.insert(0, sys.argv[1]); import grader.worker.server as s; "
    "import grader.worker.zygote as z; "
    "(z.zygote_main if sys.argv[2] == 'zygote' else s.main)(sys.argv[3:])"
)
