"""The client side of grading on a Dask cluster: connect, ship submissions, retry at most once.

`Cluster(address)` connects to a running scheduler (`tcp://host:8786`) or starts a
`LocalCluster` of N single-threaded worker processes (`local:N`), and registers the plugin that
keeps a warm judge per worker thread. `Cluster.grade` yields one `SubmissionResult` per folder,
as they finish anywhere in the cluster, identical to local grading's (results are the judges'
own `runner.grade_submission` results, carried as plain data; the output writers order them).

Faults: a submission whose grading was cut short by the infrastructure (its Dask worker died,
counted as the scheduler counts them; or its judge died) is graded again, once. After a second
failure it gets an explicit `error` result saying the grading infrastructure failed: never a
silent 0, never a lost submission.
"""

from __future__ import annotations

import logging
import pickle
import time
import uuid
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from grader.cluster import INSTALL_HINT, ClusterError, shipping
from grader.given_up import ATTEMPTS, hung_after, infrastructure_error, result_shape
from grader.results import SubmissionResult

logger = logging.getLogger(__name__)
CONNECT_SECONDS = 20
LOCAL_SETTINGS = {
    # the scheduler's own count of worker deaths per task: one retry, then KilledWorker
    "distributed.scheduler.allowed-failures": ATTEMPTS - 1,
    # one task per worker thread at a time, so a death concerns only the task it ran
    "distributed.scheduler.worker-saturation": 1.0,
}


def _distributed() -> Any:
    try:
        import distributed
    except ImportError:
        raise ClusterError(f"--scheduler needs Dask's distributed: {INSTALL_HINT}") from None
    return distributed


def parse_address(address: str) -> int | None:
    """The worker count of `local:N`, or None for a scheduler's address."""
    if not address.startswith("local:"):
        if not address.strip():
            raise ClusterError("--scheduler: give tcp://HOST:PORT or local:N")
        return None
    count = address.removeprefix("local:")
    if not count.isdigit() or int(count) < 1:
        raise ClusterError(f"--scheduler {address}: N in local:N is a number of worker "
                           "processes, 1 or more")
    return int(count)


class Cluster:
    """A connection to a Dask cluster whose workers grade (a context manager)."""

    def __init__(self, address: str) -> None:
        self.address = address
        self.local_workers = parse_address(address)
        self.distributed = _distributed()
        self.client: Any = None
        self.local_cluster: Any = None
        self.outstanding: set = set()  # futures of the run in progress
        self.failed: list[str] = []  # ids of the submissions given an infrastructure error

    # -- connecting ----------------------------------------------------------------------------

    def __enter__(self) -> Cluster:
        import dask

        distributed = self.distributed
        try:
            if self.local_workers is not None:
                with dask.config.set(LOCAL_SETTINGS):
                    self.local_cluster = distributed.LocalCluster(
                        n_workers=self.local_workers, threads_per_worker=1, processes=True,
                        host="127.0.0.1", dashboard_address=None, silence_logs=logging.ERROR)
                self.client = distributed.Client(self.local_cluster)
            else:
                self.client = distributed.Client(self.address, timeout=CONNECT_SECONDS)
        except (OSError, TimeoutError, ValueError) as error:
            self.__exit__(None, None, None)
            raise ClusterError(f"--scheduler {self.address}: cannot connect ({error})") from None
        from grader.cluster.tasks import JudgePlugin

        self.client.register_plugin(JudgePlugin())
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Cancel what is still running (its judges stop their grading) and disconnect; a
        `local:N` cluster is shut down with its workers and their judges."""
        if self.client is not None:
            try:
                if self.outstanding:
                    self.client.cancel(list(self.outstanding))
                self.client.close(timeout=CONNECT_SECONDS)
            except Exception:  # noqa: BLE001 - closing after Ctrl-C or a lost scheduler
                pass
            self.client = None
        if self.local_cluster is not None:
            try:
                self.local_cluster.close(timeout=CONNECT_SECONDS)
            except Exception:  # noqa: BLE001
                pass
            self.local_cluster = None

    def deaths(self, keys: list[str]) -> dict[str, int]:
        """Per task key, how many workers died while it was assigned to them: the scheduler's
        own count (`allowed-failures` applies to it). Empty if the scheduler will not say."""

        def suspicious(dask_scheduler: Any, keys: list[str] = keys) -> dict[str, int]:
            tasks = dask_scheduler.tasks
            return {key: tasks[key].suspicious for key in keys if key in tasks}

        if not keys:
            return {}
        try:  # a function defined here travels by value: the scheduler needs no grader
            return self.client.run_on_scheduler(suspicious)
        except Exception:  # noqa: BLE001 - a scheduler refusing pickled functions
            return {}

    def threads(self) -> int:
        """Worker threads in the cluster now."""
        return sum(self.client.nthreads().values())

    def describe(self) -> str:
        workers = self.client.nthreads()
        where = "a local cluster" if self.local_workers is not None else self.address
        return (f"{where}: {len(workers)} workers, {sum(workers.values())} threads")

    # -- grading -------------------------------------------------------------------------------

    def ships_by_path(self, folders: list[Path]) -> bool:
        """True when every worker sees the submissions (and the pack) at the same paths (a
        shared file system, or this machine); otherwise they travel as bytes. Each task still
        checks that it sees the client's files."""
        if self.local_workers is not None:
            return True
        listings: dict[str, list[str]] = {}
        for folder in folders:
            folder = folder.resolve()
            listings.setdefault(str(folder.parent), []).append(folder.name)
        from grader.cluster.tasks import sees

        try:
            answers = self.client.run(sees, listings)
        except Exception:  # noqa: BLE001 - a worker that cannot answer cannot see either
            return False
        return bool(answers) and all(answers.values())

    def grade(self, folders: list[Path], options: object, *, ship: str = "auto"
              ) -> Iterator[SubmissionResult]:
        """Grade every folder on the cluster; yields results as they finish.

        `ship` is "path", "bytes" or "auto" (`ships_by_path`). `options` is pickled as is for
        the judges (`runner.Options`). Submissions the infrastructure failed twice get
        `infrastructure_error` results (their ids in `self.failed`)."""
        from grader.cluster.tasks import grade

        pack_root = getattr(options, "pack", None)
        shipped = [*folders, *([Path(pack_root)] if pack_root is not None else [])]
        by_path = self.ships_by_path(shipped) if ship == "auto" else ship == "path"
        pack = self._ship_pack(pack_root, by_path=by_path)
        with_pack: set[int] = set()  # submissions to send with the pack's files
        run = uuid.uuid4().hex[:8]
        pickled = pickle.dumps(options)
        failures = [0] * len(folders)
        reasons = [""] * len(folders)
        attempts = [0] * len(folders)
        waiting = deque(range(len(folders)))
        running: dict[Any, int] = {}
        given_up: list[int] = []  # failed twice: an error result once a result shows its shape
        template: SubmissionResult | None = None
        capacity, checked, polled = 2, 0.0, time.monotonic()
        try:
            while waiting or running:
                if time.monotonic() - checked > 2:
                    capacity, checked = max(2, 2 * self.threads()), time.monotonic()
                while waiting and len(running) < capacity:
                    index = waiting.popleft()
                    attempts[index] += 1
                    # The pack's files go only to a judge that asks for them (once each).
                    carried = pack if index in with_pack or pack is None else \
                        shipping.reference(pack)
                    future = self.client.submit(
                        grade, shipping.ship(folders[index], by_path=by_path), pickled, carried,
                        hung_after(options), key=f"grade-{run}-{index}-{attempts[index]}",
                        pure=False)
                    running[future] = index
                    self.outstanding.add(future)
                for future in self._wait(list(running)):
                    index = running.pop(future)
                    self.outstanding.discard(future)
                    outcome = self._outcome(future)
                    future.release()  # else a worker holding the reply, once dead, reruns it
                    if isinstance(outcome, SubmissionResult):
                        template = template or outcome
                        yield outcome
                        continue
                    kind, reason, count = outcome
                    if kind == "needs pack":
                        with_pack.add(index)
                        waiting.appendleft(index)
                        continue
                    if kind == "unseen":  # not a failure: send the files themselves
                        if by_path:
                            by_path = False
                            pack = self._ship_pack(pack_root, by_path=False)
                        waiting.appendleft(index)
                        continue
                    failures[index] += count
                    reasons[index] = reason.splitlines()[0] if reason else "unknown"
                    logger.warning("%s: grading attempt %d failed: %s", folders[index].name,
                                   attempts[index], reason)
                    (waiting.appendleft if failures[index] < ATTEMPTS else given_up.append)(index)
                # A scheduler allowing more worker deaths per task than we do would start a
                # third attempt: give up on it as soon as the second death is known.
                if running and time.monotonic() - polled > 2:
                    deaths, polled = self.deaths([f.key for f in running]), time.monotonic()
                    over = [future for future, index in running.items()
                            if failures[index] + deaths.get(future.key, 0) >= ATTEMPTS]
                else:
                    over = []
                for future in over:
                    index = running.pop(future)
                    self.outstanding.discard(future)
                    future.cancel()
                    reasons[index] = "the Dask workers grading it died"
                    given_up.append(index)
                if template is not None or not (waiting or running):
                    template = template or (result_shape(options) if given_up else None)
                    for index in given_up:
                        self.failed.append(folders[index].name.removesuffix(".zip"))
                        yield infrastructure_error(template, folders[index], reasons[index])
                    given_up.clear()
        finally:
            if running:
                self.client.cancel(list(running))
            self.outstanding.clear()

    @staticmethod
    def _ship_pack(root: Path | None, *, by_path: bool) -> dict | None:
        return None if root is None else shipping.ship_pack(root, by_path=by_path)

    def _wait(self, futures: list) -> list:
        """The futures that finished, waiting at most a second for the first one."""
        if not futures:
            return []
        try:
            done, _ = self.distributed.wait(futures, timeout=1,
                                            return_when="FIRST_COMPLETED")
        except TimeoutError:
            return []
        except self.distributed.client.FuturesCancelledError:  # cancelled elsewhere
            return [future for future in futures if future.done()]
        return list(done)

    def _outcome(self, future: Any) -> SubmissionResult | tuple[str, str, int]:
        """A finished task's result, or (kind, why, failures it counts for)."""
        if future.status == "finished":
            reply = future.result()
            if "unseen" in reply:
                return "unseen", reply["unseen"], 0
            if "needs_pack" in reply:
                return "needs pack", "", 0
            if "unsafe" in reply:  # as `grader grade` here: refuse, with the probe's line
                raise ClusterError(f"on the Dask worker {reply['worker']}: {reply['unsafe']}")
            return SubmissionResult.from_dict(reply["result"])
        deaths = self.deaths([future.key]).get(future.key, 0)
        if future.status == "cancelled":
            return "failed", "its task was cancelled by the scheduler", deaths + 1
        error = future.exception()
        if isinstance(error, self.distributed.KilledWorker):
            return ("failed", f"the Dask workers grading it died ({error.last_worker.address}"
                    " was the last)", max(deaths, error.allowed_failures + 1))
        return "failed", f"{type(error).__name__}: {error}".strip(), deaths + 1

    # -- doctor --------------------------------------------------------------------------------

    def doctor(self) -> list[dict]:
        """Each worker's sandbox layers (as `grader doctor` shows them), as its judge sees
        them; sorted by worker address."""
        from grader.cluster.tasks import doctor

        workers = sorted(self.client.nthreads())
        futures = [self.client.submit(doctor, key=f"doctor-{uuid.uuid4().hex[:8]}-{index}",
                                      workers=[address], pure=False)
                   for index, address in enumerate(workers)]
        self.outstanding.update(futures)
        reports = []
        for address, future in zip(workers, futures, strict=True):
            try:
                reports.append(future.result())
            except Exception as error:  # noqa: BLE001 - one line per worker that failed
                reports.append({"worker": address, "failure": f"{type(error).__name__}: "
                                f"{error}"})
        self.outstanding.difference_update(futures)
        return reports
