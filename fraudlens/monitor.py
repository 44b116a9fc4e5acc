"""Monitoring: is the model still scoring the world it was trained on, and are alerts worked?

Everything is per local calendar week (Monday first, in the dataset's time zone):

- :func:`weekly_scores` — the score distribution (quantiles, share above the threshold);
- :func:`weekly_psi` — the population stability index of the score and of the model's top
  features against its training window, with bands (:func:`psi_band`: < 0.1 stable,
  0.1-0.25 watch, > 0.25 act) and :func:`drift_status` for a banner;
- :func:`weekly_alerts` — alert volume, precision from dispositions, money caught;
- :func:`label_maturity` — the share of each week's transactions whose label is still unknown
  (dataset label overridden by dispositions), so immature weeks are not read as good ones;
- :func:`ingest_history` and :func:`ingest_nulls` — data quality per ingest.

Scores of a whole dataset, and the default weekly PSI table, are computed once per dataset version
and model version and kept under ``<home>/.monitor/scores/`` (:func:`dataset_scores`) and
``<home>/.monitor/psi/``.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from fraudlens import analytics, datasets, explain, feature_store, labels, operating, ops, registry
from fraudlens import features as feats
from fraudlens.config import Settings, settings
from fraudlens.errors import FraudLensError, ModelError
from fraudlens.schema import CANONICAL, check_dataset_name, quote_ident
from fraudlens.store import Store, get_store

logger = logging.getLogger(__name__)

MONITOR_DIR = ".monitor"
PSI_BINS = 10
PSI_FLOOR = 1e-4
STABLE, WATCH = 0.1, 0.25
BANDS = ("stable", "watch", "act")
TOP_FEATURES = 5
IMPORTANCE_SAMPLE = 2000
QUANTILES = (0.5, 0.9, 0.99)
PSI_FORMAT = 1  # part of a kept PSI table's key: raise it when the computation changes


@dataclass(frozen=True)
class DriftStatus:
    """The latest week's worst PSI band and the variables in it (for a banner)."""

    week: pd.Timestamp | None
    band: str
    worst_variable: str | None
    worst_psi: float
    acting: tuple[str, ...]
    watching: tuple[str, ...]
    message: str


# ---------------------------------------------------------------------------------------------
# PSI (pure numpy)


def psi_edges(expected: np.ndarray, bins: int = PSI_BINS) -> np.ndarray:
    """Interior cut points: the distinct ``1/bins`` quantiles of the finite ``expected`` values.

    Quantiles are observed values (the inverted empirical CDF) and bins are right-closed,
    ``(edge[i-1], edge[i]]``, so a 0/1 feature gets the bins {0} and {1}.
    """
    finite = np.asarray(expected, dtype=float)
    finite = finite[np.isfinite(finite)]
    if len(finite) == 0:
        return np.array([])
    n = len(finite)
    # The k/bins quantile is the smallest value with at least n*k/bins values at or below it;
    # integer arithmetic keeps it exact where n*k/bins is a whole number.
    index = [(n * k + bins - 1) // bins - 1 for k in range(1, bins)]
    # A partial sort puts exactly those order statistics in place (linear time, not n log n).
    return np.unique(np.partition(finite, index)[index]) if index else np.array([])


def psi_shares(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Share of ``values`` in each bin of ``edges``, plus a last bin for missing values."""
    v = np.asarray(values, dtype=float)
    missing = ~np.isfinite(v)
    counts = np.bincount(np.searchsorted(edges, v[~missing], side="left"), minlength=len(edges) + 1)
    counts = np.append(counts, missing.sum()).astype(float)
    return counts / len(v) if len(v) else counts


def psi(expected: np.ndarray, actual: np.ndarray, bins: int = PSI_BINS, edges: np.ndarray | None = None,
        expected_shares: np.ndarray | None = None) -> float:
    """Population stability index of ``actual`` against ``expected``.

    ``PSI = sum_i (a_i - e_i) * ln(a_i / e_i)`` over the bins of :func:`psi_edges` (deciles of
    ``expected``) and a bin for missing values; shares are floored at ``1e-4`` so an empty bin
    counts as a large shift instead of an infinite one. NaN when either side is empty.

    Parameters
    ----------
    expected : array-like of shape (n,)
        The reference (training-window) values.
    actual : array-like of shape (m,)
    bins : int
    edges : ndarray, optional
        Precomputed :func:`psi_edges` of ``expected``.
    expected_shares : ndarray, optional
        Precomputed :func:`psi_shares` of ``expected`` over ``edges`` (many weeks, one reference).

    Returns
    -------
    float
    """
    e_values, a_values = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
    if len(e_values) == 0 or len(a_values) == 0:
        return float("nan")
    cuts = psi_edges(e_values, bins) if edges is None else edges
    shared = psi_shares(e_values, cuts) if expected_shares is None or edges is None else expected_shares
    return psi_of_shares(shared, psi_shares(a_values, cuts))


def psi_of_shares(expected_shares: np.ndarray, actual_shares: np.ndarray) -> float:
    """PSI from the bin shares of both sides (each floored at ``PSI_FLOOR``)."""
    e = np.maximum(np.asarray(expected_shares, dtype=float), PSI_FLOOR)
    a = np.maximum(np.asarray(actual_shares, dtype=float), PSI_FLOOR)
    return float(np.sum((a - e) * np.log(a / e)))


def psi_band(value: float) -> str:
    """``stable`` below 0.1, ``watch`` up to 0.25, ``act`` above; ``unknown`` for NaN."""
    if value is None or math.isnan(value):
        return "unknown"
    return "stable" if value < STABLE else "watch" if value <= WATCH else "act"


# ---------------------------------------------------------------------------------------------
# Scores of a whole dataset, cached per dataset version and model version


def _tz(cfg: Settings, dataset: str) -> str:
    return datasets.read(cfg.home, dataset).timezone or cfg.timezone


def dataset_scores(dataset: str, model_ref: str, cfg: Settings | None = None) -> Path:
    """Path of a Parquet file with ``transaction_id, score, transaction_datetime`` for every row.

    Scored once per (dataset version, model version); older files of the pair are removed.
    """
    from fraudlens.scoring import score_dataset

    cfg = cfg or settings()
    check_dataset_name(dataset)
    name, version = operating.resolve(cfg.home, model_ref)
    info = datasets.read(cfg.home, dataset)
    folder = Path(cfg.home) / MONITOR_DIR / "scores" / dataset
    target = folder / f"{name}-v{version}-d{info.version}-timed.parquet"
    if target.is_file():
        return target
    folder.mkdir(parents=True, exist_ok=True)
    score_dataset(dataset, f"{name}@{version}", target, with_time=True, cfg=cfg)
    _remove_others(target, rf"^{re.escape(name)}-v{version}-d\d+(-timed)?\.parquet$")
    return target


def _remove_others(target: Path, pattern: str) -> None:
    """Files beside ``target`` whose names match ``pattern``: older versions of the same table."""
    for old in target.parent.iterdir():
        if old != target and re.match(pattern, old.name):
            old.unlink(missing_ok=True)


def remove(home: Path, dataset: str) -> None:
    """Forget the scores and PSI tables kept for ``dataset`` (a dataset made again under the same
    name starts again at version 1, so they must not outlive it)."""
    for kind in ("scores", "psi"):
        shutil.rmtree(Path(home) / MONITOR_DIR / kind / dataset, ignore_errors=True)


def _week_sql(column: str, zone: analytics.LocalZone, params: dict) -> str:
    """The local week (its Monday) of a naive UTC ``column``; sets the parameter it reads."""
    if zone.offset_seconds is None:
        params["tz"] = zone.name
        return f"CAST(date_trunc('week', timezone($tz, timezone('UTC', {column}))) AS DATE)"
    # A fixed offset: adding it is several times faster than a zone lookup per row.
    params["offset"] = zone.offset_seconds
    return f"CAST(date_trunc('week', {column} + to_seconds($offset)) AS DATE)"


def weekly_scores(dataset: str, model_ref: str, threshold: float | None = None,
                  cfg: Settings | None = None) -> pd.DataFrame:
    """Score distribution per local week.

    Returns
    -------
    DataFrame with columns week, rows, mean, p50, p90, p99, above (share >= threshold)
        ``threshold`` defaults to the version's live operating point; ``above`` is NaN without one.
    """
    cfg = cfg or settings()
    store = get_store(cfg)
    path = dataset_scores(dataset, model_ref, cfg)
    if threshold is None:
        live = operating.live_point(cfg.home, model_ref)
        threshold = None if live is None else float(live.point.threshold)
    params = {"scores": str(path), "threshold": threshold}
    week = _week_sql("s.transaction_datetime", analytics.dataset_zone(store, dataset), params)
    # One quantile call with a list sorts each week once, not three times.
    sql = (
        "SELECT week, rows, mean, q[1] AS p50, q[2] AS p90, q[3] AS p99, above FROM ("
        f"SELECT {week} AS week, count(*) AS rows, avg(s.score) AS mean, "
        f"quantile_cont(s.score, {list(QUANTILES)}) AS q, "
        "CASE WHEN $threshold IS NULL THEN NULL ELSE avg(CAST(s.score >= $threshold AS DOUBLE)) END AS above "
        "FROM read_parquet($scores) s GROUP BY week) ORDER BY week"
    )
    return store.query("weekly_scores", sql, params)


# ---------------------------------------------------------------------------------------------
# Weekly PSI of the score and the top features


def _training_window(meta: dict) -> tuple[date, date]:
    windows = meta.get("windows") or {}
    try:
        return date.fromisoformat(windows["train_from"]), date.fromisoformat(windows["train_until"])
    except (KeyError, TypeError, ValueError):
        raise ModelError("The model records no training window; give the reference dates "
                         "(reference=(first_day, last_day)).") from None


def top_features(dataset: str, model_ref: str, k: int = TOP_FEATURES, cfg: Settings | None = None) -> list[str]:
    """The ``k`` features with the largest mean absolute contribution on a sample of the dataset."""
    cfg = cfg or settings()
    name, version = operating.resolve(cfg.home, model_ref)
    loaded = registry.load_model(name, version, home=cfg.home)
    names = list(loaded.metadata["features"])
    spec = feats.FeatureSpec.from_dict(loaded.metadata["feature_spec"])
    store = get_store(cfg)
    cols = ", ".join(quote_ident(n) for n in names)
    path = feature_store.feature_file(store, dataset, spec)
    sample = store.query(
        "importance_sample",
        f"SELECT {cols} FROM read_parquet($path) USING SAMPLE reservoir({IMPORTANCE_SAMPLE} ROWS) REPEATABLE (42)",
        {"path": str(path)},
    )
    if sample.empty:
        return []
    contrib = explain.contributions(loaded.model, loaded.kind, sample[names])
    mean_abs = np.abs(np.asarray(contrib.values, dtype=float)).mean(axis=0)
    order = np.lexsort((np.array(names), -mean_abs))
    return [names[i] for i in order[:k]]


def _variable_file(store: Store, cfg: Settings, dataset: str, name: str, version: int, variable: str) -> Path:
    # The kept scores carry their timestamps; a feature is read from the feature file.
    if variable == "score":
        return dataset_scores(dataset, f"{name}@{version}", cfg)
    meta = registry.read_metadata(name, version, cfg.home)
    return feature_store.feature_file(store, dataset, feats.FeatureSpec.from_dict(meta["feature_spec"]))


def _reference_values(store: Store, path: Path, variable: str, first: date, last: date) -> np.ndarray:
    table = store.query_arrow(
        "monitor_reference",
        f"SELECT CAST({quote_ident(variable)} AS DOUBLE) AS v FROM read_parquet($path) "
        "WHERE transaction_datetime >= $first AND transaction_datetime < $end",
        {"path": str(path), "first": _utc_start(first), "end": _utc_start(last + timedelta(days=1))})
    return np.asarray(table.column("v").to_numpy(zero_copy_only=False), dtype=float)


def _weekly_counts(store: Store, path: Path, variable: str, edges: np.ndarray,
                   zone: analytics.LocalZone) -> pd.DataFrame:
    """Rows per local week and PSI bin, counted in DuckDB (bins as :func:`psi_shares`: the number
    of edges below the value; the last bin holds missing values)."""
    params = {"path": str(path), **{f"e{i}": float(e) for i, e in enumerate(edges)}}
    week = _week_sql("transaction_datetime", zone, params)
    below = " + ".join(f"CAST(v > $e{i} AS INTEGER)" for i in range(len(edges))) or "0"
    sql = (f"SELECT week, bin, count(*) AS n FROM (SELECT {week} AS week, "
           f"CASE WHEN v IS NULL OR NOT isfinite(v) THEN {len(edges) + 1} ELSE {below} END AS bin "
           f"FROM (SELECT transaction_datetime, CAST({quote_ident(variable)} AS DOUBLE) AS v "
           "FROM read_parquet($path))) GROUP BY ALL ORDER BY week, bin")
    return store.query("monitor_weekly_bins", sql, params)


def _psi_rows(variable: str, expected: np.ndarray, edges: np.ndarray, counts: pd.DataFrame) -> list[dict]:
    expected_shares = psi_shares(expected, edges)
    rows = []
    for week, group in counts.groupby("week", sort=True):
        per_bin = np.zeros(len(edges) + 2)
        per_bin[group["bin"].to_numpy(int)] = group["n"].to_numpy(float)
        value = psi_of_shares(expected_shares, per_bin / per_bin.sum())
        rows.append({"week": pd.Timestamp(week), "variable": variable, "psi": value, "band": psi_band(value),
                     "rows": int(per_bin.sum()), "reference_rows": len(expected)})
    return rows


def _utc_start(day: date) -> datetime:
    return datetime.combine(day, datetime.min.time())  # stored times are naive UTC


def weekly_psi(dataset: str, model_ref: str, *, features: list[str] | None = None, top: int = TOP_FEATURES,
               reference: tuple[date, date] | None = None, bins: int = PSI_BINS,
               cfg: Settings | None = None) -> pd.DataFrame:
    """PSI of the score and of features, per local week, against the training window.

    Parameters
    ----------
    features : list of str, optional
        Feature names; by default the model's ``top`` features (:func:`top_features`).
    reference : (date, date), optional
        Inclusive UTC dates of the reference window; by default the model's training window.

    Returns
    -------
    DataFrame with columns week, variable, psi, band, rows, reference_rows, complete
        ``variable`` is ``score`` or a feature name; one row per week and variable; ``complete``
        is False for the partial first and last weeks of the data.
    """
    cfg = cfg or settings()
    name, version = operating.resolve(cfg.home, model_ref)
    if features is None and reference is None:
        return _kept_weekly_psi(dataset, name, version, top, bins, cfg)
    return _weekly_psi(dataset, name, version, features, top, reference, bins, cfg)


def _kept_weekly_psi(dataset: str, name: str, version: int, top: int, bins: int, cfg: Settings) -> pd.DataFrame:
    """The default table (top features, training window) depends only on the dataset version and
    the model version, so it is computed once and kept: the first visit after a restart reads it."""
    info = datasets.read(cfg.home, dataset)
    zone = _tz(cfg, dataset)
    key = hashlib.sha256(f"{PSI_FORMAT}|{top}|{bins}|{zone}".encode()).hexdigest()[:8]
    folder = Path(cfg.home) / MONITOR_DIR / "psi" / dataset
    target = folder / f"{name}-v{version}-d{info.version}-{key}.parquet"
    if target.is_file():
        return pd.read_parquet(target)
    out = _weekly_psi(dataset, name, version, None, top, None, bins, cfg)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{target.name}.{uuid.uuid4().hex}.tmp"
    out.to_parquet(tmp, index=False)
    os.replace(tmp, target)
    _remove_others(target, rf"^{re.escape(name)}-v{version}-d\d+-[0-9a-f]+\.parquet$")
    return out


def _weekly_psi(dataset: str, name: str, version: int, features: list[str] | None, top: int,
                reference: tuple[date, date] | None, bins: int, cfg: Settings) -> pd.DataFrame:
    meta = registry.read_metadata(name, version, cfg.home)
    known = list(meta.get("features") or [])
    chosen = list(features) if features is not None else top_features(dataset, f"{name}@{version}", top, cfg)
    unknown = [f for f in chosen if f not in known]
    if unknown:
        raise FraudLensError(f"The 'features' parameter names features the model does not have: {unknown}.")
    first, last = reference or _training_window(meta)
    store = get_store(cfg)
    zone = analytics.dataset_zone(store, dataset)
    rows = []
    # One variable at a time; values are binned and counted per week in DuckDB, so only the
    # reference values (for the decile edges) come to Python.
    for variable in ["score", *chosen]:
        path = _variable_file(store, cfg, dataset, name, version, variable)
        expected = _reference_values(store, path, variable, first, last)
        if len(expected) == 0:
            raise FraudLensError(f"Dataset '{dataset}' has no rows in the reference window {first}..{last}.")
        edges = psi_edges(expected, bins)
        rows += _psi_rows(variable, expected, edges, _weekly_counts(store, path, variable, edges, zone))
    out = pd.DataFrame(rows, columns=["week", "variable", "psi", "band", "rows", "reference_rows"])
    out["complete"] = _complete_weeks(out["week"], *_data_span(store, dataset), _tz(cfg, dataset))
    return out


def _data_span(store: Store, dataset: str) -> tuple[pd.Timestamp | None, pd.Timestamp | None]:
    """The first and last transaction times, as the manifest records them (no scan)."""
    info = datasets.read(store.home, dataset)
    return (pd.Timestamp(info.first) if info.first else None, pd.Timestamp(info.last) if info.last else None)


def _complete_weeks(weeks: pd.Series, earliest, latest, tz: str) -> pd.Series:
    """True for weeks whose seven local days all lie within the data's first and last day."""
    if earliest is None or latest is None:
        return pd.Series(False, index=weeks.index)
    local = operating.local_times(pd.to_datetime(pd.Series([earliest, latest])), tz)
    first, last = local.min().normalize(), local.max().normalize()
    start = pd.to_datetime(weeks)
    return (start >= first) & (start + pd.Timedelta(days=6) <= last)


def drift_status(psi_frame: pd.DataFrame, min_rows: int = 100) -> DriftStatus:
    """The latest complete week with at least ``min_rows`` rows: its worst band and variables.

    Partial weeks (the first and last of the data) are left out: their mix of weekdays alone
    moves the PSI.
    """
    usable = psi_frame
    if len(usable):
        usable = usable[usable["rows"] >= min_rows]
        if "complete" in usable.columns:
            usable = usable[usable["complete"].astype(bool)]
    if usable.empty:
        return DriftStatus(None, "unknown", None, float("nan"), (), (), "Not enough data to judge drift.")
    week = usable["week"].max()
    latest = usable[usable["week"] == week].sort_values("psi", ascending=False)
    acting = tuple(latest.loc[latest["band"] == "act", "variable"])
    watching = tuple(latest.loc[latest["band"] == "watch", "variable"])
    worst = latest.iloc[0]
    band = "act" if acting else "watch" if watching else "stable"
    if acting:
        message = (f"Week of {week:%Y-%m-%d}: PSI above {WATCH} for {', '.join(acting)} — the population "
                   "has shifted; review the model and consider retraining.")
    elif watching:
        message = f"Week of {week:%Y-%m-%d}: PSI between {STABLE} and {WATCH} for {', '.join(watching)} — watch it."
    else:
        message = f"Week of {week:%Y-%m-%d}: stable (every PSI below {STABLE})."
    return DriftStatus(pd.Timestamp(week), band, str(worst["variable"]), float(worst["psi"]), acting, watching,
                       message)


# ---------------------------------------------------------------------------------------------
# Alerts, labels and data quality over time


def _local_week(stamps: pd.Series, tz: str) -> pd.Series:
    local = operating.local_times(pd.to_datetime(stamps), tz)
    return (local.dt.normalize() - pd.to_timedelta(local.dt.day_of_week, unit="D")).dt.date.map(pd.Timestamp)


def weekly_alerts(dataset: str, model: str | None = None, cfg: Settings | None = None) -> pd.DataFrame:
    """Alert volume and outcome per local week of the transactions (threshold alerts only).

    Returns
    -------
    DataFrame with columns week, alerts, open, needs_info, confirmed, false_positive,
    precision (confirmed / resolved, NaN if none resolved), money_caught (PEN, confirmed alerts),
    expected_loss (PEN, all alerts)
    """
    cfg = cfg or settings()
    check_dataset_name(dataset)
    sql = ("SELECT transaction_datetime, status, amount, expected_loss FROM alerts "
           "WHERE dataset = ? AND source = 'threshold'")
    params: list = [dataset]
    if model is not None:
        sql += " AND model = ?"
        params.append(model)
    found = ops.frame(cfg.home, sql, params)
    columns = ["week", "alerts", "open", "needs_info", "confirmed", "false_positive", "precision",
               "money_caught", "expected_loss"]
    if found.empty:
        return pd.DataFrame(columns=columns)
    found["week"] = _local_week(found["transaction_datetime"], _tz(cfg, dataset))
    confirmed = found["status"] == "confirmed_fraud"
    found["money"] = np.where(confirmed, found["amount"].astype(float), 0.0)
    out = found.assign(open=found["status"] == "open", needs_info=found["status"] == "needs_info",
                       confirmed=confirmed, false_positive=found["status"] == "false_positive").groupby(
        "week", sort=True).agg(alerts=("status", "size"), open=("open", "sum"), needs_info=("needs_info", "sum"),
                               confirmed=("confirmed", "sum"), false_positive=("false_positive", "sum"),
                               money_caught=("money", "sum"), expected_loss=("expected_loss", "sum")).reset_index()
    resolved = out["confirmed"] + out["false_positive"]
    out["precision"] = np.where(resolved > 0, out["confirmed"] / resolved.where(resolved > 0, 1), np.nan)
    return out[columns]


def label_maturity(dataset: str, cfg: Settings | None = None) -> pd.DataFrame:
    """Per local week: rows, labels still unknown, their share, and frauds known so far.

    Labels are the effective ones (dispositions override the dataset's label).

    Returns
    -------
    DataFrame with columns week, rows, unknown, unknown_share, labelled_from_ops, frauds
    """
    cfg = cfg or settings()
    store = get_store(cfg)
    overlay, params = labels.labels_overlay_sql(store, dataset, cfg)
    week = _week_sql("transaction_datetime", analytics.dataset_zone(store, dataset), params)
    sql = (
        f"SELECT {week} AS week, count(*) AS rows, "
        "count(*) FILTER (WHERE fraudulent_activity IS NULL) AS unknown, "
        "count(*) FILTER (WHERE label_source = 'ops') AS labelled_from_ops, "
        "count(*) FILTER (WHERE fraudulent_activity) AS frauds "
        f"FROM ({overlay}) GROUP BY week ORDER BY week"
    )
    out = store.query("label_maturity", sql, params)
    out["unknown_share"] = out["unknown"] / out["rows"]
    return out[["week", "rows", "unknown", "unknown_share", "labelled_from_ops", "frauds"]]


def ingest_history(dataset: str, cfg: Settings | None = None) -> pd.DataFrame:
    """One row per ingest of the dataset, oldest first, from its manifest.

    Returns
    -------
    DataFrame with columns ingest_id, at, mode, sources, rows_read, loaded, rejected, reject_share,
    top_reject_reason
    """
    cfg = cfg or settings()
    info = datasets.read(cfg.home, dataset)
    rows = []
    for entry in info.ingests:
        reasons = entry.get("rejects_by_reason") or {}
        read = int(entry.get("rows_read") or 0)
        rejected = int(entry.get("rejected") or 0)
        rows.append({
            "ingest_id": entry.get("id"), "at": pd.Timestamp(entry.get("at")), "mode": entry.get("mode"),
            "sources": ", ".join(entry.get("sources") or []), "rows_read": read,
            "loaded": int(entry.get("loaded") or 0), "rejected": rejected,
            "reject_share": rejected / read if read else float("nan"),
            "top_reject_reason": max(reasons, key=reasons.get) if reasons else None,
        })
    return pd.DataFrame(rows, columns=["ingest_id", "at", "mode", "sources", "rows_read", "loaded", "rejected",
                                       "reject_share", "top_reject_reason"])


def ingest_nulls(dataset: str, cfg: Settings | None = None) -> pd.DataFrame:
    """Share of empty values per canonical column in the rows each live ingest loaded.

    Returns
    -------
    DataFrame with columns ingest_id, column, rows, nulls, null_share (ingests whose parts a
    replace removed are absent)
    """
    cfg = cfg or settings()
    info = datasets.read(cfg.home, dataset)
    columns = [c for c in CANONICAL if c in info.columns]
    paths = datasets.part_paths(cfg.home, info)
    if not paths:
        return pd.DataFrame(columns=["ingest_id", "column", "rows", "nulls", "null_share"])
    store, parts = get_store(cfg), [str(p) for p in paths]
    found = _nulls_from_footers(store, parts, columns)
    if found is None:
        counts = ", ".join(f"count(*) FILTER (WHERE {quote_ident(c)} IS NULL) AS {quote_ident(c)}" for c in columns)
        sql = (f"SELECT filename, count(*) AS _rows, {counts} FROM read_parquet($parts, filename = true, "
               "union_by_name = true) GROUP BY filename")
        found = store.query("ingest_nulls", sql, {"parts": parts})
    ids = [str(i.get("id")) for i in info.ingests]
    found["ingest_id"] = found["filename"].map(lambda f: next((i for i in ids if f"-{i}-" in Path(f).name), None))
    per_ingest = found.drop(columns="filename").groupby("ingest_id", sort=False).sum().reset_index()
    long = per_ingest.melt(id_vars=["ingest_id", "_rows"], var_name="column", value_name="nulls")
    long = long.rename(columns={"_rows": "rows"})
    long["null_share"] = long["nulls"] / long["rows"]
    order = {i: k for k, i in enumerate(ids)}
    long = long.sort_values(by=["ingest_id", "column"], key=lambda s: s.map(order) if s.name == "ingest_id" else s)
    return long[["ingest_id", "column", "rows", "nulls", "null_share"]].reset_index(drop=True)


def _nulls_from_footers(store: Store, parts: list[str], columns: list[str]) -> pd.DataFrame | None:
    """Rows and empty values per part file and column from the files' own statistics, without
    reading the data (a second at 10M rows); None when a file lacks null counts."""
    stats = store.query(
        "ingest_null_stats",
        "SELECT file_name AS filename, path_in_schema AS col, sum(row_group_num_rows) AS n_rows, "
        "sum(stats_null_count) AS nulls, count(*) - count(stats_null_count) AS unknown "
        "FROM parquet_metadata($parts) GROUP BY ALL", {"parts": parts})
    if stats.empty or stats["unknown"].any():
        return None
    nulls = stats.pivot(index="filename", columns="col", values="nulls")
    rows = stats.groupby("filename")["n_rows"].max()
    out = pd.DataFrame({"filename": rows.index, "_rows": rows.to_numpy(dtype="int64")})
    for column in columns:  # a column a file lacks is empty in every row of it
        present = nulls[column].reindex(rows.index) if column in nulls else pd.Series(float("nan"), rows.index)
        out[column] = present.fillna(rows).to_numpy(dtype="int64")
    return out


def recent_weeks(frame: pd.DataFrame, weeks: int, column: str = "week") -> pd.DataFrame:
    """The rows of the last ``weeks`` weeks of ``frame`` (by its ``week`` column)."""
    if frame.empty:
        return frame
    last = pd.Timestamp(frame[column].max())
    return frame[pd.to_datetime(frame[column]) > last - timedelta(weeks=weeks)]
