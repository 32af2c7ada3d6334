"""What crosses the process boundary: plain-data encoding of tensors and values, and framing.

Both sides speak this format. The worker (untrusted) encodes whatever the student's code returned
into plain Python data: dicts, lists, str, int, float, bool, None and bytes. The grader (trusted)
decodes it with an unpickler that refuses every class, so a submission cannot smuggle an object
(or code) into the process that judges it. Tensors travel as raw bytes plus their metadata
(dtype, shape, device, autograd state), decoded into `TensorData` on the grader side.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
from dataclasses import dataclass, field
from typing import Any

# A message larger than this is refused: the worker cannot flood the grader's memory.
MAX_MESSAGE_BYTES = 64 * 1024 * 1024
_HEADER = struct.Struct("!Q")


class WireError(Exception):
    """A message was malformed, too large, or the other side went away."""


class ChannelClosed(WireError):
    """The other side went away (its end of the pipe is closed)."""


class _PlainDataUnpickler(pickle.Unpickler):
    """An unpickler that only builds plain data: any class or function reference is refused."""

    def find_class(self, module: str, name: str) -> Any:
        raise WireError(f"refusing to load {module}.{name}: only plain data may cross")


def dumps(message: Any) -> bytes:
    """Serialize a plain-data message."""
    return pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)


def loads(payload: bytes) -> Any:
    """Deserialize a plain-data message; raises WireError for anything but plain data."""
    try:
        return _PlainDataUnpickler(io.BytesIO(payload)).load()
    except WireError:
        raise
    except Exception as error:  # a truncated or garbled stream
        raise WireError(f"malformed message: {error}") from None


def send(fd: int, message: Any) -> None:
    """Write one length-prefixed message to a file descriptor."""
    send_payload(fd, dumps(message))


def send_payload(fd: int, payload: bytes) -> None:
    """Write one message already serialized with `dumps`."""
    data = _HEADER.pack(len(payload)) + payload
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


class ReadTimeout(WireError):
    """The other side stopped writing in the middle of a message, past the deadline."""


def read_exactly(fd: int, count: int, deadline: float | None = None) -> bytes:
    """Read exactly `count` bytes; raises WireError at end of file. On a non-blocking
    descriptor (the grader's end of a worker's reply pipe), bytes that are not there yet are
    waited for until `deadline` (time.monotonic(); None: as long as it takes), then
    ReadTimeout: a read that would not block costs no extra system call."""
    chunks = []
    while count:
        try:
            chunk = os.read(fd, min(count, 1 << 20))
        except BlockingIOError:
            _wait_readable(fd, deadline)
            continue
        if not chunk:
            raise ChannelClosed("the other side closed the channel")
        chunks.append(chunk)
        count -= len(chunk)
    return b"".join(chunks)


def receive(fd: int) -> Any:
    """Read one length-prefixed message (blocking)."""
    return loads(receive_payload(fd))


def receive_payload(fd: int, deadline: float | None = None) -> bytes:
    """Read one length-prefixed message, still serialized (on a non-blocking descriptor with a
    `deadline`, the whole message must have come by then: a header announcing bytes that
    never follow cannot keep the reader waiting)."""
    (size,) = _HEADER.unpack(read_exactly(fd, _HEADER.size, deadline))
    if size > MAX_MESSAGE_BYTES:
        raise WireError(f"message of {size} bytes is over the {MAX_MESSAGE_BYTES} byte limit")
    return read_exactly(fd, size, deadline)


def _wait_readable(fd: int, deadline: float | None) -> None:
    import select
    import time

    poller = select.poll()  # (not select(): it refuses descriptors above 1023)
    poller.register(fd, select.POLLIN | select.POLLHUP)
    if deadline is None:
        poller.poll()
        return
    remaining = deadline - time.monotonic()
    if remaining <= 0 or not poller.poll(remaining * 1000):
        raise ReadTimeout("the message stopped before its end")


# --- Decoded values on the grader side -------------------------------------------------------


@dataclass
class TensorData:
    """A tensor as the student's code left it: values (on the CPU) and its metadata."""

    values: Any  # torch.Tensor on the CPU, or None for meta tensors (they hold no values)
    dtype: str
    shape: tuple[int, ...]
    device: str
    requires_grad: bool
    is_leaf: bool
    grad_fn: str | None
    version: int
    is_contiguous: bool
    grad: TensorData | None = None

    @property
    def device_type(self) -> str:
        return self.device.split(":")[0]


@dataclass
class ArrayData:
    """A NumPy array: its values (a copy) and dtype."""

    values: Any
    dtype: str
    shape: tuple[int, ...]


@dataclass
class Opaque:
    """A value of a type that does not cross as data: only its type name and a short repr."""

    type_name: str
    text: str


@dataclass(frozen=True)
class Handle:
    """A reference to an object that lives in the worker (a module, an optimizer, a loader)."""

    number: int
    type_name: str = field(default="", compare=False)


@dataclass(frozen=True)
class DeviceData:
    """A torch.device value."""

    type: str
    index: int | None


@dataclass(frozen=True)
class DtypeData:
    """A torch.dtype value."""

    name: str
