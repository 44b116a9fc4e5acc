"""Background jobs: progress while running, results and failures recorded, one at a time, bounded."""

from __future__ import annotations

import threading

import pytest

from fraudlens.errors import FraudLensError
from fraudlens.jobs import DONE, FAILED, Jobs, JobsBusyError


def gated(result="ok", error: Exception | None = None):
    """A job that reports 50% and then waits for ``release`` before finishing."""
    release, halfway = threading.Event(), threading.Event()

    def work(progress):
        progress(0.5, "half way")
        halfway.set()
        assert release.wait(10)
        if error is not None:
            raise error
        return result

    return work, release, halfway


def test_progress_is_visible_while_running_and_the_result_after():
    jobs = Jobs()
    work, release, halfway = gated(result={"version": 3})
    job = jobs.submit("Training m", work, owner="ana")
    assert halfway.wait(10)
    status = jobs.status(job)
    assert (status.active, status.fraction, status.message, status.owner) == (True, 0.5, "half way", "ana")
    assert [j.id for j in jobs.running()] == [job]
    release.set()
    done = jobs.wait(job, 10)
    assert (done.state, done.fraction, done.result, done.error) == (DONE, 1.0, {"version": 3}, None)
    assert done.finished is not None and done.seconds >= 0 and jobs.running() == []


def test_a_library_error_fails_the_job_with_its_message():
    jobs = Jobs()
    work, release, _ = gated(error=FraudLensError("The dataset spans 3 days: too short."))
    job = jobs.submit("Training m", work)
    release.set()
    status = jobs.wait(job, 10)
    assert (status.state, status.error) == (FAILED, "The dataset spans 3 days: too short.")


def test_an_unexpected_error_is_recorded_as_a_bug_not_lost():
    jobs = Jobs()
    work, release, _ = gated(error=KeyError("feature_spec"))
    job = jobs.submit("Training m", work)
    release.set()
    status = jobs.wait(job, 10)
    assert status.state == FAILED and "KeyError" in status.error and "bug" in status.error


def test_only_max_running_jobs_at_once_and_the_refusal_says_which():
    jobs = Jobs(max_running=1)
    work, release, halfway = gated()
    jobs.submit("Training big", work, owner="luis")
    assert halfway.wait(10)
    with pytest.raises(JobsBusyError, match="'Training big' is already running for luis"):
        jobs.submit("Training other", lambda p: None)
    release.set()
    for job in list(jobs._jobs):
        jobs.wait(job, 10)
    second = jobs.submit("Training other", lambda p: 7)
    assert jobs.wait(second, 10).result == 7


def test_finished_jobs_are_forgotten_oldest_first():
    jobs = Jobs(max_kept=2)
    ids = []
    for n in range(4):
        ids.append(jobs.submit(f"job {n}", lambda p, n=n: n))
        jobs.wait(ids[-1], 10)
    assert jobs.status(ids[0]) is None and jobs.status(ids[1]) is None
    assert jobs.status(ids[3]).result == 3 and jobs.status("nope") is None and jobs.status(None) is None


def test_progress_is_clamped():
    jobs = Jobs()
    start, seen = threading.Event(), []

    def work(progress):
        assert start.wait(10)
        progress(-1, "a")
        seen.append(jobs.status(job).fraction)
        progress(7, "b")
        seen.append(jobs.status(job).fraction)

    job = jobs.submit("j", work)
    start.set()
    assert jobs.wait(job, 10).state == DONE
    assert seen == [0.0, 1.0]


def test_bounds_must_be_positive():
    with pytest.raises(ValueError, match="max_running"):
        Jobs(max_running=0)
