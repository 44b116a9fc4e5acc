"""Cached monitoring calls and the Monitoring page's tiles and sentences.

Keys: the data folder as text, the dataset's stamp (:func:`fraudlens.ui.cached.stamp`), a model
version as ``(name, version, metadata change time)``, and, for what analysts change (alerts,
dispositions, labels), a stamp of the operational database's files. No cached argument starts
with ``_``: Streamlit would leave it out of the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from fraudlens import missed, monitor, operating, ops, registry
from fraudlens.errors import FraudLensError, ModelError
from fraudlens.ui import cached, models_cache

TTL = 600
OPS_TTL = 60  # alerts and labels change under the page; keep their figures fresh
RECENT_WEEKS = 4
MIN_ROWS = 100  # as monitor.drift_status: weeks with fewer rows give no PSI reading
PSI_SPINNER = ("Measuring drift week by week. The first time for a dataset version and model version, "
               "FraudLens scores every transaction with the model, about 4–8 seconds per million transactions "
               "on two cores; the result is kept for later visits.")


# ---------------------------------------------------------------------------- stamps

def dataset_stamp(home: Path, dataset: str) -> str:
    info = cached.dataset_info(home, dataset)
    if info is None:
        raise FraudLensError(f"There is no dataset '{dataset}'. Pick one in the sidebar.")
    return cached.stamp(info)


def model_stamp(home: Path, ref: str) -> tuple[str, int, int]:
    """``(name, version, metadata change time)``: a version trained again under the same number
    never hits an old entry."""
    name, version = operating.resolve(home, ref)
    path = registry.models_root(home) / name / registry.version_dir_name(version) / registry.METADATA
    try:
        return name, version, path.stat().st_mtime_ns
    except FileNotFoundError as exc:
        raise ModelError(f"Model {name} v{version} is gone from the registry; choose another.") from exc


def model_name(home: Path, ref: str) -> str:
    return operating.resolve(home, ref)[0]


def ops_stamp(home: Path) -> tuple:
    """Change time and size of the operational database and its write-ahead log: every commit
    changes one of them."""
    base = ops.path(home)
    found = []
    for path in (base, base.with_name(base.name + "-wal")):
        try:
            info = path.stat()
            found.append((info.st_mtime_ns, info.st_size))
        except FileNotFoundError:
            found.append((0, 0))
    return tuple(found)


# ---------------------------------------------------------------------------- cached library calls

def weekly_psi(home: Path, dataset: str, ref: str) -> pd.DataFrame:
    return _weekly_psi(str(home), dataset, dataset_stamp(home, dataset), *model_stamp(home, ref))


@st.cache_data(ttl=TTL, max_entries=8, show_spinner=PSI_SPINNER)
def _weekly_psi(home: str, dataset: str, data_stamp: str, name: str, version: int, stamp: int) -> pd.DataFrame:
    return monitor.weekly_psi(dataset, f"{name}@{version}", cfg=cached.cfg_for(home))


def weekly_scores(home: Path, dataset: str, ref: str, threshold: float | None) -> pd.DataFrame:
    return _weekly_scores(str(home), dataset, dataset_stamp(home, dataset), *model_stamp(home, ref), threshold)


@st.cache_data(ttl=TTL, max_entries=16, show_spinner="Reading the score distribution per week...")
def _weekly_scores(home: str, dataset: str, data_stamp: str, name: str, version: int, stamp: int,
                   threshold: float | None) -> pd.DataFrame:
    return monitor.weekly_scores(dataset, f"{name}@{version}", threshold, cfg=cached.cfg_for(home))


def weekly_alerts(home: Path, dataset: str, model: str) -> pd.DataFrame:
    """Threshold alerts of model ``model`` (any version) on ``dataset``, per week."""
    return _weekly_alerts(str(home), dataset, model, ops_stamp(home))


@st.cache_data(ttl=OPS_TTL, max_entries=16, show_spinner=False)
def _weekly_alerts(home: str, dataset: str, model: str, ops_state: tuple) -> pd.DataFrame:
    return monitor.weekly_alerts(dataset, model, cfg=cached.cfg_for(home))


def label_maturity(home: Path, dataset: str) -> pd.DataFrame:
    return _label_maturity(str(home), dataset, dataset_stamp(home, dataset), ops_stamp(home))


@st.cache_data(ttl=OPS_TTL, max_entries=16, show_spinner=False)
def _label_maturity(home: str, dataset: str, data_stamp: str, ops_state: tuple) -> pd.DataFrame:
    return monitor.label_maturity(dataset, cfg=cached.cfg_for(home))


def estimate_missed(home: Path, dataset: str, ref: str) -> missed.MissedEstimate:
    return _estimate_missed(str(home), dataset, *model_stamp(home, ref), ops_stamp(home))


@st.cache_data(ttl=OPS_TTL, max_entries=16, show_spinner=False)
def _estimate_missed(home: str, dataset: str, name: str, version: int, stamp: int,
                     ops_state: tuple) -> missed.MissedEstimate:
    return missed.estimate_missed(dataset, f"{name}@{version}", cfg=cached.cfg_for(home))


def ingest_history(home: Path, dataset: str) -> pd.DataFrame:
    return _ingest_history(str(home), dataset, dataset_stamp(home, dataset))


@st.cache_data(ttl=TTL, max_entries=16, show_spinner=False)
def _ingest_history(home: str, dataset: str, data_stamp: str) -> pd.DataFrame:
    return monitor.ingest_history(dataset, cfg=cached.cfg_for(home))


def ingest_nulls(home: Path, dataset: str) -> pd.DataFrame:
    return _ingest_nulls(str(home), dataset, dataset_stamp(home, dataset))


@st.cache_data(ttl=TTL, max_entries=16, show_spinner="Counting empty values per ingest...")
def _ingest_nulls(home: str, dataset: str, data_stamp: str) -> pd.DataFrame:
    return monitor.ingest_nulls(dataset, cfg=cached.cfg_for(home))


# ---------------------------------------------------------------------------- reading the tables

PSI_COLUMNS = ["week", "variable", "psi", "band", "rows", "reference_rows", "complete"]


def empty_psi() -> pd.DataFrame:
    """The PSI table with no weeks (drift could not be measured)."""
    return pd.DataFrame(columns=PSI_COLUMNS)


def drift_status(psi: pd.DataFrame) -> monitor.DriftStatus:
    return monitor.drift_status(psi, min_rows=MIN_ROWS)


def partial_weeks(psi: pd.DataFrame) -> list[pd.Timestamp]:
    """Weeks the data do not cover whole (the first and last), from the PSI table."""
    if psi.empty or "complete" not in psi:
        return []
    return sorted({pd.Timestamp(w) for w in psi.loc[~psi["complete"].astype(bool), "week"]})


def readable_weeks(psi: pd.DataFrame) -> pd.DataFrame:
    """Rows of complete weeks with enough transactions to read a PSI (the rule of drift_status)."""
    if psi.empty:
        return psi
    return psi[(psi["rows"] >= MIN_ROWS) & psi["complete"].astype(bool)]


def latest_week(psi: pd.DataFrame) -> pd.DataFrame:
    """The latest readable week's PSI per variable, largest first."""
    usable = readable_weeks(psi)
    if usable.empty:
        return usable
    latest = usable[usable["week"] == usable["week"].max()]
    columns = ["week", "variable", "psi", "band", "rows"]
    return latest.sort_values("psi", ascending=False)[columns].reset_index(drop=True)


def features_of(psi: pd.DataFrame) -> list[str]:
    """The features in the PSI table, in its order (the model's top features)."""
    return [v for v in dict.fromkeys(psi["variable"]) if v != "score"] if len(psi) else []


def feature_descriptions(home: Path, ref: str) -> dict[str, str]:
    """Feature name -> its description in the version's feature catalogue."""
    frame = models_cache.catalogue(home, ref)
    return dict(zip(frame["name"], frame["description"], strict=True))


def banner(status: monitor.DriftStatus, descriptions: dict[str, str] | None = None) -> tuple[str, str]:
    """``(kind, text)``: kind is error (act), warning (watch), success (stable) or info (unknown).
    ``descriptions`` (feature name -> plain words) name the drifted variables for readers who do
    not know the feature names."""
    kind = {"act": "error", "watch": "warning", "stable": "success"}.get(status.band, "info")
    if status.band == "unknown":
        return kind, f"Drift cannot be judged yet: no complete week with at least {MIN_ROWS} transactions."
    if status.band == "stable" or status.week is None:
        return kind, status.message

    def named(variable: str) -> str:
        return _in_words(variable, descriptions or {})

    week = f"Week of {status.week:%Y-%m-%d}"
    if status.band == "act":
        text = (f"{week}: the population has shifted (PSI above {monitor.WATCH}) for "
                f"{'; '.join(map(named, status.acting))}. Review the model and consider retraining.")
        if status.watching:
            text += (f" Between {monitor.STABLE} and {monitor.WATCH}, to watch: "
                     f"{'; '.join(map(named, status.watching))}.")
    else:
        text = (f"{week}: PSI between {monitor.STABLE} and {monitor.WATCH} for "
                f"{'; '.join(map(named, status.watching))}. Watch it.")
    if status.worst_variable:  # already named in words above: its code name is enough here
        text += f" Largest: `{status.worst_variable}`, PSI {status.worst_psi:.3f}."
    return kind, text + (" PSI (population stability index) compares a variable's spread over its values in "
                         "that week with the training window's: 0 is the same.")


def _in_words(variable: str, descriptions: dict[str, str]) -> str:
    if variable == "score":
        return "the model's score (`score`)"
    described = descriptions.get(variable, "").rstrip(".")
    return f"{described} (`{variable}`)" if described and described != variable else f"`{variable}`"


# ---------------------------------------------------------------------------- tiles

@dataclass(frozen=True)
class Tile:
    label: str
    value: str
    caption: str
    help: str | None = None


def _pct(value: float, digits: int = 1) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:.{digits}%}"


def psi_tile(psi: pd.DataFrame) -> Tile:
    """The score's PSI in the latest readable week, with its band."""
    latest = latest_week(psi)
    score = latest[latest["variable"] == "score"] if len(latest) else latest
    help_text = (f"Population stability index of the model's score in the latest complete week, against the "
                 f"training window. Below {monitor.STABLE} stable, {monitor.STABLE}–{monitor.WATCH} watch, "
                 f"above {monitor.WATCH} act.")
    if score.empty:
        return Tile("Score PSI", "n/a", "No complete week to read yet.", help_text)
    row = score.iloc[0]
    return Tile("Score PSI", f"{row['psi']:.3f}", f"{row['band']} · week of {row['week']:%Y-%m-%d}", help_text)


def overlap_warning(estimate: missed.MissedEstimate) -> str | None:
    """Why the recall estimate is off when alert runs scored the same transactions, else None."""
    return missed.overlap_text(estimate.overlaps) if estimate.overlaps else None


def recall_tile(estimate: missed.MissedEstimate) -> Tile:
    """Estimated recall with its interval, or what to do to get one."""
    help_text = ("Share of the frauds that the alerts catch: frauds confirmed above the threshold, plus those "
                 "below it estimated from the reviewed below-the-line sample. " + estimate.note)
    if math.isnan(estimate.recall):
        return Tile("Estimated recall", "not yet",
                    "Not enough reviewed below-the-line samples yet — raise alerts and dispose some sampled "
                    "ones on the Alerts page.", help_text)
    level = f"{estimate.confidence:.0%}"
    return Tile("Estimated recall", _pct(estimate.recall),
                f"{level} interval {_pct(estimate.recall_low)}–{_pct(estimate.recall_high)} · "
                f"{estimate.sample_resolved:,} of {estimate.sample_size:,} samples reviewed", help_text)


def precision_totals(alerts: pd.DataFrame) -> tuple[int, int, int]:
    """``(confirmed, resolved, open)`` over every week of ``monitor.weekly_alerts``."""
    if alerts.empty:
        return 0, 0, 0
    confirmed = int(alerts["confirmed"].sum())
    resolved = confirmed + int(alerts["false_positive"].sum())
    return confirmed, resolved, int(alerts["open"].sum() + alerts["needs_info"].sum())


def precision_tile(alerts: pd.DataFrame) -> Tile:
    help_text = "Confirmed fraud ÷ resolved alerts (confirmed + false positive), over every week shown."
    if alerts.empty:
        return Tile("Alert precision", "n/a", "No alerts raised with this model yet.", help_text)
    confirmed, resolved, waiting = precision_totals(alerts)
    if resolved == 0:
        total = int(alerts["alerts"].sum())
        return Tile("Alert precision", "n/a", f"None of {total:,} alerts resolved yet.", help_text)
    return Tile("Alert precision", _pct(confirmed / resolved),
                f"{confirmed:,} confirmed of {resolved:,} resolved · {waiting:,} still open", help_text)


def maturity_tile(maturity: pd.DataFrame, weeks: int = RECENT_WEEKS) -> Tile:
    """Share of the last ``weeks`` weeks' transactions with no label yet."""
    label = "Not yet labelled"
    help_text = ("Transactions whose label is still unknown (no fraud report and no disposition yet). Weeks "
                 "with many unknown labels look better than they are.")
    recent = monitor.recent_weeks(maturity, weeks)
    rows = int(recent["rows"].sum()) if len(recent) else 0
    if rows == 0:
        return Tile(label, "n/a", "No transactions in the last weeks.", help_text)
    unknown = int(recent["unknown"].sum())
    since = pd.Timestamp(recent["week"].min())
    return Tile(label, _pct(unknown / rows),
                f"last {weeks} weeks: {unknown:,} of {rows:,} transactions since {since:%Y-%m-%d}", help_text)


def draw_tiles(tiles: list[Tile]) -> None:
    for column, tile in zip(st.columns(len(tiles)), tiles):
        column.metric(tile.label, tile.value, help=tile.help, border=True)
        column.caption(tile.caption)


def ingest_table(history: pd.DataFrame, tz: str) -> pd.DataFrame:
    """The ingest history to show: local time, no ids or file lists."""
    shown = history.drop(columns=["ingest_id", "sources"])
    stamps = pd.to_datetime(shown["at"], utc=True)
    shown["at"] = stamps.dt.tz_convert(tz).dt.tz_localize(None)
    return shown


# ---------------------------------------------------------------------------- sentences

def scope_text(dataset: str, ref: str, tz: str) -> str:
    name, _, version = ref.partition("@")
    return (f"Dataset **{dataset}**, model **{name} v{version}**. Weeks run Monday to Sunday in {tz} time; "
            "drift is measured against the model's training window.")


def partial_text(partial: list[pd.Timestamp]) -> str:
    if not partial:
        return ""
    weeks = ", ".join(f"{w:%Y-%m-%d}" for w in partial)
    return (f"In the charts, hollow markers and hatched bars are partial weeks (week of {weeks}): the data do "
            "not cover them whole, and their mix of weekdays alone moves the figures, so the banner and the "
            "PSI tile leave them out.")
