"""One submission's conversation with its worker: loading parts, calling names, surviving crashes.

Turns worker replies into values or failures (`grader.failures`): a timeout or a dead worker
becomes `TimedOut`/`Crashed` and the next call gets a fresh worker, which re-imports the parts
that imported fine before. A part whose import hangs or crashes is never imported again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader import sandbox
from grader.failures import Crashed, TimedOut
from grader.worker import codec
from grader.worker.wire import Handle

PART_STATUSES = ("ok", "missing", "error", "timeout")


@dataclass
class PartState:
    """How importing one part file of the submission went."""

    status: str  # one of PART_STATUSES
    names: frozenset[str] = frozenset()
    message: str = ""


@dataclass
class Reply:
    """What a call into the student's code came back with (all plain data, decoded inertly)."""

    status: str
    value: Any = None
    error: dict | None = None
    args_after: list | None = None
    result_is_arg: int | None = None
    shares_with: tuple[int, ...] = ()
    forbidden: tuple[str, ...] = ()
    autograd_ran: bool = False


@dataclass
class Limits:
    """Deadlines, in seconds of wall-clock time."""

    import_seconds: float = 60.0
    call_seconds: float = 10.0
    exercise_seconds: float = 60.0
    submission_seconds: float = 900.0


class SubmissionSession:
    """The grader's handle on one submission's worker."""

    def __init__(self, submission_dir: Path, *, limits: Limits | None = None,
                 settings: sandbox.Settings | None = None) -> None:
        self.submission_dir = Path(submission_dir)
        self.limits = limits or Limits()
        self.worker = sandbox.Worker(self.submission_dir, settings=settings)
        self.parts: dict[str, PartState] = {}
        self.imported: set[str] = set()  # parts imported in the current worker
        self.has_handles = False
        self.reset_pending = False  # drop the worker's objects with the next call
        self.deferred: list[dict] = []  # fixtures the worker builds before the next call
        self.deferred_number = 0
        self.cuda_available: bool | None = None
        self.isolation: dict[str, str] = {}  # layer -> "active" or why not, from the worker
        self.notes: list[str] = []  # how the hand-in was read (zip, notebooks)

    def close(self) -> None:
        self.worker.close()

    def __enter__(self) -> SubmissionSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- parts ---------------------------------------------------------------------------------

    def part(self, part: str) -> PartState:
        """Import a part file (once per worker) and say how it went."""
        state = self.parts.get(part)
        if state is not None and (state.status != "ok" or part in self.imported):
            return state
        try:
            reply = self._request({"op": "load", "part": part}, self.limits.import_seconds)
        except TimedOut:
            state = PartState("timeout", message=f"importing {part}.py did not finish within "
                              f"{self.limits.import_seconds:g} s (an endless loop at the top "
                              "level of the file?)")
        except Crashed as crash:
            state = PartState("error", message=f"importing {part}.py ended the Python process: "
                              f"{crash.message}")
        else:
            if reply["status"] == "ok":
                state = PartState("ok", names=frozenset(reply["names"]))
                self.imported.add(part)
            elif reply["status"] == "missing":
                state = PartState("missing", message=f"there is no {part}.py in the submission")
            else:
                state = PartState("error", message=import_error_text(part, reply["error"]))
        self.parts[part] = state
        return state

    # -- calls ---------------------------------------------------------------------------------

    def call(self, target: dict, args: list, *, kwargs: dict | None = None, seed: int = 0,
             forbid: tuple[str, ...] = (), watch_autograd: bool = False, keep: bool = False,
             report_args: bool = False, timeout: float | None = None) -> Reply:
        """Call a student name, a fixture or a kept object's method in the worker."""
        if "part" in target:
            state = self.part(target["part"])
            if state.status != "ok":
                return Reply(status="part-" + state.status, error={"message": state.message})
        request = {"op": "call", "target": target, "args": args, "seed": seed,
                   "forbid": list(forbid), "watch_autograd": watch_autograd, "keep": keep,
                   "report_args": report_args}
        if kwargs:
            request["kwargs"] = kwargs
        if self.reset_pending:  # the previous example's objects go first, in the same trip
            request["reset"] = True
            self.reset_pending = False
        if self.deferred:  # then the objects built for this call (see `defer`)
            request["before"], self.deferred = self.deferred, []
        reply = self._request(request, timeout or self.limits.call_seconds)
        self.has_handles = reply.get("kept", 1) > 0  # objects the worker holds for us
        if reply.get("deferred_failed"):
            raise RuntimeError(f"fixture {reply['deferred_failed']} failed in the worker: "
                               f"{reply.get('error')}")
        return Reply(
            status=reply["status"],
            value=codec.decode_result(reply.get("value")),
            error=reply.get("error") or ({"message": reply["message"]} if "message" in reply
                                         else None),
            args_after=codec.decode_result(reply["args_after"]) if reply.get("args_after")
            is not None else None,
            result_is_arg=reply.get("result_is_arg"),
            shares_with=tuple(reply.get("result_shares_with", ())),
            forbidden=tuple(reply.get("forbidden", ())),
            autograd_ran=bool(reply.get("autograd_ran", False)),
        )

    def defer(self, target: dict, args: list, *, seed: int = 0, type_name: str = "") -> Handle:
        """A trusted object (a fixture) the worker builds at the start of the next call, in
        the same round trip; returns the handle it will have (numbered here, below zero, so
        it never meets the worker's own numbers)."""
        self.deferred_number -= 1
        self.deferred.append({"target": target, "args": args, "seed": seed,
                              "keep_as": self.deferred_number})
        self.has_handles = True
        return Handle(self.deferred_number, type_name)

    def reset(self) -> None:
        """Forget the objects the worker keeps for us (between examples): the worker drops
        them at the start of the next call, which saves a round trip of its own."""
        if self.has_handles and self.worker.pid is not None:
            self.reset_pending = True
        self.has_handles = False
        self.deferred = []

    def start(self) -> None:
        """Start the worker now (it also starts on the first request that needs it)."""
        self.imported.clear()
        self.reset_pending = False
        self.deferred = []
        try:
            self.worker.start()
        except sandbox.WorkerFailure as failure:
            self.worker.kill()
            raise Crashed(f"the worker could not start: {failure}") from None
        self.isolation = dict(self.worker.isolation)
        self.notes = list(self.worker.notes)

    def _request(self, message: dict, timeout: float) -> dict:
        if self.worker.pid is None:
            self.start()
            if message.get("op") == "call" and "part" in message["target"]:
                self.part(message["target"]["part"])
        try:
            return self.worker.request(message, timeout=timeout)
        except sandbox.WorkerTimeout as failure:
            raise TimedOut(f"your code did not finish within {timeout:g} s"
                           + _output_hint(failure.output)) from None
        except sandbox.WorkerCrashed as failure:
            raise Crashed(f"{failure}" + _output_hint(failure.output)) from None


def _output_hint(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()][-3:]
    if not lines:
        return ""
    return "\nThe last lines it printed were:\n" + "\n".join("  " + line[:200] for line in lines)


def import_error_text(part: str, error: dict) -> str:
    """`tensors.py could not be imported: SyntaxError on line 3: ...`"""
    where = error.get("where") or f"{part}.py"
    return f"{part}.py could not be imported ({error.get('type', 'Error')} at {where}): " \
        f"{error.get('message', '')}"
