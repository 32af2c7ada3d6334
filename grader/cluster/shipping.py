"""How one submission travels to a Dask worker: by path on a shared file system, or as its bytes.

A shipment is plain data: the submission's name (its id, as local grading derives it), a digest
of what the client sees, and either the absolute path (every worker sees the same files) or the
files themselves. On the worker, `received` gives a folder of the same name to grade: the shared
path once its digest matches, or a scratch copy of the shipped files. So a worker grades exactly
what the client saw, or says it cannot (`Unseen`) and the client ships the bytes instead.

Only what local grading would copy travels: hidden files and `__pycache__` stay home, links go
as links, and files beyond the sandbox's caps (they would be left out, with a note) travel as
their size only and arrive as sparse files, so the worker's copy leaves out the same files.

The pack (`runner.Options.pack`) travels the same way, once per run: its metadata, stubs,
solutions, checks and recorded answers (not its examples). A shipped pack is unpacked once per
judge, under its own folder name, and kept while the judge lives.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from grader.sandbox import SUBMISSION_CAP_BYTES, SUBMISSION_CAP_FILES

DIRECTORY, FILE, LINK, SPARSE = "dir", "file", "link", "sparse"
PACK_MEMBERS = ("pack.toml", "pyproject.toml", "exercises", "solutions", "tests",
                "release.json", "recorded.pt")


class Unseen(Exception):
    """A shipped path is missing on this worker or holds other files than the client's."""


class PackNeeded(Exception):
    """A pack shipped by reference only (its digest) that this process has not received yet."""


def _entries(submission_dir: Path, *, capped: bool = True
             ) -> Iterator[tuple[str, str, Path]]:
    """(relative path, kind, path) in the order and with the caps of the sandbox's copy."""
    total = copied = 0
    links: list[Path] = []
    for path in sorted(submission_dir.rglob("*")):
        relative = path.relative_to(submission_dir)
        if any(part.startswith(".") or part == "__pycache__" for part in relative.parts):
            continue
        if any(link in relative.parents for link in links):
            continue  # never through a link: it could point anywhere
        if path.is_symlink():
            links.append(relative)
            yield relative.as_posix(), LINK, path
        elif path.is_dir():
            yield relative.as_posix(), DIRECTORY, path
        elif path.is_file():
            size = path.stat().st_size
            if capped and (total + size > SUBMISSION_CAP_BYTES
                           or copied >= SUBMISSION_CAP_FILES):
                yield relative.as_posix(), SPARSE, path
                continue
            total += size
            copied += 1
            yield relative.as_posix(), FILE, path


Contents = list[tuple[str, str, bytes | str | int]]


def _contents(submission: Path) -> Contents:
    """What travels: [(relative path, kind, bytes | link target | size)]; a .zip is one file
    named "" (the submission itself)."""
    if submission.is_file():
        return [("", FILE, submission.read_bytes())]
    return _described(_entries(submission))


def _pack_contents(root: Path) -> Contents:
    contents: Contents = []
    for member in PACK_MEMBERS:
        path = root / member
        if path.is_file() and not path.is_symlink():
            contents.append((member, FILE, path.read_bytes()))
        elif path.is_dir():
            contents.append((member, DIRECTORY, b""))
            contents += [(f"{member}/{relative}", kind, payload) for relative, kind, payload
                         in _described(_entries(path, capped=False))]
    return contents


def _described(entries: Iterator[tuple[str, str, Path]]) -> Contents:
    contents: Contents = []
    for relative, kind, path in entries:
        if kind == FILE:
            contents.append((relative, kind, path.read_bytes()))
        elif kind == LINK:
            contents.append((relative, kind, os.readlink(path)))
        elif kind == SPARSE:
            contents.append((relative, kind, path.stat().st_size))
        else:
            contents.append((relative, kind, b""))
    return contents


def _digest(contents: Contents) -> str:
    digest = hashlib.sha256()
    for relative, kind, payload in contents:
        digest.update(f"{kind}\0{relative}\0".encode())
        digest.update(payload if isinstance(payload, bytes) else str(payload).encode())
        digest.update(b"\0")
    return digest.hexdigest()


def ship(submission: Path, *, by_path: bool) -> dict:
    """The shipment of one submission folder (or .zip): its path, or its files."""
    submission = Path(submission).resolve()
    return _shipment(submission, _contents(submission), by_path=by_path)


def ship_pack(root: Path, *, by_path: bool) -> dict:
    """The shipment of a pack folder: its path, or the files grading reads. `reference`
    turns the latter into the small shipment most tasks carry."""
    root = Path(root).resolve()
    return _shipment(root, _pack_contents(root), by_path=by_path)


def _shipment(folder: Path, contents: Contents, *, by_path: bool) -> dict:
    """A folder's name and digest, and its path (shared file system) or its contents."""
    shipment: dict = {"name": folder.name, "digest": _digest(contents)}
    if by_path:
        shipment["path"] = str(folder)
    else:
        shipment["contents"] = contents
    return shipment


def reference(shipment: dict) -> dict:
    """A pack's shipment without its files: enough for a process that already received it."""
    return {key: value for key, value in shipment.items() if key != "contents"}


def shipped_size(shipment: dict) -> int:
    """Bytes of file contents a shipment carries (0 when it goes by path)."""
    return sum(len(payload) for _, kind, payload in shipment.get("contents", ())
               if kind == FILE)


def _unpack(contents: list, destination: Path) -> None:
    destination.mkdir()
    for relative, kind, payload in contents:
        target = destination / relative
        if kind == DIRECTORY:
            target.mkdir(parents=True, exist_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if kind == LINK:
            target.symlink_to(payload)
        elif kind == SPARSE:
            with open(target, "wb") as handle:
                handle.truncate(int(payload))  # a hole: the size decides, not the bytes
        else:
            target.write_bytes(payload)


@contextmanager
def received(shipment: dict) -> Iterator[Path]:
    """The submission to grade, under the name it had on the client; raises `Unseen` when a
    shipped path is missing here or differs from what the client saw."""
    if "path" in shipment:
        path = Path(shipment["path"])
        try:
            same = path.exists() and _digest(_contents(path)) == shipment["digest"]
        except OSError as error:
            raise Unseen(f"{path}: {error}") from None
        if not same:
            raise Unseen(f"{path} is missing here or holds other files than on the client")
        yield path
        return
    scratch = Path(tempfile.mkdtemp(prefix="torch-grader-shipped-"))
    try:
        contents = shipment["contents"]
        if len(contents) == 1 and contents[0][0] == "":  # a .zip
            (scratch / shipment["name"]).write_bytes(contents[0][2])
        else:
            _unpack(contents, scratch / shipment["name"])
        yield scratch / shipment["name"]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


_packs: dict[tuple[str, str], Path] = {}  # (digest, path or "") -> the pack's folder here


def received_pack(shipment: dict) -> Path:
    """The pack's folder on this machine: the shipped path once its files match, or a copy
    unpacked once (kept while this process lives); raises `Unseen` like `received`, and
    `PackNeeded` for a reference to files not received yet."""
    key = (shipment["digest"], shipment.get("path", ""))
    if key in _packs:
        return _packs[key]
    if "path" not in shipment and "contents" not in shipment:
        raise PackNeeded(shipment["digest"])
    if "path" in shipment:
        path = Path(shipment["path"])
        try:
            same = path.is_dir() and _digest(_pack_contents(path)) == shipment["digest"]
        except OSError as error:
            raise Unseen(f"{path}: {error}") from None
        if not same:
            raise Unseen(f"the pack {path} is missing here or differs from the client's")
    else:
        holder = Path(tempfile.mkdtemp(prefix="torch-grader-pack-"))
        atexit.register(shutil.rmtree, holder, True)
        path = holder / shipment["name"]
        _unpack(shipment["contents"], path)
    _packs[key] = path
    return path
