"""How workers are isolated and limited: the settings and their defaults."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

# Importing torch in a fresh worker takes ~1.5 s here; allow for slow, loaded machines.
STARTUP_SECONDS = 120.0
OUTPUT_CAP_BYTES = 64 * 1024
SUBMISSION_CAP_BYTES = 32 << 20
SUBMISSION_CAP_FILES = 500
GRADING_UID = 65534  # nobody: used only when the Python installation is readable by it
DEFAULT_DISK_BUDGET = 256 << 20
WATCH_SECONDS = 0.05  # how often the disk watchdog measures (only without the disk layer)


@dataclass
class Settings:
    """How to isolate workers (the machine decides what is available)."""

    isolate: bool = True
    memory_bytes: int | None = 2 << 30  # address space beyond a worker with torch imported
    cpu_seconds: int = 600
    processes: int = 64
    cuda: bool = False
    zygote: bool = True  # fork workers from a warm process that has imported torch
    # folders no worker may read (the pack's solutions, checks, examples; the grader package),
    # wherever they are installed; empty: `protected_paths()`
    protected: tuple[Path, ...] = ()
    disk_bytes: int = DEFAULT_DISK_BUDGET  # all files one submission's worker writes, in total
    allow_unsafe: bool = False  # grade even when a start-up probe got through (see `verify`)
    # layers switched off after a worker could not start with them, and why
    disabled: dict[str, str] = field(default_factory=dict)

    def protected_folders(self) -> tuple[Path, ...]:
        from grader.sandbox.allowlist import protected_paths

        return tuple(self.protected) or protected_paths()
