"""Grading a class on a Dask cluster (`grader grade --scheduler ADDRESS`).

    client (grader grade)            Dask scheduler            Dask worker (each)
      ships each submission  ----->  schedules tasks  ----->   task thread -> its judge
      (path or bytes) + options                                (a process started by exec:
      results in folder order <----  results, deaths  <-----   runner.grade_submission in
                                                               the usual sandboxed workers)

`shipping` packs a submission for the trip and unpacks it on the worker; `judge` is the
grading process each Dask worker keeps warm and the pipe protocol to it; `tasks` runs on the
Dask workers (the plugin that owns the judges, the task functions); `client` connects, ships,
retries once after an infrastructure failure and yields results. Only `client` and `tasks`
import Dask, and only when called: `import grader` stays fast without the extra installed.
"""

from __future__ import annotations

import click

INSTALL_HINT = "pip install 'torch-grader[dask]'"


class ClusterError(click.ClickException):
    """Grading on a cluster cannot start (no Dask, a wrong or unreachable address): one line."""
