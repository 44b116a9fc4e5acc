"""FraudLens: the entry point that ``streamlit run app.py`` starts.

Registers the pages by group, prepares the demo dataset on first start and draws the shared
sidebar (the active dataset every page works on, and the data folder) before the chosen page.
"""

from __future__ import annotations

import streamlit as st

from fraudlens.ui import layout

st.set_page_config(page_title=layout.PAGE_TITLE, layout="wide")

PAGES = {
    "Overview": [st.Page("pages/home.py", title="Home", default=True)],
    "Data": [st.Page("pages/data.py", title="Data")],
}

page = st.navigation(PAGES)
layout.draw_frame()
with layout.framed():
    page.run()
