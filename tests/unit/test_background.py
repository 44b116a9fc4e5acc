"""Background threads: exiting waits for them (a daemon thread inside DuckDB at shutdown can
abort the process), at most a bounded time."""

from __future__ import annotations

import subprocess
import sys
import threading

import pytest

from fraudlens import background

SCRIPT = """
import sys, time
from fraudlens import background
background.EXIT_WAIT = float(sys.argv[2])
background.start(lambda: (time.sleep(float(sys.argv[1])), print("finished", flush=True)), name="slow")
"""


def run(seconds: float, exit_wait: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", SCRIPT, str(seconds), str(exit_wait)], capture_output=True,
                          text=True, timeout=120)


def test_exiting_waits_for_a_running_thread():
    done = run(1.0, 60)
    assert done.returncode == 0
    assert done.stdout.strip() == "finished"


def test_exiting_stops_waiting_after_exit_wait_and_says_what_was_left():
    done = run(600, 0.2)
    assert done.stdout == ""
    assert "waiting up to 0 s for background work to finish before exiting: slow" in done.stderr
    assert "still running: slow" in done.stderr


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_failing_thread_is_not_waited_for():
    failed = threading.Event()

    def work():
        failed.set()
        raise RuntimeError("boom")

    thread = background.start(work, name="failing")
    thread.join(10)
    assert failed.is_set() and not thread.is_alive()
    assert background.wait(0)
