"""The `torch._dynamo` stand-in (`grader/worker/lazy_dynamo.py`): an optimizer, a backward and a
meta-device op run right without loading the real module; compiling, or importing a submodule,
loads it and hands over; the grader's judge process installs the stand-in. Each test runs in a
fresh interpreter: which `torch._dynamo` a process holds is process-global."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

from .conftest import ROOT


def run_python(code: str) -> str:
    """Run `code` in a fresh interpreter with the repository importable; its stdout."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        filter(None, (str(ROOT), os.environ.get("PYTHONPATH"))))}
    result = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout


PRELUDE = """
    import sys
    import torch
    from grader.worker import lazy_dynamo

    def real_loaded():
        return "torch._dynamo.eval_frame" in sys.modules

    assert not real_loaded()
    assert lazy_dynamo.install() is True
    assert lazy_dynamo.installed()

    def sgd_steps(steps):
        # SGD with momentum (lr 0.1, momentum 0.9) on p . (3, 4): the gradient is (3, 4)
        p = torch.nn.Parameter(torch.tensor([1.0, -2.0]))
        optimizer = torch.optim.SGD([p], lr=0.1, momentum=0.9)
        for _ in range(steps):
            optimizer.zero_grad()
            (p * torch.tensor([3.0, 4.0])).sum().backward()
            optimizer.step()
        return p.detach()

    # by hand: buffers (3, 4), then (5.7, 7.6), then (8.13, 10.84)
    EXPECTED = {2: [0.13, -3.16], 3: [-0.683, -4.244]}
"""


def test_optimizer_and_meta_ops_leave_the_real_module_unloaded() -> None:
    out = run_python(PRELUDE + """
    assert torch.allclose(sgd_steps(2), torch.tensor(EXPECTED[2]))
    meta = torch.empty(2, device="meta") + 1
    assert meta.device.type == "meta" and meta.shape == (2,)
    torch._dynamo.graph_break()  # outside compilation: nothing
    assert lazy_dynamo.installed() and not real_loaded()
    print("ok")
    """)
    assert out.strip() == "ok"


def test_compile_loads_the_real_module_and_hands_over() -> None:
    out = run_python(PRELUDE + """
    assert torch.allclose(sgd_steps(2), torch.tensor(EXPECTED[2]))  # through the stand-in first
    compiled = torch.compile(lambda x: x * 2 + 1, backend="eager")
    assert torch.equal(compiled(torch.tensor([1.0, 2.0])), torch.tensor([3.0, 5.0]))
    assert not lazy_dynamo.installed() and real_loaded()
    real = sys.modules["torch._dynamo"]
    assert type(real) is type(sys) and torch._dynamo is real
    assert hasattr(real, "reset") and callable(real.disable)
    assert torch.allclose(sgd_steps(3), torch.tensor(EXPECTED[3]))  # after the hand-over
    assert (torch.empty(2, device="meta") + 1).device.type == "meta"
    assert sys.modules["torch._dynamo"] is real
    print("ok")
    """)
    assert out.strip() == "ok"


def test_importing_a_submodule_loads_the_real_package() -> None:
    out = run_python(PRELUDE + """
    import torch._dynamo.config
    assert torch._dynamo.config.__name__ == "torch._dynamo.config"
    assert not lazy_dynamo.installed() and real_loaded()
    assert sys.modules["torch._dynamo"] is torch._dynamo
    assert lazy_dynamo.install() is False  # loaded now: nothing to stand in for
    assert torch.allclose(sgd_steps(2), torch.tensor(EXPECTED[2]))
    print("ok")
    """)
    assert out.strip() == "ok"


def test_install_does_nothing_once_the_real_module_is_loaded() -> None:
    out = run_python("""
    import sys
    import torch._dynamo
    from grader.worker import lazy_dynamo
    real = sys.modules["torch._dynamo"]
    assert lazy_dynamo.install() is False
    assert not lazy_dynamo.installed() and sys.modules["torch._dynamo"] is real
    print("ok")
    """)
    assert out.strip() == "ok"


def test_the_judge_process_installs_it() -> None:
    out = run_python("""
    import sys
    import grader.context
    from grader.worker import lazy_dynamo
    assert lazy_dynamo.installed()
    assert "torch._dynamo.eval_frame" not in sys.modules
    print("ok")
    """)
    assert out.strip() == "ok"


def test_a_real_module_still_being_imported_by_another_thread_is_not_used_yet() -> None:
    """A grader's warm-up thread stepped an optimizer while its main thread was importing the
    real module: the half-made module (no `disable` yet) must not be called."""
    out = run_python(PRELUDE + """
    import types
    half_made = types.ModuleType("torch._dynamo")  # what another thread's import shows first
    sys.modules["torch._dynamo"] = half_made
    assert torch.allclose(sgd_steps(3), torch.tensor(EXPECTED[3]))
    torch._dynamo.graph_break()
    print("ok")
    """)
    assert out.strip() == "ok"
