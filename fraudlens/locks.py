"""Exclusive locks on files under ``<home>/.locks/``, held across threads and processes."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def held(home: Path, *names: str) -> Iterator[None]:
    """Hold ``<home>/.locks/<names...>.lock`` for the block; others wait for it.

    Each call opens the file itself, so two threads of one process exclude each other too.
    """
    path = Path(home, ".locks", *names[:-1], f"{names[-1]}.lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
