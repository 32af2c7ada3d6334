"""Checks sent ahead: what a check asked the worker the first time it passed in this process,
sent to the worker of each later submission in one message.

A check asks the worker the same requests, in the same order, of every submission that gives
the same replies: its inputs come from its fixed seed, and only a different reply can make it
ask something else. So once a check has passed, its requests and a fingerprint of each reply
are kept (`Script`). For the next submission the worker gets them all at once and answers
them one after the other without waiting to be asked, while the check runs in the grader as
always and takes each reply when it asks its request:

- while every reply has the recorded fingerprint, the check's next request is the recorded
  one, so the worker has run exactly what it would have run if asked one request at a time,
  and its replies are the ones it would have given;
- after a reply that differs (a wrong answer, or a right one computed another way), the worker
  stops and waits. Each later request of the check that is the recorded one is answered
  alone ("step"), as if asked live; the first that is not ends the script, and the rest of the
  check is asked live. Only when that example passed and the next one starts, with no example
  of the check having failed so far, does the worker go on ahead again ("resume"): the check's
  inputs and requests then no longer depend on the reply that differed;
- a worker that crashes or runs out of time while answering ahead does so at the request where
  it would have done so when asked: from there the check goes on one request at a time, as
  it would have.

Grading is therefore the same with or without a script, whichever submission a process graded
first. Only the number of messages changes: one per check instead of one round trip per
request, and the worker computes while the grader draws the next inputs and compares.

(Should the check ever ask something else while the worker is answering ahead, which a
deterministic check does not do, the worker is replaced by a fresh one that is given again what
the check asked so far; see `SubmissionSession._catch_up`.)
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

# A reply's fingerprint: its length and CRC-32. Two different replies with the same fingerprint
# only make the worker answer one request ahead that the check may not ask (see above).


def fingerprint(payload: bytes) -> int:
    return (len(payload) << 32) | zlib.crc32(payload)


@dataclass(frozen=True)
class Script:
    """A passing run of a check: its requests (as `wire.dumps` wrote them) and the
    fingerprints of their replies."""

    requests: tuple[bytes, ...]
    replies: tuple[int, ...]

    def message(self) -> dict:
        return {"op": "script", "requests": list(self.requests), "replies": list(self.replies)}


# (check, examples, shrink) -> its script; kept for the life of the process (a few MiB)
_scripts: dict[tuple, Script] = {}


def script_for(key: tuple) -> Script | None:
    return _scripts.get(key)


def keep(key: tuple, script: Script) -> None:
    _scripts.setdefault(key, script)


def forget_all() -> None:
    _scripts.clear()


@dataclass
class Recording:
    """The requests of a check run live and their replies' fingerprints, kept when the check
    passes in the worker it started with."""

    key: tuple
    worker_starts: int
    requests: list[bytes] = field(default_factory=list)
    replies: list[int] = field(default_factory=list)

    def script(self) -> Script:
        return Script(tuple(self.requests), tuple(self.replies))


@dataclass
class Replay:
    """A check whose script the worker is answering."""

    script: Script
    taken: int = 0  # the recorded requests the check has asked so far
    waiting: bool = False  # a reply differed: the worker waits for "step" or "resume"
    spoiled: bool = False  # an example of the check failed (or was rejected): no more resume
    may_resume: bool = False  # a new example starts after a passing one

    def is_next(self, payload: bytes) -> bool:
        requests = self.script.requests
        return self.taken < len(requests) and requests[self.taken] == payload

    def took(self, reply: bytes) -> None:
        """The check took the reply to its next recorded request."""
        if fingerprint(reply) != self.script.replies[self.taken]:
            self.waiting = True
        self.taken += 1

    def example_starts(self) -> None:
        self.may_resume = self.waiting and not self.spoiled

    @property
    def ahead(self) -> bool:
        """Is the worker answering requests the check has not asked yet?"""
        return not self.waiting and self.taken < len(self.script.requests)
