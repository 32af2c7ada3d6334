"""Hypothesis's per-example seeding of the global PRNGs, at a fraction of its cost.

Before each example, hypothesis seeds every PRNG it manages (`random`, NumPy's global state,
its own) and afterwards restores their earlier states: its `deterministic_PRNG`. Saving and
restoring NumPy's state costs ~170 us and `random`'s ~40 us: ~0.25 ms an example, an eighth of
what a whole pack's checks cost.

While a check runs under the grader (`restored_after`), each example only seeds them (~20 us);
their earlier states are saved once before the check and restored once after it. Every
example starts from the same seeded states as under hypothesis's own handling, so the drawn
examples and the verdicts are the same. Inside a check, torch's CPU generator is seeded
before each example too (hypothesis leaves it alone): nothing a check draws from it depends on
what the process graded before. Elsewhere (any other hypothesis test in the same pytest run)
hypothesis's own handling runs unchanged.

A private hook of hypothesis: without it (another hypothesis version), checks run as before.
"""

from __future__ import annotations

import contextlib
import random
import sys
import threading
from collections.abc import Iterator
from typing import Any

_inside = threading.local()  # .depth: checks running under `restored_after` on this thread


def managed() -> list[Any]:
    """The PRNGs hypothesis seeds before each example (NumPy's registered once imported)."""
    from hypothesis.internal import entropy

    entropy.get_seeder_and_restorer(0)  # registers NumPy's global state when it is loaded
    found = []
    for ref in list(entropy.RANDOMS_TO_MANAGE.data.values()):
        prng = ref()
        if prng is not None:
            found.append(prng)
    return found


class _TorchRandom:
    """torch's default CPU generator, seen as a `random.Random`-like PRNG. Hypothesis leaves it
    alone; inside a check it is seeded before each example too, so what a check's own code
    draws from it (a reference that calls `torch.rand`) never depends on what the grading
    process ran before, such as which parts a judge graded first."""

    def __init__(self) -> None:
        import torch

        self.generator = torch.default_generator

    def getstate(self) -> Any:
        return self.generator.get_state()

    def setstate(self, state: Any) -> None:
        self.generator.set_state(state)

    def seed(self, seed: int) -> None:
        self.generator.manual_seed(seed)


def seeded_per_example() -> list[Any]:
    """What each example inside a check starts seeded: hypothesis's PRNGs, and torch's CPU
    generator once torch is loaded."""
    prngs = managed()
    if "torch" in sys.modules:
        prngs.append(_TorchRandom())
    return prngs


@contextlib.contextmanager
def restored_after() -> Iterator[None]:
    """Run one check: its examples only seed the PRNGs; their states are restored here."""
    prngs = _seeded_prngs()
    states = [prng.getstate() for prng in prngs]
    _inside.depth = getattr(_inside, "depth", 0) + 1
    try:
        yield
    finally:
        _inside.depth -= 1
        for prng, state in zip(prngs, states, strict=True):
            prng.setstate(state)


def _install() -> None:
    try:
        import hypothesis.core as core
        from hypothesis.internal import entropy
    except ImportError:  # pragma: no cover - hypothesis always has these today
        return
    original = getattr(core, "deterministic_PRNG", None)
    if original is None or getattr(original, "_grader_seeding", False):
        return
    seeded = random.Random(0).getstate()
    # (so that hypothesis's random-module watch, outside checks, never mistakes this state)
    entropy._known_random_state_hashes.add(hash(seeded))

    @contextlib.contextmanager
    def deterministic_prng(seed: int = 0) -> Iterator[None]:
        if seed != 0 or not getattr(_inside, "depth", 0):
            with original(seed):
                yield
            return
        if core.threadlocal._hypothesis_global_random is None:
            # hypothesis's own PRNG for this thread, registered as `register_random` would,
            # without its check that the object stays referenced: a `gc.collect()` over
            # torch's whole heap (~0.15 s, in every process that grades)
            core.threadlocal._hypothesis_global_random = random.Random()
            entropy.RANDOMS_TO_MANAGE[next(entropy._RKEY)] = \
                core.threadlocal._hypothesis_global_random
        for prng in _seeded_prngs():
            if type(prng) is random.Random:
                prng.setstate(seeded)
            else:
                prng.seed(0)
        yield

    deterministic_prng._grader_seeding = True  # type: ignore[attr-defined]
    core.deterministic_PRNG = deterministic_prng
    _skip_random_watch()


def _skip_random_watch() -> None:
    """Hypothesis compares `random`'s whole state before and after drawing each argument, to
    warn about strategies that use the `random` module (~40 us an argument). Inside a check
    every example starts from the seeded state anyway: no warning is needed there."""
    try:
        from hypothesis import control
        from hypothesis.strategies._internal import core as strategies_core
    except ImportError:  # pragma: no cover
        return
    original = getattr(control, "deprecate_random_in_strategy", None)
    if original is None:
        return

    @contextlib.contextmanager
    def watch(fmt: str, *args: Any) -> Iterator[None]:
        if getattr(_inside, "depth", 0):
            yield
            return
        with original(fmt, *args):
            yield

    control.deprecate_random_in_strategy = watch
    if getattr(strategies_core, "deprecate_random_in_strategy", None) is original:
        strategies_core.deprecate_random_in_strategy = watch


_cache: dict[tuple, list[Any]] = {}


def _seeded_prngs() -> list[Any]:
    """`seeded_per_example()`, recomputed only when the PRNGs it holds change."""
    from hypothesis.internal import entropy

    key = (*entropy.RANDOMS_TO_MANAGE.data, "torch" in sys.modules)
    if key not in _cache:
        _cache.clear()
        _cache[key] = seeded_per_example()
    return _cache[key]


_install()
