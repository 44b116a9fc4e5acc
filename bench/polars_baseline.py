"""The second thing the benchmark suite compares FraudLens with: the dashboard aggregations in
polars, on a DataFrame already in memory.

Written as a performance-minded analyst would write them: the low-variety text columns as
``Categorical``, every query a lazy plan (so a filter reads only the columns it needs), and the
result handed over as pandas, as the library hands its own. The answers follow
:mod:`bench.pandas_baseline` exactly and the suite checks that they agree with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import polars as pl

from bench import pandas_baseline as pb
from bench.pandas_baseline import LABEL
from fraudlens.analytics import MISSING, Filters

CATEGORIES = ("channel", "transaction_type", "merchant_location")
NAMES = pb.FIGURES


def figure_exprs(keep: pl.Expr | None = None, prefix: str = "") -> list[pl.Expr]:
    """The per-group figures, of the rows where ``keep`` holds (all rows without it)."""
    col = pl.col if keep is None else (lambda name: pl.col(name).filter(keep))
    count = pl.len() if keep is None else keep.sum()
    exprs = (count, col("is_labelled").sum(), col("is_fraud").sum(), col("fraud_amount").sum(),
             col("transaction_amount").sum())
    return [e.alias(prefix + name) for e, name in zip(exprs, NAMES)]


FIGURES = tuple(figure_exprs())


def load(parts: Sequence[str | Path], scores: str | Path | None, tz: str) -> pl.DataFrame:
    """The dataset's rows with the columns :func:`bench.pandas_baseline.load` adds."""
    df = pl.concat([pl.read_parquet(p) for p in parts])
    labelled = pl.col(LABEL).is_not_null()
    fraud = pl.col(LABEL).cast(pl.Boolean).fill_null(False)
    df = df.with_columns(
        pl.col(list(CATEGORIES)).cast(pl.Categorical),
        pl.col("transaction_datetime").dt.replace_time_zone("UTC").dt.convert_time_zone(tz)
        .dt.replace_time_zone(None).alias("local_time"),
        labelled.alias("is_labelled"),
        fraud.alias("is_fraud"),
        pl.when(fraud).then(pl.col("transaction_amount")).otherwise(0.0).alias("fraud_amount"),
    )
    if scores is not None:
        df = df.join(pl.read_parquet(scores), on="transaction_id", how="left")
    return df


def midnight(day) -> datetime:
    return datetime(day.year, day.month, day.day)


def select(df: pl.DataFrame, f: Filters) -> pl.LazyFrame:
    """The rows matching the dashboard filters, as a lazy plan."""
    keep = []
    if f.date_from:
        keep.append(pl.col("local_time") >= midnight(f.date_from))
    if f.date_until:
        keep.append(pl.col("local_time") < midnight(f.date_until + timedelta(days=1)))
    for values, column in ((f.channels, "channel"), (f.types, "transaction_type"),
                           (f.regions, "merchant_location")):
        if values:
            keep.append(pl.col(column).is_in(list(values)))
    if f.amount_min is not None:
        keep.append(pl.col("transaction_amount") >= f.amount_min)
    if f.amount_max is not None:
        keep.append(pl.col("transaction_amount") <= f.amount_max)
    if f.label == "fraud":
        keep.append(pl.col("is_fraud"))
    elif f.label == "legit":
        keep.append(pl.col("is_labelled") & ~pl.col("is_fraud"))
    elif f.label == "unknown":
        keep.append(~pl.col("is_labelled"))
    rows = df.lazy()
    return rows.filter(*keep) if keep else rows


def figures(row: dict) -> dict:
    return {k: (float(row[k] or 0) if k in ("fraud_amount", "amount") else int(row[k] or 0)) for k in NAMES}


def kpis(df: pl.DataFrame, f: Filters) -> dict:
    """As :func:`bench.pandas_baseline.kpis`: the period's totals and the previous period's."""
    days = (f.date_until - f.date_from).days + 1
    rows = select(df, f.replace(date_from=f.date_from - timedelta(days=days)))
    current = pl.col("local_time") >= midnight(f.date_from)
    both = rows.select(*figure_exprs(current, "now_"), *figure_exprs(~current, "before_")).collect().row(0, named=True)
    now, before = (figures({k: both[prefix + k] for k in NAMES}) for prefix in ("now_", "before_"))
    return {"current": now, "previous": before if before["transactions"] else None}


def hour_weekday_heatmap(df: pl.DataFrame, f: Filters) -> pd.DataFrame:
    """168 rows: ``weekday`` (1 = Monday), ``hour`` and the figures, zeros where empty."""
    local = pl.col("local_time").dt
    grid = select(df, f).group_by(local.weekday().cast(pl.Int64).alias("weekday"),
                                  local.hour().cast(pl.Int64).alias("hour")).agg(*FIGURES)
    every = pl.LazyFrame({"weekday": [d for d in range(1, 8) for _ in range(24)], "hour": list(range(24)) * 7})
    return every.join(grid, on=["weekday", "hour"], how="left").fill_null(0).collect().to_pandas()


def daily_series(df: pl.DataFrame, f: Filters) -> pd.DataFrame:
    """One row per local day of the filters' period: ``period`` and the figures."""
    days = select(df, f).group_by(pl.col("local_time").dt.truncate("1d").alias("period")).agg(*FIGURES)
    every = pl.LazyFrame({"period": pl.datetime_range(midnight(f.date_from), midnight(f.date_until), "1d",
                                                      time_unit="us", eager=True)})
    return every.join(days, on="period", how="left").fill_null(0).sort("period").collect().to_pandas()


def segments(df: pl.DataFrame, f: Filters, by: str) -> pd.DataFrame:
    """``segment`` and the figures per value of ``by``, most transactions first."""
    # Grouped on the Categorical itself; only the few result rows become text.
    return select(df, f).group_by(by).agg(*FIGURES) \
        .select(pl.col(by).cast(pl.String).fill_null(MISSING).alias("segment"), *NAMES) \
        .sort(["transactions", "segment"], descending=[True, False]).collect().to_pandas()


def top_entities(df: pl.DataFrame, f: Filters, by: str, n: int) -> pd.DataFrame:
    """The ``n`` values of ``by`` with any fraud and the largest fraud amount: ``entity`` and figures.
    Ranked on the fraud rows, then every row of the winners counted (rows without a value are no
    entity, as in pandas' groupby)."""
    rows = select(df, f).filter(pl.col(by).is_not_null())
    ranked = rows.filter(pl.col("is_fraud")).group_by(by).agg(pl.col("fraud_amount").sum()) \
        .sort(["fraud_amount", by], descending=[True, False]).head(n).select(by).collect()
    counted = rows.filter(pl.col(by).is_in(ranked[by].implode())).group_by(pl.col(by).alias("entity")) \
        .agg(*FIGURES)
    return counted.sort(["fraud_amount", "entity"], descending=[True, False]).collect().to_pandas()


def transactions_page(df: pl.DataFrame, f: Filters, sort: str, descending: bool, limit: int) -> pd.DataFrame:
    """The first ``limit`` matching rows by ``sort`` (ties by transaction id, same direction)."""
    keys = [sort] if sort == "transaction_id" else [sort, "transaction_id"]
    label = pl.when(pl.col("is_fraud")).then(pl.lit("fraud")) \
        .when(pl.col("is_labelled")).then(pl.lit("legit")).otherwise(pl.lit("unknown"))
    return select(df, f).sort(keys, descending=descending, nulls_last=True).head(limit) \
        .select("transaction_id", "local_time", "transaction_amount", label.alias("label")).collect().to_pandas()
