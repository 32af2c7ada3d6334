"""The pack stays in step: stubs and solutions share names, signatures and docstrings, and
every contract name has checks."""

from __future__ import annotations

import importlib.util
import inspect
from pathlib import Path

import pytest

from grader import pack

CONTRACT_NAMES = {
    "tensors": ["from_nested", "share_numpy", "like", "zero_column", "concat", "products",
                "add_in_place", "flatten_per_sample", "add_axis", "drop_unit_axes",
                "matmul_broadcast", "dot", "softmax", "select_rows", "pick_per_row",
                "count_elements", "split", "swap", "one_hot", "pick_device"],
    "autograd": ["q_gradients", "vjp", "gradient", "predict_no_grad", "detached",
                 "accumulated_grad"],
    "training": ["train_two_layer", "sgd_update", "train", "train_batches", "evaluate"],
    "networks": ["MyLinear", "NeuralNetwork", "Net", "build_sequential", "probabilities",
                 "count_parameters", "describe_parameters"],
}


def load(kind: str, part: str):
    path: Path = pack.pack_folder(kind) / f"{part}.py"
    spec = importlib.util.spec_from_file_location(f"test_{kind}_{part}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def public_definitions(module) -> list[str]:
    return [name for name, value in vars(module).items()
            if not name.startswith("_") and (inspect.isfunction(value) or inspect.isclass(value))
            and value.__module__ == module.__name__]


@pytest.mark.parametrize("part", pack.parts())
def test_stubs_and_solutions_define_the_contract_names_in_order(part: str) -> None:
    assert public_definitions(load("solutions", part)) == CONTRACT_NAMES[part]
    assert public_definitions(load("exercises", part)) == CONTRACT_NAMES[part]


@pytest.mark.parametrize("part", pack.parts())
def test_stubs_and_solutions_share_signatures_and_docstrings(part: str) -> None:
    stubs, solutions = load("exercises", part), load("solutions", part)
    assert inspect.getdoc(stubs) == inspect.getdoc(solutions)
    for name in CONTRACT_NAMES[part]:
        stub, solution = getattr(stubs, name), getattr(solutions, name)
        assert inspect.getdoc(stub) == inspect.getdoc(solution), name
        assert len(inspect.getdoc(stub).splitlines()) >= 5, f"{name}: the docstring must teach"
        if inspect.isclass(stub):
            for method in ("__init__", "forward"):
                assert inspect.signature(getattr(stub, method)) == \
                    inspect.signature(getattr(solution, method)), f"{name}.{method}"
        else:
            assert inspect.signature(stub) == inspect.signature(solution), name


def test_every_contract_name_has_checks_in_contract_order() -> None:
    expected = [f"{part}.{name}" for part in pack.parts() for name in CONTRACT_NAMES[part]]
    assert pack.exercise_ids() == expected
    assert len(expected) == 38
    for exercise in pack.exercises():
        assert exercise.properties, exercise.id
        assert exercise.max_score > 0
        for prop in exercise.properties:
            assert prop.description and prop.description != prop.name, (exercise.id, prop.name)


def test_stub_bodies_raise_not_implemented() -> None:
    stubs = load("exercises", "tensors")
    with pytest.raises(NotImplementedError):
        stubs.softmax(None, 0)
