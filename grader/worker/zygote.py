"""The zygote: one process that imports torch and pays its first-use costs once, then forks a
worker per submission (started by `grader.sandbox.Zygote` through `server.BOOTSTRAP`).

It runs only the shipped fixtures while warming up and holds no answer: every child inherits its
memory.
"""

from __future__ import annotations

import os

from grader.worker.server import _monitor, run_isolated


def warm_up(*, worker: bool = True) -> None:
    """Pay torch's first-use costs once, in the zygote, instead of in every worker (and in
    the grader while it waits for its first worker).

    The first optimizer, DataLoader, backward pass, dispatch mode or meta-device op of a
    process imports and initialises lazily (~0.4 s in all, most of it sympy, for the meta
    device and explicit gradients; `lazy_dynamo` spares the ~1.5 s of torch._dynamo): a child
    forked after this starts warm (~10 ms). `worker=False`, the grader's own warm-up (~30 ms),
    leaves out what its checks seldom need (the meta device, sympy). Everything runs on one
    thread, so no OpenMP pool exists to break in the children (`torch.set_num_threads(1)`
    first; the children set it again). Only the shipped fixtures run here: nothing computed
    holds an answer.
    """
    import torch

    from grader.worker import codec, fixtures, lazy_dynamo

    lazy_dynamo.install()  # the first optimizer or meta op would import torch._dynamo (~1.5 s)
    torch.set_num_threads(1)
    fixtures.seed_everything(0)
    if worker:  # the meta device imports sympy and decompositions (~0.4 s) on its first op
        torch.cat([torch.empty(2, device="meta")] * 2).sum()
    x, y = torch.randn(6, 4), torch.tensor([0, 1, 2, 0, 1, 2])
    with _monitor(("aten::_softmax",), True):
        for model in (fixtures.mlp([4, 8, 3], seed=0), fixtures.spy_classifier(4, 3, seed=0)):
            optimizer = fixtures.sgd(model, lr=0.1, momentum=0.9)
            for features, labels in fixtures.loader(x, y, batch_size=4):
                optimizer.zero_grad()
                loss = fixtures.criterion("cross_entropy")(model(features), labels)
                loss.backward()
                optimizer.step()
            model.eval()
            with torch.no_grad():
                model(x).argmax(dim=1)
            model.load_state_dict(model.state_dict())
            fixtures.describe_module(model)
        leaf = torch.randn(3, 3, dtype=torch.float64, requires_grad=True)
        (total,) = torch.autograd.grad(fixtures.scalar_function("sum of cubes")(leaf), leaf)
        if worker:  # explicit grads import sympy too: a grader pays it only if a check does
            (leaf * 2).backward(torch.ones_like(leaf))
        torch.nn.functional.mse_loss(torch.softmax(x, 1), torch.log_softmax(x, 1))
        torch.einsum("ij,kj->ik", x, x) @ x
    for kind in fixtures.ASSORTED_MODELS:
        fixtures.assorted_model(kind, seed=0)
    codec.encode([total, x.numpy(), {"loss": 1.0}, (1, "a")])


def zygote_main(argv: list[str]) -> None:
    """`CONTROL_FD`: import torch and warm it up once, then fork one worker per request.

    A request on the control socket carries the policy (JSON) and three descriptors (the
    worker's request pipe, reply pipe and output file); the reply is the new worker's pid.
    Only single-threaded warm-up runs here (a multithreaded op would break OpenMP in the
    children), and nothing here may hold an answer: the children inherit this memory.
    """
    import gc
    import json
    import signal
    import socket

    import numpy  # noqa: F401 - warm imports shared by every child
    import torch  # noqa: F401

    from grader.worker import codec, fixtures, isolation  # noqa: F401

    warm_up()
    # The children inherit every object imported so far: keep the garbage collector from
    # walking (and so copying, page by page) that inherited heap in each child.
    gc.freeze()
    control = socket.socket(fileno=int(argv[0]))
    isolation.die_with_parent()
    isolation.libc().prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: adopt orphans, kill them
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1 << 16, 4)
        except OSError:
            os._exit(0)
        if not message:
            os._exit(0)
        request = json.loads(message)
        if request.get("op") == "cleanup":
            # the worker's escaped forks become ours once it is gone (it was killed already)
            isolation.wait_gone(request["group"])
            isolation.kill_adopted(request["token"], request["group"], reap=False)
            control.sendall(b"0\n")
            continue
        pid = os.fork()
        if pid == 0:
            try:
                control.close()
                fd_in, fd_out, output = fds
                os.dup2(output, 1)
                os.dup2(output, 2)
                os.close(output)
                os.setsid()
                os.environ.clear()
                os.environ.update(request["env"])
                run_isolated(fd_in, fd_out, json.dumps(request["policy"]))
            finally:
                os._exit(1)
        for fd in fds:
            os.close(fd)
        control.sendall(f"{pid}\n".encode())
