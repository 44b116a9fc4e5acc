"""Monitoring: is the model still scoring the world it was trained on, and are its alerts worked?

Everyone sees a drift banner, four tiles (score PSI of the latest complete week, estimated recall
from the below-the-line sample, alert precision, labels still unknown) and the alert charts;
executives see only that summary. Analysts, supervisors and admins also see the weekly score
distribution, the PSI of the score and of the model's top features, label maturity and the data
quality of each ingest. Weeks are local calendar weeks of the active dataset.
"""

from __future__ import annotations

import streamlit as st

from fraudlens import charts_monitor as charts
from fraudlens.errors import FraudLensError
from fraudlens.ui import auth, cached, downloads, layout, models_cache, state
from fraudlens.ui import monitor_view as view

PAGE = "monitoring"
ALERTS_PAGE = "pages/alerts.py"
PLOTLY_CONFIG = {"displaylogo": False, "modeBarButtonsToRemove": ["lasso2d", "select2d", "autoScale2d"]}


def draw_chart(fig, name: str) -> None:
    image = {"format": "png", "filename": f"monitoring-{name}", "scale": 2}
    config = {**PLOTLY_CONFIG, "toImageButtonOptions": image}
    st.plotly_chart(fig, key=f"{PAGE}_{name}", theme=None, config=config)


def pick_model(home, dataset: str) -> str:
    options = models_cache.scored_refs(home)
    if st.session_state.get(f"{PAGE}_model") not in options:
        st.session_state[f"{PAGE}_model"] = models_cache.default_ref(home, dataset, scored_only=True)
    return st.selectbox("Model version", options, key=f"{PAGE}_model",
                        format_func=lambda r: models_cache.ref_label(home, r),
                        help="Defaults to the champion of the active dataset's model.")


def load_psi(home, dataset: str, ref: str):
    """The weekly PSI table, or an empty one after saying why there is none."""
    try:
        return view.weekly_psi(home, dataset, ref)
    except FraudLensError as exc:
        st.error(f"Drift cannot be measured: {exc}")
        return view.empty_psi()


def draw_alerts(alerts, partial: list, tz: str, dataset: str, model: str) -> None:
    st.subheader("Alerts")
    if alerts.empty:
        st.info(f"No alerts raised with model {model} on dataset {dataset} yet. An analyst raises them on the "
                "Alerts page; their volume, precision and the money they catch then appear here.")
        auth.page_link(ALERTS_PAGE, "Go to the Alerts page")
        return
    st.caption(f"Threshold alerts raised with model {model} (any version) on {dataset}, by the week of their "
               "transaction; the below-the-line sample is left out.")
    left, right = st.columns(2)
    with left:
        draw_chart(charts.alerts_figure(alerts, partial, tz), "alerts")
    with right:
        draw_chart(charts.money_figure(alerts, partial, tz), "money")


def draw_drift(psi, scores, threshold, partial: list, tz: str) -> None:
    st.subheader("Drift")
    left, right = st.columns(2)
    with left:
        draw_chart(charts.psi_figure(psi, ["score"], "Score PSI per week", tz), "psi_score")
    with right:
        draw_chart(charts.score_figure(scores, threshold, partial, tz), "scores")
    features = view.features_of(psi)
    draw_chart(charts.psi_figure(psi, features, "PSI of the model's top features per week", tz, height=420,
                                 width=charts.FULL_WIDTH), "psi_features")
    latest = view.latest_week(psi)
    if len(latest):
        st.markdown(f"**Latest complete week ({latest['week'].iloc[0]:%Y-%m-%d}), largest PSI first**")
        st.dataframe(latest.drop(columns="week"), hide_index=True, key=f"{PAGE}_latest",
                     column_config={"psi": st.column_config.NumberColumn("PSI", format="%.3f"),
                                    "rows": st.column_config.NumberColumn("transactions", format="%d")})


def draw_quality(maturity, history, nulls, partial: list, tz: str) -> None:
    st.subheader("Labels and data quality")
    left, right = st.columns(2)
    with left:
        draw_chart(charts.maturity_figure(maturity, partial, tz), "maturity")
    with right:
        draw_chart(charts.ingest_figure(history, tz), "ingests")
    left, right = st.columns(2)
    with left:
        draw_chart(charts.nulls_figure(nulls, charts.ingest_labels(history, tz)), "nulls")
    with right:
        st.markdown("**Ingests, oldest first**")
        st.dataframe(view.ingest_table(history, tz), hide_index=True, key=f"{PAGE}_ingests",
                     column_config={"at": st.column_config.DatetimeColumn("when (local)", format="YYYY-MM-DD HH:mm"),
                                    "rows_read": st.column_config.NumberColumn("rows read"),
                                    "reject_share": st.column_config.NumberColumn("rejected %", format="percent"),
                                    "top_reject_reason": st.column_config.TextColumn("main reject reason")})


def draw_downloads(home, files: list[tuple], dataset: str) -> None:
    st.subheader("Downloads")
    st.caption("Each table as CSV or Parquet; each chart saves itself as a PNG from the camera button of its "
               "toolbar.")
    fmt = downloads.format_picker(f"{PAGE}_format")
    columns = st.columns(3)
    for i, (label, frame, name) in enumerate(files):
        downloads.table_button(home, label, auth.protect(frame), f"{dataset}-{name}", f"{PAGE}_{name}", fmt,
                               what=f"Monitoring: {label}", container=columns[i % 3], width="stretch")


home = layout.ensure_frame("pages/monitoring.py")
st.title("Monitoring")
dataset = state.active_dataset()
if not dataset:
    st.info("No dataset yet. An analyst or supervisor loads one on the Data page.")
    st.stop()
if not models_cache.scored_refs(home):
    st.info("No model yet: monitoring follows a model's scores. Train one on the Models page.")
    auth.page_link("pages/models.py", "Go to the Models page")
    st.stop()
ref = pick_model(home, dataset)
model_dataset = models_cache.model_dataset(home, ref)
if model_dataset and model_dataset != dataset:
    st.warning(f"This model was trained on '{model_dataset}'; it is monitored here on the active dataset "
               f"'{dataset}', against its training window in that dataset.")
try:
    tz = cached.dataset_timezone(home, dataset)
    st.caption(view.scope_text(dataset, ref, tz))
    psi = load_psi(home, dataset, ref)
    name = view.model_name(home, ref)
    alerts = view.weekly_alerts(home, dataset, name)
    maturity = view.label_maturity(home, dataset)
    estimate = view.estimate_missed(home, dataset, ref)
except FraudLensError as exc:
    st.error(str(exc))
    st.stop()

status = view.drift_status(psi)
kind, text = view.banner(status, view.feature_descriptions(home, ref))
getattr(st, kind)(text)
if status.band == "act":
    auth.page_link("pages/models.py", "Review the model on the Models page")
view.draw_tiles([view.psi_tile(psi), view.recall_tile(estimate), view.precision_tile(alerts),
                 view.maturity_tile(maturity)])
overlap = view.overlap_warning(estimate)
if overlap:
    st.warning(overlap)
partial = view.partial_weeks(psi)
if partial:
    st.caption(view.partial_text(partial))
draw_alerts(alerts, partial, tz, dataset, name)
files = [("Alerts per week", alerts, "alerts-weekly")]
if auth.role() == "executive":
    draw_downloads(home, files, dataset)
    st.stop()

try:
    threshold = models_cache.live_threshold(home, ref)
    scores = view.weekly_scores(home, dataset, ref, threshold)
    history = view.ingest_history(home, dataset)
    nulls = view.ingest_nulls(home, dataset)
except FraudLensError as exc:
    st.error(str(exc))
    st.stop()
draw_drift(psi, scores, threshold, partial, tz)
draw_quality(maturity, history, nulls, partial, tz)
files += [("Score PSI and features", psi, "psi-weekly"), ("Scores per week", scores, "scores-weekly"),
              ("Label maturity", maturity, "labels-weekly"), ("Ingests", history, "ingests"),
              ("Empty values", nulls, "nulls")]
draw_downloads(home, files, dataset)
