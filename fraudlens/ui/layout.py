"""The frame around every page: first-start bootstrap and the shared sidebar.

``app.py`` draws it once per run and then runs the chosen page inside :func:`framed`. A page
calls :func:`ensure_frame` first: a no-op under ``app.py``, and the whole frame when Streamlit
runs the page file on its own. That happens because the page files live in ``pages/``, which
Streamlit also treats as its older file-based navigation, e.g. in AppTest after the first run,
or for the first browser request of a fresh server that asks for a page URL directly.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import streamlit as st

from fraudlens.config import configure_logging
from fraudlens.ui import auth, bootstrap, cached, state

logger = logging.getLogger(__name__)

PAGE_TITLE = "FraudLens"
_FRAMED = "frame_drawn"


def configure_page() -> None:
    configure_logging()  # a first request for a page URL runs the page file, not app.py
    st.set_page_config(page_title=PAGE_TITLE, layout="wide")


# Tables are downloaded through the pages' own buttons, which escape formula cells and write the
# audit log; the grid's built-in CSV button would do neither.
HIDE_GRID_DOWNLOAD = ('<style>[data-testid="stElementToolbar"] button[aria-label="Download as CSV"]'
                      '{display: none;}</style>')


def draw_frame() -> Path:
    """Prepare the demo on first start and draw the sidebar; returns the data folder."""
    st.html(HIDE_GRID_DOWNLOAD)
    home = state.home()
    bootstrap.ensure_demo(home)
    draw_sidebar(home)
    return home


def draw_sidebar(home: Path) -> None:
    """The role (picker or signed-in user), the active dataset selectbox (shared by every page)
    and the data folder."""
    names = cached.dataset_names(home)
    state.settle_active(names)
    cached.warm_analytics(home, state.active_dataset())
    auth.draw_identity()
    with st.sidebar:
        if names:
            st.selectbox(
                "Active dataset",
                names,
                key=state.ACTIVE_DATASET,
                help="Every page works on this dataset. Load more on the Data page.",
            )
        else:
            st.caption("No dataset yet.")
        st.caption(f"Data folder: `{home}`")


@contextmanager
def framed(title: str = "", started: float | None = None) -> Iterator[None]:
    """Mark the page run inside as already framed by ``app.py``; log how long the run took
    (since ``started``, a ``time.perf_counter()`` taken when the script began)."""
    st.session_state[_FRAMED] = True
    started = time.perf_counter() if started is None else started
    try:
        yield
    finally:
        st.session_state[_FRAMED] = False
        logger.info("page run %s: %.3f s", title, time.perf_counter() - started)


def ensure_frame(page: str | None = None) -> Path:
    """Draw the frame unless ``app.py`` already did in this run; returns the data folder.

    When a page file runs on its own (a browser's first request for a page URL, or AppTest),
    this does what ``app.py`` does: registers the role's pages with ``st.navigation`` (so the
    menu is the role's), runs the page navigation chose (this one, or the role's default page
    when the role may not open ``page``, e.g. ``"pages/explore.py"``) and stops.
    """
    if st.session_state.get(_FRAMED):
        home = state.home()
    else:
        configure_page()
        target = st.navigation(auth.navigation(auth.current_role()))
        draw_frame()
        # Run the page navigation chose (this file, or the role's default when the role may not
        # open it) as that navigation page, so its widgets keep the same ids on the next run.
        with framed(target.title):
            target.run()
        st.stop()
    if page:
        auth.require(page)
    return home
