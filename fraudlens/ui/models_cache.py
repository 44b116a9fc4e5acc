"""Cached library calls of the model pages (Models, Thresholds, Explain), and the training jobs.

Keys: every cached function takes the data folder as text, and a model version as
``(name, version, stamp)`` where the stamp is the version's metadata file change time, so a
model deleted and trained again under the same number never hits an old entry. The listing of
the registry is keyed by a cheap stamp of its folders and champion files: a new version or a new
champion shows up on the next run without clearing anything. Results are ready to draw.

Large shared read-only objects (a version's threshold table) use ``st.cache_resource``; nothing
here ever mutates one. Training runs in a background thread of one process-wide
:class:`fraudlens.jobs.Jobs` (``st.cache_resource``), so a page polls it instead of blocking.
"""

from __future__ import annotations

import dataclasses
import math
import os
from datetime import date, datetime
from pathlib import Path

import pandas as pd
import streamlit as st

from fraudlens import audit, explain, governance, history, importance, jobs, labels, metrics, model_import
from fraudlens import operating, registry
from fraudlens import train as training
from fraudlens.errors import FraudLensError, ModelError
from fraudlens.store import get_store
from fraudlens.ui import auth, cached, upload

TTL = 600
TOP_SCORED = 50
KIND_NAMES = {"xgboost": "XGBoost", "random_forest": "Random forest", "logistic": "Logistic regression",
              "external_xgboost": "XGBoost (imported)"}


def cfg_for(home: str | Path):
    return cached.cfg_for(home)


# ---------------------------------------------------------------------------- who

def user_label() -> str:
    """Who the audit logs record (see :func:`auth.user`)."""
    return auth.user()


# ---------------------------------------------------------------------------- the registry

def _registry_stamp(home: Path) -> tuple:
    """Model names, version folders and champion/history change times: cheap, changes with
    every save, champion change and import."""
    root = registry.models_root(home)
    if not root.is_dir():
        return ()
    found = []
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if not entry.is_dir(follow_symlinks=False):
            continue
        folder = Path(entry.path)
        marks = []
        for name in (registry.CHAMPION, registry.HISTORY):
            try:
                marks.append((folder / name).stat().st_mtime_ns)
            except FileNotFoundError:
                marks.append(0)
        versions = tuple(sorted(e.name for e in os.scandir(folder) if e.name.startswith("v")))
        found.append((entry.name, versions, *marks))
    return tuple(found)


def versions(home: Path) -> list[registry.ModelVersion]:
    """Every version of every model (leaderboard order: name, then version)."""
    return _versions(str(home), _registry_stamp(home))


@st.cache_data(ttl=TTL, max_entries=16, show_spinner=False)
def _versions(home: str, stamp: tuple) -> list[registry.ModelVersion]:
    return registry.list_models(home)


def refs(home: Path) -> list[str]:
    return [v.ref for v in versions(home)]


def version_of(home: Path, ref: str) -> registry.ModelVersion | None:
    return next((v for v in versions(home) if v.ref == ref), None)


def default_ref(home: Path, dataset: str | None, *, scored_only: bool = False) -> str | None:
    """The version a page opens on: the champion of a model of ``dataset``, else any champion,
    else the latest version (only versions with test-window scores if ``scored_only``)."""
    found = [v for v in versions(home) if not scored_only or has_test_scores(v)]
    for pick in (lambda v: v.champion and v.dataset == dataset, lambda v: v.champion, lambda v: True):
        chosen = [v for v in found if pick(v)]
        if chosen:
            return max(chosen, key=lambda v: (v.created_at, v.version)).ref
    return None


def ref_label(home: Path, ref: str) -> str:
    """``demo_xgboost v2 · XGBoost · demo · champion`` for select boxes."""
    v = version_of(home, ref)
    if v is None:
        return ref
    parts = [f"{v.name} v{v.version}", KIND_NAMES.get(v.kind, v.kind)]
    if v.dataset:
        parts.append(f"dataset {v.dataset}")
    if v.champion:
        parts.append("★ champion")
    return " · ".join(parts)


def _version_stamp(home: Path, ref: str) -> tuple[str, int, int]:
    name, version = operating.resolve(home, ref)
    folder = registry.models_root(home) / name / registry.version_dir_name(version)
    try:
        mtime = (folder / registry.METADATA).stat().st_mtime_ns
    except FileNotFoundError as exc:
        raise ModelError(f"Model {name} v{version} is gone from the registry; choose another.") from exc
    return name, version, mtime


def leaderboard(home: Path) -> pd.DataFrame:
    """One row a version: model, version, kind, dataset, AP, ROC AUC, Brier, rows, created, champion."""
    return _leaderboard(str(home), _registry_stamp(home))


@st.cache_data(ttl=TTL, max_entries=16, show_spinner=False)
def _leaderboard(home: str, stamp: tuple) -> pd.DataFrame:
    tz = cached.timezone_name()
    rows = []
    for v in registry.list_models(home):
        s = registry.summary(v)
        try:
            meta = registry.read_metadata(v.name, v.version, home)
        except ModelError:
            meta = {}
        rows.append({
            "model": v.name, "version": v.version, "ref": v.ref, "kind": KIND_NAMES.get(v.kind, v.kind),
            "dataset": v.dataset or "",
            "AP": s.get("average_precision"), "ROC AUC": s.get("roc_auc"), "Brier": s.get("brier"),
            "train rows": meta.get("rows_train"), "test rows": meta.get("rows_test"),
            "created": cached.local_time(v.created_at, tz), "champion": v.champion,
        })
    columns = ["model", "version", "ref", "kind", "dataset", "AP", "ROC AUC", "Brier", "train rows",
               "test rows", "created", "champion"]
    return pd.DataFrame(rows, columns=columns)


def metadata(home: Path, ref: str) -> dict:
    return _metadata(str(home), *_version_stamp(home, ref))


@st.cache_data(ttl=TTL, max_entries=64, show_spinner=False)
def _metadata(home: str, name: str, version: int, stamp: int) -> dict:
    return registry.read_metadata(name, version, home)


def feature_kinds(home: Path, ref: str) -> dict[str, str]:
    """feature name -> type (numeric, count, binary) of a version."""
    return {f["name"]: f.get("type", "") for f in catalogue(home, ref).to_dict("records")}


def catalogue(home: Path, ref: str) -> pd.DataFrame:
    """The feature catalogue of a version: name, description, formula, type, sources, uses labels."""
    return _catalogue(str(home), *_version_stamp(home, ref))


@st.cache_data(ttl=TTL, max_entries=32, show_spinner=False)
def _catalogue(home: str, name: str, version: int, stamp: int) -> pd.DataFrame:
    rows = registry.read_features(name, version, home)
    frame = pd.DataFrame([{
        "name": f.get("name", ""), "description": f.get("description", ""), "formula": f.get("formula", ""),
        "type": f.get("type", ""), "sources": ", ".join(f.get("sources") or []),
        "uses labels": bool(f.get("uses_labels", False)),
    } for f in rows], columns=["name", "description", "formula", "type", "sources", "uses labels"])
    return frame


def model_card(home: Path, ref: str) -> str:
    return _model_card(str(home), *_version_stamp(home, ref))


@st.cache_data(ttl=TTL, max_entries=32, show_spinner=False)
def _model_card(home: str, name: str, version: int, stamp: int) -> str:
    return registry.model_card(name, version, home)


def champion_history(home: Path, name: str) -> pd.DataFrame:
    """Champion changes of ``name``, newest first, times in the app's time zone."""
    return _champion_history(str(home), name, _registry_stamp(home))


@st.cache_data(ttl=TTL, max_entries=32, show_spinner=False)
def _champion_history(home: str, name: str, stamp: tuple) -> pd.DataFrame:
    tz = cached.timezone_name()
    rows = [{"when": cached.local_time(e.get("at"), tz, seconds=True), "version": e.get("version"),
             "previous": e.get("previous"), "user": e.get("user"), "comment": e.get("comment")}
            for e in reversed(registry.history(name, home))]
    return pd.DataFrame(rows, columns=["when", "version", "previous", "user", "comment"])


def propose_champion(home: Path, ref: str, comment: str) -> governance.Proposal:
    """Propose the version as champion, as the current user (takes effect when approved)."""
    name, version = operating.resolve(home, ref)
    return governance.propose("champion", name, version, {}, comment, user_label(), cfg_for(home))


def pending_champion(home: Path, name: str, version: int) -> governance.Proposal | None:
    """The pending proposal to make ``version`` the champion, if any."""
    return next((p for p in governance.pending_for(name, cfg_for(home)) if p.kind == "champion" and p.version == version), None)


# ---------------------------------------------------------------------------- test-window results

# A test window holds up to millions of rows (2M for a model trained on 10M): each figure reads
# the columns it needs and keeps only its small result in the cache.
_LABEL_SCORE = ["fraudulent_activity", "score"]


def curves(home: Path, ref: str) -> metrics.Curves:
    return _curves(str(home), *_version_stamp(home, ref))


@st.cache_data(ttl=TTL, max_entries=32, show_spinner=False)
def _curves(home: str, name: str, version: int, stamp: int) -> metrics.Curves:
    frame = operating.read_test_scores(home, name, version, _LABEL_SCORE)
    return metrics.curves(frame["fraudulent_activity"].to_numpy(dtype=bool), frame["score"].to_numpy(dtype=float))


def calibration(home: Path, ref: str) -> metrics.Calibration:
    return _calibration(str(home), *_version_stamp(home, ref))


@st.cache_data(ttl=TTL, max_entries=32, show_spinner=False)
def _calibration(home: str, name: str, version: int, stamp: int) -> metrics.Calibration:
    frame = operating.read_test_scores(home, name, version, _LABEL_SCORE)
    return metrics.calibration(frame["fraudulent_activity"].to_numpy(dtype=bool),
                               frame["score"].to_numpy(dtype=float))


def fraud_rate(home: Path, ref: str) -> float:
    """The share of frauds in the version's test window (NaN when it is empty)."""
    return _fraud_rate(str(home), *_version_stamp(home, ref))


@st.cache_data(ttl=TTL, max_entries=32, show_spinner=False)
def _fraud_rate(home: str, name: str, version: int, stamp: int) -> float:
    labels = operating.read_test_scores(home, name, version, ["fraudulent_activity"])["fraudulent_activity"]
    return float(labels.mean()) if len(labels) else math.nan


def top_scored(home: Path, ref: str, n: int = TOP_SCORED) -> pd.DataFrame:
    """The ``n`` highest-scored test transactions of a version, highest first, local times."""
    return _top_scored(str(home), *_version_stamp(home, ref), n)


@st.cache_data(ttl=TTL, max_entries=16, show_spinner=False)
def _top_scored(home: str, name: str, version: int, stamp: int, n: int) -> pd.DataFrame:
    frame = operating.read_test_scores(home, name, version)
    top = frame.nlargest(n, "score").reset_index(drop=True)
    tz = cached.timezone_name()
    top["local_datetime"] = operating.local_times(top["transaction_datetime"], tz)
    return top


# ---------------------------------------------------------------------------- thresholds

def threshold_inputs(home: Path, ref: str) -> operating.ThresholdInputs:
    """The version's threshold table, built once and shared read-only by every session."""
    return _threshold_inputs(str(home), *_version_stamp(home, ref), cached.timezone_name())


@st.cache_resource(ttl=TTL, max_entries=8, show_spinner="Preparing the threshold table...")
def _threshold_inputs(home: str, name: str, version: int, stamp: int, tz: str) -> operating.ThresholdInputs:
    return operating.threshold_inputs(home, f"{name}@{version}", tz)


def has_test_scores(version) -> bool:
    """Trained versions, and imported ones evaluated on a dataset, carry test-window scores."""
    return (Path(version.path) / operating.TEST_SCORES).is_file()


def scored_refs(home: Path) -> list[str]:
    """Versions with test-window scores, newest model first."""
    return [v.ref for v in versions(home) if has_test_scores(v)]


def window_text(home: Path, inputs: operating.ThresholdInputs) -> str:
    """``Test window 2025-03-15 to 2025-04-01 (18 days): 3,883 transactions, 40 frauds ...``."""
    t = inputs.table
    windows = metadata(home, inputs.ref).get("windows") or {}
    if windows.get("test_from"):
        span = f"{windows['test_from']} to {windows['test_until']} (UTC dates, as trained; {t.n_days_:,} days)"
    else:
        span = f"{inputs.first_day} to {inputs.last_day} ({t.n_days_:,} days)"
    return (f"Test window {span}: {t.n_samples_:,} transactions, {t.n_positives_:,} frauds worth PEN "
            f"{t.fraud_amount_:,.0f}. The model never saw them in training; alerts per day are over "
            f"{timezone_name()} calendar days.")


def panel(inputs: operating.ThresholdInputs, threshold: float, costs: operating.Costs) -> operating.Panel:
    """One move of the slider (not cached: a few milliseconds on the shared table)."""
    return operating.panel(inputs, threshold, costs)


def optimise(inputs: operating.ThresholdInputs, goal: str, target: float,
             costs: operating.Costs) -> operating.Optimised:
    """An optimiser on the shared table; ``target`` in percent for precision and recall."""
    if goal in ("precision", "recall"):
        target = target / 100.0
    return operating.optimise(inputs.table, goal, target, costs)


def capacity_delta(point, capacity: float) -> str | None:
    """``+12.5 vs capacity of 50`` for the alerts-per-day tile: short enough for a quarter of the
    page; the sign gives the tile's arrow. None without a capacity."""
    if capacity <= 0 or math.isnan(point.alerts_per_day):
        return None
    return f"{point.alerts_per_day - capacity:+,.1f} vs capacity of {capacity:,.0f}"


def over_capacity(point, capacity: float) -> bool:
    return capacity > 0 and not math.isnan(point.alerts_per_day) and point.alerts_per_day > capacity


def propose_point(home: Path, ref: str, point, comment: str) -> governance.Proposal:
    """Propose ``point`` as the version's live operating point, as the current user."""
    name, version = operating.resolve(home, ref)
    return governance.propose("operating_point", name, version, {"threshold": float(point.threshold)},
                              comment, user_label(), cfg_for(home))


def pending_points(home: Path, name: str) -> pd.DataFrame:
    """Operating points of ``name`` waiting for approval, as a small table (read fresh: it is tiny)."""
    rows = [{"proposal": f"#{p.id}", "version": p.version, "threshold": p.payload["threshold"],
             "proposed by": p.proposed_by, "comment": p.comment}
            for p in governance.pending_for(name, cfg_for(home)) if p.kind == "operating_point"]
    return pd.DataFrame(rows, columns=["proposal", "version", "threshold", "proposed by", "comment"])


def saved_points(home: Path, name: str) -> pd.DataFrame:
    """The operating points saved for ``name``, newest first, as a table."""
    path = operating.log_path(home, name)
    try:
        mtime = path.stat().st_mtime_ns
    except FileNotFoundError:
        mtime = 0
    return _saved_points(str(home), name, mtime)


@st.cache_data(ttl=TTL, max_entries=32, show_spinner=False)
def _saved_points(home: str, name: str, mtime: int) -> pd.DataFrame:
    tz = cached.timezone_name()
    rows = [{
        "saved": cached.local_time(s.saved_at[:19], tz, seconds=True), "version": s.version,
        "threshold": s.point.threshold, "precision": s.point.precision, "recall": s.point.recall,
        "alerts per day": s.point.alerts_per_day, "user": s.user, "comment": s.comment,
    } for s in operating.saved_points(home, name)]
    return pd.DataFrame(rows, columns=["saved", "version", "threshold", "precision", "recall",
                                       "alerts per day", "user", "comment"])


def live_threshold(home: Path, ref: str) -> float | None:
    """The threshold last saved for this version, if any."""
    saved = operating.live_point(home, ref)
    return None if saved is None else float(saved.point.threshold)


# ---------------------------------------------------------------------------- explanations

def explanation(home: Path, dataset: str, ref: str, transaction_id: str) -> explain.Explanation:
    """explain_transaction, cached; ModelError for models FraudLens cannot explain (imported)."""
    return _explanation(str(home), dataset, *_version_stamp(home, ref), cached.stamp(_info(home, dataset)),
                        transaction_id)


def _info(home: Path, dataset: str):
    info = cached.dataset_info(home, dataset)
    if info is None:
        raise FraudLensError(f"There is no dataset '{dataset}'. Pick one in the sidebar.")
    return info


@st.cache_data(ttl=TTL, max_entries=64, show_spinner="Explaining the transaction...")
def _explanation(home: str, dataset: str, name: str, version: int, stamp: int, data_stamp: str,
                 transaction_id: str) -> explain.Explanation:
    meta = registry.read_metadata(name, version, home)
    if "feature_spec" not in meta:
        raise ModelError(f"Model {name} v{version} was imported: FraudLens does not know how to compute "
                         "its features, so it cannot explain its scores. Choose a model trained here.")
    return explain.explain_transaction(dataset, f"{name}@{version}", transaction_id, cfg=cfg_for(home),
                                       loaded=_loaded_model(home, name, version, stamp))


@st.cache_resource(ttl=TTL, max_entries=4, show_spinner=False)
def _loaded_model(home: str, name: str, version: int, stamp: int) -> registry.LoadedModel:
    """A model version verified against its signed manifest and loaded once per process (and
    again whenever its folder changes, ``stamp``); read-only afterwards."""
    return registry.load_model(name, version, home=home)


def label_now(home: Path, dataset: str, transaction_id: str) -> str:
    """The transaction's label with alert dispositions applied (read fresh: one small lookup)."""
    return label_word(labels.effective_label(dataset, transaction_id, cfg_for(home)))


def transaction(home: Path, dataset: str, transaction_id: str) -> dict:
    return _transaction(str(home), dataset, cached.stamp(_info(home, dataset)), transaction_id)


@st.cache_data(ttl=TTL, max_entries=64, show_spinner=False)
def _transaction(home: str, dataset: str, data_stamp: str, transaction_id: str) -> dict:
    return history.transaction(get_store(cfg_for(home)), dataset, transaction_id)


def timeline(home: Path, dataset: str, account_id: str, around: datetime, days: int,
             limit: int = 200) -> history.Timeline:
    return _timeline(str(home), dataset, cached.stamp(_info(home, dataset)), account_id, around, days, limit)


@st.cache_data(ttl=TTL, max_entries=64, show_spinner=False)
def _timeline(home: str, dataset: str, data_stamp: str, account_id: str, around: datetime, days: int,
              limit: int) -> history.Timeline:
    return history.account_timeline(get_store(cfg_for(home)), dataset, account_id, around, days, limit)


def sample_contributions(home: Path, ref: str, n: int = importance.SAMPLE_ROWS) -> importance.SampleContributions:
    """Contributions on a sample of the version's test window (seconds the first time)."""
    return _sample_contributions(str(home), *_version_stamp(home, ref), n)


@st.cache_data(ttl=TTL, max_entries=4, show_spinner="Computing contributions on a sample of the test window...")
def _sample_contributions(home: str, name: str, version: int, stamp: int, n: int) -> importance.SampleContributions:
    return importance.sample_contributions(f"{name}@{version}", n, cfg=cfg_for(home))


def xgboost_gain(home: Path, ref: str) -> pd.DataFrame:
    return _xgboost_gain(str(home), *_version_stamp(home, ref))


@st.cache_data(ttl=TTL, max_entries=16, show_spinner=False)
def _xgboost_gain(home: str, name: str, version: int, stamp: int) -> pd.DataFrame:
    return importance.xgboost_gain(f"{name}@{version}", cfg=cfg_for(home))


# ---------------------------------------------------------------------------- training

@st.cache_resource(show_spinner=False)
def training_jobs() -> jobs.Jobs:
    """The process-wide training jobs: one at a time, the last 20 remembered."""
    return jobs.Jobs(max_running=1, max_kept=20)


def default_windows(home: Path, dataset: str, label_delay_days: int) -> training.Windows:
    """The windows training would pick: the last fifth of the days to test, after the label gap."""
    info = _info(home, dataset)
    if not info.first or not info.last:
        raise ModelError(f"Dataset '{dataset}' has no transactions to train on.")
    first = datetime.fromisoformat(info.first).date()
    last = datetime.fromisoformat(info.last).date()
    return training.default_windows(first, last, label_delay_days)


def start_training(home: Path, dataset: str, kind: str, name: str, windows: training.Windows | None,
                   label_delay_days: int, tune: bool) -> str:
    """Start training in the background; returns the job id (JobsBusyError if one is running)."""
    registry.check_name(name)
    if kind not in training.KINDS:
        raise ModelError(f"The model kind must be one of {training.KINDS}. Got {kind!r} instead.")
    cfg = cfg_for(home)

    user = user_label()

    def work(progress):
        result = training.train(dataset, kind, name=name, windows=windows, label_delay_days=label_delay_days,
                                tune=tune, progress=progress, cfg=cfg)
        audit.record(user, audit.TRAIN, {"dataset": dataset, "model": result.name, "version": result.version,
                                         "kind": kind, "tune": tune, "windows": result.windows.to_dict(),
                                         "metrics": result.metrics}, cfg=cfg)
        return result

    label = f"Training {KIND_NAMES[kind]} '{name}' on {dataset}"
    return training_jobs().submit(label, work, owner=user)


def job_status(job_id: str | None) -> jobs.JobStatus | None:
    return training_jobs().status(job_id)


# ---------------------------------------------------------------------------- import

@dataclasses.dataclass(frozen=True)
class Imported:
    ref: str
    features: int
    evaluated: bool = False


def import_model(home: Path, model_file, features_file, name: str, dataset: str | None = None) -> Imported:
    """Register an uploaded XGBoost file (.ubj/.json) with its uploaded feature list.

    When every name is one of the dataset's catalogue features, the model is evaluated on that
    dataset's test window, so Thresholds and Explain can use it; otherwise it is only registered.
    """
    from fraudlens import features as feats

    names = model_import.parse_feature_list(features_file.getvalue(), features_file.name)
    path = upload.save_upload(home, model_file.name, model_file)
    try:
        known = set(feats.feature_names(feats.make_spec(get_store(cfg_for(home)), dataset))) if dataset else set()
        if dataset and set(names) <= known:
            saved = training.import_external(path, dataset, name, names, cfg=cfg_for(home))
            return Imported(saved.ref, len(names), evaluated=True)
        saved = registry.import_xgboost(path, name=name, feature_names=names, home=home)
    finally:
        upload.discard_upload(home, path)
    return Imported(saved.ref, len(names))


def timezone_name() -> str:
    return cached.timezone_name()


# ---------------------------------------------------------------------------- explain page text

def model_dataset(home: Path, ref: str) -> str | None:
    found = version_of(home, ref)
    return found.dataset if found else None


def label_word(value: object) -> str:
    """``fraud``, ``legitimate`` or ``not labelled`` for a label (bool, numpy bool, NA or None)."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return "not labelled"
    return "fraud" if bool(value) else "legitimate"


def top_scored_labels(top: pd.DataFrame) -> dict[str, str]:
    """transaction id -> ``T0001 · score 99.2% · PEN 1,250.00 · 2025-03-20 03:12 · fraud``."""
    out = {}
    for row in top.itertuples(index=False):
        label = label_word(row.fraudulent_activity)
        out[str(row.transaction_id)] = (f"{row.transaction_id} · score {row.score:.1%} · PEN "
                                        f"{row.transaction_amount:,.2f} · {row.local_datetime:%Y-%m-%d %H:%M} · {label}")
    return out


def transaction_facts(tx: dict) -> dict[str, str]:
    """The transaction's headline facts as text."""
    label_text = label_word(tx.get("fraudulent_activity"))
    parts = [f"Account **{tx['account_id']}**"]
    for key, name in (("transaction_type", "type"), ("channel", "channel"), ("merchant_id", "merchant"),
                      ("merchant_location", "location")):
        value = tx.get(key)
        if value is not None and value is not pd.NA and str(value) != "nan":
            parts.append(f"{name} **{value}**")
    return {
        "amount": f"PEN {tx['transaction_amount']:,.2f}",
        "label": label_text,
        "when": pd.Timestamp(tx["local_datetime"]).strftime("%Y-%m-%d %H:%M"),
        "details": ", ".join(parts) + ".",
        "account_id": str(tx["account_id"]),
    }


def alert_text(score: float, live: float | None) -> str:
    """Whether the score raises an alert at the version's live threshold, as a sentence."""
    if live is None:
        return "No threshold saved for this version yet: set one on the Thresholds page to see if it would alert."
    if score >= live:
        return f"**Raises an alert** at the live threshold {live:.4f} (score {score:.4f} ≥ threshold)."
    return f"**No alert** at the live threshold {live:.4f} (score {score:.4f} < threshold)."


def units_text(exp: explain.Explanation) -> str:
    if exp.units == "log-odds":
        return (f"Bars are in log-odds, the scale on which this model adds up its evidence: the base value "
                f"{exp.base:+.2f} (a score of {1 / (1 + math.exp(-exp.base)):.1%}) plus every bar gives "
                f"{exp.output:+.2f}, which is the score {exp.score:.1%}. The base value is the model's average "
                "output over its training data with frauds weighted up to balance the classes, so it is far "
                "above the real fraud rate; scores rank transactions rather than give probabilities. Values in "
                "the labels are in the transaction's own units (PEN, counts, hours).")
    return (f"Bars are in score units (0–1): the base value {exp.base:.3f} plus every bar gives {exp.output:.3f}, the "
            "score. Values in the labels are in the transaction's own units (PEN, counts, hours).")


def reasons(exp: explain.Explanation, kinds: dict[str, str], top: int = explain.TOP_REASONS) -> tuple[list[str], list[str]]:
    """Sentences for the features that raised the score most (the library's reason codes, in the
    same order) and those that lowered it most, with values in raw units (yes/no for flags)."""
    from fraudlens.charts_models import format_value

    def sentence(row) -> str:
        return f"{row.description}: **{format_value(row.value, kinds.get(row.feature))}**"

    table = exp.table
    up = [sentence(r) for r in table[table["contribution"] > 0].head(top).itertuples(index=False)]
    down = [sentence(r) for r in table[table["contribution"] < 0].head(3).itertuples(index=False)]
    return up, down


def timeline_text(line: history.Timeline) -> str:
    n = len(line.rows)
    frauds = int(line.rows["fraudulent_activity"].fillna(False).astype(bool).sum()) \
        if "fraudulent_activity" in line.rows else 0
    text = (f"{n:,} transactions of account {line.account_id} within {line.days} days either side "
            f"({frauds:,} labelled fraud); circled: this transaction. Hover a point for its details.")
    if line.truncated:
        text += f" More happened in that window: the {line.limit:,} closest in time are shown."
    return text


def mean_abs_importance(sample: importance.SampleContributions) -> pd.DataFrame:
    return importance.mean_abs_importance(sample)


def dependence(sample: importance.SampleContributions, feature: str) -> pd.DataFrame:
    return importance.dependence(sample, feature)


def sample_text(sample: importance.SampleContributions) -> str:
    frauds = int(sample.rows["fraudulent_activity"].fillna(False).astype(bool).sum())
    return (f"{len(sample.rows):,} transactions drawn at random from the {sample.test_rows:,} of the test window "
            f"({frauds:,} frauds) of {sample.name} v{sample.version}; contributions in {sample.units}.")


# ---------------------------------------------------------------------------- models page text

def short_label(ref: str) -> str:
    """``demo_xgboost@2`` -> ``demo_xgboost v2`` for legends."""
    name, _, version = ref.partition("@")
    return f"{name} v{version}" if version else name


def default_compare(home: Path, scored: list[str], most: int = 3) -> list[str]:
    """Champions first, then the newest versions, up to ``most``."""
    found = [v for v in versions(home) if v.ref in scored]
    champions = [v.ref for v in found if v.champion]
    newest = [v.ref for v in sorted(found, key=lambda v: (v.created_at, v.version), reverse=True)]
    return list(dict.fromkeys(champions + newest))[:most]


def running_jobs() -> list[jobs.JobStatus]:
    return training_jobs().running()


def dataset_span(home: Path, dataset: str) -> tuple[date, date]:
    """First and last (UTC) day of the dataset, the bounds of the window pickers."""
    info = _info(home, dataset)
    if not info.first or not info.last:
        raise ModelError(f"Dataset '{dataset}' has no transactions to train on.")
    return datetime.fromisoformat(info.first).date(), datetime.fromisoformat(info.last).date()


def windows_problem(values: dict[str, date], delay: int) -> str | None:
    """Why the chosen windows cannot be used, or None."""
    a, b, c, d = (values[k] for k in ("train_from", "train_until", "test_from", "test_until"))
    if not (a <= b < c <= d):
        return ("The windows must be in order: train from ≤ train until < test from ≤ test until. "
                f"Got {a} … {b}, then {c} … {d}.")
    if (c - b).days <= delay:
        return (f"Leave a gap longer than the label delay ({delay} days) between the end of training and the "
                f"start of the test window, or recent frauds would not be labelled yet. The gap is "
                f"{(c - b).days - 1} days.")
    return None


def job_result_text(status: jobs.JobStatus) -> str:
    r = status.result
    m = r.metrics
    return (f"Trained {r.name} v{r.version} ({KIND_NAMES.get(r.kind, r.kind)}) in {r.seconds:.0f} s: average "
            f"precision {m['average_precision']:.3f}, ROC AUC {m['roc_auc']:.3f} on {r.rows_test:,} test "
            f"transactions ({r.windows.test_from} to {r.windows.test_until}). Compare it below; make it the "
            "champion if it is better.")
