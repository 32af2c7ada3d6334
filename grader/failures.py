"""The ways a property can fail, as exceptions carrying the student-facing message.

`Mismatch` and `StudentError` are ordinary exceptions: hypothesis shrinks them to the smallest
failing input. `Abort` and its subclasses derive from BaseException so hypothesis stops at once:
there is nothing to learn from shrinking a timeout, a dead worker or a forbidden call, and each
retry would cost another deadline.
"""

from __future__ import annotations

# Statuses of the results contract, from the least to the most severe.
PASSED = "passed"
FAILED = "failed"
ERROR = "error"
TIMEOUT = "timeout"
MISSING = "missing"
FORBIDDEN = "forbidden"
SEVERITY = [PASSED, FAILED, ERROR, TIMEOUT, MISSING, FORBIDDEN]


class Mismatch(AssertionError):
    """The code ran but its result (or a side effect) differs from the contract."""

    status = FAILED


class StudentError(Exception):
    """The student's code raised, or returned a value of the wrong type."""

    status = ERROR


class WrongType(StudentError):
    """The student's code returned a value of the wrong Python type: an `error`, as the
    results contract says, whichever exercise and check found it. The message names the
    expected and the received type."""

    def __init__(self, *, what: str, expected: str, received: str, wanted: str, got: str,
                 shown: str, inputs: str = "") -> None:
        super().__init__(f"Your code returned {got} for {what}, but {wanted} is expected "
                         f"(wrong type: expected {expected}, got {received}): {shown}{inputs}")
        self.expected = expected
        self.received = received


class Abort(BaseException):
    """Stop checking this property now (no shrinking)."""

    status = ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class TimedOut(Abort):
    status = TIMEOUT


class Crashed(Abort):
    status = ERROR


class ForbiddenCall(Abort):
    status = FORBIDDEN


class NameMissing(Abort):
    status = MISSING


class NotImplementedYet(Abort):
    """The student's function still raises NotImplementedError (an untouched stub)."""

    status = ERROR
