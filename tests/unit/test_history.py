"""An account's transactions around a moment: window bounds, other accounts, the limit, local
times, bound parameters, and datasets with only the required columns."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest

from fraudlens import history
from fraudlens.errors import FraudLensError
from fraudlens.ingest import ingest
from fraudlens.store import get_store

# Lima time in the file (no offset): stored as UTC, five hours later.
ROWS = [
    # id, time (Lima), account, amount, channel, label
    ("T1", "2025-03-01 10:00:00", "A1", "10.00", "pos", "0"),
    ("T2", "2025-03-08 09:00:00", "A1", "20.00", "online", "0"),
    ("T3", "2025-03-10 12:00:00", "A1", "30.00", "online", "1"),  # the one of interest
    ("T4", "2025-03-10 12:30:00", "A1", "40.00", "atm", ""),
    ("T5", "2025-03-12 08:00:00", "A1", "50.00", "pos", "0"),
    ("T6", "2025-03-17 12:00:00", "A1", "60.00", "pos", "0"),  # exactly 7 days after T3
    ("T7", "2025-03-17 12:00:01", "A1", "70.00", "pos", "0"),  # one second beyond
    ("B1", "2025-03-10 12:00:00", "B9", "99.00", "pos", "0"),  # another account
    ("Q1", "2025-03-10 12:05:00", "x' OR '1'='1", "1.00", "pos", "0"),
]
AROUND = datetime(2025, 3, 10, 17, 0, 0)  # T3 in UTC


@pytest.fixture
def dataset(home, write):
    lines = ["transaction_id,transaction_datetime,account_id,transaction_amount,channel,fraudulent_activity"]
    lines += [",".join(r) if "'" not in r[2] else ",".join((r[0], r[1], f'"{r[2]}"', *r[3:])) for r in ROWS]
    ingest([write("tx.csv", "\n".join(lines) + "\n")], "tx", cfg=home)
    return get_store(home)


@pytest.fixture
def bare(home, write):
    lines = ["transaction_id,transaction_datetime,account_id,transaction_amount"]
    lines += [",".join(r[:4]) for r in ROWS[:3]]
    ingest([write("bare.csv", "\n".join(lines) + "\n")], "bare", cfg=home)
    return get_store(home)


def test_the_window_is_inclusive_and_other_accounts_stay_out(dataset):
    line = history.account_timeline(dataset, "tx", "A1", AROUND, days=7)
    assert line.rows["transaction_id"].tolist() == ["T2", "T3", "T4", "T5", "T6"]
    assert not line.truncated and line.account_id == "A1" and line.days == 7


def test_rows_are_in_time_order_with_local_times(dataset):
    rows = history.account_timeline(dataset, "tx", "A1", AROUND, days=1).rows
    assert rows["transaction_id"].tolist() == ["T3", "T4"]
    assert rows["transaction_datetime"].iloc[0] == pd.Timestamp("2025-03-10 17:00:00")
    assert rows["local_datetime"].iloc[0] == pd.Timestamp("2025-03-10 12:00:00")
    assert rows["local_datetime"].is_monotonic_increasing


def test_the_optional_columns_come_along(dataset):
    rows = history.account_timeline(dataset, "tx", "A1", AROUND, days=1).rows
    assert list(rows.columns) == ["transaction_id", "transaction_datetime", "local_datetime",
                                  "transaction_amount", "channel", "fraudulent_activity"]
    assert rows["channel"].tolist() == ["online", "atm"]
    assert rows["fraudulent_activity"].iloc[0] == True  # noqa: E712 - numpy/pandas bool
    assert pd.isna(rows["fraudulent_activity"].iloc[1])


def test_the_limit_keeps_the_closest_and_says_truncated(dataset):
    line = history.account_timeline(dataset, "tx", "A1", AROUND, days=30, limit=3)
    assert line.truncated
    assert line.rows["transaction_id"].tolist() == ["T3", "T4", "T5"]  # 0 min, 30 min, 1.8 days away
    exact = history.account_timeline(dataset, "tx", "A1", AROUND, days=30, limit=7)
    assert not exact.truncated and len(exact.rows) == 7


def test_an_aware_moment_is_converted_to_utc(dataset):
    lima = timezone(timedelta(hours=-5))
    line = history.account_timeline(dataset, "tx", "A1", datetime(2025, 3, 10, 12, 0, tzinfo=lima), days=0)
    assert line.rows["transaction_id"].tolist() == ["T3"]
    assert line.around == AROUND


def test_values_are_bound_not_spliced(dataset):
    rows = history.account_timeline(dataset, "tx", "x' OR '1'='1", AROUND, days=1).rows
    assert rows["transaction_id"].tolist() == ["Q1"]
    assert history.account_timeline(dataset, "tx", "A1' --", AROUND, days=30).rows.empty


@pytest.mark.parametrize(("field", "value"), [("days", -1), ("days", 400), ("days", 1.5), ("limit", 0),
                                              ("limit", 10_001), ("limit", True)])
def test_bad_bounds_are_refused_with_the_parameter_named(dataset, field, value):
    kwargs = {"days": 7, "limit": 10, field: value}
    with pytest.raises(FraudLensError, match=f"The '{field}' parameter must be an int"):
        history.account_timeline(dataset, "tx", "A1", AROUND, **kwargs)


def test_only_known_columns_reach_the_sql():
    with pytest.raises(FraudLensError, match="'columns' parameter"):
        history.timeline_sql('"tx_a"', ["channel", "1; DROP TABLE x"], tz="UTC", account_id="A",
                             around=AROUND, days=1, limit=5)
    sql, params = history.timeline_sql('"tx_a"', ["channel"], tz="UTC", account_id="Acc9", around=AROUND,
                                       days=2, limit=5)
    assert "$account" in sql and "Acc9" not in sql and params["account"] == "Acc9"
    assert params["limit"] == 6 and params["start"] == AROUND - timedelta(days=2)


def test_a_dataset_with_only_the_required_columns(bare):
    rows = history.account_timeline(bare, "bare", "A1", AROUND, days=30).rows
    assert list(rows.columns) == ["transaction_id", "transaction_datetime", "local_datetime", "transaction_amount"]
    assert rows["transaction_id"].tolist() == ["T1", "T2", "T3"]


def test_one_transaction_by_id(dataset):
    tx = history.transaction(dataset, "tx", " T3 ")
    assert (tx["account_id"], tx["transaction_amount"], tx["channel"]) == ("A1", 30.0, "online")
    assert tx["local_datetime"] == pd.Timestamp("2025-03-10 12:00:00")
    with pytest.raises(FraudLensError, match="'NOPE' is not in dataset 'tx'"):
        history.transaction(dataset, "tx", "NOPE")
    with pytest.raises(FraudLensError, match="Give a transaction id"):
        history.transaction(dataset, "tx", "  ")
