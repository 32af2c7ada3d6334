"""The autograder zip's setup.sh, run by bash against fake interpreters and a fake apt-get.

Each case puts only a folder of fake commands on PATH, sources setup.sh (which defines its
functions without running `main`) and calls one function, as on Gradescope's Ubuntu 22.04
(python3 is 3.10, apt has python3.11) and 24.04 (python3 is 3.12, apt has no python3.11) images.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from grader.formats import gradescope

BASH, COPY = shutil.which("bash"), shutil.which("cp")
pytestmark = pytest.mark.skipif(BASH is None or COPY is None, reason="needs bash and cp")

UBUNTU_22_04 = {"python3.11": "Python 3.11.0rc1", "python3.11-venv": "",
                "python3": "Python 3.10.12", "python3-venv": ""}
UBUNTU_24_04 = {"python3": "Python 3.12.3", "python3-venv": ""}


def fake_command(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def fake_python(path: Path, says: str, *, commands: Path, log: Path) -> None:
    """An interpreter that reports `says` (Python 2 on stderr, as it did) and can make a venv
    once apt installed its -venv package, as Ubuntu's can."""
    version = f'echo "{says}"' + (" >&2" if says.startswith("Python 2") else "")
    fake_command(path, f'if [ "$1" = --version ]; then {version}; exit 0; fi\n'
                 f'[ -e "{commands / path.name}-venv" ] || exit 1\n'
                 f'echo "$0 $*" >> "{log}"')


def run_setup_function(tmp_path: Path, call: str, *, python3_says: str | None,
                       apt_offers: dict[str, str]) -> tuple[subprocess.CompletedProcess, str]:
    """Source setup.sh and run `call` with fake commands only; returns the run and every
    apt-get command line. `python3_says` is what the image's `python3 --version` prints
    (None: no python3); `apt_offers` maps the packages apt can install to what the installed
    interpreter says ("" for a -venv package). Installing anything else fails, as apt does."""
    commands, offers = tmp_path / "bin", tmp_path / "offers"
    commands.mkdir()
    offers.mkdir()
    venv_log, apt_log = tmp_path / "venv.log", tmp_path / "apt.log"
    for package, says in apt_offers.items():
        if says:
            fake_python(offers / package, says, commands=commands, log=venv_log)
        else:
            (offers / package).write_text("")
    if python3_says is not None:
        fake_python(commands / "python3", python3_says, commands=commands, log=venv_log)
    fake_command(commands / "apt-get", f'echo "$*" >> "{apt_log}"\n'
                 '[ "$1" = update ] && exit 0\n'
                 'for package in "$@"; do case "$package" in -*|install) ;; *)\n'
                 f'  [ -e "{offers}/$package" ] || exit 100;; esac; done\n'
                 'for package in "$@"; do case "$package" in -*|install) ;; *)\n'
                 f'  {COPY} -p "{offers}/$package" "{commands}/$package";; esac; done')
    script = tmp_path / "setup.sh"
    script.write_text(gradescope.SETUP_SH)
    run = subprocess.run([BASH, "-c", f'source "{script}" && {call}'], capture_output=True,
                         text=True, env={"PATH": str(commands)}, timeout=30)
    return run, apt_log.read_text() if apt_log.exists() else ""


@pytest.mark.parametrize("python3_says", ["Python 3.12.3", "Python 3.11.0", "Python 3.13.0rc1"])
def test_setup_uses_the_images_python3_when_it_is_recent(tmp_path: Path,
                                                         python3_says: str) -> None:
    run, apt_calls = run_setup_function(tmp_path, "choose_python", python3_says=python3_says,
                                        apt_offers=UBUNTU_24_04)
    assert (run.returncode, run.stdout) == (0, "python3\n"), run.stderr
    assert apt_calls == ""


@pytest.mark.parametrize("python3_says", ["Python 3.10.12", "Python 3.9.18", "Python 2.7.18",
                                          None])
def test_setup_installs_python311_when_python3_is_older_or_missing(
        tmp_path: Path, python3_says: str | None) -> None:
    run, apt_calls = run_setup_function(tmp_path, "choose_python", python3_says=python3_says,
                                        apt_offers=UBUNTU_22_04)
    assert (run.returncode, run.stdout) == (0, "python3.11\n"), run.stderr
    assert apt_calls.splitlines() == ["update -qq", "install -y -qq python3.11 python3.11-venv"]
    shown = python3_says or "not installed"
    assert f"the image's python3 is {shown}; installing a newer Python" in run.stderr


def test_setup_installs_the_distributions_python3_where_the_image_has_none(
        tmp_path: Path) -> None:
    run, apt_calls = run_setup_function(tmp_path, "choose_python", python3_says=None,
                                        apt_offers=UBUNTU_24_04)
    assert (run.returncode, run.stdout) == (0, "python3\n"), run.stderr
    assert apt_calls.splitlines()[-1] == "install -y -qq python3 python3-venv"


@pytest.mark.parametrize("apt_offers", [{}, {"python3": "Python 3.10.12", "python3-venv": ""}])
def test_setup_fails_with_a_clear_message_when_no_python_works(
        tmp_path: Path, apt_offers: dict[str, str]) -> None:
    run, _ = run_setup_function(tmp_path, "choose_python", python3_says="Python 3.10.12",
                                apt_offers=apt_offers)
    assert run.returncode != 0 and run.stdout == ""
    assert ("torch-grader needs Python 3.11 or newer, but the image's python3 is Python 3.10.12"
            " and apt-get installed no newer one") in run.stderr


def test_setup_stops_before_installing_anything_when_no_python_works(tmp_path: Path) -> None:
    # `main` under `set -e`: no venv, no pip, once choose_python failed.
    run, apt_calls = run_setup_function(tmp_path, "main", python3_says=None, apt_offers={})
    assert run.returncode != 0
    assert "needs Python 3.11 or newer, but the image's python3 is not installed" in run.stderr
    assert apt_calls.splitlines() == ["update -qq", "install -y -qq python3.11 python3.11-venv",
                                      "install -y -qq python3 python3-venv"]
    assert not (tmp_path / "venv.log").exists()


def test_setup_installs_the_venv_package_when_python3_has_no_venv_module(tmp_path: Path) -> None:
    run, apt_calls = run_setup_function(tmp_path, "make_venv python3 /autograder/venv",
                                        python3_says="Python 3.12.3", apt_offers=UBUNTU_24_04)
    assert run.returncode == 0, run.stderr
    assert apt_calls.splitlines() == ["update -qq", "install -y -qq python3-venv"]
    assert (tmp_path / "venv.log").read_text().split() == [
        str(tmp_path / "bin" / "python3"), "-m", "venv", "--clear", "/autograder/venv"]
