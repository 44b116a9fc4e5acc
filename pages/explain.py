"""Explain: why a model scored one transaction as it did, the account's recent activity around
it, and (on request) which features drive the model's scores in general.

A transaction arrives by id (typed here, or set by another page in ``explain_transaction_id``)
or is picked from the model's highest-scored test transactions. Lookups are in the active dataset.
"""

from __future__ import annotations

import streamlit as st

from fraudlens import charts_models as charts
from fraudlens.errors import FraudLensError
from fraudlens.ui import layout, models_cache, state

PAGE = "explain"
TX_ID = "explain_transaction_id"
PLOTLY_CONFIG = {"displaylogo": False}
DAYS = {1: "± 1 day", 7: "± 7 days", 30: "± 30 days"}


def pick_transaction() -> None:
    """Callback of the highest-scored list: copy the choice into the id box."""
    chosen = st.session_state.get("explain_pick")
    if chosen:
        st.session_state[TX_ID] = chosen


def draw_finder(home, ref: str, dataset: str, model_dataset: str | None) -> str:
    """The id box and the highest-scored list; returns the id (stripped) or ''."""
    left, right = st.columns(2)
    left.text_input("Transaction id", key=TX_ID, placeholder="e.g. T000000016120",
                    on_change=lambda: st.session_state.pop("explain_pick", None),
                    help="Exact id as in the dataset. Other pages can send a transaction here.")
    if model_dataset == dataset:
        try:
            top = models_cache.top_scored(home, ref)
        except FraudLensError as exc:
            right.error(str(exc))
        else:
            labels = models_cache.top_scored_labels(top)
            right.selectbox("Or pick one of the model's highest-scored test transactions", [""] + list(labels),
                            key="explain_pick", on_change=pick_transaction,
                            format_func=lambda i: labels.get(i, "—"))
    else:
        right.caption(f"The list of highest-scored transactions comes from the model's test window in "
                      f"'{model_dataset}'; the active dataset is '{dataset}'. Type an id instead.")
    return str(st.session_state.get(TX_ID) or "").strip()


def draw_transaction(home, dataset: str, ref: str, transaction_id: str) -> None:
    try:
        tx = models_cache.transaction(home, dataset, transaction_id)
        exp = models_cache.explanation(home, dataset, ref, transaction_id)
        kinds = models_cache.feature_kinds(home, ref)
        live = models_cache.live_threshold(home, ref)
    except FraudLensError as exc:
        st.error(str(exc))
        return
    facts = models_cache.transaction_facts(tx)
    st.subheader(f"Transaction {exp.transaction_id}")
    cols = st.columns(3)
    cols[0].metric("Risk score", f"{exp.score:.1%}", border=True,
                   help=f"{exp.score:.4f} on the 0–1 scale of the thresholds. "
                        f"Model {exp.model} v{exp.version}: base value {exp.base:+.3f} plus the contributions "
                        f"below gives {exp.output:+.3f} {exp.units}"
                        + (", which is this score." if exp.units == "log-odds" else "."))
    cols[1].metric("Amount", facts["amount"], border=True)
    now = models_cache.label_now(home, dataset, exp.transaction_id)
    cols[2].metric("Label", now, border=True,
                   help=f"With alert dispositions applied; in the dataset: {facts['label']}.")
    st.markdown(f"{facts['when']} ({models_cache.timezone_name()} time). {facts['details']}  \n"
                f"{models_cache.alert_text(exp.score, live)}")

    st.plotly_chart(charts.waterfall_figure(exp, kinds), key="explain_waterfall", config=PLOTLY_CONFIG)
    st.caption(models_cache.units_text(exp))
    up, down = models_cache.reasons(exp, kinds)
    left, right = st.columns(2)
    left.markdown("**Main reasons for the score** (raise the risk)")
    if up:
        left.markdown("\n".join(f"{i}. {reason}" for i, reason in enumerate(up, 1)))
    else:
        left.caption("No feature raised the risk of this transaction above the model's base value.")
    right.markdown("**What lowered it**")
    if down:
        right.markdown("\n".join(f"- {reason}" for reason in down))
    else:
        right.caption("No feature lowered the risk.")
    with st.expander("Every feature's value and contribution"):
        st.dataframe(exp.table, hide_index=True, key="explain_table",
                     column_config={"description": st.column_config.TextColumn(width="large"),
                                    "value": st.column_config.NumberColumn(format="%.4g"),
                                    "contribution": st.column_config.NumberColumn(format="%+.4f")})

    st.subheader("The account around this transaction")
    days = st.segmented_control("Window", list(DAYS), format_func=DAYS.get, key="explain_days", default=7)
    try:
        line = models_cache.timeline(home, dataset, facts["account_id"], tx["transaction_datetime"], days or 7)
    except FraudLensError as exc:
        st.error(str(exc))
        return
    st.plotly_chart(charts.timeline_figure(line.rows, exp.transaction_id, line.timezone), key="explain_timeline",
                    config=PLOTLY_CONFIG)
    st.caption(models_cache.timeline_text(line))


def draw_global(home, ref: str) -> None:
    st.subheader("What drives this model in general")
    on = st.toggle("Show the global view: contributions on a sample of up to 2,000 test transactions "
                   "(a few seconds the first time)", key="explain_global")
    if not on:
        return
    try:
        sample = models_cache.sample_contributions(home, ref)
        ranking = models_cache.mean_abs_importance(sample)
    except FraudLensError as exc:
        st.error(str(exc))
        return
    st.caption(models_cache.sample_text(sample))
    left, right = st.columns(2)
    left.plotly_chart(charts.importance_figure(
        ranking, "mean_abs_contribution", "Feature importance: mean |contribution|",
        f"Mean absolute contribution ({sample.units})"), key="explain_importance", config=PLOTLY_CONFIG)
    features = ranking["feature"].tolist()
    with right:
        feature = st.selectbox("Feature for the dependence plot", features, key="explain_feature",
                               format_func=lambda f: f"{f} — {sample.descriptions[f]}")
        frame = models_cache.dependence(sample, feature)
        st.plotly_chart(charts.dependence_figure(frame, feature, sample.descriptions[feature], sample.units),
                        key="explain_dependence", config=PLOTLY_CONFIG)


home = layout.ensure_frame("pages/explain.py")
st.title("Explain a score")
dataset = state.active_dataset()
options = models_cache.scored_refs(home)
if not dataset or not options:
    st.info("Nothing to explain yet: this page needs a dataset and a model trained on it. Load data on the "
            "Data page and train a model on the Models page.")
    st.page_link("pages/models.py", label="Go to the Models page")
    st.stop()
if st.session_state.get("explain_model") not in options:
    st.session_state["explain_model"] = models_cache.default_ref(home, dataset, scored_only=True)
ref = st.selectbox("Model version", options, key="explain_model",
                   format_func=lambda r: models_cache.ref_label(home, r),
                   help="Defaults to the champion of the active dataset's model.")
model_dataset = models_cache.model_dataset(home, ref)
if model_dataset and model_dataset != dataset:
    st.warning(f"This model was trained on '{model_dataset}'; transactions are looked up in the active dataset "
               f"'{dataset}'. Its features are computed the same way, so the columns must match.")
transaction_id = draw_finder(home, ref, dataset, model_dataset)
if transaction_id:
    draw_transaction(home, dataset, ref, transaction_id)
else:
    st.info("Type a transaction id, or pick one of the highest-scored test transactions, to see why the model "
            "scored it as it did.")
draw_global(home, ref)
