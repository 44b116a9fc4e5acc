"""Audit: the append-only log of who did what and when, its hash-chain check, and its export.

Admins only. The chain is checked on opening; the log is read one page of 50 at a time (the
pager reruns alone), and the whole log is built only when a download is asked for.
"""

from __future__ import annotations

from datetime import date

import streamlit as st

from fraudlens.errors import FraudLensError
from fraudlens.ui import governance_view as view, layout

PAGE_NO = "audit_page"
ACTION = "audit_action"


def move(step: int) -> None:
    st.session_state[PAGE_NO] = max(int(st.session_state.get(PAGE_NO, 0)) + step, 0)


def record_export(home, fmt: str, file_name: str) -> None:
    """Download button callback: the export itself goes into the log."""
    view.record(home, {"what": "audit_log", "format": fmt, "file": file_name})


def draw_status(home) -> None:
    check = view.verification(home)
    if check.ok:
        st.success(view.verification_text(check))
        if check.entries:
            st.caption("Keep the head hash somewhere outside FraudLens (it is also in every export and evidence "
                       "pack): a later log that does not run through it was rewritten.")
    else:
        st.error(view.verification_text(check) + " Export the log as it is now and report it; do not edit "
                 "the database by hand.")


def draw_exports(home) -> None:
    st.subheader("Export")
    st.caption("The whole log, with the check of its chain (JSON Lines end with the verification and the head). "
               "Each download is recorded in the log.")
    row = st.container(horizontal=True)
    for fmt, label in (("csv", "Download the log (CSV)"), ("json", "Download the log (JSON)")):
        name = f"fraudlens_audit_{date.today():%Y%m%d}.{'csv' if fmt == 'csv' else 'jsonl'}"
        row.download_button(label, view.log_export(home, fmt), file_name=name,
                            mime="text/csv" if fmt == "csv" else "application/jsonl",
                            key=f"audit_export_{fmt}", on_click=record_export, args=(home, fmt, name))


@st.fragment
def draw_log(home) -> None:
    st.subheader("Log")
    cols = st.columns([2, 3], vertical_alignment="bottom")
    label = cols[0].selectbox("Action", list(view.ACTION_FILTERS), key=ACTION,
                              on_change=lambda: st.session_state.update({PAGE_NO: 0}))
    try:  # inside the fragment: a pager click reruns only this function
        page = view.log_page(home, int(st.session_state.setdefault(PAGE_NO, 0)), view.ACTION_FILTERS[label])
    except FraudLensError as exc:
        st.error(str(exc))
        return
    cols[1].caption(view.page_caption(page))
    if not page.entries:
        st.info("The audit log is empty." if label == "All actions" and page.offset == 0 else
                "No entries of this kind on this page.")
    else:
        st.dataframe(view.log_table(page.entries), hide_index=True, key="audit_table",
                     column_config={"detail": st.column_config.TextColumn(width="large")})
    nav = st.container(horizontal=True)
    nav.button("← Newer", key="audit_prev", disabled=page.offset == 0, on_click=move, args=(-1,))
    nav.button("Older →", key="audit_next", disabled=not page.has_next, on_click=move, args=(1,))
    if page.entries:
        draw_entry(page.entries)


def draw_entry(entries) -> None:
    by_seq = {e.seq: e for e in entries}
    if st.session_state.get("audit_entry") not in by_seq:  # another page or filter: start at its newest
        st.session_state["audit_entry"] = entries[0].seq
    seq = st.selectbox("Entry in full", list(by_seq), key="audit_entry",
                       format_func=lambda s: f"{s} · {by_seq[s].action} · {by_seq[s].user}")
    entry = by_seq[seq]
    st.code(view.detail_json(entry), language="json")
    st.caption(f"At {entry.at} (UTC). Previous hash {entry.prev_hash}; hash {entry.hash}.")


home = layout.ensure_frame("pages/audit.py")
st.title("Audit log")
st.caption("Every ingest, training, proposal, approval, champion or threshold change, export and unmasking of "
           "personal data: who, when, what, chained by hashes so that an edit or a deletion shows.")
try:
    draw_status(home)
    draw_log(home)
    draw_exports(home)
except FraudLensError as exc:
    st.error(str(exc))
