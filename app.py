"""FraudLens: the entry point that ``streamlit run app.py`` starts.

Resolves the user's role (sign-in, or the local-mode picker), registers with ``st.navigation``
only the pages that role may open, prepares the demo dataset on first start and draws the shared
sidebar (the active dataset every page works on, and the data folder) before the chosen page.
"""

from __future__ import annotations

import time

import streamlit as st

from fraudlens.config import configure_logging
from fraudlens.ui import auth, layout

started = time.perf_counter()  # the modules above are loaded once per server, not per run
configure_logging()
st.set_page_config(page_title=layout.PAGE_TITLE, layout="wide")

role = auth.current_role()
page = st.navigation(auth.navigation(role))
layout.draw_frame()
with layout.framed(page.title, started):
    page.run()
