"""Streamlit helpers for the pages; the only part of the library that imports Streamlit.

- ``layout``: the frame around every page (first start, shared sidebar);
- ``state``: the active dataset every page agrees on;
- ``bootstrap``: first start, building the demo dataset with visible progress;
- ``cached``: bounded ``st.cache_data`` wrappers around library calls, keyed by data folder and
  dataset version;
- ``upload``: the Data page's upload, mapping and ingest steps;
- ``auth``: roles (sign-in with a role map, or the local-mode picker) and the pages each may open;
- ``dashboard``: the Overview and Explore widgets (filter form, KPI tiles, drill-down charts, the
  paged transactions table).

Pages read widgets, call these and draw; the work itself is in the plain ``fraudlens`` modules.
"""
