"""Benchmark: how fast `grader grade` is against the ways a course would otherwise grade, and
where it stands against the targets of issue 12.

Builds N submissions (correct ones in several styles and single-bug ones from the test corpus)
and a copy of the bundled correct submission (solutions/), then measures side by side, in one
run:

  import torch  `python -c "import torch"` with this interpreter: the yardstick of a cold start
  cold check    a fresh `grader check` of the correct copy, output to /dev/null

                Every command runs with Python's bytecode cache on (in a folder of its own),
                as on a student's machine from the second run on; `--no-bytecode-cache`
                measures in this environment as it is (see `bytecode_cache`).
  floor         every check in this one warm process, the worker's request handler called
                in-process (no worker, no pipe, no isolation): on the correct copy alone
                (warmed up once), and on the whole class (the average per submission) before
                and after the two `grader grade` runs (they are compared with the mean);
                and, of the correct copy's floor, the time inside the checks' bodies alone
                (the student's calls, the reference, the comparisons): what the floor would
                be if drawing inputs, hypothesis's engine and pytest cost nothing

                The first three are taken in turns, 3 rounds: targets 1 and 2 are the median
                of the rounds' ratios (this machine's speed drifts over minutes).
  grade         `grader grade` on the whole class: -j 1 (the overhead per submission) and
                -j CORES (the batch, with the peak memory of its whole process tree, sampled
                every 0.1 s, over the first and the second half of its wall time)
  dask          `grader grade --scheduler ADDRESS` on the whole class (with --scheduler),
                right after the local pool, and Dask's overhead per submission against it
  check         one `grader check` process per submission (a sample of them)
  pytest        one `pytest` process per submission running the same checks (a sample)

then prints the targets of issue 12, each with its measured value and `met` or `NOT met`:

  1. cold check / import torch                                    <= 2.0
  2. floor (correct submission) / import torch                    <= 0.5
  3. grade -j 1 per submission / floor (class average)            <= 1.05
  4. batch wall / (N x floor / CORES)                             <= 1.15
  5. peak memory of the `grade -j CORES` tree                     <= 2.2 GiB, and not growing
     with N: the second half's peak at most 1.1x the first half's

and below them the informative ratios (per-process check and pytest against grade, Dask's
overhead). CORES is --jobs (default: os.cpu_count()). Times on a shared machine are noisy:
compare the ratios within one run.

    python bench/benchmark.py --n 100
    python bench/benchmark.py --n 40 --scheduler local:2
    python bench/benchmark.py --n 6 --sample 2          # a quick look
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "grader" / "tests" / "fixtures"
PARTS = ("tensors", "autograd", "training", "networks")
REPEATS = 3
GiB = 2**30
MiB = 2**20


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
    if str(ROOT) not in sys.path:
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


BODY_SECONDS = [0.0]  # seconds inside the checks' bodies (see time_check_bodies)


def time_check_bodies() -> None:
    """From now on, add the seconds every check body runs to BODY_SECONDS[0].

    A body is one example of a check: its calls into the worker's request handler (the
    student's code, the codec), the reference and the comparisons. Drawing the example's
    inputs, hypothesis's engine and pytest's protocol are outside it: the bodies alone are
    what the floor would cost if those cost nothing."""
    from grader import plugin

    install = plugin._reset_worker_objects_between_examples  # wraps a check's inner test
    if getattr(install, "timed", False):
        return

    def install_timed(test: object) -> None:
        install(test)
        inner = test.hypothesis.inner_test
        if getattr(inner, "timed", False):
            return

        def each_example(*args: object, **kwargs: object) -> object:
            started = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                BODY_SECONDS[0] += time.perf_counter() - started

        each_example.timed = True
        each_example._grader_resets = True
        test.hypothesis.inner_test = each_example

    install_timed.timed = True
    plugin._reset_worker_objects_between_examples = install_timed


class PeakMemory:
    """Samples the summed RSS of a process tree (what a machine must hold at once), keeping
    every sample as (seconds since `started`, bytes)."""

    def __init__(self, pid: int, started: float) -> None:
        self.pid = pid
        self.started = started
        self.samples: list[tuple[float, int]] = []
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
            at = time.perf_counter() - self.started
            total = 0
            for pid in self.tree():
                try:
                    total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * page
                except (OSError, ValueError):
                    pass
            self.samples.append((at, total))
            time.sleep(0.1)

    def stop(self) -> list[tuple[float, int]]:
        self.running = False
        self.thread.join()
        return self.samples


@dataclass
class Run:
    """One command's wall seconds, exit status and memory samples of its process tree."""

    seconds: float
    returncode: int
    samples: list[tuple[float, int]] = field(default_factory=list)

    @property
    def peak(self) -> int:
        return max((total for _, total in self.samples), default=0)

    def halves(self) -> tuple[int, int]:
        """The peak memory over the first and over the second half of the wall time."""
        middle = self.seconds / 2
        first = max((total for at, total in self.samples if at < middle), default=0)
        second = max((total for at, total in self.samples if at >= middle), default=0)
        return first, second


_ENVIRONMENT: dict[str, str] | None = None  # every measured command's (see bytecode_cache)


def bytecode_cache(folder: Path) -> None:
    """Measure every command with Python's bytecode cache on, kept in `folder`: what a
    student's machine has from its second run on (pip compiles an installed grader's modules
    when it installs them; pytest caches the checks it rewrote). This checkout is installed
    editable, and this machine's environment sets PYTHONDONTWRITEBYTECODE: without this, every
    `grader check` here would compile the grader's modules and rewrite the pack's checks again
    (~0.1-0.2 s). `import torch` runs in the same environment."""
    global _ENVIRONMENT
    environment = {key: value for key, value in os.environ.items()
                   if key != "PYTHONDONTWRITEBYTECODE"}
    environment["PYTHONPYCACHEPREFIX"] = str(folder)
    _ENVIRONMENT = environment


def timed(command: list[str], extra_env: dict[str, str] | None = None, **kwargs) -> Run:
    """Run a command (output to /dev/null) and measure it."""
    kwargs["env"] = {**(_ENVIRONMENT or os.environ), **(extra_env or {})}
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               **kwargs)
    memory = PeakMemory(process.pid, started)
    returncode = process.wait()
    seconds = time.perf_counter() - started
    return Run(seconds, returncode, memory.stop())


def grader_command() -> list[str]:
    return [sys.executable, "-m", "grader"]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms"


def runs_note(runs: list[float]) -> str:
    return "runs " + ", ".join(f"{seconds * 1000:.0f}" for seconds in runs) + " ms"


def row(name: str, what: str, value: str, note: str = "") -> None:
    """One measurement: aligned name, description, value (right-aligned) and a note."""
    print(f"  {name:<13} {what:<40} {value:>12}   {note}".rstrip())


def target(number: str, name: str, value: str, goal: str, met: bool) -> None:
    """One target: its number, what is measured, the value, the target and the verdict."""
    print(f"  {number:<3} {name:<52} {value:>16}   {goal:<22} "
          f"{'met' if met else 'NOT met'}")


def ratio(name: str, value: str, note: str = "") -> None:
    print(f"  {name:<56} {value:>16}   {note}".rstrip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100, help="submissions in the class")
    parser.add_argument("--sample", type=int, default=6,
                        help="submissions run one process each (check, pytest)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                        help="jobs of the batch, and the cores of target 4 (default: all)")
    parser.add_argument("--examples", type=int, default=None,
                        help="examples per check (default: the grader's default)")
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="measure in this environment as it is (by default every command "
                        "runs with Python's bytecode cache on, as on a student's machine)")
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
        correct = work / "correct" / "solutions"
        shutil.copytree(ROOT / "solutions", correct,
                        ignore=shutil.ignore_patterns("__pycache__"))
        sample = folders[: min(arguments.sample, n)]
        flags = ["--examples", str(examples)]
        cache = "off (as this environment is)" if arguments.no_bytecode_cache else "on"
        print(f"N={n} submissions (half correct, half with one bug), {jobs} jobs, "
              f"{examples} examples per check, sample of {len(sample)} for per-process runs, "
              f"bytecode cache {cache}\n")
        print("Measurements")

        # import torch, a cold check and the floor of the correct submission, taken in turns
        # (round after round): this machine's speed drifts by tens of percent over minutes, so
        # each ratio is taken within a round and the median round is reported
        floor_seconds([correct], examples)  # warm up this process on the correct submission
        if not arguments.no_bytecode_cache:
            bytecode_cache(work / "bytecode")
            timed([*grader_command(), "check", str(correct), "--report",
                   str(work / "cold.html"), *flags])  # (fills the cache; not measured)
        time_check_bodies()
        imports, cold_runs, floors, bodies = [], [], [], []
        for _ in range(REPEATS):
            imports.append(timed([sys.executable, "-c", "import torch"]).seconds)
            cold_runs.append(timed([*grader_command(), "check", str(correct), "--report",
                                    str(work / "cold.html"), *flags]))
            BODY_SECONDS[0] = 0.0
            floors.append(floor_seconds([correct], examples))
            bodies.append(BODY_SECONDS[0])
        colds = [run.seconds for run in cold_runs]
        import_torch = statistics.median(imports)
        row("import torch", 'python -c "import torch"', ms(import_torch), runs_note(imports))
        cold = statistics.median(colds)
        failed = [run.returncode for run in cold_runs if run.returncode != 0]
        row("cold check", "grader check <solutions copy>, fresh", ms(cold),
            runs_note(colds) + (f"; WARNING: exit status {failed}" if failed else ""))
        floor_correct = statistics.median(floors)
        row("floor", "one warm process, correct submission", ms(floor_correct),
            runs_note(floors))
        row("", "of which inside the checks' bodies", ms(statistics.median(bodies)),
            runs_note(bodies) + " (not drawing, hypothesis, pytest)")
        cold_ratio = statistics.median(c / i for c, i in zip(colds, imports, strict=True))
        floor_ratio = statistics.median(f / i for f, i in zip(floors, imports, strict=True))
        bodies_ratio = statistics.median(b / i for b, i in zip(bodies, imports, strict=True))

        # the class's floor before and after the two grade runs: they are compared with the
        # mean of the two
        floor_before = floor_seconds(folders, examples) / n
        row("floor", "one warm process, class average (before)", ms(floor_before),
            "per submission")
        serial = timed([*grader_command(), "grade", str(work / "class"), "--out",
                        str(work / "out1"), "-j", "1", *flags]).seconds / n
        row("grade -j 1", "whole class, one job", ms(serial), "per submission")

        batch_run = timed([*grader_command(), "grade", str(work / "class"), "--out",
                           str(work / "outj"), "-j", str(jobs), *flags])
        batch = batch_run.seconds
        row(f"grade -j {jobs}", f"whole class, batch wall {batch:.1f} s", ms(batch / n),
            "per submission")
        peak = batch_run.peak
        first_half, second_half = batch_run.halves()
        row("", "peak memory of the process tree", f"{peak / MiB:.0f} MiB",
            f"first half {first_half / MiB:.0f} MiB, second half {second_half / MiB:.0f} MiB "
            f"({len(batch_run.samples)} samples)")

        floor_after = floor_seconds(folders, examples) / n
        floor = (floor_before + floor_after) / 2
        row("floor", "one warm process, class average (after)", ms(floor_after),
            f"per submission; mean {ms(floor)}")

        if arguments.scheduler:
            dask = timed([*grader_command(), "grade", str(work / "class"), "--out",
                          str(work / "outd"), "--scheduler", arguments.scheduler,
                          *flags]).seconds
            row("grade dask", f"--scheduler {arguments.scheduler}, batch wall {dask:.1f} s",
                ms(dask / n), "per submission")

        check = statistics.mean(
            timed([*grader_command(), "check", str(folder), "--report",
                   str(work / "r.html"), *flags]).seconds for folder in sample)
        row("check", "one process per submission (sample)", ms(check), "per submission")

        per_pytest = statistics.mean(
            timed([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                   str(ROOT / "bench" / "pytest_one_submission.py")],
                  extra_env={"SUBMISSION": str(folder)}, cwd=work).seconds
            for folder in sample)
        row("pytest", "one process per submission (sample)", ms(per_pytest), "per submission")

        print(f"\n  {'Targets (issue 12)':<56} {'measured':>16}   {'target':<22} verdict")
        target("1.", "cold check / import torch", f"{cold_ratio:.2f}x", "<= 2.0x",
               cold_ratio <= 2.0)
        target("2.", "floor (correct submission) / import torch", f"{floor_ratio:.2f}x",
               "<= 0.5x", floor_ratio <= 0.5)
        serial_ratio = serial / floor
        target("3.", "grade -j 1 per submission / floor (class average)",
               f"{serial_ratio:.2f}x", "<= 1.05x", serial_ratio <= 1.05)
        batch_ratio = batch / (n * floor / jobs)
        target("4.", f"batch wall / (N x floor / {jobs} cores)", f"{batch_ratio:.2f}",
               "<= 1.15", batch_ratio <= 1.15)
        growth = second_half / first_half if first_half else float("inf")
        target("5.", f"peak memory of grade -j {jobs}; 2nd half / 1st half",
               f"{peak / GiB:.2f} GiB; {growth:.2f}x", "<= 2.2 GiB; <= 1.1x",
               peak <= 2.2 * GiB and growth <= 1.1)

        print("\n  Other ratios")
        ratio("floor's check bodies alone / import torch", f"{bodies_ratio:.2f}x",
              "target 2's bound if drawing, hypothesis and pytest cost nothing")
        ratio("grade -j 1 overhead beyond the floor", ms(serial - floor), "per submission")
        ratio("check per process / grade (batch, per submission)", f"{check / (batch / n):.1f}x")
        ratio("pytest per process / grade (batch, per submission)",
              f"{per_pytest / (batch / n):.1f}x")
        ratio("pytest per process / floor (class average)", f"{per_pytest / floor:.1f}x")
        if arguments.scheduler:
            # Both grade `jobs` submissions at a time: a submission's grading time is the
            # pool's wall per submission times `jobs`, and so is Dask's share of it.
            ratio("dask wall / pool wall", f"{dask / batch:.3f}",
                  f"Dask's overhead {(dask - batch) / n * jobs * 1000:.0f} ms / sub, "
                  f"{(dask - batch) / batch:.1%} of a submission's "
                  f"{batch / n * jobs * 1000:.0f} ms; target < 5%")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
