"""An account's transactions around a moment: the context an analyst reads beside an alert.

Queries are built by small functions that return ``(sql, params)``; every value is a bound
parameter and the only identifiers are the dataset's own view and canonical column names. Times
are stored in UTC; results carry them in the dataset's time zone as well (``local_datetime``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd

from fraudlens import datasets
from fraudlens.errors import FraudLensError
from fraudlens.schema import quote_ident
from fraudlens.store import Store

logger = logging.getLogger(__name__)

# Columns a timeline shows when the dataset has them, in this order.
OPTIONAL = ("transaction_type", "channel", "merchant_id", "merchant_location", "fraudulent_activity")
MAX_DAYS = 366
MAX_LIMIT = 10_000


@dataclass(frozen=True)
class Timeline:
    """Transactions of one account within ``days`` of ``around`` (UTC), by time.

    ``rows`` has transaction_id, transaction_datetime (UTC), local_datetime, transaction_amount
    and the optional columns the dataset has. When more than ``limit`` rows fall in the window,
    the ``limit`` closest in time to ``around`` are kept and ``truncated`` is True.
    """

    account_id: str
    around: datetime
    days: int
    limit: int
    rows: pd.DataFrame
    truncated: bool
    timezone: str


def _check_int(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise FraudLensError(f"The '{name}' parameter must be an int in [{low}, {high}]. Got {value!r} instead.")
    return value


def _columns(info: datasets.DatasetInfo) -> list[str]:
    return [c for c in OPTIONAL if c in info.columns]


def timeline_sql(view: str, columns: list[str], *, tz: str, account_id: str, around: datetime,
                 days: int, limit: int) -> tuple[str, dict]:
    """The query of :func:`account_timeline` and its parameters (``limit + 1`` rows, to tell
    "truncated"); ``columns`` must come from ``OPTIONAL``."""
    unknown = [c for c in columns if c not in OPTIONAL]
    if unknown:
        raise FraudLensError(f"The 'columns' parameter must be among {OPTIONAL}. Got {unknown} instead.")
    extra = "".join(f", {quote_ident(c)}" for c in columns)
    sql = (
        "SELECT transaction_id, transaction_datetime, "
        "timezone($tz, timezone('UTC', transaction_datetime)) AS local_datetime, "
        f"transaction_amount{extra} FROM {view} "
        "WHERE account_id = $account AND transaction_datetime BETWEEN $start AND $end "
        "ORDER BY abs(epoch(transaction_datetime) - epoch($around)), transaction_datetime, transaction_id "
        "LIMIT $limit"
    )
    params = {
        "tz": tz, "account": account_id, "around": around,
        "start": around - timedelta(days=days), "end": around + timedelta(days=days), "limit": limit + 1,
    }
    return sql, params


def account_timeline(store: Store, dataset: str, account_id: str, around: datetime, days: int = 7,
                     limit: int = 200) -> Timeline:
    """Transactions of ``account_id`` between ``around - days`` and ``around + days``, at most ``limit``.

    Parameters
    ----------
    store : Store
    dataset : str
    account_id : str
    around : datetime
        The moment of interest, naive UTC as stored (or aware, converted to UTC).
    days : int in [0, 366]
        Half-width of the window in days.
    limit : int in [1, 10000]
        Rows returned at most; the closest to ``around`` are kept.

    Returns
    -------
    Timeline
        Rows ordered by time.
    """
    days = _check_int(days, "days", 0, MAX_DAYS)
    limit = _check_int(limit, "limit", 1, MAX_LIMIT)
    if not isinstance(account_id, str) or not account_id:
        raise FraudLensError(f"The 'account_id' parameter must be a non-empty string. Got {account_id!r} instead.")
    around = _utc_naive(around)
    view = store.table(dataset)
    info = datasets.read(store.home, dataset)
    sql, params = timeline_sql(view, _columns(info), tz=info.timezone, account_id=account_id,
                               around=around, days=days, limit=limit)
    frame = store.query("account_timeline", sql, params)
    truncated = len(frame) > limit
    frame = frame.head(limit).sort_values(["transaction_datetime", "transaction_id"]).reset_index(drop=True)
    return Timeline(account_id, around, days, limit, frame, truncated, info.timezone)


def transaction(store: Store, dataset: str, transaction_id: str) -> dict:
    """One transaction as a dict (the timeline's columns plus account_id); FraudLensError if absent."""
    if not isinstance(transaction_id, str) or not transaction_id.strip():
        raise FraudLensError("Give a transaction id.")
    view = store.table(dataset)
    info = datasets.read(store.home, dataset)
    extra = "".join(f", {quote_ident(c)}" for c in _columns(info))
    frame = store.query(
        "transaction_by_id",
        "SELECT transaction_id, account_id, transaction_datetime, "
        "timezone($tz, timezone('UTC', transaction_datetime)) AS local_datetime, "
        f"transaction_amount{extra} FROM {view} WHERE transaction_id = $id LIMIT 1",
        {"tz": info.timezone, "id": transaction_id.strip()},
    )
    if frame.empty:
        raise FraudLensError(f"Transaction {transaction_id.strip()!r} is not in dataset '{dataset}'. "
                             "Check the id, or pick one from the list.")
    return frame.iloc[0].to_dict()


def _utc_naive(moment: object) -> datetime:
    stamp = pd.Timestamp(moment)
    if stamp is pd.NaT:
        raise FraudLensError(f"The 'around' parameter must be a date and time. Got {moment!r} instead.")
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_pydatetime()
