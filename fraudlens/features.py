"""Point-in-time features, computed in DuckDB with window functions.

A transaction's features use only transactions strictly before it (RANGE frames end one
microsecond before it), and a label only once ``label_delay_days`` have passed since the
labelled transaction, as labels arrive late in real banks. Features whose source columns a
dataset lacks are skipped, so a dataset with only the required columns still gets features.

The catalogue (``catalogue(spec)``) describes every feature as data for the UI and model card.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pandas as pd

from fraudlens import datasets
from fraudlens.errors import FraudLensError
from fraudlens.schema import normalise_header, quote_ident
from fraudlens.store import Store

logger = logging.getLogger(__name__)

ACCOUNT_WINDOWS = {"1h": 1, "24h": 24, "7d": 7 * 24, "30d": 30 * 24}  # hours
MERCHANT_WINDOWS = (1, 7, 30)  # days
CATEGORICAL = ("transaction_type", "channel", "account_type")
MAX_CATEGORIES = 12
STRICTLY_BEFORE = "INTERVAL 1 MICROSECOND PRECEDING"
ID_COLUMNS = ("transaction_id", "transaction_datetime", "account_id", "transaction_amount",
              "fraudulent_activity")


@dataclass(frozen=True)
class Feature:
    name: str
    description: str
    formula: str
    sources: tuple[str, ...]
    kind: str  # numeric | binary | count
    uses_labels: bool
    sql: str

    def describe(self) -> dict:
        return {"name": self.name, "description": self.description, "formula": self.formula,
                "sources": list(self.sources), "type": self.kind, "uses_labels": self.uses_labels}


@dataclass(frozen=True)
class FeatureSpec:
    """What a model's features depend on; stored with the model so scoring matches training."""

    columns: tuple[str, ...]
    label_delay_days: int = 7
    timezone: str = "America/Lima"
    vocab: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"columns": list(self.columns), "label_delay_days": self.label_delay_days,
                "timezone": self.timezone, "vocab": {k: list(v) for k, v in self.vocab.items()}}

    @classmethod
    def from_dict(cls, data: dict) -> "FeatureSpec":
        return cls(tuple(data["columns"]), int(data["label_delay_days"]), data["timezone"],
                   {k: tuple(v) for k, v in data.get("vocab", {}).items()})


def make_spec(store: Store, dataset: str, label_delay_days: int = 7) -> FeatureSpec:
    """The spec for ``dataset``: its mapped columns and the category values seen in it."""
    if not isinstance(label_delay_days, int) or not 0 <= label_delay_days <= 365:
        raise FraudLensError(
            f"The 'label_delay_days' parameter must be an int in [0, 365]. Got {label_delay_days!r} instead."
        )
    info = datasets.read(store.home, dataset)
    present = tuple(c for c in info.columns)
    view = store.table(dataset)
    vocab = {}
    for col in CATEGORICAL:
        if col in present:
            rows = store.query_rows(
                "feature_vocab",
                f"SELECT {quote_ident(col)} AS v FROM {view} WHERE v IS NOT NULL "
                f"GROUP BY v ORDER BY count(*) DESC, v LIMIT {MAX_CATEGORIES}",
            )
            vocab[col] = tuple(str(r[0]) for r in rows)
    tz = _dataset_timezone(store, dataset)
    return FeatureSpec(present, label_delay_days, tz, vocab)


def _dataset_timezone(store: Store, dataset: str) -> str:
    return datasets.read(store.home, dataset).timezone or store.cfg.timezone


# ---------------------------------------------------------------------------- the catalogue


def catalogue(spec: FeatureSpec) -> list[Feature]:
    """Every feature the spec allows, in a fixed order."""
    has = set(spec.columns)
    out: list[Feature] = []
    out += _account_features()
    out += _calendar_features(spec)
    if "merchant_id" in has:
        out += _merchant_features(spec.label_delay_days)
    if "account_balance" in has:
        out.append(Feature("amount_to_balance", "Amount as a share of the balance before it",
                           "amount / balance", ("transaction_amount", "account_balance"), "numeric",
                           False, "amount / nullif(account_balance, 0)"))
    if "account_age_days" in has:
        out.append(Feature("account_age_days", "Days since the account was opened", "account_age_days",
                           ("account_age_days",), "numeric", False, "CAST(account_age_days AS DOUBLE)"))
    for col, values in spec.vocab.items():
        for k, value in enumerate(values):
            lit = "'" + value.replace("'", "''") + "'"
            out.append(Feature(f"{col}_{normalise_header(value) or k}", f"{col} is '{value}'", f"{col} = '{value}'",
                               (col,), "binary", False, f"CAST({quote_ident(col)} = {lit} AS INTEGER)"))
    out.append(Feature("label_known_fraud_before", "The account had a confirmed fraud whose label "
                       f"was already known ({spec.label_delay_days} days old)",
                       "any label = fraud before t - delay", ("fraudulent_activity", "account_id"),
                       "binary", True, "acct_known_fraud"))
    return out


def _account_features() -> list[Feature]:
    feats = []
    for key in ACCOUNT_WINDOWS:
        w = f"previous {key}"
        feats += [
            Feature(f"acct_count_{key}", f"Transactions of the account in the {w}", f"count over {w}",
                    ("account_id",), "count", False, f"acct_count_{key}"),
            Feature(f"acct_sum_{key}", f"Amount spent by the account in the {w} (PEN)", f"sum(amount) over {w}",
                    ("account_id", "transaction_amount"), "numeric", False, f"acct_sum_{key}"),
            Feature(f"acct_mean_{key}", f"Mean amount of the account in the {w} (PEN)", f"mean(amount) over {w}",
                    ("account_id", "transaction_amount"), "numeric", False, f"acct_mean_{key}"),
            Feature(f"acct_max_{key}", f"Largest amount of the account in the {w} (PEN)", f"max(amount) over {w}",
                    ("account_id", "transaction_amount"), "numeric", False, f"acct_max_{key}"),
        ]
    feats += [
        Feature("amount", "Transaction amount (PEN)", "amount", ("transaction_amount",), "numeric", False,
                "amount"),
        Feature("amount_log10_bin", "Order of magnitude of the amount", "floor(log10(amount + 1))",
                ("transaction_amount",), "numeric", False, "floor(log10(amount + 1))"),
        Feature("amount_to_mean_30d", "Amount divided by the account's 30-day mean",
                "amount / mean(amount) over previous 30d", ("account_id", "transaction_amount"),
                "numeric", False, "amount / nullif(acct_mean_30d, 0)"),
        Feature("amount_zscore_30d", "Amount's z-score against the account's previous 30 days",
                "(amount - mean) / std over previous 30d", ("account_id", "transaction_amount"),
                "numeric", False, "(amount - acct_mean_30d) / nullif(acct_std_30d, 0)"),
        Feature("seconds_since_previous", "Seconds since the account's previous transaction",
                "t - t(previous)", ("account_id", "transaction_datetime"), "numeric", False,
                "seconds_since_previous"),
    ]
    return feats


def _calendar_features(spec: FeatureSpec) -> list[Feature]:
    has = set(spec.columns)
    feats = [
        Feature("hour", "Hour of day, local time", "hour(local time)", ("transaction_datetime",),
                "numeric", False, "hour(local_ts)"),
        Feature("weekday", "Day of week, local time (0 = Sunday)", "dayofweek(local time)",
                ("transaction_datetime",), "numeric", False, "dayofweek(local_ts)"),
        Feature("is_weekend", "Saturday or Sunday", "weekday in (0, 6)", ("transaction_datetime",),
                "binary", False, "CAST(dayofweek(local_ts) IN (0, 6) AS INTEGER)"),
        Feature("is_night", "Between midnight and 6 am, local time", "hour < 6", ("transaction_datetime",),
                "binary", False, "CAST(hour(local_ts) < 6 AS INTEGER)"),
        Feature("is_payday", "The 15th or the last day of the month (paydays in Peru)",
                "day = 15 or day = last day", ("transaction_datetime",), "binary", False,
                "CAST(day(local_ts) = 15 OR day(local_ts + INTERVAL 1 DAY) = 1 AS INTEGER)"),
    ]
    if "merchant_id" in has:
        feats += [
            Feature("acct_distinct_merchants_24h", "Distinct merchants the account used in the previous 24h",
                    "count distinct merchant over previous 24h", ("account_id", "merchant_id"), "count",
                    False, "acct_distinct_merchants_24h"),
            Feature("first_use_of_merchant", "First time this account uses this merchant",
                    "no earlier transaction of the account at the merchant", ("account_id", "merchant_id"),
                    "binary", False, "first_use_of_merchant"),
        ]
    for col, label in (("merchant_location", "location"), ("ip_address", "IP address"), ("channel", "channel")):
        if col in has:
            feats += [
                Feature(f"{col}_changed", f"The {label} differs from the account's previous transaction",
                        f"{col} != previous {col}", ("account_id", col), "binary", False, f"{col}_changed"),
                Feature(f"{col}_new_for_account", f"First time the account is seen with this {label}",
                        f"no earlier transaction of the account with this {col}", ("account_id", col),
                        "binary", False, f"{col}_new"),
            ]
    return feats


def _merchant_features(delay: int) -> list[Feature]:
    feats = []
    for d in MERCHANT_WINDOWS:
        span = f"{d} day(s) ending {delay} day(s) before"
        feats += [
            Feature(f"merchant_count_{d}d", f"Transactions at the merchant over {span}",
                    f"count over [t - {d + delay}d, t - {delay}d)", ("merchant_id",), "count", False,
                    f"merch_count_{d}d"),
            Feature(f"merchant_fraud_rate_{d}d", f"Known-fraud rate at the merchant over {span}",
                    f"frauds / count over [t - {d + delay}d, t - {delay}d)",
                    ("merchant_id", "fraudulent_activity"), "numeric", True,
                    f"merch_frauds_{d}d / nullif(merch_count_{d}d, 0)"),
        ]
    return feats


# ---------------------------------------------------------------------------- SQL


def _account_sql(spec: FeatureSpec, source: str) -> str:
    has = set(spec.columns)
    cols = []
    for key in ACCOUNT_WINDOWS:
        w = f"w_{key}"
        cols += [f"count(*) OVER {w} AS acct_count_{key}", f"sum(amount) OVER {w} AS acct_sum_{key}",
                 f"avg(amount) OVER {w} AS acct_mean_{key}", f"max(amount) OVER {w} AS acct_max_{key}"]
    cols.append("stddev_samp(amount) OVER w_30d AS acct_std_30d")
    cols.append("(epoch_us(ts) - epoch_us(lag(ts) OVER w_seq)) / 1e6 AS seconds_since_previous")
    if "merchant_id" in has:
        cols.append("count(DISTINCT merchant_id) OVER w_24h AS acct_distinct_merchants_24h")
        cols.append("CAST(row_number() OVER (PARTITION BY account_id, merchant_id ORDER BY ts, transaction_id) = 1 "
                    "AS INTEGER) AS first_use_of_merchant")
    for col in ("merchant_location", "ip_address", "channel"):
        if col in has:
            q = quote_ident(col)
            cols.append(f"CAST({q} IS DISTINCT FROM lag({q}) OVER w_seq AND lag(ts) OVER w_seq IS NOT NULL "
                        f"AS INTEGER) AS {col}_changed")
            cols.append(f"CAST(row_number() OVER (PARTITION BY account_id, {q} ORDER BY ts, transaction_id) = 1 "
                        f"AS INTEGER) AS {col}_new")
    if "fraudulent_activity" in has:
        cols.append(
            "CAST(coalesce(max(CAST(fraudulent_activity AS INTEGER)) OVER (PARTITION BY account_id ORDER BY ts "
            f"RANGE BETWEEN UNBOUNDED PRECEDING AND INTERVAL {spec.label_delay_days} DAY PRECEDING), 0) "
            "AS INTEGER) AS acct_known_fraud"
        )
    else:
        cols.append("0 AS acct_known_fraud")
    windows = ", ".join(
        f"w_{key} AS (PARTITION BY account_id ORDER BY ts RANGE BETWEEN INTERVAL {hours} HOUR PRECEDING "
        f"AND {STRICTLY_BEFORE})"
        for key, hours in ACCOUNT_WINDOWS.items()
    )
    windows += ", w_seq AS (PARTITION BY account_id ORDER BY ts, transaction_id)"
    return f"SELECT transaction_id, {', '.join(cols)} FROM {source} WINDOW {windows}"


def _merchant_sql(spec: FeatureSpec, source: str) -> str:
    delay = spec.label_delay_days
    cols = []
    label = ("CAST(coalesce(fraudulent_activity, false) AS INTEGER)"
             if "fraudulent_activity" in spec.columns else "0")
    for d in MERCHANT_WINDOWS:
        end = f"INTERVAL {delay} DAY PRECEDING" if delay else STRICTLY_BEFORE
        frame = (f"(PARTITION BY merchant_id ORDER BY ts RANGE BETWEEN INTERVAL {d + delay} DAY PRECEDING "
                 f"AND {end})")
        cols += [f"count(*) OVER {frame} AS merch_count_{d}d", f"sum({label}) OVER {frame} AS merch_frauds_{d}d"]
    return f"SELECT transaction_id, {', '.join(cols)} FROM {source}"


def _base_sql(view: str, spec: FeatureSpec, where: str = "") -> str:
    extra = [quote_ident(c) for c in spec.columns if c not in ID_COLUMNS and c in (
        "transaction_type", "channel", "account_type", "account_balance", "account_age_days",
        "merchant_id", "merchant_location", "ip_address")]
    cols = ", ".join(["transaction_id", "transaction_datetime AS ts", "account_id",
                      "transaction_amount AS amount", "fraudulent_activity", *extra])
    return f"SELECT {cols} FROM {view} {where}"


def features_sql(view: str, spec: FeatureSpec, *, account_filter: bool = False,
                 merchant_filter: bool = False, until: bool = False) -> str:
    """SQL returning transaction_id, ts, label, amount and every catalogue feature.

    With ``account_filter``/``merchant_filter`` the account and merchant windows read only the rows
    of ``$account``/``$merchant`` (up to ``$until``) — the same answer for that account's rows, at
    a fraction of the cost, which is what explaining one transaction needs.
    """
    time_cond = "transaction_datetime <= $until" if until else "true"
    acc_where = f"WHERE {time_cond}" + (" AND account_id = $account" if account_filter else "")
    base = _base_sql(view, spec, acc_where)
    parts = [f"base AS ({base})", f"acc AS ({_account_sql(spec, 'base')})"]
    if "merchant_id" in spec.columns:
        merch_where = f"WHERE merchant_id IS NOT NULL AND {time_cond}" + (
            " AND merchant_id = $merchant" if merchant_filter else "")
        parts.append(f"mbase AS ({_base_sql(view, spec, merch_where)})")
        parts.append(f"merch AS ({_merchant_sql(spec, 'mbase')})")
    source = "base JOIN acc USING (transaction_id)" + (
        " LEFT JOIN merch USING (transaction_id)" if "merchant_id" in spec.columns else "")
    return f"WITH {', '.join(parts)} {final_sql(spec, source)} ORDER BY ts, transaction_id"


def final_sql(spec: FeatureSpec, source: str) -> str:
    """The output columns from ``source``: the base columns beside the acc and merch windows."""
    feats = catalogue(spec)
    tz = spec.timezone.replace("'", "''")
    local = f"timezone('{tz}', timezone('UTC', ts))"
    selects = ", ".join(f"CAST({f.sql} AS DOUBLE) AS {quote_ident(f.name)}" for f in feats)
    return (
        f"SELECT transaction_id, ts AS transaction_datetime, account_id, amount AS transaction_amount, "
        f"fraudulent_activity, {selects} FROM (SELECT *, {local} AS local_ts FROM {source})"
    )


def feature_names(spec: FeatureSpec) -> list[str]:
    return [f.name for f in catalogue(spec)]


def compute(store: Store, dataset: str, spec: FeatureSpec) -> pd.DataFrame:
    """Features for every row of ``dataset`` (ordered by time, then id, as the SQL) as a DataFrame.

    Read from the dataset version's feature file (:mod:`fraudlens.feature_store`), built first
    if missing.
    """
    from fraudlens import feature_store

    path = feature_store.feature_file(store, dataset, spec)
    return store.query("features", "SELECT * FROM read_parquet($path) ORDER BY transaction_datetime, transaction_id",
                       {"path": str(path)})


def compute_for_transaction(store: Store, dataset: str, spec: FeatureSpec, transaction_id: str) -> pd.DataFrame:
    """Point-in-time features of one transaction, reading only its account's and merchant's history."""
    view = store.table(dataset)
    cols = "account_id, transaction_datetime" + (", merchant_id" if "merchant_id" in spec.columns else "")
    found = store.query_rows("find_transaction",
                             f"SELECT {cols} FROM {view} WHERE transaction_id = $id LIMIT 1",
                             {"id": str(transaction_id)})
    if not found:
        raise FraudLensError(f"Transaction {transaction_id!r} is not in dataset '{dataset}'.")
    account, ts, *merchant = found[0]
    stored = _stored_row(store, dataset, spec, str(transaction_id), ts)
    if stored is not None:
        return stored
    params = {"account": account, "until": ts}
    has_merchant = "merchant_id" in spec.columns
    if has_merchant:
        params["merchant"] = merchant[0]
    sql = features_sql(view, spec, account_filter=True, merchant_filter=has_merchant, until=True)
    frame = store.query("features_one", sql, params)
    return frame[frame["transaction_id"] == str(transaction_id)].reset_index(drop=True)


def _stored_row(store: Store, dataset: str, spec: FeatureSpec, transaction_id: str, ts) -> pd.DataFrame | None:
    """The row from the feature file when one is built (None otherwise, or if it was replaced since)."""
    from fraudlens import feature_store

    path = feature_store.existing(store, dataset, spec)
    return None if path is None else feature_store.read_row(path, ts, transaction_id)


# Plain sentences for reason codes; {v} is the feature's value in its raw unit.
_REASONS = {
    "amount": "the amount is PEN {v:,.2f}",
    "amount_to_mean_30d": "the amount is {v:.1f}× this account's 30-day average",
    "amount_zscore_30d": "the amount is {v:.1f} standard deviations from this account's 30-day mean",
    "amount_to_balance": "the amount is {p:.0f}% of the balance before it",
    "seconds_since_previous": "{dur} since the account's previous transaction",
    "hour": "made at {v:.0f}:00 local time",
    "is_night": "made at night (00:00–06:00)",
    "is_weekend": "made on a weekend",
    "is_payday": "made on a payday",
    "first_use_of_merchant": "the first time this account uses this merchant",
    "acct_distinct_merchants_24h": "the account used {v:.0f} different merchants in the previous 24 hours",
    "label_known_fraud_before": "the account already had a confirmed fraud",
    "account_age_days": "the account is {v:,.0f} days old",
}


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} seconds"
    if seconds < 7200:
        return f"{seconds / 60:.0f} minutes"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} hours"
    return f"{seconds / 86400:.1f} days"


def reason_text(name: str, value: float, description: str | None = None) -> str:
    """A reason code as a sentence, e.g. ``amount is 8.4× this account's 30-day average``."""
    if value is None or value != value:  # NaN: no history to compare with
        return f"{(description or name).rstrip('.')}: no earlier history"
    if name in _REASONS:
        return _REASONS[name].format(v=value, p=100 * value, dur=_duration(value))
    for prefix, text in (("acct_count_", "the account made {v:.0f} transactions in the previous {w}"),
                         ("acct_sum_", "the account spent PEN {v:,.2f} in the previous {w}"),
                         ("acct_max_", "the account's largest amount in the previous {w} was PEN {v:,.2f}"),
                         ("acct_mean_", "the account's mean amount in the previous {w} was PEN {v:,.2f}"),
                         ("merchant_count_", "the merchant had {v:,.0f} transactions over {w}"),
                         ("merchant_fraud_rate_", "the merchant's known-fraud rate over {w} is {p:.1f}%")):
        if name.startswith(prefix):
            text = text.format(v=value, p=100 * value, w=name[len(prefix):])
            return text.replace(" 1 transactions", " 1 transaction")
    if name.endswith("_changed") and value:
        return f"the {name[:-8].replace('_', ' ')} changed since the account's previous transaction"
    if name.endswith("_new_for_account") and value:
        thing = name[:-16].replace("_", " ")
        return f"{'an' if thing[0] in 'aeiou' else 'a'} {thing} never seen before for this account"
    if description and " is '" in description and value in (0, 1):  # a one-hot category
        column, category = description.split(" is ", 1)
        verb = "is" if value else "is not"
        return f"the {column.replace('_', ' ')} {verb} {category}"
    return f"{(description or name).rstrip('.')}: {value:,.2f}"
