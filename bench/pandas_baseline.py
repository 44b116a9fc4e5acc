"""What the benchmark suite compares FraudLens with: the same answers computed with pandas on a
DataFrame already in memory, written the way an analyst would write them (boolean masks,
``groupby``, ``sort_values``).

:func:`load` reads a dataset's Parquet parts once and adds the columns every query needs (the
local time in the dataset's zone, the fraud flag, the fraud amount, and the model's score), so
the timed functions are the queries alone. That favours pandas: the ratios in the suite's report
are, if anything, on the low side.

Semantics follow :mod:`fraudlens.analytics`: calendar views in local time (stored times are naive
UTC), date filters are local days with both bounds inclusive, the fraud rate counts labelled rows
only, and a row without a label is neither fraud nor legitimate.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from fraudlens.analytics import AMOUNT_BINS_PER_DECADE, AMOUNT_FLOOR, MISSING, Filters

LABEL = "fraudulent_activity"
# Per-group figures every aggregate shares, as named aggregations over the load's columns.
COUNTS = {
    "transactions": ("transaction_id", "size"),
    "labelled": ("is_labelled", "sum"),
    "frauds": ("is_fraud", "sum"),
    "fraud_amount": ("fraud_amount", "sum"),
    "amount": ("transaction_amount", "sum"),
}
FIGURES = tuple(COUNTS)
ACCOUNT_WINDOWS = {"1h": pd.Timedelta(hours=1), "24h": pd.Timedelta(hours=24),
                   "7d": pd.Timedelta(days=7), "30d": pd.Timedelta(days=30)}
# Alert queue orders as sort keys; ties go to the alert raised first, i.e. the earlier
# transaction (alerts are inserted in time order), except "newest" which reverses it.
QUEUE_ORDERS = {
    "expected_loss": (["expected_loss", "transaction_datetime", "transaction_id"], [False, True, True]),
    "score": (["score", "transaction_datetime", "transaction_id"], [False, True, True]),
    "amount": (["transaction_amount", "transaction_datetime", "transaction_id"], [False, True, True]),
    "newest": (["transaction_datetime", "transaction_id"], [False, False]),
}


# ---------------------------------------------------------------------------- loading


def load(parts: Sequence[str | Path], scores: str | Path | None, tz: str) -> pd.DataFrame:
    """The dataset's rows with ``local_time``, ``is_labelled``, ``is_fraud``, ``fraud_amount`` and
    (when ``scores`` is given) ``score``."""
    df = pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)
    df["local_time"] = df["transaction_datetime"].dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None)
    df["is_labelled"] = df[LABEL].notna()
    df["is_fraud"] = df[LABEL].astype("boolean").fillna(False).astype(bool)
    df["fraud_amount"] = df["transaction_amount"].where(df["is_fraud"], 0.0)
    if scores is not None:
        df = df.merge(pd.read_parquet(scores), on="transaction_id", how="left")
    return df


# ---------------------------------------------------------------------------- dashboard


def select(df: pd.DataFrame, f: Filters) -> pd.DataFrame:
    """The rows matching the dashboard filters."""
    keep = pd.Series(True, index=df.index)
    if f.date_from:
        keep &= df["local_time"] >= pd.Timestamp(f.date_from)
    if f.date_until:
        keep &= df["local_time"] < pd.Timestamp(f.date_until + timedelta(days=1))
    for values, column in ((f.channels, "channel"), (f.types, "transaction_type"),
                           (f.regions, "merchant_location")):
        if values:
            keep &= df[column].isin(values)
    if f.amount_min is not None:
        keep &= df["transaction_amount"] >= f.amount_min
    if f.amount_max is not None:
        keep &= df["transaction_amount"] <= f.amount_max
    if f.label == "fraud":
        keep &= df["is_fraud"]
    elif f.label == "legit":
        keep &= df["is_labelled"] & ~df["is_fraud"]
    elif f.label == "unknown":
        keep &= ~df["is_labelled"]
    return df[keep]


def totals(rows: pd.DataFrame) -> dict:
    return {"transactions": len(rows), "labelled": int(rows["is_labelled"].sum()),
            "frauds": int(rows["is_fraud"].sum()), "fraud_amount": float(rows["fraud_amount"].sum()),
            "amount": float(rows["transaction_amount"].sum())}


def count_matching(df: pd.DataFrame, f: Filters) -> dict:
    return totals(select(df, f))


def kpis(df: pd.DataFrame, f: Filters) -> dict:
    """Totals of the filters' period and of the period of equal length just before it (None
    when it has no row). ``f`` must have both dates."""
    days = (f.date_until - f.date_from).days + 1
    rows = select(df, f.replace(date_from=f.date_from - timedelta(days=days)))
    current = rows["local_time"] >= pd.Timestamp(f.date_from)
    previous = rows[~current]
    return {"current": totals(rows[current]), "previous": totals(previous) if len(previous) else None}


def hour_weekday_heatmap(df: pd.DataFrame, f: Filters) -> pd.DataFrame:
    """168 rows: ``weekday`` (1 = Monday), ``hour`` and the figures, zeros where empty."""
    rows = select(df, f)
    local = rows["local_time"].dt
    grid = rows.groupby([(local.day_of_week + 1).rename("weekday"), local.hour.rename("hour")]).agg(**COUNTS)
    every = pd.MultiIndex.from_product([range(1, 8), range(24)], names=["weekday", "hour"])
    return grid.reindex(every, fill_value=0).reset_index()


def daily_series(df: pd.DataFrame, f: Filters) -> pd.DataFrame:
    """One row per local day of the filters' period: ``period`` and the figures."""
    rows = select(df, f)
    days = rows.groupby(rows["local_time"].dt.normalize().rename("period")).agg(**COUNTS)
    every = pd.date_range(f.date_from, f.date_until, freq="D", name="period")
    return days.reindex(every, fill_value=0).reset_index()


def segments(df: pd.DataFrame, f: Filters, by: str) -> pd.DataFrame:
    """``segment`` and the figures per value of ``by``, most transactions first."""
    rows = select(df, f)
    out = rows.groupby(rows[by].fillna(MISSING).rename("segment")).agg(**COUNTS).reset_index()
    return out.sort_values(["transactions", "segment"], ascending=[False, True], ignore_index=True)


def region_breakdown(df: pd.DataFrame, f: Filters) -> pd.DataFrame:
    out = segments(df, f, "merchant_location")
    return out.sort_values(["fraud_amount", "transactions"], ascending=False, kind="stable", ignore_index=True)


def top_entities(df: pd.DataFrame, f: Filters, by: str, n: int) -> pd.DataFrame:
    """The ``n`` values of ``by`` with any fraud and the largest fraud amount: ``entity`` and figures."""
    rows = select(df, f)
    out = rows.groupby(rows[by].rename("entity")).agg(**COUNTS).reset_index()
    out = out[out["frauds"] > 0]
    return out.sort_values(["fraud_amount", "entity"], ascending=[False, True], ignore_index=True).head(n)


def amount_distribution(df: pd.DataFrame, f: Filters) -> pd.DataFrame:
    """Legit, fraud and unlabelled counts per log amount bin, every bin from the first to the last."""
    rows = select(df, f)
    bins = np.floor(np.log10(rows["transaction_amount"].clip(lower=AMOUNT_FLOOR)) * AMOUNT_BINS_PER_DECADE)
    kind = np.select([rows["is_fraud"], rows["is_labelled"]], ["fraud", "legit"], "unknown")
    out = pd.crosstab(bins.astype("int64").rename("bin"), pd.Series(kind, index=rows.index, name="kind"))
    out = out.reindex(columns=["legit", "fraud", "unknown"], fill_value=0)
    if len(out):
        out = out.reindex(range(out.index.min(), out.index.max() + 1), fill_value=0)
    return out.rename_axis("bin").reset_index()


def transactions_page(df: pd.DataFrame, f: Filters, sort: str, descending: bool, limit: int) -> pd.DataFrame:
    """The first ``limit`` matching rows by ``sort`` (ties by transaction id, same direction)."""
    rows = select(df, f)
    keys = [sort] if sort == "transaction_id" else [sort, "transaction_id"]
    top = rows.sort_values(keys, ascending=not descending, na_position="last").head(limit)
    label = np.select([top["is_fraud"], top["is_labelled"]], ["fraud", "legit"], "unknown")
    return top.assign(label=label)[["transaction_id", "local_time", "transaction_amount", "label"]] \
        .reset_index(drop=True)


# ---------------------------------------------------------------------------- thresholds


def threshold_point(scored: pd.DataFrame, threshold: float) -> dict:
    """Alerts, frauds caught, precision, recall and fraud amount caught at ``score >= threshold``."""
    alert = scored["score"] >= threshold
    caught = alert & scored["is_fraud"]
    alerts, tp = int(alert.sum()), int(caught.sum())
    frauds = int(scored["is_fraud"].sum())
    return {"alerts": alerts, "tp": tp, "precision": tp / alerts if alerts else float("nan"),
            "recall": tp / frauds if frauds else float("nan"),
            "fraud_amount_caught": float(scored.loc[caught, "transaction_amount"].sum())}


def max_recall_at_precision(scored: pd.DataFrame, precision: float) -> dict | None:
    """The highest recall with precision >= ``precision``, at the highest threshold giving it."""
    by_score = scored.groupby("score")["is_fraud"].agg(alerts="size", tp="sum").sort_index(ascending=False)
    running = by_score.cumsum()
    feasible = running[running["tp"] / running["alerts"] >= precision]
    if feasible.empty:
        return None
    best = feasible["tp"].max()
    threshold = running.index[running["tp"] == best].max()  # fewest alerts catching as many frauds
    alerts, tp = running.loc[threshold, ["alerts", "tp"]]
    return {"threshold": float(threshold), "alerts": int(alerts), "tp": int(tp),
            "precision": tp / alerts, "recall": tp / int(scored["is_fraud"].sum())}


# ---------------------------------------------------------------------------- one transaction


def account_features(df: pd.DataFrame, transaction_id: str) -> dict:
    """The account-window features of one transaction from the rows strictly before it, plus its
    amount and local hour (the features an explanation shows first)."""
    row = df.loc[df["transaction_id"] == transaction_id].iloc[0]
    at = row["transaction_datetime"]
    history = df[(df["account_id"] == row["account_id"]) & (df["transaction_datetime"] < at)]
    out = {"amount": float(row["transaction_amount"]), "hour": float(row["local_time"].hour)}
    for key, span in ACCOUNT_WINDOWS.items():
        amounts = history.loc[history["transaction_datetime"] >= at - span, "transaction_amount"]
        out[f"acct_count_{key}"] = float(len(amounts))
        out[f"acct_sum_{key}"] = float(amounts.sum(min_count=1))
        out[f"acct_mean_{key}"] = float(amounts.mean())
        out[f"acct_max_{key}"] = float(amounts.max()) if len(amounts) else float("nan")
    return out


# ---------------------------------------------------------------------------- alerts and drift


def alert_queue(df: pd.DataFrame, since: pd.Timestamp, threshold: float, order: str,
                limit: int) -> tuple[pd.DataFrame, int]:
    """The first ``limit`` alerts of the scope (rows from ``since``, UTC) scoring >= ``threshold``,
    in queue ``order``; and how many there are."""
    alerts = df[(df["transaction_datetime"] >= since) & (df["score"] >= threshold)]
    alerts = alerts.assign(expected_loss=alerts["score"] * alerts["transaction_amount"])
    keys, ascending = QUEUE_ORDERS[order]
    page = alerts.sort_values(keys, ascending=ascending).head(limit)
    return page[["transaction_id", "score", "expected_loss"]].reset_index(drop=True), len(alerts)


def psi(expected: pd.Series, actual: pd.Series, bins: int = 10, floor: float = 1e-4) -> float:
    """Population stability index of ``actual`` against the deciles of ``expected``."""
    _, edges = pd.qcut(expected, bins, retbins=True, duplicates="drop")
    edges[0], edges[-1] = -np.inf, np.inf
    e = pd.cut(expected, edges).value_counts(normalize=True, sort=False).clip(lower=floor)
    a = pd.cut(actual, edges).value_counts(normalize=True, sort=False).clip(lower=floor)
    return float(((a - e) * np.log(a / e)).sum())
