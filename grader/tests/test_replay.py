"""Checks sent ahead (`grader.replay`): a later submission's worker answers a check's recorded
requests without being asked one by one, and every verdict and feedback stays exactly what
asking one request at a time gives, for right, wrong, crashing, slow and stateful code."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

from grader import pack, replay, runner
from grader.results import SubmissionResult
from grader.session import Limits, SubmissionSession
from grader.worker import codec, server, wire

from .conftest import FIXTURES, copy_solutions, with_bug


@pytest.fixture
def fresh_scripts(monkeypatch: pytest.MonkeyPatch) -> dict:
    """No script recorded yet (the test session's other gradings recorded some)."""
    scripts: dict = {}
    monkeypatch.setattr(replay, "_scripts", scripts)
    return scripts


@pytest.fixture
def answered_ahead(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the requests a running check asked from a script (one entry each)."""
    taken: list[int] = []
    is_next = replay.Replay.is_next

    def counting(self: replay.Replay, payload: bytes) -> bool:
        found = is_next(self, payload)
        if found:
            taken.append(self.taken)
        return found

    monkeypatch.setattr(replay.Replay, "is_next", counting)
    return taken


@pytest.fixture
def verified(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What each check with a script came to: True when every reply was the recorded one (the
    check passed without running)."""
    outcomes: list[bool] = []
    verify = SubmissionSession.verify_check

    def counting(self: SubmissionSession) -> bool:
        had_script = self.replay is not None
        outcome = verify(self)
        if had_script:
            outcomes.append(outcome)
        return outcome

    monkeypatch.setattr(SubmissionSession, "verify_check", counting)
    return outcomes


def comparable(result: SubmissionResult) -> dict:
    """Everything of a result but its timings."""
    data = result.to_dict()
    data.pop("seconds")
    for exercise in data["exercises"]:
        exercise.pop("seconds", None)
    return data


def graded_both_ways(folder: Path, options: runner.Options,
                     monkeypatch: pytest.MonkeyPatch) -> tuple[dict, dict]:
    """(asked one request at a time, with scripts recorded on the solutions)."""
    with monkeypatch.context() as patched:
        patched.setattr(replay, "script_for", lambda key: None)
        live = runner.grade_submission(folder, options)
    ahead = runner.grade_submission(folder, options)
    return comparable(live), comparable(ahead)


# --- a correct submission after another -------------------------------------------------------


def test_a_second_correct_submission_passes_from_its_replies_alone(
        tmp_path: Path, fresh_scripts: dict, verified: list[bool],
        answered_ahead: list[int]) -> None:
    options = runner.Options(only=("tensors", "training"))
    first = runner.grade_submission(pack.pack_folder("solutions"), options)
    assert verified == []  # nothing was recorded before
    assert len(fresh_scripts) >= 20  # one script per passing check
    second = runner.grade_submission(copy_solutions(tmp_path / "again"), options)
    assert verified == [True] * len(fresh_scripts)  # every check: the same replies
    assert answered_ahead == []  # so none ran
    assert second.score == second.max_score == first.max_score
    assert comparable(second)["exercises"] == comparable(first)["exercises"]


def test_a_failing_check_is_not_recorded(tmp_path: Path, fresh_scripts: dict) -> None:
    folder, exercise_id = with_bug(tmp_path / "bug",
                                   FIXTURES / "bugs" / "tensors__dot__keepdim_shape_one.py")
    result = runner.grade_submission(folder, runner.Options(only=(exercise_id,)))
    statuses = {check.name: check.status for ex in result.exercises for check in ex.checks}
    recorded = {key[1] for key in fresh_scripts}
    for name, status in statuses.items():
        assert any(name in nodeid for nodeid in recorded) == (status == "passed"), name


# --- the same verdicts ------------------------------------------------------------------------

# bugs found at the first example, at a later one (after passing examples whose replies differed:
# "resume"), in network weights (large replies), in a training loop and in autograd state
BUGS = [
    "tensors__dot__keepdim_shape_one",
    "tensors__softmax__sum_without_keepdim",
    "tensors__swap__uses_dot_T",
    "networks__Net__flatten_whole_batch",
    "training__train_batches__no_zero_grad",
    "autograd__accumulated_grad__zeros_between_calls",
]


@pytest.mark.parametrize("bug", BUGS)
def test_a_buggy_submission_gets_the_same_result_ahead_as_asked_one_by_one(
        bug: str, tmp_path: Path, fresh_scripts: dict, verified: list[bool],
        monkeypatch: pytest.MonkeyPatch) -> None:
    part = bug.split("__")[0]
    options = runner.Options(only=(part,))
    runner.grade_submission(pack.pack_folder("solutions"), options)  # records the part
    folder, exercise_id = with_bug(tmp_path / bug, FIXTURES / "bugs" / f"{bug}.py")
    live, ahead = graded_both_ways(folder, options, monkeypatch)
    assert True in verified and False in verified  # its passing checks, its failing one
    assert ahead == live
    assert [ex["status"] for ex in ahead["exercises"] if ex["id"] == exercise_id] != ["passed"]


def test_a_correct_style_gets_the_same_result_ahead(
        tmp_path: Path, fresh_scripts: dict, answered_ahead: list[int],
        monkeypatch: pytest.MonkeyPatch) -> None:
    runner.grade_submission(pack.pack_folder("solutions"), runner.Options())
    style = FIXTURES / "correct" / "reordered"  # other float roundings: replies that differ
    live, ahead = graded_both_ways(style, runner.Options(), monkeypatch)
    assert answered_ahead  # checks that ran, taking replies read ahead
    assert ahead == live
    assert all(ex["status"] == "passed" for ex in ahead["exercises"])


STATEFUL_CRASHING_SLOW = '''

_calls = [0]


def dot(u, v):
    _calls[0] += 1  # state kept between calls (and checks) in the worker
    if _calls[0] == 7:
        return (u * v).sum() + 1  # wrong once, at the seventh call
    return (u * v).sum()


def count_elements(t):
    if t.numel() > 5:
        import os
        os._exit(3)  # ends the worker in the middle of a script
    return t.numel()


def concat(tensors, dim):
    if sum(t.numel() for t in tensors) > 8:
        while True:  # runs out of time in the middle of a script
            pass
    return torch.cat(tensors, dim)
'''


def test_stateful_crashing_and_slow_code_gets_the_same_result_ahead(
        tmp_path: Path, fresh_scripts: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    options = runner.Options(only=("tensors.dot", "tensors.count_elements", "tensors.concat"),
                             limits=Limits(call_seconds=1.0))
    runner.grade_submission(pack.pack_folder("solutions"), options)
    folder = solutions_with(tmp_path / "odd", STATEFUL_CRASHING_SLOW, pack.parts())
    live, ahead = graded_both_ways(folder, options, monkeypatch)
    assert ahead == live
    statuses = {ex["id"]: ex["status"] for ex in ahead["exercises"]}
    assert statuses == {"tensors.dot": "failed", "tensors.count_elements": "error",
                        "tensors.concat": "timeout"}


# --- a check that asks something else than its replies imply -------------------------------


def encoded(value: object) -> object:
    return codec.encode(value, device="cpu", exact_layout=True)


def ask_dot(session: SubmissionSession, u: list[float]) -> float:
    reply = session.call({"part": "tensors", "name": "dot"},
                         [encoded(torch.tensor(u)), encoded(torch.ones(len(u)))])
    assert reply.status == "ok", reply.error
    return float(reply.value.values)


OFF_BY_ONE_FOR_TWO = """

def dot(u, v):
    return (u * v).sum() + (1 if u.numel() == 2 else 0)
"""


def record_dots(key: tuple, dots: list[list[float]]) -> None:
    """The script of a check that asks `dot` of each vector (and a ones vector)."""
    with SubmissionSession(pack.pack_folder("solutions")) as session:
        session.prepare_check("tensors")
        session.begin_check(key)
        for u in dots:
            ask_dot(session, u)
        session.end_check(passed=True)


def solutions_with(folder: Path, code: str, parts: tuple[str, ...] = ("tensors",)) -> Path:
    """The solutions, with `code` added at the end of tensors.py (its definitions win)."""
    copy_solutions(folder, parts)
    with open(folder / "tensors.py", "a", encoding="utf-8") as handle:
        handle.write(code)
    return folder


@contextmanager
def replaying_off_by_one(tmp_path: Path, key: tuple) -> Iterator[SubmissionSession]:
    """A session on a submission whose `dot` is off by one for two-element vectors, in the
    check `key` recorded on the solutions, once verifying its replies stopped at a difference."""
    with SubmissionSession(solutions_with(tmp_path / "off", OFF_BY_ONE_FOR_TWO)) as session:
        session.prepare_check("tensors")
        session.begin_check(key)
        assert session.verify_check() is False
        yield session


def test_a_check_that_asks_something_else_than_its_replies_imply_gets_a_caught_up_worker(
        tmp_path: Path, fresh_scripts: dict) -> None:
    key = ("a check", "that is not deterministic", 3, True)
    record_dots(key, [[1.0], [1.0, 2.0], [3.0], [4.0]])
    with replaying_off_by_one(tmp_path, key) as session:  # [1, 2] gave 4.0: it stopped there
        worker = session.worker.pid
        assert ask_dot(session, [1.0]) == 1.0  # as read while verifying
        assert ask_dot(session, [9.0]) == 9.0  # not what the replies read imply: caught up
        assert session.worker.pid != worker
        assert ask_dot(session, [1.0, 2.0]) == 4.0  # and on, live
        session.end_check(passed=False)


def test_a_check_that_ends_before_its_replies_do_stops_the_worker(
        tmp_path: Path, fresh_scripts: dict) -> None:
    key = ("a check", "that ends early", 3, True)
    record_dots(key, [[1.0], [1.0, 2.0], [3.0]])
    with replaying_off_by_one(tmp_path, key) as session:
        ask_dot(session, [1.0])  # the check stops before taking the reply it read for [1, 2]
        session.end_check(passed=False)
        assert session.worker.pid is None  # that worker ran a request the check never asked
        session.prepare_check("tensors")  # the next check starts a fresh one
        assert ask_dot(session, [2.0, 2.0]) == 5.0


def test_a_check_asked_past_a_reply_that_differed_steps_the_worker(
        tmp_path: Path, fresh_scripts: dict, answered_ahead: list[int]) -> None:
    key = ("a check", "with a reply that differs", 3, True)
    record_dots(key, [[1.0, 2.0], [3.0], [4.0]])
    with replaying_off_by_one(tmp_path, key) as session:  # the first reply differs
        worker = session.worker.pid
        assert [ask_dot(session, u) for u in ([1.0, 2.0], [3.0], [4.0])] == [4.0, 3.0, 4.0]
        assert answered_ahead == [0, 1, 2] and session.worker.pid == worker
        session.end_check(passed=True)


# --- the worker's side ------------------------------------------------------------------------


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """A worker's request loop on pipes, in a thread of this process, on the solutions."""
    folder = copy_solutions(tmp_path / "served", ("tensors",))
    to_worker_read, to_worker = os.pipe()
    from_worker, from_worker_write = os.pipe()
    import sys

    sys.path.insert(0, str(folder))
    sys.modules.pop("tensors", None)
    thread = threading.Thread(target=server.serve, args=(to_worker_read, from_worker_write,
                                                         folder), daemon=True)
    thread.start()
    wire.send(to_worker, {"op": "load", "part": "tensors"})
    assert wire.receive(from_worker)["status"] == "ok"
    try:
        yield to_worker, from_worker
    finally:
        os.close(to_worker)
        thread.join(timeout=10)
        for fd in (to_worker_read, from_worker, from_worker_write):
            os.close(fd)
        sys.path.remove(str(folder))
        sys.modules.pop("tensors", None)


def dot_request(u: list[float]) -> bytes:
    return wire.dumps({"op": "call", "target": {"part": "tensors", "name": "dot"},
                       "args": [encoded(torch.tensor(u)), encoded(torch.ones(len(u)))],
                       "seed": 0})


def test_the_worker_answers_one_request_of_its_script_per_step(
        served: tuple[int, int]) -> None:
    to_worker, from_worker = served
    requests = [dot_request([float(n)]) for n in range(3)]
    alone = []  # each reply as asked alone
    for request in requests:
        wire.send_payload(to_worker, request)
        alone.append(wire.receive_payload(from_worker))
    wire.send(to_worker, {"op": "script", "requests": requests})
    assert wire.receive_payload(from_worker) == alone[0]  # the first at once
    wire.send(to_worker, {"op": "step"})
    assert wire.receive_payload(from_worker) == alone[1]  # then one per step
    wire.send_payload(to_worker, dot_request([7.0]))  # an ordinary request ends the script
    assert wire.loads(wire.receive_payload(from_worker))["status"] == "ok"
    wire.send(to_worker, {"op": "step"})  # nothing left to step: a protocol error reply
    assert wire.receive(from_worker)["status"] == "error"


def test_checks_run_while_a_release_records_the_reference_answers(
        fresh_scripts: dict, verified: list[bool]) -> None:
    """`grader release` records the reference's answers by running the checks: none may pass
    from a script then."""
    options = runner.Options(only=("tensors.dot",))
    runner.grade_submission(pack.pack_folder("solutions"), options)
    assert fresh_scripts
    answers: dict = {}
    with pack.answering(record=answers):
        result = runner.grade_submission(pack.pack_folder("solutions"), options)
    assert answers and verified == []
    assert result.score == result.max_score
