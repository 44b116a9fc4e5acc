"""Explore: where fraud concentrates, and the transactions behind each pattern.

Filters apply to every chart. The charts sit in three tabs (when, what and where, who); only the
open one is drawn, and the top lists are computed only for theirs. Clicking (or box-selecting) an
element of a chart shows the matching transactions below, 50 a page, with a CSV download; a
transaction can be opened on the Explain page when it exists.
"""

from __future__ import annotations

import streamlit as st

from fraudlens import charts
from fraudlens.analytics import SEGMENT_COLUMNS
from fraudlens.errors import FraudLensError
from fraudlens.ui import auth, cached, dashboard, layout, state

PAGE = "explore"
# Each tab and the charts it draws.
VIEWS = {"When": ("heatmap", "trend"), "What and where": ("segments", "regions", "amounts"),
         "Who": ("top_merchant_id", "top_account_id")}

home = layout.ensure_frame("pages/explore.py")
dashboard.keep_choices(f"{PAGE}_metric", f"{PAGE}_grain", f"{PAGE}_segment")
st.title("Explore")
name = state.active_dataset()
if not name:
    st.info("No dataset yet. Load one on the Data page.")
    auth.page_link("pages/data.py", "Go to the Data page")
    st.stop()
try:
    options = cached.filter_options(home, name)
    filters = dashboard.filter_form(PAGE, options, detailed=True)
    if filters is None:
        st.stop()
    tz = cached.dataset_timezone(home, name)
    # The segment picked below, known before its widget is drawn: one summary holds every chart
    # but the top lists and the table.
    by = st.session_state.get(f"{PAGE}_segment", SEGMENT_COLUMNS[0])
    found = cached.summary(home, name, filters, by if by in SEGMENT_COLUMNS else SEGMENT_COLUMNS[0])
    total = found.count
except FraudLensError as exc:
    st.error(str(exc))
    st.stop()

st.caption(f"Dataset **{name}**: {filters.describe()} — **{total.transactions:,}** transactions, "
           f"**{total.frauds:,}** frauds. Calendar views in {tz} time. Click or box-select a chart "
           "element to see its transactions at the bottom of the page.")
dashboard.labels_note(home, name)

# Only the open tab's charts are drawn: seven charts at once took the browser about 0.7 s to draw
# on every visit and every filter change.
tabs = st.tabs(list(VIEWS), key=f"{PAGE}_view", on_change="rerun")
when, what, who = tabs
# A selection belongs to the charts on screen: another tab (or a later visit) starts with none.
on_screen = next(names for tab, names in zip(tabs, VIEWS.values()) if tab.open)
dashboard.keep_drill_of(PAGE, on_screen)
if when.open:
    with when:
        dashboard.draw_chart(charts.heatmap(found.heatmap, tz), PAGE, "heatmap", file_name="hour-weekday")
        pick = st.columns(4)
        metric = pick[0].selectbox("Trend of", list(charts.METRICS), key=f"{PAGE}_metric",
                                   format_func=lambda m: charts.METRICS[m][0])
        grain = pick[1].radio("Per", ["day", "week"], key=f"{PAGE}_grain", horizontal=True)
        dashboard.draw_chart(charts.trend(found.series(grain), metric, grain, tz),
                             PAGE, "trend", file_name=f"{metric}-per-{grain}")
if what.open:
    with what:
        by = st.columns(4)[0].selectbox("Fraud rate by", SEGMENT_COLUMNS, key=f"{PAGE}_segment",
                                        format_func=lambda c: charts.SEGMENT_LABELS[c])
        left, right = st.columns(2)
        with left:
            shares = found.segments[by] if by in found.segments else cached.segments(home, name, filters, by)
            dashboard.draw_chart(charts.segment_bars(shares, by, height=430),
                                 PAGE, "segments", file_name=f"fraud-rate-by-{by}")
        with right:
            dashboard.draw_chart(charts.region_bars(found.regions, height=430),
                                 PAGE, "regions", file_name="fraud-amount-by-region")
        dashboard.draw_chart(charts.amount_histogram(found.amounts), PAGE, "amounts", file_name="amounts")
if who.open:
    with who:
        left, right = st.columns(2)
        for column, by in ((left, "merchant_id"), (right, "account_id")):
            with column:
                dashboard.draw_chart(
                    charts.top_entities_bars(cached.top_entities(home, name, filters, by, 15), by),
                    PAGE, f"top_{by}", file_name=f"top-{by}")

st.header("Transactions")
selected = dashboard.drill(PAGE)
if selected:
    st.button("Clear the selection", key=f"{PAGE}_clear", on_click=dashboard.reset_drill, args=(PAGE,))
title = f"Selected: {selected['label']}" if selected else "All filtered transactions"
shown = dashboard.transactions_table(PAGE, home, name, filters, selected["extra"] if selected else {}, title,
                                     total)
if shown is not None:
    dashboard.explain_link(PAGE, shown.rows["transaction_id"].tolist())
