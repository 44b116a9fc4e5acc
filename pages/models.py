"""Models: train a model in the background, compare versions, inspect one (calibration, feature
importance, catalogue, model card), make it the champion, or import an XGBoost model file."""

from __future__ import annotations

from datetime import date

import streamlit as st

from fraudlens import charts_models as charts
from fraudlens.errors import FraudLensError
from fraudlens.train import KINDS, Windows
from fraudlens.ui import auth, layout, models_cache, state

PAGE = "models"
JOB = "models_job"
PLOTLY_CONFIG = {"displaylogo": False}
ROW_PX = 35


def table_height(rows: int, most: int = 12) -> int:
    return ROW_PX * (min(rows, most) + 1) + 3


# ---------------------------------------------------------------------------- training

def draw_train_form(home, dataset: str | None) -> None:
    if not dataset:
        st.info("Load a dataset on the Data page first; models are trained on the active dataset.")
        return
    st.caption(f"Trains on the active dataset **{dataset}** with point-in-time features and a time-ordered "
               "split: train window, a gap as long as the label delay, then the test window.")
    left, middle, right = st.columns(3)
    kind = left.selectbox("Model kind", KINDS, key="models_kind", format_func=models_cache.KIND_NAMES.get)
    name = middle.text_input("Model name", key="models_name", max_chars=63, placeholder=f"{dataset}_{kind}",
                             help="A letter, then letters, digits or _. Training under an existing name "
                                  "adds a version to it.")
    delay = right.number_input("Label delay (days)", min_value=0, max_value=90, value=7, step=1,
                               key="models_delay",
                               help="How long a fraud takes to be confirmed; features only use labels "
                                    "this old, and the test window starts this long after training ends.")
    left, right = st.columns(2)
    tune = left.checkbox("Tune hyper-parameters (several times slower)", key="models_tune",
                         help="Searches the model's settings on time-series folds of the training window.")
    custom = right.toggle("Choose the windows myself", key="models_custom_windows")
    windows = None
    if custom:
        windows = draw_windows(home, dataset, int(delay))
        if windows is None:
            return
    chosen = (name or "").strip() or f"{dataset}_{kind}"
    running = models_cache.running_jobs()
    if running:
        st.info(f"{running[0].label} for {running[0].owner or 'someone'} is under way "
                f"({running[0].fraction:.0%}); one model trains at a time.")
    if st.button(f"Train '{chosen}'", key="models_train", type="primary", disabled=bool(running)):
        try:
            st.session_state[JOB] = models_cache.start_training(home, dataset, kind, chosen, windows, int(delay),
                                                                bool(tune))
        except FraudLensError as exc:
            st.error(str(exc))


def draw_windows(home, dataset: str, delay: int) -> Windows | None:
    try:
        default = models_cache.default_windows(home, dataset, delay)
        first, last = models_cache.dataset_span(home, dataset)
    except FraudLensError as exc:
        st.error(str(exc))
        return None
    cols = st.columns(4)
    values: dict[str, date] = {}
    for col, field, label in zip(cols, ("train_from", "train_until", "test_from", "test_until"),
                                 ("Train from", "Train until", "Test from", "Test until"), strict=True):
        values[field] = col.date_input(label, value=getattr(default, field), min_value=first, max_value=last,
                                       key=f"models_{field}", format="YYYY-MM-DD")
    problem = models_cache.windows_problem(values, delay)
    if problem:
        st.error(problem)
        return None
    return Windows(**values)


@st.fragment(run_every=1.0)
def job_progress() -> None:
    """Polls the background job once a second; reruns the page when it has finished."""
    status = models_cache.job_status(st.session_state.get(JOB))
    if status is None or not status.active:
        st.rerun(scope="app")
    st.progress(status.fraction, text=f"{status.label}: {status.message} ({status.seconds:.0f} s)")
    st.caption("Training runs in the background: you can keep using the app; this bar updates every second.")


def draw_job() -> None:
    status = models_cache.job_status(st.session_state.get(JOB))
    if status is None:
        return
    if status.active:
        job_progress()
    elif status.state == "done":
        st.success(models_cache.job_result_text(status))
    else:
        st.error(f"{status.label} failed: {status.error}")


# ---------------------------------------------------------------------------- comparing

def draw_leaderboard(home) -> None:
    board = models_cache.leaderboard(home)
    st.dataframe(
        board.drop(columns=["ref"]), hide_index=True, key="models_leaderboard", height=table_height(len(board)),
        column_config={
            "version": st.column_config.NumberColumn(width="small"),
            "AP": st.column_config.NumberColumn(format="%.3f", help="Average precision on the test window "
                                                "(area under the precision-recall curve); higher is better."),
            "ROC AUC": st.column_config.NumberColumn(format="%.3f", help="Area under the ROC curve; higher is better."),
            "Brier": st.column_config.NumberColumn(format="%.4f", help="Mean squared error of the scores as "
                                                   "probabilities; lower is better."),
            "train rows": st.column_config.NumberColumn(format="localized"),
            "test rows": st.column_config.NumberColumn(format="localized"),
            "created": st.column_config.TextColumn(f"created ({models_cache.timezone_name()})"),
            "champion": st.column_config.CheckboxColumn(help="The version used when no version is named."),
        })


def draw_compare(home, scored: list[str]) -> None:
    st.subheader("Compare versions on their test windows")
    current = st.session_state.get("models_compare")
    if current is None:
        st.session_state["models_compare"] = models_cache.default_compare(home, scored)
    else:  # a version may have gone since the last run
        st.session_state["models_compare"] = [r for r in current if r in scored]
    chosen = st.multiselect("Versions", scored, key="models_compare", max_selections=6,
                            format_func=lambda r: models_cache.ref_label(home, r))
    if not chosen:
        st.caption("Pick one or more versions to draw their curves.")
        return
    try:
        found = {models_cache.short_label(r): models_cache.curves(home, r) for r in chosen}
        rates = {models_cache.short_label(r): models_cache.fraud_rate(home, r) for r in chosen}
    except FraudLensError as exc:
        st.error(str(exc))
        return
    left, right = st.columns(2)
    left.plotly_chart(charts.roc_figure(found), key="models_roc", config=PLOTLY_CONFIG)
    right.plotly_chart(charts.pr_figure(found, rates), key="models_pr", config=PLOTLY_CONFIG)
    st.caption("Each version is scored on its own test window; versions trained with the same windows on the "
               "same dataset compare like for like.")


# ---------------------------------------------------------------------------- one version

def draw_inspect(home, all_refs: list[str]) -> None:
    st.subheader("Inspect a version")
    if st.session_state.get("models_inspect") not in all_refs:
        st.session_state["models_inspect"] = models_cache.default_ref(home, state.active_dataset())
    ref = st.selectbox("Version", all_refs, key="models_inspect",
                       format_func=lambda r: models_cache.ref_label(home, r))
    version = models_cache.version_of(home, ref)
    imported = version is not None and not models_cache.has_test_scores(version)
    left, right = st.columns(2)
    with left:
        if imported:
            st.caption("This imported model was not evaluated on a test window, so it has no calibration curve.")
        else:
            try:
                cal = models_cache.calibration(home, ref)
            except FraudLensError as exc:
                st.error(str(exc))
            else:
                st.plotly_chart(charts.calibration_figure(cal, models_cache.short_label(ref)),
                                key="models_calibration", config=PLOTLY_CONFIG)
                st.caption("Points on the diagonal: a score of 30% means about 30% of such transactions are "
                           "fraud. The numbers are the transactions in each bin: bins with few are noisy.")
    with right:
        draw_importance(home, ref, imported)
    draw_champion(home, ref)
    st.markdown("**Features of this version**")
    try:
        table = models_cache.catalogue(home, ref)
        card = models_cache.model_card(home, ref)
    except FraudLensError as exc:
        st.error(str(exc))
        return
    st.dataframe(table, hide_index=True, key="models_catalogue", height=table_height(len(table), most=10),
                 column_config={"description": st.column_config.TextColumn(width="large"),
                                "formula": st.column_config.TextColumn(width="medium")})
    with st.expander("Model card (what it is for, data, metrics, limits)"):
        st.markdown(card)


def draw_importance(home, ref: str, imported: bool) -> None:
    on = st.toggle("Show feature importance", key="models_importance",
                   help="Mean absolute contribution on up to 2,000 test transactions (a few seconds the first "
                        "time), and XGBoost's gain for XGBoost models.")
    version = models_cache.version_of(home, ref)
    if not on:
        st.caption("Switch on to rank the features by their mean absolute contribution to the scores"
                   + (", and by XGBoost's gain." if version and version.kind.endswith("xgboost") else "."))
        return
    try:
        if not imported:
            sample = models_cache.sample_contributions(home, ref)
            ranking = models_cache.mean_abs_importance(sample)
            st.plotly_chart(charts.importance_figure(
                ranking, "mean_abs_contribution", "Feature importance: mean |contribution|",
                f"Mean absolute contribution ({sample.units})"), key="models_importance_shap",
                config=PLOTLY_CONFIG)
            st.caption(models_cache.sample_text(sample))
        if version is not None and version.kind.endswith("xgboost"):
            gain = models_cache.xgboost_gain(home, ref)
            st.plotly_chart(charts.importance_figure(
                gain, "gain", "XGBoost gain: loss reduction of the splits on each feature",
                "Mean gain per split"), key="models_importance_gain", config=PLOTLY_CONFIG)
    except FraudLensError as exc:
        st.error(str(exc))


def draw_champion(home, ref: str) -> None:
    version = models_cache.version_of(home, ref)
    if version is None:
        return
    st.markdown(f"**Champion of {version.name}**")
    history = models_cache.champion_history(home, version.name)
    if version.champion:
        st.caption(f"v{version.version} is the champion of {version.name}: scoring, thresholds and explanations "
                   "use it when no version is named.")
    elif (pending := models_cache.pending_champion(home, version.name, version.version)) is not None:
        st.info(f"Proposal #{pending.id} by {pending.proposed_by} to make v{version.version} the champion is "
                "waiting for a second person's approval.")
        auth.page_link("pages/approvals.py", "Open the Approvals page")
    else:
        with st.form("models_champion_form", clear_on_submit=True, border=False):
            comment = st.text_input("Why make it the champion?", key="models_champion_comment", max_chars=500,
                                    placeholder="e.g. Higher AP on the same test window; reviewed with the team")
            submitted = st.form_submit_button(f"Propose v{version.version} as champion of {version.name}")
        st.caption("The change takes effect when a second person with the analyst or admin role approves it "
                   "on the Approvals page (four eyes).")
        if submitted:
            if not comment.strip():
                st.error("Write why: the approver and the audit log read the comment.")
            else:
                try:
                    proposal = models_cache.propose_champion(home, ref, comment.strip())
                except FraudLensError as exc:
                    st.error(str(exc))
                else:
                    st.session_state["models_notice"] = (
                        f"Proposal #{proposal.id}: v{version.version} as champion of {version.name}, waiting "
                        "for a second person's approval.")
                    st.rerun()
    if not history.empty:
        st.dataframe(history, hide_index=True, key="models_champion_history", height=table_height(len(history), 5),
                     column_config={"comment": st.column_config.TextColumn(width="large")})


# ---------------------------------------------------------------------------- import

def draw_import(home) -> None:
    st.caption("Register an XGBoost model trained elsewhere, saved with `Booster.save_model` as .ubj or .json "
               "(pickles are never loaded), with the list of its features in order: a text file with one "
               "name a line, or a JSON list.")
    left, right = st.columns(2)
    model_file = left.file_uploader("Model file (.ubj or .json)", type=["ubj", "json"], key="models_import_file")
    features_file = right.file_uploader("Feature list (.txt or .json)", type=["txt", "json"],
                                        key="models_import_features")
    name = st.text_input("Register as model", key="models_import_name", max_chars=63, placeholder="external_xgb")
    ready = model_file is not None and features_file is not None and bool((name or "").strip())
    if st.button("Import", key="models_import", disabled=not ready,
                 help=None if ready else "Upload both files and give the model a name."):
        try:
            done = models_cache.import_model(home, model_file, features_file, name.strip(),
                                             st.session_state.get("active_dataset"))
        except FraudLensError as exc:
            st.error(str(exc))
        else:
            if done.evaluated:
                st.success(f"Imported as {done.ref} with {done.features} features and evaluated on the active "
                           "dataset's test window: it has curves here and can be used on Thresholds and Explain.")
            else:
                st.success(f"Imported as {done.ref} with {done.features} features. Its feature names are not all "
                           "FraudLens catalogue features, so it has no test window and no curves here.")


# ---------------------------------------------------------------------------- the page

home = layout.ensure_frame("pages/models.py")
st.title("Models")
dataset = state.active_dataset()
notice = st.session_state.pop("models_notice", None)
if notice:
    st.success(notice)
all_refs = models_cache.refs(home)
with st.expander("Train a new model", expanded=not all_refs):
    draw_train_form(home, dataset)
draw_job()
with st.expander("Import an XGBoost model"):
    draw_import(home)
st.subheader("Leaderboard")
if not all_refs:
    st.info("No model yet. Train one above (XGBoost is a good first choice), or import an XGBoost model file.")
    st.stop()
draw_leaderboard(home)
scored = models_cache.scored_refs(home)
if scored:
    draw_compare(home, scored)
draw_inspect(home, all_refs)
