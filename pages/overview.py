"""Overview: the executive summary of the active dataset.

Headline figures against the previous period of equal length, the daily or weekly trend, fraud
by channel and by transaction type, and the money: losses, the largest cases, and what the live
alert threshold catches once an analyst has set one.
"""

from __future__ import annotations

import streamlit as st

from fraudlens import charts
from fraudlens.errors import FraudLensError
from fraudlens.ui import auth, cached, dashboard, downloads, layout, state

PAGE = "overview"

home = layout.ensure_frame("pages/overview.py")
st.title("Overview")
name = state.active_dataset()
if not name:
    st.info("No dataset yet. An analyst or supervisor loads one on the Data page.")
    st.stop()
try:
    options = cached.filter_options(home, name)
    filters = dashboard.filter_form(PAGE, options, detailed=False, last_days=30)
    if filters is None:
        st.stop()
    kpis = cached.kpis(home, name, filters)
    tz = cached.dataset_timezone(home, name)
except FraudLensError as exc:
    st.error(str(exc))
    st.stop()

compared = (f", compared with {kpis.previous_from} to {kpis.previous_until}" if kpis.previous
            else "; there is no data in the period before it to compare with")
st.caption(f"Dataset **{name}**: {kpis.date_from} to {kpis.date_until} ({kpis.days} days, {tz} "
           f"time){compared}; {filters.describe(dates=False)}.")
dashboard.labels_note(home, name)
dashboard.draw_tiles(dashboard.kpi_tiles(kpis))

st.subheader("Trend")
grain = st.radio("Show", ["day", "week"], key=f"{PAGE}_grain", horizontal=True,
                 format_func={"day": "Per day", "week": "Per week"}.get, label_visibility="collapsed")
series = cached.daily_series(home, name, filters, grain)
left, right = st.columns(2)
with left:
    dashboard.draw_chart(charts.trend(series, "fraud_rate", grain, tz), file_name="fraud-rate")
with right:
    dashboard.draw_chart(charts.trend(series, "fraud_amount", grain, tz), file_name="fraud-amount")

st.subheader("By channel and transaction type")
by_channel = cached.segments(home, name, filters, "channel")
by_type = cached.segments(home, name, filters, "transaction_type")
left, right = st.columns(2)
with left:
    dashboard.draw_chart(charts.segment_bars(by_channel, "channel", height=320), file_name="by-channel")
with right:
    dashboard.draw_chart(charts.segment_bars(by_type, "transaction_type", height=320), file_name="by-type")

st.subheader("Money")
dashboard.draw_tiles(dashboard.money_tiles(kpis))
st.markdown("**Caught by the alerts**")
live = cached.live_point(home, name)
if live is None:
    st.info("No live operating point yet — an analyst sets one on the Thresholds page. Then the "
            "fraud amount it catches, the alerts per day and their precision appear here.")
else:
    dashboard.draw_tiles(dashboard.live_tiles(live))
    st.caption(f"Model {live.model} v{live.version} at threshold {live.threshold:.4g}, set by "
               f"{live.saved_by} on {cached.local_time(live.saved_at[:19], tz)}; measured on the model's "
               "test window, not on the filters above.")

largest = cached.transactions_page(home, name, filters.replace(label="fraud"),
                                   sort="transaction_amount", descending=True, limit=10)
st.markdown("**Largest fraud cases in the period**")
if largest.rows.empty:
    st.caption("No fraud in the period.")
else:
    shown = auth.protect(largest.rows)
    st.dataframe(shown, hide_index=True, placeholder="-",
                 column_order=["transaction_id", "local_time", "transaction_amount", "channel",
                               "transaction_type", "merchant_id", "merchant_location", "account_id"],
                 column_config=dashboard.TABLE_COLUMNS)

st.subheader("Downloads")
st.caption("Figures as CSV or Parquet; each chart saves itself as a PNG from the camera button of its "
           "toolbar (top right of the chart, on hover).")
fmt = downloads.format_picker(f"{PAGE}_format")
files = st.columns(3)
downloads.table_button(home, "KPIs", dashboard.kpi_table(kpis), f"{name}-kpis", f"{PAGE}_kpis", fmt,
                       what="Overview KPIs", container=files[0])
downloads.table_button(home, f"{'Daily' if grain == 'day' else 'Weekly'} series", series, f"{name}-{grain}",
                       f"{PAGE}_series", fmt, what=f"Overview {grain} series", container=files[1])
downloads.table_button(home, "Largest fraud cases", auth.protect(largest.rows), f"{name}-largest-frauds",
                       f"{PAGE}_largest", fmt, what="Largest fraud cases", container=files[2])
