"""What runs on the Dask workers: the plugin that keeps their judges, and the task functions.

`JudgePlugin` starts one judge per worker thread when it is registered on a worker (and on every
worker that joins later), lends them to tasks one at a time, and stops them with the worker. A
task runs on a worker thread and only talks to a judge over its pipes: nothing here imports
torch or the grader's checks, so a Dask worker stays a light process.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from distributed import WorkerPlugin, get_worker

from grader.cluster.judge import Judge, JudgeFailed

PLUGIN_NAME = "torch-grader-judges"


class JudgePlugin(WorkerPlugin):
    """Each Dask worker's warm judges: one per thread, started when the worker gets the
    plugin, replaced when one dies or is stopped by a cancelled task."""

    idempotent = True  # registering again (a second `grader grade`) keeps the warm judges
    name = PLUGIN_NAME

    def setup(self, worker: object) -> None:
        self.lock = threading.Lock()
        self.idle: queue.LifoQueue[Judge] = queue.LifoQueue()
        self.judges: list[Judge] = []
        self.closed = False
        for _ in range(max(1, getattr(getattr(worker, "state", None), "nthreads", 1))):
            self.idle.put(self._start())

    def _start(self) -> Judge:
        judge = Judge()
        judge.start()
        with self.lock:
            self.judges.append(judge)
        return judge

    def teardown(self, worker: object) -> None:
        with self.lock:
            self.closed = True
            judges, self.judges = self.judges, []
        for judge in judges:
            judge.stop()

    @contextmanager
    def judge(self) -> Iterator[Judge]:
        """A warm judge for one request; a judge that ended is replaced at once, so the next
        task finds a warm one."""
        try:
            judge = self.idle.get_nowait()
        except queue.Empty:
            judge = self._start()
        try:
            yield judge
        finally:
            if not judge.alive:
                judge.stop()
                with self.lock:
                    if judge in self.judges:
                        self.judges.remove(judge)
                judge = None if self.closed else self._start()
            if judge is not None:
                self.idle.put(judge)


def _plugin() -> JudgePlugin:
    worker = get_worker()
    plugin = worker.plugins.get(PLUGIN_NAME)
    if plugin is None:
        raise JudgeFailed("this Dask worker has no torch-grader plugin (it was not registered)")
    return plugin


def _cancelled_check():  # noqa: ANN202
    """A function telling whether the task running on this thread was cancelled (its client
    went away or gave it up): the worker then forgets the key or marks it cancelled."""
    from distributed.worker import thread_state

    worker = get_worker()
    key = getattr(thread_state, "key", None)

    def cancelled() -> bool:
        if key is None:
            return False
        task = worker.state.tasks.get(key)
        return task is None or task.state in ("cancelled", "released", "forgotten")

    return cancelled


def grade(shipment: dict, options: bytes, pack: dict | None = None,
          within: float | None = None) -> dict:
    """The task: grade one shipped submission with these (pickled) options and the shipped
    pack on this worker's judge. Returns {"result": SubmissionResult.to_dict()},
    {"unseen": why}, {"needs_pack": True} (the judge has not received the pack's files yet) or
    {"unsafe": why, "worker": address} (a start-up probe got through the sandbox here);
    raises `JudgeFailed` when the judge died, did not answer `within` seconds (hung: it is
    stopped) or the grader failed."""
    request = {"op": "grade", "shipment": shipment, "options": options, "pack": pack}
    with _plugin().judge() as judge:
        reply = judge.ask(request, cancelled=_cancelled_check(), within=within)
        if reply.get("other_pack"):  # it graded with another pack: a fresh judge for this one
            judge.stop()
            judge.start()
            reply = judge.ask(request, cancelled=_cancelled_check(), within=within)
    if "error" in reply:
        raise JudgeFailed(f"the grader failed: {reply['error']}\n{reply.get('traceback', '')}")
    if "unsafe" in reply:
        reply["worker"] = get_worker().address
    return reply


def doctor() -> dict:
    """The task behind `grader doctor --scheduler`: this worker's sandbox layers, as its judge
    sees them."""
    with _plugin().judge() as judge:
        reply = judge.ask({"op": "doctor"}, cancelled=_cancelled_check())
    if "error" in reply:
        raise JudgeFailed(reply["error"])
    return {"worker": get_worker().address, **reply["doctor"]}


def sees(listings: dict[str, list[str]]) -> bool:
    """Run on each worker before a run: does it see every submission under the same folder as
    the client (then submissions travel by path)?"""
    import os

    for folder, names in listings.items():
        try:
            here = set(os.listdir(folder))
        except OSError:
            return False
        if not set(names) <= here:
            return False
    return True
