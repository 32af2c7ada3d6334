"""Hand-ins other than a folder of .py files: zips (unpacked safely) and notebooks."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from grader import handin, runner

from .conftest import copy_solutions, statuses


def notebook(path: Path, cells: list[str]) -> Path:
    document = {"cells": [{"cell_type": "code", "source": cell.splitlines(keepends=True),
                           "metadata": {}, "outputs": [], "execution_count": None}
                          for cell in cells] + [{"cell_type": "markdown", "source": "# notes"}],
                "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    path.write_text(json.dumps(document))
    return path


def test_notebook_cells_become_python_without_magics(tmp_path: Path) -> None:
    path = notebook(tmp_path / "all.ipynb", [
        "%matplotlib inline\nimport torch", "%%time\nraise SystemExit",
        "!pip install torch\ndef f():\n    %timeit 1\n    return 1"])
    source, notes = handin.notebook_source(path)
    compile(source, "all.py", "exec")
    assert "SystemExit" not in source and "pip install" not in source
    assert "import torch" in source and "return 1" in source
    assert notes == ["all.ipynb: 5 IPython magic / shell line(s) were not run"]


def test_a_notebook_with_every_part_is_graded(tmp_path: Path) -> None:
    solutions = copy_solutions(tmp_path / "solutions")
    cells = ["%load_ext autoreload"] + [(solutions / "autograd.py").read_text()]
    folder = tmp_path / "student"
    folder.mkdir()
    notebook(folder / "homework.ipynb", cells)
    result = runner.grade_submission(folder, runner.Options(only=("autograd", "tensors.dot"),
                                                            examples=4))
    found = statuses(result)
    assert found.pop("tensors.dot") == "missing"
    assert set(found.values()) == {"passed"}
    assert any("homework.ipynb" in note for note in result.notes)


def test_a_zip_submission_is_graded(tmp_path: Path) -> None:
    solutions = copy_solutions(tmp_path / "solutions", parts=("tensors",))
    archive = tmp_path / "class" / "carol.zip"
    archive.parent.mkdir()
    with zipfile.ZipFile(archive, "w") as handle:
        handle.write(solutions / "tensors.py", "carol/tensors.py")
    (folder,) = runner.submission_folders(archive.parent)
    result = runner.grade_submission(folder, runner.Options(only=("tensors.dot",), examples=4))
    assert result.id == "carol"
    assert statuses(result) == {"tensors.dot": "passed"}


def test_unsafe_zip_entries_are_left_out(tmp_path: Path) -> None:
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("../escape.py", "x = 1")
        handle.writestr("/abs.py", "x = 1")
        link = zipfile.ZipInfo("link.py")
        link.external_attr = 0o120777 << 16
        handle.writestr(link, "/etc/passwd")
        handle.writestr("tensors.py", "x = 1")
    destination = tmp_path / "out"
    destination.mkdir()
    notes = handin.unpack_zip(archive, destination)
    assert sorted(p.name for p in destination.iterdir()) == ["tensors.py"]
    assert not (tmp_path / "escape.py").exists()
    assert len(notes) == 3


def test_oversized_zips_are_refused(tmp_path: Path) -> None:
    archive = tmp_path / "big.zip"
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("tensors.py", b"#" * (handin.ZIP_CAP_BYTES + 1))
    destination = tmp_path / "out"
    destination.mkdir()
    with pytest.raises(handin.HandInError, match="more than"):
        handin.unpack_zip(archive, destination)
