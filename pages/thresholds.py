"""Thresholds: choose a model version's alert threshold against precision, recall, the team's
workload and money, then propose it with a reason.

Everything below the model choice is one fragment: moving the slider, changing a cost or running
an optimiser reruns only that panel, on a threshold table built once per version.
"""

from __future__ import annotations

import math

import streamlit as st

from fraudlens import charts_models as charts
from fraudlens.errors import FraudLensError
from fraudlens.operating import Costs, ThresholdInputs
from fraudlens.ui import auth, layout, models_cache, state

PAGE = "thresholds"
THRESHOLD = "thresholds_threshold"
NOTE = "thresholds_note"
MISSED_MODES = {"amount": "The fraud's amount", "fixed": "A fixed amount per fraud"}
PLOTLY_CONFIG = {"displaylogo": False}


def pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1%}"


def money(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:,.0f}"


def reset_threshold() -> None:
    st.session_state.pop(THRESHOLD, None)
    st.session_state.pop(NOTE, None)


def costs() -> Costs:
    review = float(st.session_state.get("thresholds_cost_review", 5.0))
    if st.session_state.get("thresholds_missed_mode", "amount") == "amount":
        return Costs(review, "amount")
    return Costs(review, float(st.session_state.get("thresholds_cost_missed", 500.0)))


def apply_optimiser(inputs: ThresholdInputs, goal: str, target_key: str | None) -> None:
    """Button callback: run an optimiser and move the slider to what it found."""
    target = float(st.session_state.get(target_key, 0.0)) if target_key else 0.0
    found = models_cache.optimise(inputs, goal, target, costs())
    if found.point is not None:
        st.session_state[THRESHOLD] = float(found.point.threshold)
    st.session_state[NOTE] = (found.point is not None, found.message)


def draw_planning_inputs() -> None:
    st.markdown("**Planning inputs**")
    cols = st.columns(4)
    cols[0].number_input("Team capacity (alerts per day)", min_value=0.0, value=50.0, step=5.0, format="%.0f",
                         key="thresholds_capacity", help="How many alerts the team can review in a day.")
    cols[1].number_input("Cost of reviewing one alert (PEN)", min_value=0.0, value=5.0, step=1.0,
                         key="thresholds_cost_review", help="Analyst time per alert, in soles.")
    cols[2].radio("Cost of a missed fraud", list(MISSED_MODES), format_func=MISSED_MODES.get,
                  key="thresholds_missed_mode")
    cols[3].number_input("Fixed cost per missed fraud (PEN)", min_value=0.0, value=500.0, step=50.0, format="%.0f",
                         key="thresholds_cost_missed",
                         disabled=st.session_state.get("thresholds_missed_mode", "amount") == "amount",
                         help="Used when a missed fraud costs a fixed amount rather than its own amount.")


def draw_optimisers(inputs: ThresholdInputs) -> None:
    st.markdown("**Find a threshold**")
    cols = st.columns(4)
    cols[0].number_input("Target precision (%)", min_value=1.0, max_value=100.0, value=80.0, step=5.0,
                         format="%.0f", key="thresholds_target_precision")
    cols[0].button("Highest recall at this precision", key="thresholds_opt_precision",
                   on_click=apply_optimiser, args=(inputs, "precision", "thresholds_target_precision"))
    cols[1].number_input("Target recall (%)", min_value=1.0, max_value=100.0, value=70.0, step=5.0,
                         format="%.0f", key="thresholds_target_recall")
    cols[1].button("Highest precision at this recall", key="thresholds_opt_recall",
                   on_click=apply_optimiser, args=(inputs, "recall", "thresholds_target_recall"))
    cols[2].caption(f"Alert budget: the team's capacity, "
                    f"{st.session_state.get('thresholds_capacity', 50.0):,.0f} alerts per day.")
    cols[2].button("Most frauds within the budget", key="thresholds_opt_capacity",
                   on_click=apply_optimiser, args=(inputs, "capacity", "thresholds_capacity"))
    cols[3].caption("Lowest expected cost with the costs above.")
    cols[3].button("Lowest cost", key="thresholds_opt_cost", on_click=apply_optimiser,
                   args=(inputs, "cost", None))


def draw_numbers(panel, capacity: float) -> None:
    p, bands = panel.point, charts.bands_text(panel.bands)
    row = st.columns(4)
    row[0].metric("Alerts per day", f"{p.alerts_per_day:,.1f}", border=True,
                  delta=models_cache.capacity_delta(p, capacity), delta_color="inverse",
                  help=f"{p.alerts:,} alerts over the days of the test window. Under it: how many more (+) or "
                       "fewer (−) alerts a day than the team's capacity.")
    row[1].metric("Precision", pct(p.precision), border=True,
                  help=f"Share of alerts that are fraud. 95% bootstrap interval: {bands['precision']}.")
    row[2].metric("Recall", pct(p.recall), border=True,
                  help=f"Share of frauds that get an alert. 95% bootstrap interval: {bands['recall']}.")
    row[3].metric("F1", "n/a" if math.isnan(p.f1) else f"{p.f1:.3f}", border=True,
                  help="Harmonic mean of precision and recall.")
    row = st.columns(4)
    row[0].metric("Fraud caught (PEN)", money(p.fraud_amount_caught), border=True,
                  help="Amount of the frauds that get an alert (test window).")
    row[1].metric("Fraud missed (PEN)", money(p.fraud_amount_missed), border=True,
                  help="Amount of the frauds below the threshold (test window).")
    row[2].metric("Expected cost (PEN)", money(p.expected_cost), border=True,
                  help="Reviews × review cost + cost of the missed frauds, over the test window.")
    row[3].metric("Frauds caught", f"{p.tp:,} of {p.tp + p.fn:,}", border=True,
                  help=f"{p.fp:,} false alarms among {p.alerts:,} alerts.")
    st.caption(f"95% bootstrap intervals ({panel.bands.n_boot} resamples): precision {bands['precision']}, "
               f"recall {bands['recall']}. Panel computed in {1000 * panel.seconds:.0f} ms.")
    if models_cache.over_capacity(p, capacity):
        st.warning(f"This threshold gives {p.alerts_per_day:,.1f} alerts per day, more than the team's "
                   f"capacity of {capacity:,.0f}. Raise the threshold or use 'Most frauds within the budget'.")


def draw_charts(panel, capacity: float) -> None:
    left, right = st.columns(2)
    left.plotly_chart(charts.threshold_pr_figure(panel.curve, panel.point), key="thresholds_pr",
                      config=PLOTLY_CONFIG)
    right.plotly_chart(charts.threshold_metrics_figure(panel.curve, panel.point, panel.bands),
                       key="thresholds_metrics", config=PLOTLY_CONFIG)
    left, right = st.columns(2)
    left.plotly_chart(charts.confusion_figure(panel.point), key="thresholds_confusion", config=PLOTLY_CONFIG)
    right.plotly_chart(charts.alerts_figure(panel.curve, panel.point, capacity), key="thresholds_alerts",
                       config=PLOTLY_CONFIG)
    left, right = st.columns(2)
    left.plotly_chart(charts.money_figure(panel.point), key="thresholds_money", config=PLOTLY_CONFIG)
    right.plotly_chart(charts.cost_figure(panel.curve, panel.point, panel.best_cost), key="thresholds_cost",
                       config=PLOTLY_CONFIG)


def draw_save(home, inputs: ThresholdInputs, panel) -> None:
    st.subheader("Propose this operating point")
    st.caption(f"A new live threshold for {inputs.name} v{inputs.version} takes effect only when a second "
               f"person with the analyst or admin role approves it on the Approvals page (four eyes). "
               f"Proposed as {models_cache.user_label()}; a comment is required.")
    with st.form("thresholds_save_form", clear_on_submit=True, border=False):
        comment = st.text_area("Why this threshold?", key="thresholds_comment", max_chars=1000, height=80,
                               placeholder="e.g. Matches the team's 50 reviews a day; discussed at the "
                                           "risk committee of 12 May")
        saved = st.form_submit_button("Propose operating point", type="primary")
    if saved:
        if not comment.strip():
            st.error("Write a comment first: say why this threshold (the approver and the audit log read it).")
        else:
            try:
                proposal = models_cache.propose_point(home, inputs.ref, panel.point, comment)
            except FraudLensError as exc:
                st.error(str(exc))
            else:
                st.success(f"Proposal #{proposal.id}: threshold {panel.point.threshold:.4f} for {inputs.name} "
                           f"v{inputs.version}, waiting for a second person's approval.")
    draw_pending(home, inputs)
    history = models_cache.saved_points(home, inputs.name)
    st.markdown(f"**Approved operating points of {inputs.name}** (newest first; the newest of a version is "
                "its live threshold)")
    if history.empty:
        st.caption("None yet.")
        return
    st.dataframe(history, hide_index=True, key="thresholds_history",
                 column_config={
                     "threshold": st.column_config.NumberColumn(format="%.4f"),
                     "precision": st.column_config.NumberColumn(format="percent"),
                     "recall": st.column_config.NumberColumn(format="percent"),
                     "alerts per day": st.column_config.NumberColumn(format="%.1f"),
                     "comment": st.column_config.TextColumn(width="large"),
                 })


def draw_pending(home, inputs: ThresholdInputs) -> None:
    pending = models_cache.pending_points(home, inputs.name)
    if pending.empty:
        return
    st.markdown(f"**Waiting for approval** ({len(pending)})")
    st.dataframe(pending, hide_index=True, key="thresholds_pending",
                 column_config={"threshold": st.column_config.NumberColumn(format="%.4f"),
                                "comment": st.column_config.TextColumn(width="large")})
    auth.page_link("pages/approvals.py", "Open the Approvals page")


@st.fragment
def threshold_panel(home, inputs: ThresholdInputs) -> None:
    """The whole interactive panel; reruns alone when one of its widgets changes."""
    st.slider("Alert threshold: transactions scoring at or above it raise an alert", min_value=0.0,
              max_value=1.0, step=0.001, format="%.4f", key=THRESHOLD,
              help="Arrow keys move it by 0.001, Page Up/Down by 0.1. The buttons under the numbers find "
                   "a threshold for a target.")
    note = st.session_state.get(NOTE)
    if note:
        (st.success if note[0] else st.warning)(note[1])
    capacity = float(st.session_state.get("thresholds_capacity", 50.0))
    try:
        panel = models_cache.panel(inputs, float(st.session_state[THRESHOLD]), costs())
    except FraudLensError as exc:
        st.error(str(exc))
        return
    draw_numbers(panel, capacity)
    draw_optimisers(inputs)
    draw_planning_inputs()
    draw_charts(panel, capacity)
    draw_save(home, inputs, panel)


home = layout.ensure_frame("pages/thresholds.py")
st.title("Alert threshold")
st.caption("Pick the score above which a transaction raises an alert and see what it means on the model's "
           "test window: alerts per day, precision, recall, fraud amount caught and cost.")
options = models_cache.scored_refs(home)
if not options:
    st.info("No trained model yet. Train one on the Models page, then come back to set its threshold.")
    st.page_link("pages/models.py", label="Go to the Models page")
    st.stop()
if st.session_state.get("thresholds_model") not in options:
    st.session_state["thresholds_model"] = models_cache.default_ref(home, state.active_dataset(), scored_only=True)
ref = st.selectbox("Model version", options, key="thresholds_model", on_change=reset_threshold,
                   format_func=lambda r: models_cache.ref_label(home, r),
                   help="Defaults to the champion of the active dataset's model.")
try:
    inputs = models_cache.threshold_inputs(home, ref)
    live = models_cache.live_threshold(home, ref)
except FraudLensError as exc:
    st.error(str(exc))
    st.stop()
st.caption(models_cache.window_text(home, inputs))
if THRESHOLD not in st.session_state:
    st.session_state[THRESHOLD] = live if live is not None else 0.5
if live is not None:
    st.caption(f"Live threshold of this version: **{live:.4f}** (the last one approved). The slider starts there.")
threshold_panel(home, inputs)
