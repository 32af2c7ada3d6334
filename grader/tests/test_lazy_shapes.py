"""The `torch.fx.experimental.symbolic_shapes` stand-in (`grader/lazy_shapes.py`): backward
passes with explicit gradients run right without sympy; a shape mismatch fails as it does
without the stand-in; anything else (the meta device, tracing) loads the real module and hands
over; the grader's judge installs it. Each test runs in a fresh interpreter: which module a
process holds is process-global."""

from __future__ import annotations

from .test_lazy_dynamo import run_python

PRELUDE = """
    import sys
    import torch
    from grader import lazy_shapes

    assert "sympy" not in sys.modules
    assert lazy_shapes.install() is True
    assert lazy_shapes.installed()

    def gradients():
        a = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64, requires_grad=True)
        b = torch.tensor([3.0, 4.0, -1.0], dtype=torch.float64, requires_grad=True)
        v = torch.tensor([1.0, 0.5, 2.0], dtype=torch.float64)
        (3 * a**3 - b**2).backward(gradient=v)
        (grad_a,) = torch.autograd.grad((a * a) * 2, a, grad_outputs=v)
        return a.grad.tolist(), b.grad.tolist(), grad_a.tolist()

    EXPECTED = ([9.0, 18.0, 4.5], [-6.0, -4.0, 4.0], [4.0, -4.0, 4.0])

    def mismatch():
        x = torch.ones(3, requires_grad=True)
        try:
            (x * 2).backward(torch.ones(4))
        except RuntimeError as error:
            return str(error)
        return "no error"
"""


def test_explicit_gradients_without_sympy() -> None:
    out = run_python(PRELUDE + """
    assert gradients() == EXPECTED
    assert "Mismatch in shape" in mismatch()
    assert "sympy" not in sys.modules and lazy_shapes.installed()
    print("ok")
    """)
    assert out.strip() == "ok"


def test_the_same_answers_and_errors_as_the_real_module() -> None:
    out = run_python(PRELUDE + """
    with_stand_in = (gradients(), mismatch())
    import torch.fx.experimental.symbolic_shapes as module
    assert hasattr(module, "guard_size_oblivious")  # any other name: the real module loads
    assert not lazy_shapes.installed() and "sympy" in sys.modules
    assert (gradients(), mismatch()) == with_stand_in
    print("ok")
    """)
    assert out.strip() == "ok"


def test_the_meta_device_loads_the_real_module_and_hands_over() -> None:
    out = run_python(PRELUDE + """
    meta = torch.cat([torch.empty(2, device="meta")] * 2).sum()
    assert meta.device.type == "meta"
    assert not lazy_shapes.installed()
    import torch.fx.experimental.symbolic_shapes as module
    assert hasattr(module, "ShapeEnv")  # the real one
    assert gradients() == EXPECTED
    print("ok")
    """)
    assert out.strip() == "ok"


def test_install_leaves_a_loaded_real_module_alone() -> None:
    out = run_python("""
    import torch
    import torch.fx.experimental.symbolic_shapes as real
    from grader import lazy_shapes
    assert lazy_shapes.install() is False and not lazy_shapes.installed()
    import sys
    assert sys.modules["torch.fx.experimental.symbolic_shapes"] is real
    print("ok")
    """)
    assert out.strip() == "ok"


def test_the_grader_installs_it_before_grading() -> None:
    out = run_python("""
    import sys
    from grader import lazy_shapes, runner
    runner.warm_up_in_background()
    runner.finish_warm_up()
    assert lazy_shapes.installed() and "sympy" not in sys.modules
    print("ok")
    """)
    assert out.strip() == "ok"
