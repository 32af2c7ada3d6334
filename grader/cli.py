"""The `grader` command: thin click commands over `grader.runner` and `grader.outputs`.

Commands only parse arguments and print; expected problems (a wrong path, an unavailable device)
raise `click.ClickException`, which click prints as a one-line `Error: ...`.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import click

from grader.formats import gradescope

SHARED_OPTIONS_HELP = {
    "device": "Where to run the checks: cpu, cuda, or all available devices (default).",
    "examples": "Generated examples per check (more is more thorough and slower; default: "
                "the pack's, 12 for the bundled pack).",
}


def _devices(choice: str) -> tuple[str, ...]:
    from grader.runner import available_devices

    available = available_devices()
    if choice == "all":
        return available
    if choice not in available:
        raise click.ClickException(f"--device {choice}: no {choice.upper()} device is available "
                                   f"here (available: {', '.join(available)})")
    return (choice,)


def _use_pack(_context: click.Context, _param: click.Parameter, value: Path | None):  # noqa: ANN202
    """`--pack DIR`: grade with that pack (its metadata and checks are read here, so a broken
    pack is one `Error:` line before anything runs)."""
    from grader import pack

    try:
        return pack.activate(value)
    except pack.PackError as error:
        raise click.ClickException(str(error)) from None


def _exercise_ids() -> list[str]:
    from grader import pack

    try:
        return pack.exercise_ids()
    except pack.PackError as error:
        raise click.ClickException(str(error)) from None


def _options(device: str, examples: int | None, only: tuple[str, ...], *,
             disk_budget: int = 256, allow_unsafe: bool = False):  # noqa: ANN202
    from grader import pack
    from grader.runner import Options

    chosen = pack.current()
    known = set(_exercise_ids()) | set(chosen.parts)
    sandboxing = {"disk_bytes": disk_budget << 20, "allow_unsafe": allow_unsafe}
    unknown = [name for name in only if name not in known]
    if unknown:
        raise click.ClickException(f"--only {unknown[0]}: no such exercise or part (see "
                                   "`grader list`)")
    manifest = pack.release_manifest()
    if manifest is not None:  # a student release (its checks only) replays answers as recorded
        return Options(devices=("cpu",), examples=manifest["examples"], only=only,
                       shrink=False, pack=chosen.root, **sandboxing)
    return Options(devices=_devices(device), examples=examples or chosen.examples, only=only,
                   pack=chosen.root, **sandboxing)


def _release_banner() -> str | None:
    from grader import pack

    manifest = pack.release_manifest()
    if manifest is None:
        return None
    return (f"Student release: running the {len(manifest['checks'])} public checks "
            f"({manifest['points']:g} points) on the CPU; {manifest['left_out']} more checks, "
            "some of them hidden, run when your instructor grades.")


@contextmanager
def _refusing_an_unsafe_sandbox() -> Iterator[None]:
    """A start-up probe that got through (`grader.probe`) ends the command with one line."""
    from grader.probe import UnsafeSandbox

    try:
        yield
    except UnsafeSandbox as error:
        raise click.ClickException(str(error)) from None


def _cold_start() -> None:
    """Before a cold grading process imports torch: start the zygote (its `import torch`
    overlaps ours) and hold the garbage collector until the warm-up is done
    (`runner.finish_warm_up` freezes what exists then and restarts it). Imports make millions
    of objects and no garbage; each full collection meanwhile would walk them all."""
    import gc

    from grader import sandbox

    gc.disable()
    sandbox.prestart()


def _check_folder(path: Path, what: str, *, zip_ok: bool = False) -> Path:
    if not path.exists():
        raise click.ClickException(f"{what} {str(path)!r} does not exist")
    if zip_ok and path.is_file() and path.suffix == ".zip":
        return path
    if not path.is_dir():
        raise click.ClickException(f"{what} {str(path)!r} is not a folder")
    return path


device_option = click.option("--device", type=click.Choice(["all", "cpu", "cuda"]),
                             default="all", show_default=True, help=SHARED_OPTIONS_HELP["device"])
examples_option = click.option("--examples", type=click.IntRange(1, 10_000), default=None,
                               help=SHARED_OPTIONS_HELP["examples"])
pack_option = click.option("--pack", "chosen_pack", default=None, callback=_use_pack,
                           is_eager=True, metavar="DIR",
                           type=click.Path(path_type=Path, file_okay=False),
                           help="The pack to grade with: a folder with exercises/, solutions/, "
                           "tests/ and pack.toml (default: the bundled PyTorch-basics pack).")
junit_option = click.option("--junit", "junit_path", default=None,
                            type=click.Path(path_type=Path, dir_okay=False),
                            help="Also write a JUnit XML report to this file.")
disk_budget_option = click.option(
    "--disk-budget", type=click.IntRange(1, 1 << 20), default=256, show_default=True,
    metavar="MiB", help="Disk space one submission's code may fill, all its files together "
    "(MiB). Past it, its writes fail and the exercise that was running is an error.")
scheduler_option = click.option(
    "--scheduler", metavar="ADDRESS", default=None,
    help="Grade on a Dask cluster: its scheduler's address (tcp://HOST:8786), or local:N for N "
    "worker processes on this machine. Needs: pip install 'torch-grader[dask]'.")
allow_unsafe_option = click.option(
    "--allow-unsafe", is_flag=True, default=False,
    help="Grade even when the start-up probe shows that student code could read a protected "
    "file or the grader's environment here (see `grader doctor`). Not recommended.")
only_option = click.option("--only", multiple=True, metavar="ID",
                           help="Grade only this exercise (e.g. tensors.softmax) or part "
                           "(e.g. autograd); repeatable.")


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="torch-grader")
def main() -> None:
    """Grade PyTorch exercises: run a submission's code in a separate worker process on
    generated inputs, compare it with the reference solutions, and explain every failure.

    \b
    Students:     grader check my_work/
    Instructors:  grader grade submissions/ --out results/
    """


@main.command()
@click.argument("path", required=False, default="exercises",
                type=click.Path(path_type=Path, file_okay=True, dir_okay=True))
@click.option("--report", "report_path", type=click.Path(path_type=Path, dir_okay=False),
              default="report.html", show_default=True, help="Where to write the HTML report.")
@device_option
@examples_option
@only_option
@junit_option
@click.option("--github", is_flag=True, default=False,
              help="GitHub Classroom / Actions: print `Points X/Y`, ::error annotations, and "
              "write the job summary to $GITHUB_STEP_SUMMARY.")
@click.option("--min-score", type=float, default=None,
              help="Exit 0 when the score reaches this (instead of: when everything passed).")
@pack_option
@disk_budget_option
@allow_unsafe_option
def check(path: Path, report_path: Path, device: str, examples: int | None,
          only: tuple[str, ...], junit_path: Path | None, github: bool,
          min_score: float | None, chosen_pack: object, disk_budget: int,
          allow_unsafe: bool) -> None:
    """Check one submission folder (default: exercises/) before you hand it in.

    Prints a table of every exercise with its points, explains each failure with the smallest
    input that goes wrong, and writes an HTML report. Exits with status 0 only when every
    exercise passed.

    \b
    Example:
      grader check exercises/
      grader check my_work/ --only tensors.softmax --report softmax.html
      grader check . --github --min-score 60      # in a GitHub Classroom workflow
    """

    _check_folder(path, "submission folder", zip_ok=True)
    _cold_start()
    from grader import runner
    from grader.formats import outputs, terminal

    runner.warm_up_in_background()

    options = _options(device, examples, only, disk_budget=disk_budget,
                       allow_unsafe=allow_unsafe)
    # two judge/worker pairs grade the parts side by side, taking them from a shared queue
    options = dataclasses.replace(options, pairs=2)
    started = time.perf_counter()
    interactive = sys.stdout.isatty()

    def progress(ex) -> None:  # noqa: ANN001
        click.echo(terminal.exercise_line(ex))

    banner = _release_banner()
    if banner:
        click.echo(banner)
    click.echo(f"Checking {path} on {', '.join(options.devices)}...\n")
    with _refusing_an_unsafe_sandbox():
        result = runner.grade_submission(
            path, options, submission_id=path.resolve().name.removesuffix(".zip"),
            on_exercise=progress if interactive else None)
    for note in result.notes:
        click.echo(f"  note: {note}")
    if not interactive:
        click.echo("\n".join(terminal.table(result).splitlines()[:-2]))
    details = terminal.failure_details(result)
    if details:
        click.echo("\n" + details)
    click.echo("\n" + terminal.table(result).splitlines()[-1])
    outputs.write_submission_report(result, report_path)
    if junit_path is not None:
        outputs.write_junit([result], junit_path)
    click.echo(f"  Report: {report_path}   ({time.perf_counter() - started:.1f} s)")
    if github:
        from grader.formats import github as github_format

        for line in github_format.annotations(result, submission=path):
            click.echo(line)
        click.echo(github_format.points_line(result))
        summary = os.environ.get("GITHUB_STEP_SUMMARY")
        if summary:
            with open(summary, "a", encoding="utf-8") as handle:
                handle.write(github_format.job_summary(result))
    if min_score is not None:
        sys.exit(0 if result.score >= min_score else 1)
    sys.exit(0 if result.passed_count == len(result.exercises) else 1)


@main.command()
@click.argument("submissions", required=False,
                type=click.Path(path_type=Path, file_okay=True, dir_okay=True))
@click.option("--out", "out_dir", type=click.Path(path_type=Path, file_okay=False),
              default="grading-report", show_default=True, help="Folder for the results.")
@click.option("-j", "--jobs", type=click.IntRange(1, 512), default=None,
              help="Submissions graded in parallel (default: all cores).")
@scheduler_option
@device_option
@examples_option
@only_option
@junit_option
@pack_option
@disk_budget_option
@allow_unsafe_option
def grade(submissions: Path | None, out_dir: Path, jobs: int | None, scheduler: str | None,
          device: str, examples: int | None, only: tuple[str, ...], junit_path: Path | None,
          chosen_pack: object, disk_budget: int, allow_unsafe: bool) -> None:
    """Grade every sub-folder of SUBMISSIONS (one folder per student) into OUT.

    Writes OUT/results.json (the machine-readable grades), OUT/grades.csv, OUT/index.html (the
    class summary: scores, per-exercise pass rates, a histogram) and OUT/<id>/report.html for
    each student. Without SUBMISSIONS it grades the bundled example class.

    \b
    Example:
      grader grade submissions/ --out results/ -j 4
      grader grade                      # the bundled examples, into grading-report/
      grader grade submissions/ --scheduler tcp://head-node:8786   # on a Dask cluster
    """
    from grader import pack

    if submissions is None:
        submissions = pack.pack_folder("examples")
        click.echo(f"No SUBMISSIONS given: grading the bundled examples in {submissions}")
    _check_folder(submissions, "submissions folder")
    if scheduler is not None and jobs is not None:
        raise click.ClickException("-j and --scheduler: choose one (on a cluster, its workers "
                                   "grade in parallel)")
    jobs = jobs or os.cpu_count() or 1
    if jobs == 1 and scheduler is None:
        _cold_start()
    from grader import runner
    from grader.formats import outputs

    if jobs == 1 and scheduler is None:
        runner.warm_up_in_background()

    folders = runner.submission_folders(submissions)
    if not folders:
        raise click.ClickException(f"{submissions} has no sub-folders: put each submission in "
                                   "its own folder (its name is the submission id)")
    options = _options(device, examples, only, disk_budget=disk_budget,
                       allow_unsafe=allow_unsafe)
    started = time.perf_counter()
    results = []
    show_bar = sys.stderr.isatty()
    with _refusing_an_unsafe_sandbox(), ExitStack() as stack:
        if scheduler is None:
            batch = runner.grade_batch(folders, options, jobs=jobs)
        else:
            from grader.cluster.client import Cluster

            cluster = stack.enter_context(Cluster(scheduler))
            click.echo(f"Grading on {cluster.describe()}")
            batch = cluster.grade(folders, options)
        with click.progressbar(length=len(folders), label="Grading", file=sys.stderr,
                               show_eta=True, show_pos=True,
                               item_show_func=lambda r: r.id if r else None) as bar:
            for result in batch:
                results.append(result)
                if show_bar:
                    bar.update(1, result)
    written = outputs.write_class_outputs(results, out_dir, devices=options.devices)
    if junit_path is not None:
        written["junit"] = outputs.write_junit(results, junit_path)
    elapsed = time.perf_counter() - started
    click.echo(f"Graded {len(results)} submissions in {elapsed:.1f} s "
               f"({elapsed / len(results):.2f} s each, "
               f"{'on the cluster' if scheduler else f'{jobs} at a time'}).")
    for kind, path in written.items():
        click.echo(f"  {kind:<8} {path}")
    if scheduler is not None and cluster.failed:
        raise click.ClickException(
            f"the grading infrastructure failed twice on {len(cluster.failed)} submissions "
            f"({', '.join(sorted(cluster.failed))}): their results say so (status error); "
            "grade them again")


@main.command(name="gradescope")
@click.option("--submission", "submission_dir", default=gradescope.DEFAULT_SUBMISSION,
              show_default=True, type=click.Path(path_type=Path, file_okay=False),
              help="The submission folder (Gradescope unpacks it here).")
@click.option("--results", "results_path", default=gradescope.DEFAULT_RESULTS,
              show_default=True, type=click.Path(path_type=Path, dir_okay=False),
              help="Where Gradescope reads the results.")
@click.option("--visibility", type=click.Choice(gradescope.VISIBILITIES), default="visible",
              show_default=True, help="When students see each exercise's result.")
@examples_option
@pack_option
def gradescope_command(submission_dir: Path, results_path: Path, visibility: str,
                       examples: int | None, chosen_pack: object) -> None:
    """Grade the submission Gradescope unpacked and write its results.json (call it from the
    autograder's `run_autograder`).

    \b
    Example (run_autograder):
      grader gradescope
      grader gradescope --submission sub/ --results out/results.json
    """

    _check_folder(submission_dir, "submission folder")
    _cold_start()
    from grader import runner
    from grader.formats import outputs

    runner.warm_up_in_background()
    # one submission, cold: two judge/worker pairs, as `grader check`
    options = dataclasses.replace(_options("all", examples, ()), pairs=2)
    result = runner.grade_submission(submission_dir, options, submission_id="submission")
    outputs.write_gradescope(result, results_path, visibility=visibility)
    click.echo(f"{result.score:g} / {result.max_score:g} -> {results_path}")


@main.command(name="gradescope-zip")
@click.argument("zip_path", required=False, default="autograder.zip",
                type=click.Path(path_type=Path, dir_okay=False))
@click.option("--visibility", type=click.Choice(gradescope.VISIBILITIES), default="visible",
              show_default=True, help="When students see each exercise's result.")
@pack_option
def gradescope_zip(zip_path: Path, visibility: str, chosen_pack: object) -> None:
    """Build the autograder zip to upload to Gradescope (default: autograder.zip): setup.sh,
    run_autograder and this grader with its pack.

    \b
    Example:
      grader gradescope-zip autograder.zip --visibility after_due_date
    """
    from grader import pack

    if pack.release_manifest() is not None:
        raise click.ClickException("this grader is a student release (no solutions): build the "
                                   "autograder zip from the instructor's grader")
    names = gradescope.build_autograder_zip(zip_path, visibility=visibility)
    click.echo(f"{zip_path}: {len(names)} files (setup.sh, run_autograder, the grader and "
               "its pack). Upload it as the assignment's autograder.")


@main.command()
@click.argument("out", type=click.Path(path_type=Path, file_okay=False))
@examples_option
@pack_option
def release(out: Path, examples: int | None, chosen_pack: object) -> None:
    """Write the student release into OUT: the stubs, this grader without the solutions and
    without the checks marked hidden, and the public checks with the reference's answers
    recorded (so students can run `grader check` on their own machine).

    \b
    Example:
      grader release student-release/
      cd student-release && pip install -e . && grader check exercises/
    """
    from grader import pack

    if pack.release_manifest() is not None:
        raise click.ClickException("this grader is itself a student release: run `grader "
                                   "release` from the instructor's grader")
    if out.exists() and any(out.iterdir()):
        raise click.ClickException(f"{out} is not empty: choose a new folder")
    from grader import release as release_builder

    click.echo("Recording the reference's answers to the public checks...")
    summary = release_builder.build_release(out, examples=examples or pack.current().examples)
    click.echo(f"{out}: {len(summary.files)} files. It carries {len(summary.carried)} public "
               f"checks ({summary.points:g} points); left out: {len(summary.hidden)} hidden "
               f"checks and {len(summary.not_replayable)} that need the solutions to run:")
    for name, why in sorted(summary.not_replayable.items()):
        click.echo(f"  {name}  ({why[:90]})")


@main.command(name="list")
@pack_option
def list_exercises(chosen_pack: object) -> None:
    """List the pack's exercises with their points and what each asks for.

    \b
    Example:
      grader list
    """
    from grader import pack

    _exercise_ids()
    exercises = pack.exercises()
    width = max(len(ex.id) for ex in exercises)
    for ex in exercises:
        click.echo(f"{ex.id:<{width}}  {ex.max_score:>4g} pts  {ex.summary}")
    click.echo(f"\n{len(exercises)} exercises, "
               f"{sum(ex.max_score for ex in exercises):g} points in total.")


@main.command()
@scheduler_option
def doctor(scheduler: str | None) -> None:
    """Show how isolated student code is on this machine: each sandbox layer, whether it is
    active (or why not), and what it protects against. With --scheduler, the same for every
    worker of a Dask cluster.

    \b
    Example:
      grader doctor
      grader doctor --scheduler tcp://head-node:8786
    """
    import dataclasses
    import tempfile

    from grader import probe, sandbox
    from grader.runner import available_devices
    from grader.worker import isolation

    if scheduler is not None:
        _doctor_cluster(scheduler)
        return
    settings = sandbox.Settings(cuda="cuda" in available_devices(), allow_unsafe=True,
                                protected=sandbox.protected_paths())
    with tempfile.TemporaryDirectory() as empty:
        worker = sandbox.Worker(Path(empty), settings=settings)
        try:
            worker.start()
            report = worker.isolation
        except sandbox.WorkerFailure as failure:
            raise click.ClickException(f"a worker could not start here: {failure}") from None
        finally:
            worker.close()
    probes = probe.verify(settings)  # run by the first start above
    click.echo(f"Running as {'root' if os.geteuid() == 0 else 'uid ' + str(os.geteuid())}; "
               f"devices: {', '.join(available_devices())}; "
               f"Landlock ABI {isolation.landlock_abi()}.\n")
    _echo_layers(report)
    click.echo("\nStart-up probes (every `grade` and `check` runs them first): a worker in this "
               "sandbox tries what a hostile submission would.")
    _echo_probes([dataclasses.asdict(attempt) for attempt in probes])
    if any(not attempt.contained for attempt in probes):
        click.echo("\n`grader grade` and `grader check` refuse to grade here (unless "
                   "--allow-unsafe).")
    click.echo(f"\nAlways: a separate worker process per submission, a copy of the submission in "
               f"a scratch folder (a disk budget of {sandbox.DEFAULT_DISK_BUDGET >> 20} MiB by "
               "default, --disk-budget), a minimal environment, deadlines enforced by the "
               "grader, plain-data results.")


def _echo_layers(report: dict[str, str], *, explain: bool = True) -> None:
    from grader.worker import isolation

    width = max(len(layer) for layer in isolation.LAYERS)
    for layer in isolation.LAYERS:
        state = report.get(layer, "unknown")
        mark = click.style("active", fg="green") if state == isolation.ACTIVE else \
            click.style(state, fg="yellow")
        click.echo(f"  {layer:<{width}}  {mark}")
        if explain:
            click.echo(f"  {'':<{width}}  protects against: {isolation.PROTECTS[layer]}")


def _echo_probes(probes: list[dict]) -> None:
    for attempt in probes:
        verdict = click.style("contained", fg="green") if attempt["contained"] else \
            click.style(f"GOT THROUGH ({attempt['layer']}: {attempt['layer_state']})", fg="red")
        click.echo(f"  {attempt['name']}\n    tried: read {attempt['path']}\n    saw:   "
                   f"{attempt['saw']}\n    {verdict}")


def _doctor_cluster(scheduler: str) -> None:
    """`grader doctor --scheduler`: each Dask worker's layers and probes, as its judge sees
    them (the judge runs the very machinery that grades there)."""
    from grader.cluster.client import Cluster

    with Cluster(scheduler) as cluster:
        click.echo(f"Dask cluster at {cluster.describe()}")
        reports = cluster.doctor()
    if not reports:
        raise click.ClickException(f"--scheduler {scheduler}: no workers are connected")
    for report in reports:
        click.echo(f"\nWorker {report['worker']}")
        if report.get("failure"):
            click.echo("  " + click.style(f"a worker could not start there: "
                                            f"{report['failure']}", fg="red"))
            continue
        user = "root" if report["uid"] == 0 else f"uid {report['uid']}"
        click.echo(f"  host {report['host']}, running as {user}; devices: "
                   f"{', '.join(report['devices'])}; Landlock ABI {report['landlock_abi']}.")
        _echo_layers(report["layers"], explain=False)
        _echo_probes(report["probes"])
    broken = [report["worker"] for report in reports if report.get("failure")
              or not all(attempt["contained"] for attempt in report["probes"])]
    if broken:
        raise click.ClickException(f"grading is unsafe or impossible on {', '.join(broken)} "
                                   "(see above): `grader grade` refuses to grade there")


@main.command()
@click.argument("directory", type=click.Path(path_type=Path))
@click.option("--title", default=None,
              help="The pack's title (default: from DIRECTORY's name, e.g. my-pack: My pack).")
def new(directory: Path, title: str | None) -> None:
    """Write a new pack into DIRECTORY (a new or empty folder): one example exercise with its
    stub, solution, check and two example submissions, ready to pass its own checks.

    \b
    Example:
      grader new my-pack
      pytest my-pack/tests                               # the checks pass on the solutions
      grader check --pack my-pack my-pack/solutions      # full marks
      grader check --pack my-pack my-pack/exercises      # zero: not implemented yet
    """
    from grader import scaffold

    try:
        written = scaffold.write_new_pack(directory, title=title)
    except FileExistsError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"{directory}: a new pack ({len(written)} files):")
    for path in written:
        click.echo(f"  {path.relative_to(directory)}")
    click.echo(f"Next: pytest {directory}/tests, then add an exercise (a stub in exercises/, its "
               "solution in solutions/, a check in tests/).")


def run() -> None:
    """The console entry point: `main`, then a quick exit. Tearing down an interpreter that
    imported torch takes ~0.8 s and achieves nothing here: the results are written, the
    workers are gone, and what the sandbox set up is removed first."""
    try:
        main()
        code: object = 0
    except SystemExit as done:
        code = done.code
    except Exception as error:  # a refusal from a command without its own handling
        from grader.probe import UnsafeSandbox

        if not isinstance(error, UnsafeSandbox):
            raise
        click.echo(f"Error: {error}", err=True)
        code = 1
    from grader import sandbox

    sandbox.clean_up()  # the zygote, the cgroup folder, the runtime copy (atexit will not run)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code if isinstance(code, int) else 0 if code is None else 1)
