"""A sweep's failed jobs summarised, for the submitit launchers (``hydra/launcher=
submitit_local``, ``hydra/launcher=slurm``; the classes Hydra loads are in
``hydra_plugins/colorlab_submitit.py``, the package Hydra requires launchers to live in): every
job is waited for, each failed one is one line (its number, its overrides and its own error
line) and the sweep ends with exit 2; the jobs that finished keep their runs.

The plugin returns ``[job.results()[0] for job in jobs]``: the first failed job raises a
60-line ``UncompletedJobError`` while later jobs may still run. Here the jobs it submits are
collected (its ``AutoExecutor.map_array``, for the call) and inspected together before it asks
for their results.
"""

from __future__ import annotations

import contextlib
import re
import sys
from collections.abc import Iterator, Sequence
from typing import Any

from colorlab.errors import ColorlabError

#: How colorlab's runner reports a user error (the line a failed job's stderr ends with).
_ERROR_LINE = re.compile(r"^colorlab: (?:error: )?(.*)$")


def job_error(error: BaseException) -> str:
    """The one line that says why a submitit job failed: its own ``colorlab: error: …`` line
    (from the error stream submitit quotes), else that stream's last line, else the
    exception's first line."""
    text = str(error)
    stream = text.split("Error stream produced:", 1)[-1] if "Error stream" in text else ""
    lines = [line.strip() for line in stream.splitlines() if line.strip().strip("-")]
    for line in reversed(lines):
        match = _ERROR_LINE.match(line)
        if match:
            return match.group(1)
    if lines:
        return lines[-1]
    first = next((line.strip() for line in text.splitlines() if line.strip()), "")
    return f"{type(error).__name__}: {first}" if first else type(error).__name__


def check_jobs(jobs: Sequence[Any], overrides: Sequence[Sequence[str]], first: int) -> None:
    """Wait for every job; print one line per failed one and raise a `ColorlabError` saying
    how many failed (the others' runs are kept)."""
    shared = set.intersection(*(set(job) for job in overrides)) if len(overrides) > 1 else set()
    failures = []
    for offset, (job, job_overrides) in enumerate(zip(jobs, overrides)):
        error = job.exception()  # waits for the job; None when it succeeded
        if error is not None:
            own = " ".join(o for o in job_overrides if o not in shared)  # what sets it apart
            failures.append((first + offset, own or "no overrides", job_error(error)))
    for number, job_overrides, reason in failures:
        print(f"colorlab: job #{number} ({job_overrides}) failed: {reason}", file=sys.stderr)
    if failures:
        raise ColorlabError(
            f"{len(failures)} of {len(jobs)} jobs failed (one line each above); the others "
            "finished and kept their runs"
        )


class SummarisedFailures:
    """Mixin for a submitit launcher: `launch` checks all its jobs before their results."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[Any]:
        with _checked_jobs(job_overrides, initial_job_idx):
            # a mixin: the submitit launcher it is mixed into has the launch mypy cannot see
            return super().launch(job_overrides, initial_job_idx)  # type: ignore[misc]


@contextlib.contextmanager
def _checked_jobs(overrides: Sequence[Sequence[str]], first: int) -> Iterator[None]:
    import submitit

    map_array = submitit.AutoExecutor.map_array

    def checked_map_array(executor: Any, function: Any, *iterables: Any) -> list[Any]:
        jobs = map_array(executor, function, *iterables)
        check_jobs(jobs, overrides, first)
        return jobs

    # Hydra's submitit plugin calls map_array on the executor it makes: wrapped for the block
    setattr(submitit.AutoExecutor, "map_array", checked_map_array)  # noqa: B010
    try:
        yield
    finally:
        setattr(submitit.AutoExecutor, "map_array", map_array)  # noqa: B010
