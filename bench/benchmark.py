"""Benchmark: how fast `grader grade` is against the ways a course would otherwise grade.

Builds N submissions (correct ones in several styles and single-bug ones from the test corpus),
then measures side by side, in one run:

  floor    all checks on all submissions in this one warm process, no worker, no isolation
  grade    `grader grade` on the whole class (-j 1 for the overhead, -j CORES for the batch)
  dask     `grader grade --scheduler ADDRESS` on the whole class (with --scheduler), right
           after the local pool, and Dask's overhead per submission against it
  check    one `grader check` process per submission (a sample of them)
  pytest   one `pytest` process per submission running the same checks (a sample)

and prints per-submission times, the ratios and the targets, plus the peak memory of the
`grader grade` process tree.

    python bench/benchmark.py --n 100
    python bench/benchmark.py --n 40 --scheduler local:2
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "grader" / "tests" / "fixtures"
PARTS = ("tensors", "autograd", "training", "networks")


def build_class(destination: Path, count: int) -> list[Path]:
    """`count` submissions: correct styles and single-bug variants, interleaved."""
    solutions = ROOT / "solutions"
    correct = [solutions, *sorted(p for p in (FIXTURES / "correct").iterdir() if p.is_dir())]
    bugs = sorted((FIXTURES / "bugs").glob("*.py"))
    folders = []
    for index in range(count):
        folder = destination / f"student{index:03d}"
        folder.mkdir(parents=True)
        if index % 2 == 0:
            source = correct[(index // 2) % len(correct)]
            for part in PARTS:
                shutil.copy(source / f"{part}.py", folder / f"{part}.py")
        else:
            bug = bugs[(index // 2) % len(bugs)]
            for part in PARTS:
                shutil.copy(solutions / f"{part}.py", folder / f"{part}.py")
            part = bug.stem.split("__")[0]
            with open(folder / f"{part}.py", "a") as handle:
                handle.write("\n\n" + bug.read_text())
        folders.append(folder)
    return folders


def floor_seconds(folders: list[Path], examples: int) -> float:
    """All checks on all submissions in this process: the worker's request handler is called
    directly (no process, no pipe, no isolation)."""
    sys.path.insert(0, str(ROOT))
    from grader import pack, runner
    from grader.session import SubmissionSession
    from grader.worker import server

    class InProcessSession(SubmissionSession):
        def _request(self, message: dict, timeout: float) -> dict:
            if not hasattr(self, "local"):
                for part in PARTS:
                    sys.modules.pop(part, None)
                sys.path.insert(0, str(self.submission_dir.resolve()))
                self.local = server.Worker(self.submission_dir)
            return self.local.handle(message)

        def close(self) -> None:
            if hasattr(self, "local"):
                sys.path.remove(str(self.submission_dir.resolve()))
                for part in PARTS:
                    sys.modules.pop(part, None)

    import torch

    torch.set_num_threads(1)
    options = runner.Options(examples=examples)
    exercises = pack.exercises()
    started = time.perf_counter()
    for folder in folders:
        with InProcessSession(folder, limits=options.limits) as session:
            session.cuda_available = False
            for exercise in exercises:
                runner.grade_exercise(exercise, session, options)
    return time.perf_counter() - started


class PeakMemory:
    """Samples the summed RSS of a process tree (what a machine must hold at once)."""

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.peak = 0
        self.running = True
        self.thread = threading.Thread(target=self.sample, daemon=True)
        self.thread.start()

    def tree(self) -> list[int]:
        parents: dict[int, int] = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    parents[int(entry.name)] = int(
                        (entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, ValueError):
                    pass
        found, frontier = [self.pid], [self.pid]
        while frontier:
            frontier = [pid for pid, parent in parents.items() if parent in frontier]
            found += frontier
        return found

    def sample(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while self.running:
            total = 0
            for pid in self.tree():
                try:
                    total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
                except (OSError, ValueError):
                    pass
            self.peak = max(self.peak, total)
            time.sleep(0.1)

    def stop(self) -> int:
        self.running = False
        self.thread.join()
        return self.peak


def timed(command: list[str], **kwargs) -> tuple[float, int]:
    """Wall seconds and peak tree memory (bytes) of a command."""
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               **kwargs)
    memory = PeakMemory(process.pid)
    process.wait()
    return time.perf_counter() - started, memory.stop()


def grader_command() -> list[str]:
    return [sys.executable, "-m", "grader"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100, help="submissions in the class")
    parser.add_argument("--sample", type=int, default=6,
                        help="submissions run one process each (check, pytest)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--examples", type=int, default=None,
                        help="examples per check (default: the grader's default)")
    parser.add_argument("--scheduler", default=None, metavar="ADDRESS",
                        help="also grade the class on this Dask cluster (local:N, or a "
                        "scheduler's address) and compare with the local pool")
    arguments = parser.parse_args()
    from grader.runner import DEFAULT_EXAMPLES

    examples = arguments.examples or DEFAULT_EXAMPLES
    n, jobs = arguments.n, arguments.jobs
    work = Path(tempfile.mkdtemp(prefix="grader-bench-"))
    try:
        folders = build_class(work / "class", n)
        sample = folders[: min(arguments.sample, n)]
        flags = ["--examples", str(examples)]
        print(f"N={n} submissions (half correct, half with one bug), {jobs} jobs, "
              f"{examples} examples per check, sample of {len(sample)} for per-process runs\n")

        floor = floor_seconds(folders, examples) / n
        print(f"  floor   (one warm process, no isolation)      {floor * 1000:8.0f} ms / sub")

        serial, _ = timed([*grader_command(), "grade", str(work / "class"), "--out",
                           str(work / "out1"), "-j", "1", *flags])
        serial /= n
        print(f"  grade   -j 1                                  {serial * 1000:8.0f} ms / sub")

        batch, peak = timed([*grader_command(), "grade", str(work / "class"), "--out",
                             str(work / "outj"), "-j", str(jobs), *flags])
        print(f"  grade   -j {jobs:<3}  batch wall {batch:6.1f} s        "
              f"{batch / n * 1000:8.0f} ms / sub   peak memory {peak / 2**20:.0f} MiB")

        if arguments.scheduler:
            dask, _ = timed([*grader_command(), "grade", str(work / "class"), "--out",
                             str(work / "outd"), "--scheduler", arguments.scheduler, *flags])
            print(f"  grade   --scheduler {arguments.scheduler:<9} batch wall {dask:6.1f} s   "
                  f"{dask / n * 1000:8.0f} ms / sub")

        check_total = 0.0
        for folder in sample:
            seconds, _ = timed([*grader_command(), "check", str(folder), "--report",
                                str(work / "r.html"), *flags])
            check_total += seconds
        check = check_total / len(sample)
        print(f"  check   one process per submission            {check * 1000:8.0f} ms / sub")

        pytest_total = 0.0
        for folder in sample:
            seconds, _ = timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                str(ROOT / "bench" / "pytest_one_submission.py")],
                               env={**os.environ, "SUBMISSION": str(folder)}, cwd=work)
            pytest_total += seconds
        per_pytest = pytest_total / len(sample)
        print(f"  pytest  one process per submission            {per_pytest * 1000:8.0f} ms / sub")

        overhead = serial - floor
        print("\nRatios")
        print(f"  grade -j 1 / floor           {serial / floor:6.2f}x   (overhead beyond the floor "
              f"{overhead * 1000:.0f} ms / sub; target <= 50 ms)")
        print(f"  batch wall / (N x floor)     {batch / (n * floor):6.2f}    (target <= 0.75)")
        print(f"  check per process / grade    {check / (batch / n):6.1f}x")
        print(f"  pytest per process / grade   {per_pytest / (batch / n):6.1f}x")
        print(f"  pytest per process / floor   {per_pytest / floor:6.1f}x")
        if arguments.scheduler:
            # Both grade `jobs` submissions at a time: a submission's grading time is the
            # pool's wall per submission times `jobs`, and so is Dask's share of it.
            print(f"  dask wall / pool wall        {dask / batch:6.3f}    (Dask's overhead "
                  f"{(dask - batch) / n * jobs * 1000:.0f} ms / sub, "
                  f"{(dask - batch) / batch:.1%} of a submission's "
                  f"{batch / n * jobs * 1000:.0f} ms; target < 5%)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
