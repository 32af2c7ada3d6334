"""What a worker may read: the runtime copy of the worker package, the system and
the Python installation, never the protected folders (resolved, links included)."""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import site
import sys
import sysconfig
import tempfile
from functools import cache
from pathlib import Path

SYSTEM_READ_PATHS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin", "/etc", "/sys",
                     "/opt/conda", "/usr/local")
# Devices a worker may use (not /dev as a whole: as root that would include raw disks).
DEVICES = ("/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/shm")
# The system files of /proc that Python, torch and its libraries read (CPU, memory, kernel
# settings); every /proc/<pid> but the worker's own stays closed.
PROC_FILES = ("cpuinfo", "meminfo", "stat", "loadavg", "uptime", "version", "filesystems",
              "cgroups", "swaps", "vmstat", "sys")


GRADER_PACKAGE = Path(__file__).resolve().parents[1]  # the judge's whole `grader` package


@cache
def runtime_dir() -> Path:
    """A private copy of the worker's modules: the only `grader` the worker can import."""
    root = Path(tempfile.mkdtemp(prefix="torch-grader-runtime-"))
    os.chmod(root, 0o755)
    package = root / "grader"
    package.mkdir()
    source = GRADER_PACKAGE
    shutil.copy(source / "__init__.py", package / "__init__.py")
    shutil.copytree(source / "worker", package / "worker",
                    ignore=shutil.ignore_patterns("__pycache__"))
    atexit.register(shutil.rmtree, root, True)
    return root


def protected_paths(pack_folders: tuple[Path, ...] | None = None) -> tuple[Path, ...]:
    """What a worker must never read, wherever it is installed: the grader package (in a wheel
    it holds the bundled pack), the bundled pack's and the graded pack's solutions, checks,
    examples and recorded answers (`pack.Pack.protected`; `pack_folders`, else the active
    pack's)."""
    from grader import pack

    folders = [GRADER_PACKAGE]
    try:
        folders += pack.load(None).protected
    except pack.PackError:
        pass  # no usable bundled pack here: the graded one is protected below
    folders += pack.current().protected if pack_folders is None else pack_folders
    return tuple(dict.fromkeys(Path(folder).resolve() for folder in folders))


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _allow_all_but(path: Path, protected: tuple[Path, ...], allowed: list[str]) -> None:
    """Allow `path` except the protected folders below it. Landlock only adds permissions and
    opens each granted path through its links, so the test is on real paths: a granted path
    whose real target holds a protected folder is split like any other folder."""
    real = path.resolve()
    if not real.exists() or any(_inside(real, folder) for folder in protected):
        return
    below = [folder for folder in protected if real in folder.parents]
    if not below:
        allowed.append(str(real))
        return
    try:
        children = sorted(real.iterdir())
    except OSError:
        return
    for child in children:
        # A link inside a split folder is left out: its target is either in this folder
        # (granted on its own) or elsewhere, where granting the folder whole would not reach.
        if not child.is_symlink():
            _allow_all_but(child, below, allowed)


def _python_roots() -> set[Path]:
    roots = {Path(sys.base_prefix), Path(sys.prefix), Path(sys.executable).resolve().parent,
             Path(sysconfig.get_paths()["stdlib"])}
    return roots | {Path(p) for p in site.getsitepackages() + [site.getusersitepackages()]}


@cache
def read_paths(protected: tuple[Path, ...] = (), cuda: bool = False) -> tuple[str, ...]:
    """Everything a worker may read: the system and the Python installation minus the protected
    folders, a few devices, and in /proc a few system files (the worker adds its own entries,
    `/proc/self`); never another process's. Every path is resolved before it is granted."""
    protected = tuple(Path(folder).resolve() for folder in protected)
    devices = list(DEVICES) + (sorted(glob.glob("/dev/nvidia*")) if cuda else [])
    allowed: list[str] = []
    for root in sorted({Path(p) for p in (*SYSTEM_READ_PATHS, *devices)} | _python_roots()):
        _allow_all_but(root, protected, allowed)
    proc = PROC_FILES + (("driver",) if cuda else ())  # the NVIDIA driver's /proc/driver/nvidia
    allowed += [f"/proc/{name}" for name in proc if os.path.exists(f"/proc/{name}")]
    allowed += ["/proc/self", str(runtime_dir())]
    return tuple(dict.fromkeys(allowed))


def _readable_by_others(path: Path) -> bool:
    path = path.resolve()
    for ancestor in [*reversed(path.parents), path]:
        try:
            mode = ancestor.stat().st_mode
        except OSError:
            return False
        if ancestor.is_dir() and not mode & 0o001:
            return False
    return bool(path.stat().st_mode & 0o004)


@cache
def can_drop_uid() -> bool:
    """As root, a grading uid is used only if it can still run Python and import torch."""
    if os.geteuid() != 0:
        return False
    import importlib.util

    torch_spec = importlib.util.find_spec("torch")
    needed = [Path(sys.executable), Path(sysconfig.get_paths()["stdlib"]) / "os.py"]
    if torch_spec and torch_spec.origin:
        needed.append(Path(torch_spec.origin))
    return all(_readable_by_others(path) for path in needed)
