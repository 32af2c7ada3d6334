"""One submission's conversation with its worker: loading parts, calling names, surviving crashes.

Turns worker replies into values or failures (`grader.failures`): a timeout or a dead worker
becomes `TimedOut`/`Crashed` and the next call gets a fresh worker, which re-imports the parts
that imported fine before. A part whose import hangs or crashes is never imported again.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grader import replay, sandbox
from grader.failures import Crashed, TimedOut
from grader.worker import codec, wire
from grader.worker.wire import Handle

STEP = wire.dumps({"op": "step"})  # the worker answers the next request of its script


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
        self.loaded: set[str] = set()  # parts the current worker was asked to load (any outcome)
        self.has_handles = False
        self.reset_pending = False  # drop the worker's objects with the next call
        self.deferred: list[dict] = []  # fixtures the worker builds before the next call
        self.deferred_number = 0
        self.cuda_available: bool | None = None
        self.isolation: dict[str, str] = {}  # layer -> "active" or why not, from the worker
        self.notes: list[str] = []  # how the hand-in was read (zip, notebooks)
        # the check being run (see `prepare_check`): its part, what it asked, and its script
        # being answered ahead or its requests being recorded (grader.replay)
        self.check_part: str | None = None
        self.asked: list[bytes] = []
        self.replay: replay.Replay | None = None
        self.recording: replay.Recording | None = None

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
            try:
                state = self._part_state(part, reply)
            except Exception as error:  # noqa: BLE001 - a reply the worker never writes: forged
                self.worker.kill()  # by the part's top-level code on the worker's pipe
                state = PartState("error", message=f"importing {part}.py sent the grader an "
                                  f"answer it cannot read ({type(error).__name__}: {error})")
        self.loaded.add(part)  # (after the request: a worker it started begins with none)
        self.parts[part] = state
        return state

    def _part_state(self, part: str, reply: dict) -> PartState:
        if reply["status"] == "ok":
            state = PartState("ok", names=frozenset(reply["names"]))
            self.imported.add(part)
            return state
        if reply["status"] == "missing":
            return PartState("missing", message=f"there is no {part}.py in the submission")
        return PartState("error", message=import_error_text(part, reply["error"]))

    def keep_to_part(self, part: str) -> None:
        """Grade `part` next in a worker that has loaded no other part (a fresh one when the
        current worker has): what ran before in this session then changes nothing of its
        results, whichever parts that was."""
        if self.loaded - {part}:
            self.worker.kill()  # the next request starts a fresh worker

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
        if isinstance(reply, dict) and reply.get("deferred_failed"):
            raise RuntimeError(f"fixture {reply['deferred_failed']} failed in the worker: "
                               f"{reply.get('error')}")
        try:
            return self._reply(reply)
        except Exception as error:  # noqa: BLE001 - a reply the worker never writes: forged
            # by the student's code on the worker's pipe. A fresh worker grades the rest.
            self.worker.kill()
            raise Crashed("your code sent the grader an answer it cannot read "
                          f"({type(error).__name__}: {error})") from None

    def _reply(self, reply: dict) -> Reply:
        """The worker's reply as a `Reply`, its values decoded into inert records."""
        self.has_handles = reply.get("kept", 1) > 0  # objects the worker holds for us
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
        self.loaded.clear()
        self.reset_pending = False
        self.deferred = []
        try:
            self.worker.start()
        except sandbox.WorkerFailure as failure:
            self.worker.kill()
            raise Crashed(f"the worker could not start: {failure}") from None
        self.isolation = dict(self.worker.isolation)
        self.notes = list(self.worker.notes)

    # -- checks sent ahead (see grader.replay) --------------------------------------------------

    def prepare_check(self, part: str) -> None:
        """A check is about to be set up: its worker is started with its part imported, and
        what the check will ask starts from the same state whatever ran before (no objects
        kept, fixtures numbered from -1), so that it asks the same of every submission."""
        self.end_check(passed=False)
        if self.worker.pid is None:
            try:
                self.start()
            except Crashed:
                return  # its first request says so
        self.part(part)
        self.check_part = part
        self.reset_pending, self.has_handles, self.deferred = True, False, []
        self.deferred_number = 0
        self.asked = []

    def begin_check(self, key: tuple) -> None:
        """The check itself starts: send its script when it passed before in this process
        (the worker answers the first request at once), else record what it asks."""
        script = replay.script_for(key)
        if self.worker.pid is None:
            return
        if script is None:
            self.recording = replay.Recording(key, self.worker.starts)
        elif script.requests:
            try:
                self.worker.post(wire.dumps(script.message()))
            except sandbox.WorkerCrashed:
                return  # (killed) the check's first request starts a fresh worker
            self.replay = replay.Replay(script, answered=1)

    def end_check(self, *, passed: bool) -> None:
        """The check ended: keep its script if it passed asked live in one worker; stop a
        worker that is still answering requests the check did not ask."""
        if self.replay is not None and self.replay.ahead:
            self.worker.kill()  # the next check starts a fresh one
        recording = self.recording
        if (recording is not None and passed and self.worker.pid is not None
                and self.worker.starts == recording.worker_starts):
            replay.keep(recording.key, recording.script())
        self.replay = self.recording = None
        self.check_part, self.asked = None, []

    def verify_check(self) -> bool:
        """Read the worker's replies to the check's script, saying "step" after each one that
        is the recorded one: True when all are (the check would pass again: it need not run).
        Otherwise the worker waits after the first that differs (or it crashed, or ran out of
        time, which the check will get when it asks that request), and the check runs."""
        current = self.replay
        if current is None:
            return False
        replies = current.script.replies
        timeout = self.limits.call_seconds
        while True:
            try:
                reply = self.worker.reply_payload(timeout=timeout)
            except sandbox.WorkerTimeout as failure:
                current.failure = _timed_out(timeout, failure.output)
                return False
            except sandbox.WorkerCrashed as failure:
                current.failure = _crashed(failure)
                return False
            current.read.append(reply)
            if reply != replies[len(current.read) - 1]:
                return False
            if len(current.read) == len(replies):
                self.replay = None  # the worker ran the whole script, as the check would have
                return True
            try:
                self.worker.post(STEP)
            except sandbox.WorkerCrashed as failure:
                current.failure = _crashed(failure)
                return False
            current.answered += 1

    def _request(self, message: dict, timeout: float) -> dict:
        payload = wire.dumps(message)
        current = self.replay
        if current is not None and current.taken < len(current.read) + (current.failure is not
                                                                         None):
            if current.is_next(payload):  # a reply read ahead, or the failure met there
                self.asked.append(payload)
                if current.taken == len(current.read):
                    self.replay = None
                    raise current.failure  # type: ignore[misc]
                current.taken += 1
                return self._decoded(current.read[current.taken - 1])
            if self.worker.pid is None:  # (it failed: nothing to catch up with)
                self.replay = None
        if self.worker.pid is None:
            self.replay = None  # a fresh worker: the rest of the check is asked live
            self.start()
            if message.get("op") == "call" and "part" in message["target"]:
                self.part(message["target"]["part"])
        if self.check_part is not None:
            self.asked.append(payload)
        try:
            current = self.replay
            if current is not None and current.is_next(payload):
                if current.answered == current.taken:
                    self.worker.post(STEP)
                    current.answered += 1
                current.taken += 1
                return self._decoded(self.worker.reply_payload(timeout=timeout))
            if current is not None and current.ahead:
                self._catch_up()
            self.replay = None
            self.worker.post(payload)
            reply = self.worker.reply_payload(timeout=timeout)
            if self.recording is not None:
                self.recording.requests.append(payload)
                self.recording.replies.append(reply)
            return self._decoded(reply)
        except sandbox.WorkerTimeout as failure:
            self.replay = None
            raise _timed_out(timeout, failure.output) from None
        except sandbox.WorkerCrashed as failure:
            self.replay = None
            raise _crashed(failure) from None

    def _decoded(self, payload: bytes) -> dict:
        try:
            return self.worker.decoded(payload)
        except sandbox.WorkerCrashed as failure:
            self.replay = None
            raise _crashed(failure) from None

    def _catch_up(self) -> None:
        """The check asked something its script did not while the worker was answering ahead
        (a check that is not deterministic): a fresh worker is given again what the check
        asked so far, and the rest of the check is asked live."""
        *asked, current = self.asked
        self.worker.kill()
        self.replay = None
        self.start()
        if self.check_part is not None:
            self.part(self.check_part)
        self.asked = [*asked, current]
        if asked:
            self.worker.post(wire.dumps({"op": "script", "requests": asked}))
            for index in range(len(asked)):
                if index:
                    self.worker.post(STEP)
                self.worker.reply_payload(timeout=self.limits.call_seconds)


def _timed_out(timeout: float, output: str) -> TimedOut:
    return TimedOut(f"your code did not finish within {timeout:g} s" + _output_hint(output))


def _crashed(failure: sandbox.WorkerCrashed) -> Crashed:
    return Crashed(f"{failure}" + _output_hint(failure.output))


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
