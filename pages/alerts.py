"""Alerts: case work for analysts.

The champion of the active dataset, at its live operating point, raises alerts (and a random
below-the-line sample for review). The queue is paged from the library with filters; ticked
rows take bulk actions. One alert opens with its transaction, reason codes, explanation and
account timeline, and gets a disposition with a comment, which becomes the transaction's label.

Changes run in widget callbacks, before the page is drawn (raising alerts runs in place, and the
counts at the top are drawn after it), so the counts and the queue shown always include them.
"""

from __future__ import annotations

import math

import streamlit as st

from fraudlens import charts_models as charts
from fraudlens.errors import FraudLensError
from fraudlens.ui import alerts_view as view
from fraudlens.ui import auth, cached, downloads, layout, models_cache, state

PAGE = "alerts"
OFFSET = "alerts_offset"
TABLE = "alerts_table"
SHOWN = "alerts_shown_ids"  # alert ids of the table's rows, in order
TICKED = "alerts_ticked_ids"  # the selection as last seen, to tell which row was just ticked
OPEN_ID = "alerts_open_id"
CHANGE = "alerts_change"
NOTICE = "alerts_notice"
PLOTLY_CONFIG = {"displaylogo": False}
DAYS = {1: "± 1 day", 7: "± 7 days", 30: "± 30 days"}
NO_SELECTION = {"selection": {"rows": [], "columns": [], "cells": []}}
TABLE_CONFIG = {
    "id": st.column_config.NumberColumn("id", format="%d", width="small"),
    "amount": st.column_config.NumberColumn("amount", format="PEN %,.2f"),
    "score": st.column_config.NumberColumn("score", format="percent"),
    "expected loss": st.column_config.NumberColumn("expected loss", format="PEN %,.2f",
                                                   help="Score × amount: what the alert may save."),
    "reasons": st.column_config.TextColumn("reasons", width="large"),
}


# ---------------------------------------------------------------------------- callbacks

def notify(slot: str, kind: str, text: str) -> None:
    st.session_state[NOTICE] = (slot, kind, text)


def show_notice(slot: str) -> None:
    found = st.session_state.get(NOTICE)
    if found and found[0] == slot:
        st.session_state.pop(NOTICE)
        getattr(st, found[1])(found[2])


def clear_selection() -> None:
    """Untick every row: the ticks are row positions, which point elsewhere once rows move."""
    st.session_state[TABLE] = NO_SELECTION
    st.session_state[TICKED] = []


def first_page() -> None:
    st.session_state[OFFSET] = 0
    clear_selection()


def move(step: int) -> None:
    st.session_state[OFFSET] = max(0, st.session_state.get(OFFSET, 0) + step)
    clear_selection()


def forget_change() -> None:
    st.session_state.pop(CHANGE, None)


def open_ticked(ids: list[int]) -> None:
    """Open the row just ticked (call before the alert id box is drawn)."""
    added = [i for i in ids if i not in st.session_state.get(TICKED, [])]
    st.session_state[TICKED] = ids
    if added:
        st.session_state[OPEN_ID] = added[-1]
        forget_change()


def assign_ticked(home, ids: list[int]) -> None:
    try:
        n = view.assign_to_me(home, ids)
    except FraudLensError as exc:
        notify("bulk", "error", str(exc))
        return
    notify("bulk", "success", f"{n:,} alert(s) assigned to you ({auth.user()}).")
    clear_selection()


def dispose_ticked(home, ids: list[int]) -> None:
    disposition = st.session_state.get("alerts_bulk_disposition")
    comment = str(st.session_state.get("alerts_bulk_comment") or "").strip()
    if disposition is None:
        notify("bulk", "error", "Choose a disposition first.")
        return
    if not comment:
        notify("bulk", "error", "Write a comment first: say why these alerts get this disposition "
                                "(it is kept with each one in the audit log).")
        return
    try:
        n = view.dispose(home, ids, disposition, comment)
    except FraudLensError as exc:
        notify("bulk", "error", str(exc))
        return
    notify("bulk", "success", f"{n:,} alert(s) set to {view.DISPOSITION_NAMES[disposition]}: their transactions "
                              f"are {view.label_text(disposition)}.")
    st.session_state["alerts_bulk_comment"] = ""
    clear_selection()


def dispose_open(home, alert_id: int, change: bool) -> None:
    disposition = st.session_state.get("alerts_disposition")
    comment = str(st.session_state.get("alerts_comment") or "").strip()
    if disposition is None:
        notify("alert", "error", "Choose a disposition first.")
        return
    if not comment:
        notify("alert", "error", "Write a comment first: say why (it is kept with the disposition in the "
                                 "audit log).")
        return
    try:
        view.dispose(home, [alert_id], disposition, comment, change=change)
        alert = view.get_alert(home, alert_id)
    except FraudLensError as exc:
        notify("alert", "error", str(exc))
        return
    notify("alert", "success", f"Saved. Alert #{alert.id} is now **{view.STATUS_NAMES[alert.status]}**; "
                               f"transaction {alert.transaction_id} is {view.label_text(disposition)}.")
    st.session_state["alerts_comment"] = ""
    forget_change()
    clear_selection()


# ---------------------------------------------------------------------------- sections

def draw_kpis(home, dataset: str) -> None:
    c = view.counts(home, dataset)
    cols = st.columns(3)
    cols[0].metric("Open alerts", f"{c.open:,}", border=True, help=f"Alerts on '{dataset}' waiting for a disposition.")
    cols[1].metric("Disposed", f"{c.disposed:,}", border=True,
                   help="Alerts with a disposition: confirmed fraud, false positive or needs more information.")
    share = c.confirmed_share
    cols[2].metric("Confirmed fraud (share of disposed)", "n/a" if math.isnan(share) else f"{share:.0%}",
                   border=True, help=f"{c.confirmed:,} of the {c.disposed:,} disposed alerts were confirmed fraud.")


def draw_raise(home, dataset: str, tz: str) -> None:
    st.subheader("Raise alerts")
    champ = view.champion(home, dataset)
    if champ is None:
        st.info(f"No champion model for '{dataset}' yet, so nothing can raise alerts. Train a model on the "
                "Models page and make it the champion.")
        auth.page_link("pages/models.py", "Go to the Models page")
        return
    live = view.live_point(home, champ.ref)
    if live is None:
        st.info(f"The champion {champ.name} v{champ.version} has no live operating point yet. Save a threshold "
                "for it on the Thresholds page, then come back to raise alerts.")
        auth.page_link("pages/thresholds.py", "Go to the Thresholds page")
        return
    threshold = float(live.point.threshold)
    newest = view.last_scored(home, dataset, champ.ref)
    # The box below was drawn in the last run: its value is known before it is drawn again.
    after = None if st.session_state.get("alerts_rescore") else newest
    st.caption(f"{view.scope_text(dataset, after, tz)} with the champion **{champ.name} "
               f"v{champ.version}** at its live threshold **{threshold:.4f}** (saved by {live.user} on "
               f"{cached.local_time(live.saved_at[:19], tz)}). Each one at or above it gets an alert with its "
               "reason codes; a random sample of those under it is queued too, so someone checks what the "
               "threshold misses.")
    cols = st.columns([1, 1, 2], vertical_alignment="bottom")
    rate = cols[0].number_input("Below-the-line sample (%)", min_value=0.0, max_value=10.0, value=0.5, step=0.1,
                                format="%.1f", key="alerts_sample_pct",
                                help="Share of the transactions under the threshold queued for review.")
    if newest is not None:
        cols[2].checkbox("Score earlier transactions again", key="alerts_rescore", help=view.RESCORE_HELP)
    if cols[1].button("Raise alerts", key="alerts_raise", type="primary"):
        run_raise(home, dataset, champ, rate / 100.0, after, tz)
        return
    run = view.last_run(home, dataset)
    if run:
        st.caption(view.run_text(run, tz))


def run_raise(home, dataset: str, champ, rate: float, after, tz: str) -> None:
    result, problem = None, None
    with st.status(f"Scoring '{dataset}' with {champ.name} v{champ.version}…", expanded=True) as status:
        st.write("Computing features, scores and reason codes of the new alerts.")
        try:
            result = view.raise_alerts(home, dataset, champ.ref, rate, after)
            status.update(label="Alerts raised", state="complete")
        except view.NothingNew:
            status.update(label="Nothing new to score", state="complete", expanded=False)
        except FraudLensError as exc:
            status.update(label="No alerts raised", state="error", expanded=False)
            problem = str(exc)
    # Messages outside the status box, which a finished run folds away.
    if problem:
        st.error(problem)
    elif result is None:
        st.info(view.nothing_new_text(dataset, after, tz))
    else:
        st.success(view.raise_text(result))
        st.session_state[OFFSET] = 0
        clear_selection()  # the queue below is drawn after this, with the new alerts


def draw_filters() -> view.Filters:
    cols = st.columns(4)
    status = cols[0].selectbox("Status", list(view.STATUS_FILTER_NAMES), format_func=view.STATUS_FILTER_NAMES.get,
                               key="alerts_status", on_change=first_page)
    source = cols[1].selectbox("Source", list(view.SOURCE_NAMES), format_func=view.SOURCE_NAMES.get,
                               key="alerts_source", on_change=first_page,
                               help="Above the threshold, or the random below-the-line sample.")
    assignee = cols[2].selectbox("Assignee", list(view.ASSIGNEE_NAMES), format_func=view.ASSIGNEE_NAMES.get,
                                 key="alerts_assignee", on_change=first_page,
                                 help=f"'Mine' means assigned to {auth.user()}.")
    order = cols[3].selectbox("Order by", list(view.ORDER_NAMES), format_func=view.ORDER_NAMES.get,
                              key="alerts_order", on_change=first_page,
                              help="Expected loss is score × amount; highest first.")
    return view.Filters(status, source, assignee, order)


def draw_queue(home, dataset: str, tz: str) -> None:
    st.subheader("Queue")
    filters = draw_filters()
    q = view.queue_page(home, dataset, filters, st.session_state.get(OFFSET, 0))
    if q.total and q.rows.empty:  # the page ran past the end (alerts left the filter): start again
        st.session_state[OFFSET] = 0
        q = view.queue_page(home, dataset, filters, 0)
    st.session_state[SHOWN] = [int(i) for i in q.rows["id"]]
    if not q.total:
        if view.has_alerts(home, dataset):
            st.info("No alert matches these filters. Choose 'Every status' or 'Anyone' to see more.")
        else:
            st.info(f"No alerts on '{dataset}' yet. Raise them with the button above.")
        return
    st.caption(f"{view.range_text(q)}, by {view.ORDER_NAMES[filters.order].lower()}; times in {tz}. Tick rows "
               "to act on them together; ticking one also opens it below.")
    event = st.dataframe(auth.protect(view.table(q.rows, tz)), key=TABLE, on_select="rerun",
                         selection_mode="multi-row", hide_index=True, column_config=TABLE_CONFIG, placeholder="—",
                         height=min(len(q.rows), 10) * 35 + 38)
    ids = view.selected_ids(event.selection.rows, st.session_state[SHOWN])
    open_ticked(ids)
    draw_pager(home, q)
    draw_bulk(home, ids)


def draw_pager(home, q) -> None:
    cols = st.columns([1, 1, 1, 1, 2], vertical_alignment="bottom")
    cols[0].button("◀ Previous", key="alerts_prev", disabled=q.offset == 0, on_click=move,
                   args=(-view.PAGE_SIZE,), width="stretch")
    cols[1].button("Next ▶", key="alerts_next", disabled=not q.truncated, on_click=move,
                   args=(view.PAGE_SIZE,), width="stretch")
    rows = view.export_frame(q.rows)
    personal = downloads.holds_personal(rows)
    downloads.file_button(home, "Download CSV", downloads.table_bytes(rows, "csv"), "alerts.csv", "alerts_csv",
                          what="Alert queue page", rows=len(rows), personal=personal, container=cols[2],
                          width="stretch",
                          help="This page of the queue; cells a spreadsheet would run as formulas are escaped.")
    downloads.file_button(home, "Download Parquet", downloads.table_bytes(rows, "parquet"), "alerts.parquet", "alerts_parquet",
                          what="Alert queue page", rows=len(rows), personal=personal, container=cols[3],
                          width="stretch", help="This page of the queue.")


def draw_bulk(home, ids: list[int]) -> None:
    show_notice("bulk")
    if not ids:
        return
    shown = ", ".join(f"#{i}" for i in ids[:10]) + (" …" if len(ids) > 10 else "")
    st.markdown(f"**{len(ids):,} selected** ({shown})")
    left, right = st.columns([1, 5], vertical_alignment="bottom")
    left.button("Assign to me", key="alerts_assign_me", on_click=assign_ticked, args=(home, ids), width="stretch")
    # No default disposition and no submit on Enter: closing many alerts takes a choice and a click.
    with right.form("alerts_bulk_form", border=False, enter_to_submit=False):
        cols = st.columns([2, 4, 1.5], vertical_alignment="bottom")
        cols[0].selectbox("Disposition", list(view.DISPOSITION_NAMES), format_func=view.DISPOSITION_NAMES.get,
                          key="alerts_bulk_disposition", index=None, placeholder="Choose…")
        cols[1].text_input("Comment (required)", key="alerts_bulk_comment", max_chars=1000,
                           placeholder="e.g. Same card-testing pattern, confirmed with the customer")
        cols[2].form_submit_button(f"Dispose {len(ids):,} selected", key="alerts_bulk_dispose",
                                   on_click=dispose_ticked, args=(home, ids), width="stretch")


def draw_alert(home, dataset: str, tz: str) -> None:
    st.subheader("Work an alert")
    st.columns(3)[0].number_input("Alert id", min_value=1, step=1, value=None, format="%d", key=OPEN_ID,
                                  on_change=forget_change, placeholder="e.g. 14",
                                  help="Ticking a row in the queue opens it here.")
    alert_id = st.session_state.get(OPEN_ID)
    if alert_id is None:
        st.info("Tick a row in the queue, or type an alert id, to see its transaction, reasons and explanation "
                "and to set its disposition.")
        return
    try:
        alert = view.get_alert(home, alert_id)
    except FraudLensError as exc:
        st.error(str(exc))
        return
    draw_header(home, alert, dataset, tz)
    left, right = st.columns(2, gap="large")
    with left:
        draw_reasons(home, alert)
    with right:
        draw_disposition(home, alert, tz)
    draw_evidence(home, alert)


def draw_header(home, alert, dataset: str, tz: str) -> None:
    st.markdown(f"#### Alert #{alert.id} · transaction {alert.transaction_id}")
    st.markdown(f"Status: {view.status_badge(alert.status)}")
    cols = st.columns(3)
    cols[0].metric("Risk score", f"{alert.score:.1%}", border=True)
    cols[1].metric("Amount (PEN)", "n/a" if alert.amount is None else f"{alert.amount:,.2f}", border=True)
    cols[2].metric("Expected loss (PEN)", "n/a" if alert.expected_loss is None else f"{alert.expected_loss:,.2f}",
                   border=True, help="Score × amount.")
    st.caption(f"Raised {cached.local_time(alert.created_at, tz)} by {alert.model} v{alert.version}, "
               f"{view.source_text(alert)}. Assigned to {alert.assignee or 'nobody'}.")
    if alert.dataset != dataset:
        st.caption(f"This alert is on dataset '{alert.dataset}', not the active '{dataset}'.")
    try:
        facts = models_cache.transaction_facts(models_cache.transaction(home, alert.dataset, alert.transaction_id))
        label = view.effective_label(home, alert.dataset, alert.transaction_id)
    except FraudLensError as exc:
        st.error(str(exc))
        return
    st.markdown(f"{facts['when']} ({tz} time). {facts['details']}  \nLabel in the dataset: {facts['label']}; "
                f"label now (with dispositions): **{models_cache.label_word(label)}**.")


def draw_reasons(home, alert) -> None:
    st.markdown("**Reason codes** (what raised the risk most)")
    try:
        reasons = view.alert_reasons(home, alert.id)
    except FraudLensError as exc:
        st.error(str(exc))
        return
    if reasons:
        st.markdown("\n".join(f"{i}. {r}" for i, r in enumerate(reasons, 1)))
    else:
        st.caption("No feature raised the risk above the model's base value.")


def draw_disposition(home, alert, tz: str) -> None:
    st.markdown("**Disposition**")
    show_notice("alert")
    history = view.history_lines(alert, tz)
    if history:
        st.markdown("History (newest first):\n" + "\n".join(f"- {line}" for line in history))
    closed = view.is_closed(alert)
    if closed and not st.toggle("Change the disposition", key=CHANGE,
                                help="The earlier dispositions stay in the history and the audit log."):
        return
    with st.form("alerts_dispose_form", border=False):
        st.radio("Disposition", list(view.DISPOSITION_NAMES), format_func=view.DISPOSITION_NAMES.get,
                 index=None, key="alerts_disposition")
        st.text_area("Comment (required)", key="alerts_comment", max_chars=1000, height=80,
                     placeholder="e.g. Customer confirmed by phone they did not make this payment")
        st.form_submit_button("Save disposition", key="alerts_save", type="primary", on_click=dispose_open,
                              args=(home, alert.id, closed))
    st.caption("Confirmed fraud labels the transaction fraud and false positive legitimate; needs more "
               f"information sets no label. Recorded as {auth.user()}.")


def draw_evidence(home, alert) -> None:
    ref = view.alert_ref(alert)
    try:
        exp = models_cache.explanation(home, alert.dataset, ref, alert.transaction_id)
        kinds = models_cache.feature_kinds(home, ref)
        tx = models_cache.transaction(home, alert.dataset, alert.transaction_id)
    except FraudLensError as exc:
        st.error(str(exc))
        return
    st.plotly_chart(charts.waterfall_figure(exp, kinds), key="alerts_waterfall", config=PLOTLY_CONFIG)
    st.caption(models_cache.units_text(exp))
    days = st.segmented_control("Account timeline window", list(DAYS), format_func=DAYS.get, key="alerts_days",
                                default=7)
    try:
        line = models_cache.timeline(home, alert.dataset, str(tx["account_id"]), tx["transaction_datetime"],
                                     days or 7)
    except FraudLensError as exc:
        st.error(str(exc))
        return
    st.plotly_chart(charts.timeline_figure(line.rows, alert.transaction_id, line.timezone), key="alerts_timeline",
                    config=PLOTLY_CONFIG)
    st.caption(models_cache.timeline_text(line))


home = layout.ensure_frame("pages/alerts.py")
st.title("Alerts")
dataset = state.active_dataset()
if not dataset:
    st.info("No dataset yet: alerts are raised on a dataset. Load one on the Data page.")
    auth.page_link("pages/data.py", "Go to the Data page")
    st.stop()
timezone = cached.dataset_timezone(home, dataset)
kpis = st.container()  # filled after raising, so the counts include the new alerts
draw_raise(home, dataset, timezone)
with kpis:
    draw_kpis(home, dataset)
draw_queue(home, dataset, timezone)
draw_alert(home, dataset, timezone)
