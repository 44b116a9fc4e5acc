"""First start: when the data folder has no dataset, generate and ingest the demo dataset.

The work is done once per data folder. A lock file serialises browser tabs that open the app
at the same moment: the first one builds the dataset, the others wait and then find it there.
``FRAUDLENS_DEMO_ROWS`` sets the size (0 skips the demo, which leaves the app empty).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import streamlit as st

from fraudlens import datasets
from fraudlens.config import DEMO_DATASET, DEMO_ROWS, DEMO_SEED
from fraudlens.errors import FraudLensError
from fraudlens.ui.cached import cfg_for

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
ROWS_ENV = "FRAUDLENS_DEMO_ROWS"
FAILED = "bootstrap_failed"
LOCK_NAME = "bootstrap.lock"
# Share of the progress bar given to generating; ingesting takes the rest.
GENERATE_SHARE = 0.55


@dataclass(frozen=True)
class DemoResult:
    """What first start did: rows generated and loaded, and how long each step took."""

    rows: int
    loaded: int
    frauds: int
    generate_seconds: float
    ingest_seconds: float
    built: bool  # False when another tab had already built it


def demo_rows() -> int:
    """The demo size: ``$FRAUDLENS_DEMO_ROWS`` or ``DEMO_ROWS``; FraudLensError if not a count."""
    text = os.environ.get(ROWS_ENV, "").strip()
    if not text:
        return DEMO_ROWS
    try:
        rows = int(text.replace("_", ""))
    except ValueError:
        rows = -1
    if rows < 0:
        raise FraudLensError(
            f"The '{ROWS_ENV}' setting must be a whole number of rows >= 0. Got {text!r} instead."
        )
    return rows


def needs_demo(home: Path) -> bool:
    """True when the data folder holds no dataset and a demo is wanted."""
    return not datasets.list_all(home) and demo_rows() > 0


def _chunk_rows(rows: int) -> int:
    """About twenty writes, so the progress bar moves; the data do not depend on it."""
    return max(10_000, rows // 20)


@contextmanager
def _first_start_lock(home: Path, waiting: Callable[[], None]) -> Iterator[None]:
    """Hold the data folder's first-start lock; call ``waiting`` once if someone else has it."""
    locks = Path(home) / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with (locks / LOCK_NAME).open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waiting()
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_demo(
    home: Path,
    rows: int,
    *,
    seed: int = DEMO_SEED,
    progress: Progress | None = None,
    waiting: Callable[[], None] | None = None,
) -> DemoResult:
    """Generate ``rows`` synthetic transactions and ingest them as the demo dataset.

    Does nothing (``built=False``) if a dataset appeared while waiting for the lock.
    The generated file lives in ``<home>/.tmp`` and is deleted whatever happens.
    """
    from fraudlens import ingest, synth  # the generator is only needed on first start

    report = progress or (lambda _f, _m: None)
    home = Path(home)
    with _first_start_lock(home, waiting or (lambda: None)):
        if datasets.list_all(home):
            return DemoResult(0, 0, 0, 0.0, 0.0, built=False)
        tmp = home / ".tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        source = tmp / f"demo-{uuid.uuid4().hex[:8]}.parquet"
        try:
            started = time.perf_counter()
            generated = synth.generate(
                source, rows, seed=seed, chunk_rows=_chunk_rows(rows),
                progress=lambda f, m: report(GENERATE_SHARE * f, f"Generating: {m}"),
            )
            generate_seconds = time.perf_counter() - started
            started = time.perf_counter()
            result = ingest.ingest(
                [source], DEMO_DATASET, mode="create", cfg=cfg_for(home),
                progress=lambda f, m: report(GENERATE_SHARE + (1 - GENERATE_SHARE) * f, f"Loading: {m}"),
            )
            ingest_seconds = time.perf_counter() - started
        finally:
            source.unlink(missing_ok=True)
    logger.info("demo dataset: %d rows generated in %.1f s, %d loaded in %.1f s",
                generated.rows, generate_seconds, result.loaded, ingest_seconds)
    return DemoResult(generated.rows, result.loaded, generated.frauds,
                      generate_seconds, ingest_seconds, built=True)


def ensure_demo(home: Path) -> None:
    """Draw the first-start panel and build the demo when the data folder is empty.

    Reruns the app when done, so the caller only continues on a folder that has data (or
    when the demo is switched off, or failed with a message on screen).
    """
    failed = st.session_state.get(FAILED)
    if failed:  # do not retry on every click; a page reload (new session) tries again
        st.error(failed)
        return
    try:
        if not needs_demo(home):
            return
        rows = demo_rows()
    except FraudLensError as exc:
        st.session_state[FAILED] = str(exc)
        st.error(str(exc))
        return
    with st.status("Preparing the demo dataset…", expanded=True) as status:
        st.write(
            f"First start: FraudLens is creating {rows:,} synthetic bank transactions in "
            f"`{home}` so every page has something to show. This happens once."
        )
        bar = st.progress(0.0, text="Starting")
        note = st.empty()

        def report(fraction: float, message: str) -> None:
            bar.progress(min(max(float(fraction), 0.0), 1.0), text=message)

        def waiting() -> None:
            note.info("Another browser tab is preparing the demo dataset; waiting for it.")

        try:
            done = build_demo(home, rows, progress=report, waiting=waiting)
        except FraudLensError as exc:
            status.update(label="The demo dataset could not be prepared", state="error")
            st.session_state[FAILED] = (
                f"The demo dataset could not be prepared: {exc} "
                "You can still load your own file on the Data page."
            )
            st.error(st.session_state[FAILED])
            return
        status.update(label="Demo dataset ready", state="complete")
    logger.debug("first start finished: %s", done)
    st.rerun()
