"""A wrong return type is an `error` in every exercise (the results contract: "raised, or wrong
type"), reported through one path with the expected and the received type."""

from __future__ import annotations

import textwrap

import pytest
import torch
from torch import nn

from grader import pack, return_types, runner
from grader.worker.wire import DeviceData, Handle, TensorData

from .conftest import copy_solutions


@pytest.fixture(autouse=True, scope="module")
def bundled_pack() -> None:
    """Grade with the bundled pack (grading with another pack makes that one the active one)."""
    pack.activate(None)


# exercise id -> (a wrong definition, the expected type, the received type)
WRONG = {
    "tensors.add_in_place": ("""
        def add_in_place(t, value):
            t.add_(value)
            return t.numpy()
    """, "torch.Tensor", "numpy.ndarray"),
    "tensors.dot": ("""
        def dot(u, v):
            return (u * v).tolist()
    """, "torch.Tensor", "list"),
    "tensors.count_elements": ("""
        def count_elements(x):
            return float(x.numel())
    """, "int", "float"),
    "tensors.pick_device": ("""
        def pick_device():
            return "cpu"
    """, "torch.device", "str"),
    "training.sgd_update": ("""
        def sgd_update(params, lr):
            with torch.no_grad():
                for p in params:
                    if p.grad is not None:
                        p -= lr * p.grad
                        p.grad.zero_()
            return params
    """, "None", "list"),
    "training.evaluate": ("""
        def evaluate(model, loader, device):
            return "all correct"
    """, "float or int or torch.Tensor", "str"),
    "networks.describe_parameters": ("""
        def describe_parameters(model):
            return {name: tuple(p.shape) for name, p in model.named_parameters()}
    """, "list or tuple", "dict"),
}


@pytest.fixture(scope="module")
def graded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = copy_solutions(tmp_path_factory.mktemp("types") / "wrong",
                            parts=("tensors", "training", "networks"))
    for exercise_id, (source, _, _) in WRONG.items():
        with open(folder / f"{exercise_id.split('.')[0]}.py", "a", encoding="utf-8") as handle:
            handle.write("\n\n" + textwrap.dedent(source))
    result = runner.grade_submission(folder, runner.Options(only=tuple(WRONG), examples=3))
    return {exercise.id: exercise for exercise in result.exercises}


@pytest.mark.parametrize("exercise_id", list(WRONG))
def test_a_wrong_return_type_is_an_error_naming_both_types(graded: dict,
                                                           exercise_id: str) -> None:
    _, expected, received = WRONG[exercise_id]
    result = graded[exercise_id]
    assert result.status == "error", result.feedback
    assert f"(wrong type: expected {expected}, got {received})" in result.feedback


def test_the_declared_type_comes_from_the_reference_annotation() -> None:
    def tensor() -> torch.Tensor: ...
    def pair() -> tuple[torch.Tensor, torch.Tensor]: ...
    def count() -> int: ...
    def nothing() -> None: ...
    def device() -> torch.device: ...
    def model() -> nn.Sequential: ...
    def either() -> torch.Tensor | float: ...
    def unannotated(): ...

    assert return_types.declared(tensor) == ((TensorData,), "a torch.Tensor")
    assert return_types.declared(pair)[0] == (tuple, list)
    assert return_types.declared(count)[0] == (int,)
    assert return_types.declared(nothing)[0] == (type(None),)
    assert return_types.declared(device)[0] == (DeviceData,)
    assert return_types.declared(model)[0] == (Handle,)
    assert return_types.declared(either) is None  # only the checks judge a union
    assert return_types.declared(unannotated) is None


def test_received_types_are_named_as_python_names() -> None:
    import numpy as np

    from grader.worker.wire import ArrayData

    assert return_types.value_type_text(ArrayData(np.zeros(2), "float64", (2,))) == "numpy.ndarray"
    assert return_types.value_type_text([1]) == "list"
    assert return_types.value_type_text(None) == "None"
    assert return_types.type_text((float, int)) == "float or int"
