"""Gradescope's autograder format: results.json as its autograder specification describes it.

Top level `score`, `execution_time`, `output`, `output_format`, `tests`; one test per exercise
with `name`, `score`, `max_score`, `status` ("passed"/"failed"), `output`, `output_format`,
`visibility`.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from grader.failures import PASSED
from grader.results import ExerciseResult, SubmissionResult, points

DEFAULT_SUBMISSION = "/autograder/submission"
DEFAULT_RESULTS = "/autograder/results/results.json"
VISIBILITIES = ("visible", "hidden", "after_due_date", "after_published")


def exercise_output(ex: ExerciseResult) -> str:
    """A test's `output`, laid out as the HTML report shows the exercise: the status once
    (when it did not pass), then every check with a mark, its points and why it failed.

    An exercise stopped before its checks ran (no file, no such name, out of time) gives every
    check the same message: it is said once, on the status line, instead of under each check.
    """
    if not ex.checks:
        return ex.feedback if ex.status == PASSED else f"[{ex.status}] {ex.feedback}"
    failed_messages = {check.feedback for check in ex.checks if check.status != PASSED}
    stopped_early = (len(ex.checks) > 1 and len(failed_messages) == 1
                     and all(check.status != PASSED for check in ex.checks))
    said_once = failed_messages.pop() if stopped_early else ""
    lines = [] if ex.status == PASSED else [f"[{ex.status}] {said_once}".rstrip()]
    for check in ex.checks:
        mark = "✓" if check.status == PASSED else "✗"
        lines.append(f"{mark} {check.description} ({check.score:g} / {check.max_score:g})")
        if check.status != PASSED and check.feedback and not stopped_early:
            lines += ["    " + line if line else "" for line in check.feedback.splitlines()]
    return "\n".join(lines)


def gradescope_json(result: SubmissionResult, *, visibility: str = "visible") -> str:
    """The results.json text Gradescope reads after `run_autograder`."""
    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility must be one of {', '.join(VISIBILITIES)}")
    tests = []
    for ex in result.exercises:
        tests.append({
            "name": f"{ex.id}: {ex.summary}" if ex.summary else ex.id,
            "score": points(ex.score),
            "max_score": points(ex.max_score),
            "status": "passed" if ex.status == PASSED else "failed",
            "output": exercise_output(ex),
            "output_format": "text",
            "visibility": visibility,
        })
    document = {
        "score": result.score,
        "execution_time": round(result.seconds, 2),
        "output": f"{result.passed_count} of {len(result.exercises)} exercises passed: "
                  f"{result.score:g} / {result.max_score:g} points.",
        "output_format": "text",
        "visibility": visibility,
        "tests": tests,
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


# Gradescope's base images are Ubuntu 22.04 (python3 is 3.10) and 24.04 (3.12, and no python3.11
# package), so the script takes the image's python3 when it is recent enough and installs one
# only when it is not. Sourcing it defines the functions without running `main` (the tests do).
SETUP_SH = r"""#!/usr/bin/env bash
# Gradescope runs this once when it builds the autograder image.
set -euo pipefail

# What `$1 --version` says, or "not installed".
python_version_of() {
    if command -v "$1" >/dev/null; then "$1" --version 2>&1 || true; else echo "not installed"; fi
}

# Succeeds when the interpreter $1 exists and is Python 3.11 or newer.
python_is_recent() {
    local reported
    reported=$(python_version_of "$1")
    [[ $reported =~ ^Python\ ([0-9]+)\.([0-9]+) ]] || return 1
    (( 10#${BASH_REMATCH[1]} > 3 || (10#${BASH_REMATCH[1]} == 3 && 10#${BASH_REMATCH[2]} >= 11) ))
}

# Prints the interpreter to build the venv with: the image's python3 when it is 3.11 or newer,
# else one apt installs (python3.11 on 22.04; the distribution's python3 where the image has
# none). Fails with a message when none is 3.11 or newer.
choose_python() {
    if python_is_recent python3; then
        echo python3
        return
    fi
    local found package
    found=$(python_version_of python3)
    echo "setup.sh: the image's python3 is $found; installing a newer Python with apt" >&2
    if apt-get update -qq >&2; then
        for package in python3.11 python3; do
            if apt-get install -y -qq "$package" "$package-venv" >&2 \
                    && python_is_recent "$package"; then
                echo "$package"
                return
            fi
        done
    fi
    echo "setup.sh: torch-grader needs Python 3.11 or newer, but the image's python3 is" \
         "$found and apt-get installed no newer one. Choose a base image with Python 3.11" \
         "or newer (Ubuntu 24.04 has 3.12)." >&2
    return 1
}

# Creates the venv $2 with the interpreter $1; Ubuntu's Pythons need their -venv package.
make_venv() {
    if ! "$1" -m venv "$2" >/dev/null 2>&1; then
        apt-get update -qq >&2 && apt-get install -y -qq "$1-venv" >&2
        "$1" -m venv --clear "$2"
    fi
}

main() {
    local python
    python=$(choose_python)
    make_venv "$python" /autograder/venv
    /autograder/venv/bin/pip install --quiet torch==2.13.0 \
        --index-url https://download.pytorch.org/whl/cpu
    /autograder/venv/bin/pip install --quiet /autograder/source
}

if ! (return 0 2>/dev/null); then  # run, not sourced
    main "$@"
fi
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this for every submission.
cd /autograder/source
/autograder/venv/bin/grader gradescope --submission /autograder/submission \\
    --results /autograder/results/results.json --visibility {visibility}
"""

def build_autograder_zip(path: Path, *, visibility: str = "visible") -> list[str]:
    """Gradescope's autograder zip: setup.sh and run_autograder at the top, and the grader
    with the active pack (stubs, solutions, checks, templates) as an installable source tree
    (see `grader.distribution`). Returns the names written."""
    from grader import __version__, distribution, pack

    if visibility not in VISIBILITIES:
        raise ValueError(f"visibility must be one of {', '.join(VISIBILITIES)}")
    folders = ("exercises", "solutions", "tests")
    grader_files = distribution.grader_sources()
    pack_texts = distribution.pack_sources(pack.current().root, folders)
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, text in (("setup.sh", SETUP_SH),
                           ("run_autograder", RUN_AUTOGRADER.format(visibility=visibility))):
            info = zipfile.ZipInfo(name)
            info.external_attr = 0o755 << 16
            archive.writestr(info, text)
        archive.writestr("pyproject.toml", distribution.pyproject_text(
            __version__, list(folders), distribution.grader_packages(grader_files)))
        for name, text in pack_texts.items():
            archive.writestr(name, text)
        for name, source in grader_files.items():
            archive.write(source, name)
    return ["setup.sh", "run_autograder", "pyproject.toml", *pack_texts, *grader_files]
