"""What a pack's checks declare, as plain data: exercises and their scored properties.

Checks are pytest tests; their markers say what they grade (see `grader.plugin`):

    @pytest.mark.exercise("tensors.dot", "the 0-d inner product of two vectors")
    @pytest.mark.points(1)
    @given(pair=vector_pairs())
    def test_zero_dim_inner_product(ctx, pair):
        '''returns the inner product as a 0-d tensor'''

`grader.collect` turns the collected test items into the `Exercise`/`Property` objects below,
which the runner grades and the reports describe.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# Which devices a property runs on: every selected real device, the CPU only, or the meta
# device (a device probe that needs no GPU).
EACH_DEVICE = "each"
CPU_ONLY = "cpu"
META = "meta"
# A device bug shows on any input: a few meta examples find it (meta ops run slowly, in Python).
META_EXAMPLES = 3
DEVICE_PROBE_NAME = "keeps_the_input_device"
DEVICE_PROBE_DESCRIPTION = ("creates its results on the device of its inputs (checked with "
                            "tensors on the `meta` device, which needs no GPU)")


@dataclass(eq=False)
class Property:
    """One independently scored property of an exercise: one test function of the pack."""

    name: str
    description: str
    points: float
    devices: str = EACH_DEVICE
    max_examples: int | None = None
    hidden: bool = False  # graded, but left out of the student release (`grader release`)
    items: dict[str, Any] = field(default_factory=dict)  # device -> its collected pytest item
    location: str = ""  # "tests/test_tensors.py::test_name", for messages
    probe_of: str | None = None  # a device probe: the name of the property it re-runs


@dataclass
class Exercise:
    """An exercise of the pack: `<part>.<name>`, its properties and the APIs it may not call."""

    id: str
    summary: str
    forbid: tuple[str, ...] = ()
    properties: list[Property] = field(default_factory=list)
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
