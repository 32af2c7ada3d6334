"""Proof at start-up that the sandbox holds: before anything is graded, a probe worker (the same
sandbox, no student code) tries what a hostile submission would, and grading stops if it gets
through.

A layer reported "active" can still leak (a venv's `lib64 -> lib` link once granted the whole of
`lib`, solutions included), so the grader does not take the layers' word for it: it reads, from
inside, one protected file and the grader's own `/proc/<pid>/environ`. The first worker of each
grading process tries them as soon as it started, before it imports a single student file (one
round trip, ~1 ms); `grader doctor` shows what was tried and seen.
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


def attempt(worker: sandbox.Worker) -> list[Probe]:
    """Let a started worker, in which no student code has run yet, try every target."""
    tried = targets(worker.settings)
    reply = worker.request({"op": "probe", "paths": [path for _, path, _ in tried]},
                           timeout=sandbox.STARTUP_SECONDS)
    outcomes = reply.get("reads") or [{"error": "no answer"}] * len(tried)
    probes = []
    for (name, path, layer), outcome in zip(tried, outcomes, strict=False):
        contained = "read" not in outcome
        saw = f"denied ({outcome.get('error', '?')})" if contained else \
            f"read {outcome['read']} bytes"
        probes.append(Probe(name, path, layer, saw, contained,
                            worker.isolation.get(layer, "unknown")))
    return probes


def run(settings: sandbox.Settings) -> list[Probe]:
    """A worker of its own (an empty submission) tries every target. Raises
    sandbox.WorkerFailure when no worker can start at all."""
    with tempfile.TemporaryDirectory(prefix="torch-grader-probe-") as empty:
        worker = sandbox.Worker(Path(empty), settings=settings)
        worker.is_probe = True
        try:
            worker.start()
            return attempt(worker)
        finally:
            worker.close()


_verified: dict[tuple, list[Probe]] = {}


def _key(settings: sandbox.Settings) -> tuple:
    return settings.protected_folders(), tuple(sorted(settings.disabled)), settings.cuda


def _verdict(settings: sandbox.Settings, probes: list[Probe]) -> list[Probe]:
    failed = [probe for probe in probes if not probe.contained]
    if failed and not settings.allow_unsafe:
        raise UnsafeSandbox(refusal(failed[0]))
    return probes


def verify_started(worker: sandbox.Worker) -> list[Probe]:
    """Called by every worker once started, before it runs any student code: the first one of
    a process (and sandbox configuration) is the probe worker, so the proof costs one round
    trip (~1 ms) instead of a worker of its own. Raises UnsafeSandbox, the worker killed, when
    a probe got through, unless `allow_unsafe`."""
    key = _key(worker.settings)
    probes = _verified.get(key)
    if probes is None:
        probes = _verified[key] = attempt(worker)
    try:
        return _verdict(worker.settings, probes)
    except UnsafeSandbox:
        worker.kill()
        raise


def verify(settings: sandbox.Settings) -> list[Probe]:
    """The probes for these settings (run in a worker of their own unless a worker already
    ran them in this process); raises UnsafeSandbox when one got through, unless
    `settings.allow_unsafe`."""
    key = _key(settings)
    probes = _verified.get(key)
    if probes is None:
        probes = _verified[key] = run(settings)
    return _verdict(settings, probes)


def refusal(probe: Probe) -> str:
    """One line: what got through, which layer should have stopped it, what to do."""
    return (f"refusing to grade: a probe worker could read {probe.name}: {probe.path}. The "
            f"{probe.layer} layer must stop that (here: {probe.layer_state}), or every "
            "submission could read it too. Run `grader doctor` to see each layer, or pass "
            "--allow-unsafe to grade anyway.")
