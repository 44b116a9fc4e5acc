"""First start: when the data folder has no dataset, build the demo (dataset and model).

The work is done once per data folder. A lock file serialises browser tabs that open the app
at the same moment: the first one builds the dataset, the others wait and then find it there.
``FRAUDLENS_DEMO_ROWS`` sets the size (0 skips the demo, which leaves the app empty).
"""

from __future__ import annotations

import logging
from pathlib import Path

import streamlit as st

from fraudlens.demo import build_demo, demo_rows, needs_demo
from fraudlens.errors import FraudLensError

logger = logging.getLogger(__name__)

FAILED = "bootstrap_failed"


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
            f"`{home}` and training a default model on them, so every page has something to "
            "show. This happens once."
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
