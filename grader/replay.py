"""Checks sent ahead: what a check asked the worker the first time it passed in this process,
sent to the worker of each later submission in one message.

A check asks the worker the same requests, in the same order, of every submission that gives
the same replies: its inputs come from its fixed seed, and only a different reply can make it
ask something else. And a check is a function of those replies: given the same ones, it comes
to the same verdict. So once a check has passed, its requests and their replies are kept
(`Script`), byte for byte. For the next submission:

- the worker gets all the requests in one message and answers the first; each time the
  grader finds a reply to be the recorded one, it says "step" and the worker answers the
  next (a few bytes each way: no request is sent, no check code runs);
- if every reply is the recorded one, the worker has run exactly what the check would have
  asked, and the check would pass again: it passes without being run (`verified`);
- otherwise the check runs as always. It takes the replies already read (each request must
  still be the recorded one), then each later request that is the recorded one is answered
  with "step", and the first that is not ends the script: the rest is asked as usual;
- a worker that crashes or runs out of time does so at the request where it would have when
  asked: the check gets that failure when it asks that request.

The worker never runs a request before the grader has seen the reply before it, so it never
runs anything the check would not have asked, and it never learns what the grader expects
(the comparison happens here). Grading is therefore the same with or without a script,
whichever submission a process graded first (tested on the bug corpus). A correct submission
costs its worker's work, one small message per request and no check code.

(Should a check ever ask something else than the replies already read imply, which a
deterministic check does not do, the worker is replaced by a fresh one that is given again what
the check asked so far; see `SubmissionSession._catch_up`.)
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Script:
    """A passing run of a check: its requests and their replies, as `wire.dumps` wrote them."""

    requests: tuple[bytes, ...]
    replies: tuple[bytes, ...]

    def message(self) -> dict:
        """What the worker gets: the requests only (the replies stay here)."""
        return {"op": "script", "requests": list(self.requests)}


# (check, examples, shrink) -> its script; kept for the life of the process (a few MiB)
_scripts: dict[tuple, Script] = {}


def script_for(key: tuple) -> Script | None:
    return _scripts.get(key)


def keep(key: tuple, script: Script) -> None:
    _scripts.setdefault(key, script)


@dataclass
class Recording:
    """The requests and replies of a check run live, kept when the check passes in the worker
    it started with."""

    key: tuple
    worker_starts: int
    requests: list[bytes] = field(default_factory=list)
    replies: list[bytes] = field(default_factory=list)

    def script(self) -> Script:
        return Script(tuple(self.requests), tuple(self.replies))


@dataclass
class Replay:
    """A check whose script the worker is answering, one "step" at a time."""

    script: Script
    read: list[bytes] = field(default_factory=list)  # replies read while verifying
    failure: BaseException | None = None  # the worker crashed or timed out at len(read)
    taken: int = 0  # the recorded requests the check has asked so far
    answered: int = 0  # the requests the worker has answered (or is answering)

    def is_next(self, payload: bytes) -> bool:
        requests = self.script.requests
        return self.taken < len(requests) and requests[self.taken] == payload

    @property
    def ahead(self) -> bool:
        """Has the worker answered requests the check has not asked (yet)?"""
        return self.taken < self.answered
