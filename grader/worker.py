"""The worker: the only process that imports and runs a student's submission.

Started by `grader.sandbox.Worker` as `python -m grader.worker FD_IN FD_OUT SUBMISSION_DIR`. It
imports torch once, then answers requests read from FD_IN with plain-data replies on FD_OUT (see
`grader.wire`). It holds no reference solutions and no checks: it only calls what it is asked to
call and reports what came back, so nothing the submission does here can change a verdict, which
the grader computes on its own side. Its stdout/stderr belong to the student (captured by the
parent).
"""

from __future__ import annotations

import errno
import importlib
import os
import random
import re
import sys
import time
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
        if operation == "reset":
            self.handles.clear()
            return {"status": "ok"}
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
        from grader import fixtures

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

    def call(self, request: dict) -> dict:
        """Call the target with decoded inputs; report the result and what happened to inputs."""
        import numpy as np

        from grader import codec, fixtures

        try:
            function = self.resolve(request["target"])
        except (KeyError, AttributeError) as error:
            return {"status": "missing", "message": str(error)}
        args = codec.decode_input(request.get("args", []), self.handles)
        kwargs = codec.decode_input(request.get("kwargs", {KIND: "dict", "items": []}),
                                    self.handles) if request.get("kwargs") else {}
        seed = int(request.get("seed", 0))
        fixtures.seed_everything(seed)
        random.seed(seed)
        np.random.seed(seed % (2**32))
        monitor = _monitor(request.get("forbid", ()), request.get("watch_autograd", False))
        started = time.perf_counter()
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
        seconds = time.perf_counter() - started
        reply: dict[str, Any] = {"status": "ok", "seconds": seconds}
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
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    forbidden_ops = set(forbid)

    class CallMonitor(TorchDispatchMode):
        def __init__(self) -> None:
            super().__init__()
            self.forbidden: set[str] = set()
            self.autograd_ran = False

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
            name = str(func.overloadpacket)
            if name in forbidden_ops or str(func) in forbidden_ops:
                self.forbidden.add(name)
            if not self.autograd_ran and torch._C._current_graph_task_id() != -1:
                self.autograd_ran = True
            return func(*args, **(kwargs or {}))

    return CallMonitor()


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
    from grader import wire

    worker = Worker(submission_dir)
    while True:
        try:
            request = wire.receive(fd_in)
        except wire.WireError:
            return
        try:
            reply = worker.handle(request)
        except BaseException as error:  # noqa: BLE001 - keep answering; a reply is always owed
            reply = {"status": "error", "error": describe_error(error, worker.submission_dir)}
        reply["kept"] = len(worker.handles)  # the grader resets only when something is kept
        try:
            wire.send(fd_out, reply)
        except Exception as error:  # noqa: BLE001 - e.g. an unencodable value
            wire.send(fd_out, {"status": "error", "error": {
                "type": type(error).__name__, "message": f"the result could not be sent: {error}"}})


def run_isolated(fd_in: int, fd_out: int, policy_json: str) -> None:
    """Isolate this process, then serve. Torch is imported already (zygote) or right after
    isolation (a fresh process): once per worker, never per exercise."""
    import json

    from grader import isolation

    policy = isolation.Policy(**json.loads(policy_json))
    for stream in (sys.stdout, sys.stderr):  # what the student prints survives an os._exit
        stream.reconfigure(line_buffering=True)
    # Isolation first: nothing of the student's has run yet, so this report can be trusted.
    report = isolation.apply(policy)
    submission_dir = Path(policy.scratch_dir) / "submission"
    os.chdir(submission_dir)
    import torch

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


def warm_up() -> None:
    """Pay torch's first-use costs once, in the zygote, instead of in every worker (and in
    the grader while it waits for its first worker).

    The first optimizer, DataLoader, backward pass, dispatch mode or meta-device op of a
    process imports and initialises lazily (~1.2 s in all); a child forked after this starts
    warm (~10 ms). Everything runs on one thread, so no OpenMP pool exists to break in the
    children (`torch.set_num_threads(1)` first; the children set it again). Only the shipped
    fixtures run here: nothing computed holds an answer.
    """
    import torch

    from grader import codec, fixtures

    torch.set_num_threads(1)
    fixtures.seed_everything(0)
    # The meta device imports ~800 modules (sympy, decompositions) on its first op.
    torch.cat([torch.empty(2, device="meta")] * 2).sum()
    x, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    with _monitor(("aten::_softmax",), True):
        for model in (fixtures.mlp([4, 8, 3], seed=0), fixtures.spy_classifier(4, 3, seed=0)):
            optimizer = fixtures.sgd(model, lr=0.1, momentum=0.9)
            for features, labels in fixtures.loader(x, y, batch_size=4):
                optimizer.zero_grad()
                loss = fixtures.criterion("cross_entropy")(model(features), labels)
                loss.backward()
                optimizer.step()
            model.eval()
            with torch.no_grad():
                model(x).argmax(dim=1)
            model.load_state_dict(model.state_dict())
            fixtures.describe_module(model)
        leaf = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
        (total,) = torch.autograd.grad(fixtures.scalar_function("sum of cubes")(leaf), leaf)
        (leaf * 2).backward(torch.ones_like(leaf))  # explicit grads: a lazy import of their own
        torch.nn.functional.mse_loss(torch.softmax(x, 1), torch.log_softmax(x, 1))
        torch.einsum("ij,kj->ik", x, x) @ x
    for kind in fixtures.ASSORTED_MODELS:
        fixtures.assorted_model(kind, seed=0)
    codec.encode([total, x.numpy(), {"loss": 1.0}, (1, "a")])


def zygote_main(argv: list[str]) -> None:
    """`CONTROL_FD`: import torch and warm it up once, then fork one worker per request.

    A request on the control socket carries the policy (JSON) and three descriptors (the
    worker's request pipe, reply pipe and output file); the reply is the new worker's pid.
    Only single-threaded warm-up runs here (a multithreaded op would break OpenMP in the
    children), and nothing here may hold an answer: the children inherit this memory.
    """
    import gc
    import json
    import signal
    import socket

    import numpy  # noqa: F401 - warm imports shared by every child
    import torch  # noqa: F401

    from grader import codec, fixtures, isolation  # noqa: F401

    warm_up()
    # The children inherit every object imported so far: keep the garbage collector from
    # walking (and so copying, page by page) that inherited heap in each child.
    gc.freeze()
    control = socket.socket(fileno=int(argv[0]))
    isolation.die_with_parent()
    isolation.libc().prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: adopt orphans, kill them
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1 << 16, 4)
        except OSError:
            os._exit(0)
        if not message:
            os._exit(0)
        request = json.loads(message)
        if request.get("op") == "cleanup":
            # the worker's escaped forks become ours once it is gone (it was killed already)
            isolation.wait_gone(request["group"])
            isolation.kill_adopted(request["token"], request["group"], reap=False)
            control.sendall(b"0\n")
            continue
        pid = os.fork()
        if pid == 0:
            try:
                control.close()
                fd_in, fd_out, output = fds
                os.dup2(output, 1)
                os.dup2(output, 2)
                os.close(output)
                os.setsid()
                os.environ.clear()
                os.environ.update(request["env"])
                run_isolated(fd_in, fd_out, json.dumps(request["policy"]))
            finally:
                os._exit(1)
        for fd in fds:
            os.close(fd)
        control.sendall(f"{pid}\n".encode())


# Run as `python -s -B -c BOOTSTRAP RUNTIME_DIR FD_IN FD_OUT POLICY_JSON`: only the runtime copy
# of the worker's modules is importable as `grader` (never the grader's checks or solutions).
BOOTSTRAP = (
    "import sys; sys.path[:] = [p for p in sys.path if p not in ('', '.')]; "
    "sys.path.insert(0, sys.argv[1]); import grader.worker as w; "
    "(w.zygote_main if sys.argv[2] == 'zygote' else w.main)(sys.argv[3:])"
)
