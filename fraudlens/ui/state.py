"""Shared page state: the active dataset every page agrees on, and the data folder.

Pages read state with ``st.session_state.get`` so they work when opened directly and under
AppTest. The active dataset is the sidebar selectbox's own key; a page that wants to change it
after the sidebar was drawn asks for it with :func:`request_active` and reruns.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from fraudlens.config import DEMO_DATASET, data_home

ACTIVE_DATASET = "active_dataset"
_PENDING_ACTIVE = "pending_active_dataset"


def home() -> Path:
    """The data folder the app works on."""
    return data_home()


def settle_active(names: list[str]) -> str | None:
    """Apply a requested change and make sure the active dataset is one of ``names``.

    Call before the widget keyed ``active_dataset`` is drawn: Streamlit refuses writes to a
    widget's key after the widget exists in the run.
    """
    pending = st.session_state.pop(_PENDING_ACTIVE, None)
    if pending in names:
        st.session_state[ACTIVE_DATASET] = pending
    current = st.session_state.get(ACTIVE_DATASET)
    if current not in names:
        current = DEMO_DATASET if DEMO_DATASET in names else (names[0] if names else None)
    # Writing the value back every run keeps it when a run draws no selectbox (Streamlit
    # drops a widget's state otherwise) and when a page file draws its own copy of it.
    st.session_state[ACTIVE_DATASET] = current
    return current


def active_dataset() -> str | None:
    """The active dataset's name, or None when there is none."""
    return st.session_state.get(ACTIVE_DATASET)


def request_active(name: str) -> None:
    """Make ``name`` active on the next run (use before ``st.rerun()``)."""
    st.session_state[_PENDING_ACTIVE] = name


def set_active(name: str) -> None:
    """Make ``name`` active now; only valid inside a widget callback (runs before the script)."""
    st.session_state[ACTIVE_DATASET] = name
