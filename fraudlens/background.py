"""Daemon threads that the process waits for as it exits.

Work in the background (warming a dataset's analytics table, a training job) runs in daemon
threads, so that a stuck one never keeps the process alive. But a thread still inside DuckDB
when the interpreter shuts down can abort the process (exit status 134, "terminate called"): on
exit, the interpreter first waits for these threads, at most ``EXIT_WAIT`` seconds, saying so
(a second Ctrl-C stops the wait). Work longer than that is not cancelled: it only keeps the exit
from waiting forever.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

EXIT_WAIT = 30.0
_running: set[threading.Thread] = set()
_lock = threading.Lock()


def start(target: Callable[..., object], *args, name: str) -> threading.Thread:
    """Run ``target(*args)`` in a daemon thread named ``name`` that exiting waits for."""
    thread = threading.Thread(target=_run, args=(target, args), name=name, daemon=True)
    with _lock:
        _running.add(thread)
    try:
        thread.start()
    except BaseException:
        with _lock:
            _running.discard(thread)
        raise
    return thread


def _run(target: Callable[..., object], args: tuple) -> None:
    try:
        target(*args)
    finally:
        with _lock:
            _running.discard(threading.current_thread())


def wait(timeout: float) -> bool:
    """Wait for the running threads, at most ``timeout`` seconds in all; whether all finished."""
    deadline = time.monotonic() + timeout
    with _lock:
        threads = list(_running)
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    with _lock:
        left = [t.name for t in _running if t.is_alive()]
    if left:
        logger.warning("exiting while background work is still running: %s", ", ".join(left))
    return not left


def _wait_at_exit() -> None:
    with _lock:
        running = [t.name for t in _running if t.is_alive()]
    if not running:
        return
    logger.warning("waiting up to %.0f s for background work to finish before exiting: %s", EXIT_WAIT,
                   ", ".join(running))
    try:
        wait(EXIT_WAIT)
    except KeyboardInterrupt:  # a second Ctrl-C: exit now
        pass


atexit.register(_wait_at_exit)
