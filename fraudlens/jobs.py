"""Long library calls (training a model) run in a background thread, with progress to poll.

A :class:`Jobs` registry is shared by every session of the app (the UI keeps one per process
with ``st.cache_resource``). It is bounded twice: at most ``max_running`` jobs run at once (the
others are refused with a message saying what is running, since a 2-core machine gains nothing
from two trainings at a time) and at most ``max_kept`` finished jobs are remembered. Each job
reports ``(fraction, message)`` through the ``progress`` callback the library functions take;
readers get immutable :class:`JobStatus` snapshots and never touch the thread.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from fraudlens import background
from fraudlens.errors import FraudLensError

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
RUNNING, DONE, FAILED = "running", "done", "failed"


class JobsBusyError(FraudLensError):
    """Too many jobs are running; the message says which, and to try again when it finishes."""


@dataclass(frozen=True)
class JobStatus:
    """A snapshot of one job. ``result`` is the function's return value once ``state`` is done."""

    id: str
    label: str
    owner: str
    state: str
    fraction: float
    message: str
    started: float  # time.time()
    finished: float | None = None
    result: Any = None
    error: str | None = None

    @property
    def seconds(self) -> float:
        return (self.finished or time.time()) - self.started

    @property
    def active(self) -> bool:
        return self.state == RUNNING


class Jobs:
    """Background jobs with progress; thread-safe.

    Parameters
    ----------
    max_running : int >= 1
        Jobs allowed to run at the same time.
    max_kept : int >= 1
        Finished jobs remembered (oldest forgotten first); running jobs are always kept.
    """

    def __init__(self, max_running: int = 1, max_kept: int = 20):
        if max_running < 1 or max_kept < 1:
            raise ValueError(f"max_running and max_kept must be >= 1. Got {max_running}, {max_kept} instead.")
        self.max_running = max_running
        self.max_kept = max_kept
        self._lock = threading.Lock()
        self._jobs: OrderedDict[str, JobStatus] = OrderedDict()
        self._threads: dict[str, threading.Thread] = {}
        self._ids = itertools.count(1)

    def submit(self, label: str, work: Callable[[Progress], Any], owner: str = "") -> str:
        """Start ``work(progress)`` in a daemon thread; returns the job id.

        Raises JobsBusyError when ``max_running`` jobs are already running.
        """
        with self._lock:
            running = [j for j in self._jobs.values() if j.active]
            if len(running) >= self.max_running:
                first = running[0]
                who = f" for {first.owner}" if first.owner else ""
                raise JobsBusyError(
                    f"'{first.label}' is already running{who} ({first.fraction:.0%}, "
                    f"{first.seconds:.0f} s so far). Start yours when it has finished."
                )
            job_id = f"job-{next(self._ids)}"
            self._jobs[job_id] = JobStatus(job_id, label, owner, RUNNING, 0.0, "Queued", time.time())
            self._forget_old()
            self._threads[job_id] = background.start(self._run, job_id, work, name=f"fraudlens-{job_id}")
        logger.info("job %s started: %s", job_id, label)
        return job_id

    def _run(self, job_id: str, work: Callable[[Progress], Any]) -> None:
        def progress(fraction: float, message: str) -> None:
            self._update(job_id, fraction=min(max(float(fraction), 0.0), 1.0), message=str(message))

        try:
            result = work(progress)
        except FraudLensError as exc:
            self._update(job_id, state=FAILED, error=str(exc), finished=time.time())
            logger.info("job %s failed: %s", job_id, exc)
        except Exception as exc:  # noqa: BLE001 - the thread's boundary: record it, or the job hangs
            logger.exception("job %s crashed", job_id)
            self._update(job_id, state=FAILED, finished=time.time(),
                         error=f"Unexpected error ({type(exc).__name__}: {exc}). This is a bug; "
                               "the server log has the details.")
        else:
            self._update(job_id, state=DONE, fraction=1.0, message="Done", result=result,
                         finished=time.time())
            logger.info("job %s done", job_id)
        finally:
            with self._lock:
                self._threads.pop(job_id, None)

    def _update(self, job_id: str, **changes: Any) -> None:
        with self._lock:
            current = self._jobs.get(job_id)
            if current is not None:
                self._jobs[job_id] = replace(current, **changes)

    def _forget_old(self) -> None:
        finished = [k for k, j in self._jobs.items() if not j.active]
        for key in finished[: max(0, len(self._jobs) - self.max_kept)]:
            del self._jobs[key]

    def status(self, job_id: str | None) -> JobStatus | None:
        """The latest snapshot of ``job_id``, or None if unknown (or forgotten)."""
        if job_id is None:
            return None
        with self._lock:
            return self._jobs.get(job_id)

    def running(self) -> list[JobStatus]:
        with self._lock:
            return [j for j in self._jobs.values() if j.active]

    def wait(self, job_id: str, timeout: float | None = None) -> JobStatus | None:
        """Block until ``job_id`` finishes (for scripts and tests); returns its last status."""
        with self._lock:
            thread = self._threads.get(job_id)
        if thread is not None:
            thread.join(timeout)
        return self.status(job_id)
