"""How checks are declared: exercises, their properties (each worth points), and the registry.

A check module declares an exercise and decorates one function per property it checks:

    softmax = exercise("tensors.softmax", "softmax along `dim`, written by hand",
                       forbid=SOFTMAX_OPS, device_points=0.5)

    @softmax.check(points=2)
    @given(x=float_tensors(), data=st.data())
    def matches_torch_softmax(ctx, x, data):
        '''equals torch.softmax(x, dim) for every finite input, huge magnitudes included'''
        ...

The docstring is what the student reads. `given`/`example` only record the strategies; the runner
builds the hypothesis test at grading time with the grading settings (see `grader.runner`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# Which devices a property runs on: every selected real device, the CPU only, or the meta
# device (a device probe that needs no GPU).
EACH_DEVICE = "each"
CPU_ONLY = "cpu"
META = "meta"
# A device bug shows on any input: a few meta examples find it (meta ops run slowly, in Python).
META_EXAMPLES = 3


@dataclass(eq=False)  # hashed by identity: built tests are cached per property
class Property:
    """One independently scored property of an exercise."""

    name: str
    description: str
    points: float
    test: Callable[..., None]
    devices: str = EACH_DEVICE
    max_examples: int | None = None
    strategies: dict[str, Any] = field(default_factory=dict)
    examples: list[dict[str, Any]] = field(default_factory=list)
    hidden: bool = False  # graded, but left out of the student release (`grader release`)


@dataclass
class Exercise:
    """An exercise of the pack: `<part>.<name>`, its properties and the APIs it may not call."""

    id: str
    summary: str
    forbid: tuple[str, ...] = ()
    properties: list[Property] = field(default_factory=list)
    device_points: float = 0.0
    inputs_unchanged: bool = True  # the contract's default: functions do not modify inputs

    @property
    def part(self) -> str:
        return self.id.split(".", 1)[0]

    @property
    def name(self) -> str:
        return self.id.split(".", 1)[1]

    @property
    def max_score(self) -> float:
        return sum(prop.points for prop in self.properties)

    def check(self, *, points: float, devices: str = EACH_DEVICE,
              max_examples: int | None = None, hidden: bool = False
              ) -> Callable[[Callable], Callable]:
        """Register the decorated function as a property worth `points`. A `hidden` one is
        graded as usual but never shipped to students (`grader release` strips it)."""

        def register(function: Callable) -> Callable:
            description = inspect.cleandoc(function.__doc__ or function.__name__)
            prop = Property(
                name=function.__name__, description=description, points=points, test=function,
                devices=devices, max_examples=max_examples,
                strategies=getattr(function, "_grader_strategies", {}),
                examples=list(reversed(getattr(function, "_grader_examples", []))),
                hidden=hidden,
            )
            self.properties.append(prop)
            if self.device_points and len(self.properties) == 1:
                self.properties.append(Property(
                    name="keeps_the_input_device",
                    description="creates its results on the device of its inputs "
                    "(checked with tensors on the `meta` device, which needs no GPU)",
                    points=self.device_points, test=function, devices=META,
                    max_examples=META_EXAMPLES, strategies=prop.strategies,
                ))
            return function

        return register


REGISTRY: dict[str, Exercise] = {}


def exercise(exercise_id: str, summary: str, *, forbid: tuple[str, ...] = (),
             device_points: float = 0.0, inputs_unchanged: bool = True) -> Exercise:
    """Declare an exercise. With `device_points`, its first property is run once more with
    inputs on the `meta` device, worth that many points, to catch tensors created on the
    wrong device. With `inputs_unchanged` (the default), every call also checks that no
    tensor input was modified in place."""
    if exercise_id in REGISTRY:
        raise ValueError(f"exercise {exercise_id} is declared twice")
    declared = Exercise(id=exercise_id, summary=summary, forbid=forbid,
                        device_points=device_points, inputs_unchanged=inputs_unchanged)
    REGISTRY[exercise_id] = declared
    return declared


def given(**strategies: Any) -> Callable[[Callable], Callable]:
    """Record the hypothesis strategies for a property's arguments (built at grading time)."""

    def record(function: Callable) -> Callable:
        function._grader_strategies = strategies
        return function

    return record


def example(**values: Any) -> Callable[[Callable], Callable]:
    """Record an explicit example that is always tried first (e.g. huge magnitudes)."""

    def record(function: Callable) -> Callable:
        function._grader_examples = [*getattr(function, "_grader_examples", []), values]
        return function

    return record
