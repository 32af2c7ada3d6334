"""What a student hands in, turned into the folder of part files the worker grades.

A submission may be a folder of `.py` files, a `.zip` of them (unpacked safely: no absolute
paths, no `..`, no links, size- and count-capped), or Jupyter notebooks: `<part>.ipynb` for one
part, or any other notebook holding every part. Notebooks are graded from their code cells;
IPython magics (`%...`, `%%...` cells) and shell lines (`!...`) are left out, with a note.
Everything here runs in the grader on data only: no student code runs.
"""

from __future__ import annotations

import json
import stat
import zipfile
from pathlib import Path, PurePosixPath

from grader import pack

ZIP_CAP_BYTES = 32 << 20
ZIP_CAP_FILES = 500
NOTEBOOK_MODULE = "_notebook"


class HandInError(Exception):
    """The hand-in cannot be used (an unsafe or oversized archive, a broken notebook)."""


def unpack_zip(archive_path: Path, destination: Path) -> list[str]:
    """Extract a zip safely into `destination`; returns notes on what was left out."""
    notes = []
    total = 0
    try:
        archive = zipfile.ZipFile(archive_path)
    except (zipfile.BadZipFile, OSError) as error:
        raise HandInError(f"{archive_path.name} is not a readable zip file ({error})") from None
    with archive:
        members = archive.infolist()
        if len(members) > ZIP_CAP_FILES:
            raise HandInError(f"{archive_path.name} holds {len(members)} files (at most "
                              f"{ZIP_CAP_FILES})")
        for member in members:
            name = PurePosixPath(member.filename)
            if member.is_dir() or "__MACOSX" in name.parts:
                continue
            if name.is_absolute() or ".." in name.parts or "\\" in member.filename:
                notes.append(f"left out {member.filename!r}: it points outside the archive")
                continue
            if stat.S_ISLNK(member.external_attr >> 16):
                notes.append(f"left out {member.filename!r}: links are not accepted")
                continue
            total += member.file_size
            if total > ZIP_CAP_BYTES:
                raise HandInError(f"{archive_path.name} unpacks to more than "
                                  f"{ZIP_CAP_BYTES >> 20} MiB")
            target = destination.joinpath(*name.parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source:
                data = source.read(ZIP_CAP_BYTES + 1)
            if len(data) > member.file_size:  # a lying header
                raise HandInError(f"{archive_path.name}: {member.filename} is larger than "
                                  "its header says")
            target.write_bytes(data)
    # A zip of a folder: use the one folder inside when the part files are there.
    inner = [path for path in destination.iterdir() if path.is_dir()]
    if not any((destination / f"{part}.py").exists() or (destination / f"{part}.ipynb").exists()
               for part in pack.parts()) and len(inner) == 1:
        for path in list(inner[0].iterdir()):
            path.rename(destination / path.name)
    return notes


def notebook_source(notebook_path: Path) -> tuple[str, list[str]]:
    """The Python of a notebook's code cells, magics and shell lines left out; and notes."""
    try:
        document = json.loads(notebook_path.read_text(encoding="utf-8"))
        cells = document["cells"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise HandInError(f"{notebook_path.name} is not a readable notebook ({error})") from None
    chunks, skipped = [], 0
    for cell in cells:
        if not isinstance(cell, dict) or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        lines = "".join(source).splitlines() if isinstance(source, list) else \
            str(source).splitlines()
        if lines and lines[0].lstrip().startswith("%%"):
            skipped += len(lines)
            continue
        kept = []
        for line in lines:
            if line.lstrip().startswith(("%", "!")):
                skipped += 1
                indent = line[: len(line) - len(line.lstrip())]
                kept.append(f"{indent}pass  # an IPython magic or shell line, not run" if indent
                            else "")
            else:
                kept.append(line)
        chunks.append("\n".join(kept))
    notes = [f"{notebook_path.name}: {skipped} IPython magic / shell line(s) were not run"] \
        if skipped else []
    return "\n\n".join(chunks) + "\n", notes


def convert_notebooks(folder: Path) -> list[str]:
    """Write part files for the notebooks in `folder` (a `.py` file, if any, wins)."""
    notes = []
    parts = pack.parts()
    notebooks = sorted(folder.glob("*.ipynb"))
    whole = [nb for nb in notebooks if nb.stem not in parts]
    for notebook in notebooks:
        if notebook.stem in parts and not (folder / f"{notebook.stem}.py").exists():
            source, found = notebook_source(notebook)
            (folder / f"{notebook.stem}.py").write_text(source, encoding="utf-8")
            notes += found + [f"graded {notebook.name} as {notebook.stem}.py"]
    if whole:
        source, found = notebook_source(whole[0])
        (folder / f"{NOTEBOOK_MODULE}.py").write_text(source, encoding="utf-8")
        notes += found
        for part in parts:
            if not (folder / f"{part}.py").exists():
                (folder / f"{part}.py").write_text(f"from {NOTEBOOK_MODULE} import *  # noqa\n")
        notes.append(f"graded every part from the notebook {whole[0].name}")
        if len(whole) > 1:
            notes.append("other notebooks were ignored: " + ", ".join(nb.name for nb in whole[1:]))
    return notes


def prepare(folder: Path) -> list[str]:
    """Unpack zips and convert notebooks inside a submission copy; returns the notes."""
    notes = []
    for archive in sorted(folder.glob("*.zip")):
        notes += unpack_zip(archive, folder)
        notes.append(f"unpacked {archive.name}")
    return notes + convert_notebooks(folder)
