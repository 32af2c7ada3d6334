"""The worker process: warm starts from the zygote, fresh starts, deadlines, crashes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from grader import codec, sandbox

from .conftest import copy_solutions


def call(worker: sandbox.Worker, name: str, *args, timeout: float = 10) -> dict:
    worker.request({"op": "load", "part": "tensors"}, timeout=30)
    return worker.request({"op": "call", "target": {"part": "tensors", "name": name},
                           "args": [codec.encode(arg) for arg in args]}, timeout=timeout)


@pytest.mark.parametrize("zygote", [True, False])
def test_a_worker_answers_from_a_copy_of_the_submission(tmp_path: Path, zygote: bool) -> None:
    import torch

    folder = copy_solutions(tmp_path / "s", parts=("tensors",))
    with sandbox.Worker(folder, settings=sandbox.Settings(zygote=zygote)) as worker:
        reply = call(worker, "count_elements", torch.ones(2, 3))
        assert reply["status"] == "ok" and reply["value"] == 6
        assert worker.scratch is not None and worker.scratch != folder
        assert worker.isolation["limits"] == "active"
    assert worker.scratch is None  # the scratch copy is gone


def test_zygote_workers_start_in_milliseconds(tmp_path: Path) -> None:
    folder = copy_solutions(tmp_path / "s", parts=("tensors",))
    sandbox.Worker(folder).close()
    first = sandbox.Worker(folder)
    first.start()  # warms the zygote if needed
    first.close()
    started = time.perf_counter()
    worker = sandbox.Worker(folder)
    worker.start()
    elapsed = time.perf_counter() - started
    worker.close()
    assert elapsed < 0.5  # a fresh `python` + `import torch` takes ~1.5 s


def test_a_timeout_kills_the_worker_and_a_new_one_serves(tmp_path: Path) -> None:
    import torch

    folder = copy_solutions(tmp_path / "s", parts=("tensors",))
    with open(folder / "tensors.py", "a") as handle:
        handle.write("\n\ndef dot(u, v):\n    while True:\n        pass\n")
    with sandbox.Worker(folder) as worker:
        with pytest.raises(sandbox.WorkerTimeout):
            call(worker, "dot", torch.ones(2), torch.ones(2), timeout=1)
        assert worker.pid is None
        assert call(worker, "count_elements", torch.ones(4))["value"] == 4


def test_an_exiting_worker_is_reported_as_crashed(tmp_path: Path) -> None:
    import torch

    folder = copy_solutions(tmp_path / "s", parts=("tensors",))
    with open(folder / "tensors.py", "a") as handle:
        handle.write("\n\nimport os\n\ndef dot(u, v):\n    print('bye')\n    os._exit(3)\n")
    with sandbox.Worker(folder) as worker:
        with pytest.raises(sandbox.WorkerCrashed) as crash:
            call(worker, "dot", torch.ones(2), torch.ones(2))
        assert "ended early" in str(crash.value)
        assert "bye" in crash.value.output


def test_copying_a_submission_caps_the_number_of_files(tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "many"
    source.mkdir()
    for index in range(5):
        (source / f"file{index}.py").write_text("x = 1\n")
    monkeypatch.setattr(sandbox, "SUBMISSION_CAP_FILES", 2)
    left_out = sandbox.copy_submission(source, tmp_path / "copy")
    assert sorted(p.name for p in (tmp_path / "copy").iterdir()) == ["file0.py", "file1.py"]
    assert left_out == ["file2.py", "file3.py", "file4.py"]


def test_workers_of_the_warmed_zygote_can_compute_on_many_threads(tmp_path: Path) -> None:
    """The zygote warms torch up on one thread before forking; a child that asks for more
    threads must still compute (an OpenMP pool started before a fork would hang it)."""
    import torch

    folder = copy_solutions(tmp_path / "s", parts=("tensors",))
    with open(folder / "tensors.py", "a") as handle:
        handle.write("\n\ndef count_elements(x):\n    torch.set_num_threads(2)\n"
                     "    big = torch.randn(600, 600)\n"
                     "    (big @ big).softmax(1).sum()\n    return x.numel()\n")
    with sandbox.Worker(folder) as worker:
        assert call(worker, "count_elements", torch.ones(3), timeout=20)["value"] == 3
