"""What a pack's checks are written with: one import for strategies, comparisons and probes.

    from grader.testing import Context, tensors, shapes, dims_of

- **The `ctx` fixture** (`Context`): `ctx.call(*inputs)` runs the student's function in the
  isolated worker and returns a `Reply` (`.value`, `.args_after`, `.shares_with`,
  `.result_is_arg`, `.autograd_ran`); `ctx.construct(...)` instantiates the student's class
  there and `ctx.method(handle, name, ...)` calls its methods; `ctx.reference(*inputs)` runs
  the solution here, on copies. Compare with `ctx.expect_tensor(got, expected, what, rtol=,
  atol=)`, `ctx.expect_float`, `ctx.expect_type`, `ctx.expect_unchanged`,
  `ctx.expect(condition, message)`, or fail with `ctx.fail(message)` / `ctx.error(message)`:
  each message ends with the smallest failing input. Inputs left unmodified are checked on
  every `ctx.call` unless the exercise says `inputs_unchanged=False`.
- **Tensor strategies** (hypothesis): `tensors(shape=, dtype=, magnitude=, low=, high=,
  layouts=)` (all different axis sizes, transposed and strided views; values from a drawn
  kind and seed, a few draws per tensor; `elements=` draws element by element instead),
  `shapes`, `unit_axis_shapes`,
  `seeded_tensors` (big tensors built from a drawn seed), `indices`, `dims_of` (negative dims
  too), `elements_for(dtype, magnitude=)`, `FLOAT_DTYPES`.
- **What comes back from the worker** is inert data: `TensorData` (`.values`, `.shape`,
  `.dtype`, `.device_type`, `.requires_grad`, `.version`), `Handle` (an object kept in the
  worker), `DeviceData`.
- **Probes**: forbidden APIs are declared on the exercise
  (`@pytest.mark.exercise(..., forbid=("aten._softmax", ...))`: a call to one of those aten ops
  during the student's function makes the exercise `forbidden`); `@pytest.mark.device_probe(p)`
  re-runs a check with inputs on the meta device (device bugs without a GPU).
- **Training fixtures** (`fixtures`): models, optimizers, criteria and loaders built the same
  way on both sides: `ctx.fixture("mlp", sizes, seed, device)` in the worker,
  `fixtures.mlp(sizes, seed)` here (also `sgd`, `criterion`, `loader`, `spy_classifier`,
  `scalar_function`, `assorted_model`).
"""

from grader.context import Context, capital, copy_input
from grader.describe import describe, shape_text
from grader.failures import Mismatch, StudentError
from grader.session import Reply
from grader.strategies import (
    FLOAT_DTYPES,
    dims_of,
    elements_for,
    indices,
    seeded_tensors,
    shapes,
    tensors,
    unit_axis_shapes,
)
from grader.worker import fixtures
from grader.worker.fixtures import ASSORTED_MODELS, SCALAR_FUNCTIONS, scalar_function
from grader.worker.wire import DeviceData, Handle, TensorData

__all__ = [
    "ASSORTED_MODELS", "FLOAT_DTYPES", "SCALAR_FUNCTIONS", "Context", "DeviceData", "Handle",
    "Mismatch", "Reply", "StudentError", "TensorData", "capital", "copy_input", "describe",
    "dims_of", "elements_for", "fixtures", "indices", "scalar_function", "seeded_tensors",
    "shape_text", "shapes", "tensors", "unit_axis_shapes",
]
