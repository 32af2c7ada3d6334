"""Proof at start-up that the sandbox holds: before anything is graded, a probe worker (the same
sandbox, no student code) tries what a hostile submission would, and grading stops if it gets
through.

A layer reported "active" can still leak (a venv's `lib64 -> lib` link once granted the whole of
`lib`, solutions included), so the grader does not take the layers' word for it: it reads, from
inside, one protected file and the grader's own `/proc/<pid>/environ`. Each is tried once per
grading process (a few ms with a warm zygote); `grader doctor` shows what was tried and seen.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from grader import sandbox


@dataclass(frozen=True)
class Probe:
    """One attempt of the probe worker and what it saw."""

    name: str  # what the target stands for
    path: str  # what it tried to read
    layer: str  # the layer that must stop it
    saw: str  # "denied (PermissionError: ...)", or "read 64 bytes"
    contained: bool
    layer_state: str = ""  # that layer's state in the probe worker ("active" or why not)


class UnsafeSandbox(Exception):
    """A start-up probe read what no worker may read: grading would expose it to students."""


def protected_sample(folders: tuple[Path, ...]) -> Path | None:
    """A non-empty file in the protected folders, the solutions' first if they have one."""
    ordered = sorted(folders, key=lambda folder: folder.name != "solutions")
    for folder in ordered:
        candidates = [folder] if folder.is_file() else sorted(folder.rglob("*.py"))
        for path in candidates:
            try:
                if path.is_file() and path.stat().st_size > 0:
                    return path
            except OSError:
                continue
    return None


def targets(settings: sandbox.Settings) -> list[tuple[str, str, str]]:
    """(what it stands for, the path to read, the layer that must stop it)."""
    found = []
    sample = protected_sample(settings.protected_folders())
    if sample is not None:
        found.append(("a protected file (solutions, checks, examples)", str(sample),
                      "landlock"))
    found.append(("the grader's environment (API keys, tokens)",
                  f"/proc/{os.getpid()}/environ", "landlock"))
    return found


def run(settings: sandbox.Settings) -> list[Probe]:
    """Start a probe worker with these settings and let it try every target.
    Raises sandbox.WorkerFailure when no worker can start at all."""
    tried = targets(settings)
    with tempfile.TemporaryDirectory(prefix="torch-grader-probe-") as empty:
        worker = sandbox.Worker(Path(empty), settings=settings)
        worker.is_probe = True
        try:
            worker.start()
            reply = worker.request({"op": "probe", "paths": [path for _, path, _ in tried]},
                                   timeout=sandbox.STARTUP_SECONDS)
            report = dict(worker.isolation)
        finally:
            worker.close()
    outcomes = reply.get("reads") or [{"error": "no answer"}] * len(tried)
    probes = []
    for (name, path, layer), outcome in zip(tried, outcomes, strict=False):
        contained = "read" not in outcome
        saw = f"denied ({outcome.get('error', '?')})" if contained else \
            f"read {outcome['read']} bytes"
        probes.append(Probe(name, path, layer, saw, contained, report.get(layer, "unknown")))
    return probes


_verified: dict[tuple, list[Probe]] = {}


def verify(settings: sandbox.Settings) -> list[Probe]:
    """Run the probes once per process and sandbox configuration; raises UnsafeSandbox when one
    got through, unless `settings.allow_unsafe`."""
    key = (settings.protected_folders(), tuple(sorted(settings.disabled)), settings.cuda)
    probes = _verified.get(key)
    if probes is None:
        probes = run(settings)
        _verified[key] = probes
        # a layer the probe worker could not start with is off for every worker: same verdict
        _verified[(key[0], tuple(sorted(settings.disabled)), key[2])] = probes
    failed = [probe for probe in probes if not probe.contained]
    if failed and not settings.allow_unsafe:
        raise UnsafeSandbox(refusal(failed[0]))
    return probes


def refusal(probe: Probe) -> str:
    """One line: what got through, which layer should have stopped it, what to do."""
    return (f"refusing to grade: a probe worker could read {probe.name}: {probe.path}. The "
            f"{probe.layer} layer must stop that (here: {probe.layer_state}), or every "
            "submission could read it too. Run `grader doctor` to see each layer, or pass "
            "--allow-unsafe to grade anyway.")
