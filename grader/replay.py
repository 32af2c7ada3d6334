"""Checks sent ahead: what a check asked the worker the first time it passed in this process,
sent to the worker of each later submission in one message.

A check asks the worker the same requests, in the same order, of every submission that gives
the same replies: its inputs come from its fixed seed, and only a different reply can make it
ask something else. And a check is a function of those replies: given the same ones, it comes
to the same verdict. So once a check has passed, its requests and their replies are kept
(`Script`), byte for byte. For the next submission:

- the worker gets the requests all at once and answers them one after the other without being
  asked each, stopping after the first reply that differs from the recorded one (it knows
  their fingerprints);
- if every reply is the recorded one, the worker has run exactly what the check would have
  asked, and the check would pass again: it passes without being run (`verified`);
- otherwise the check runs as always. It takes the replies already read, up to the one that
  differed (each request must still be the recorded one), and asks the rest as usual: each
  later request that is the recorded one is answered alone ("step"); the first that is not
  ends the script. Only when that example passed and the next one starts, with no example of
  the check failed so far, does the worker go on ahead again ("resume"): the check's inputs
  and requests then no longer depend on the reply that differed;
- a worker that crashes or runs out of time while answering ahead does so at the request where
  it would have when asked: the check gets that failure when it asks that request.

Grading is therefore the same with or without a script, whichever submission a process graded
first (tested on the bug corpus). A correct submission costs its worker's work and one
message per check; the grader only compares bytes.

(Should the check ever ask something else while the worker is ahead of it, which a
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
    """A passing run of a check: its requests and their replies, as `wire.dumps` wrote them."""

    requests: tuple[bytes, ...]
    replies: tuple[bytes, ...]

    def message(self) -> dict:
        """What the worker gets: the requests, and the fingerprints of the replies (a reply
        that does not match makes it stop; the grader compares the replies themselves)."""
        return {"op": "script", "requests": list(self.requests),
                "replies": [fingerprint(reply) for reply in self.replies]}


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
    """A check whose script the worker is answering."""

    script: Script
    read: list[bytes] = field(default_factory=list)  # replies read ahead, while verifying
    failure: BaseException | None = None  # the worker crashed or timed out at len(read)
    taken: int = 0  # the recorded requests the check has asked so far
    waiting: bool = False  # a reply differed: the worker waits for "step" or "resume"
    spoiled: bool = False  # an example of the check failed (or was rejected): no more resume
    may_resume: bool = False  # a new example starts after a passing one

    def is_next(self, payload: bytes) -> bool:
        requests = self.script.requests
        return self.taken < len(requests) and requests[self.taken] == payload

    def took(self, reply: bytes) -> None:
        """The check took the reply to its next recorded request."""
        if reply != self.script.replies[self.taken]:
            self.waiting = True
        self.taken += 1

    def example_starts(self) -> None:
        self.may_resume = self.waiting and not self.spoiled

    @property
    def ahead(self) -> bool:
        """Has the worker answered requests the check has not asked (yet)?"""
        if self.taken < len(self.read):
            return True
        return not self.waiting and self.failure is None and \
            self.taken < len(self.script.requests)
