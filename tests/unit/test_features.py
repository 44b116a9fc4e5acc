"""Point-in-time features: no leakage from the future or from immature labels, and agreement with
a slow pandas reference on small data."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from fraudlens import feature_store
from fraudlens import features as F
from fraudlens.ingest import ingest
from fraudlens.store import get_store
from fraudlens.synth import generate


@pytest.fixture
def small(home, tmp_path):
    """A 6,000-row generated dataset named ``small``, and its source DataFrame."""
    src = tmp_path / "small.parquet"
    generate(src, 6_000, seed=3, days=40)
    ingest(src, "small", cfg=home)
    return home, src, pq.read_table(src).to_pandas()


def _features(cfg, dataset, spec):
    frame = F.compute(get_store(cfg), dataset, spec)
    return frame.set_index("transaction_id").sort_index()


def _ingest_frame(cfg, frame: pd.DataFrame, path, name):
    frame.to_parquet(path)
    ingest(path, name, cfg=cfg)


def test_deleting_the_future_leaves_the_past_unchanged(small, tmp_path):
    cfg, _src, raw = small
    spec = F.make_spec(get_store(cfg), "small")
    full = _features(cfg, "small", spec)
    cut = raw["transaction_datetime"].quantile(0.6)
    _ingest_frame(cfg, raw[raw["transaction_datetime"] <= cut], tmp_path / "past.parquet", "past")
    past = _features(cfg, "past", spec)
    assert len(past) < len(full)
    pd.testing.assert_frame_equal(past, full.loc[past.index], check_exact=False, rtol=1e-9)


def test_a_label_younger_than_the_delay_never_changes_a_feature(small, tmp_path):
    cfg, _src, raw = small
    spec = F.make_spec(get_store(cfg), "small", label_delay_days=7)
    full = _features(cfg, "small", spec)
    t = raw["transaction_datetime"].quantile(0.7)
    flipped = raw.copy()
    young = flipped["transaction_datetime"] > t - pd.Timedelta(days=7)
    flipped.loc[young, "fraudulent_activity"] = ~flipped.loc[young, "fraudulent_activity"].astype(bool)
    _ingest_frame(cfg, flipped, tmp_path / "flipped.parquet", "flipped")
    other = _features(cfg, "flipped", spec)
    upto = full.index[full["transaction_datetime"] <= t.tz_convert("UTC").tz_localize(None)]
    label_features = [f.name for f in F.catalogue(spec) if f.uses_labels]
    assert label_features
    pd.testing.assert_frame_equal(other.loc[upto, label_features], full.loc[upto, label_features])
    # And the flip is visible later on, so the test can fail.
    later = full.index.difference(upto)
    assert not other.loc[later, label_features].equals(full.loc[later, label_features])


def test_one_transaction_equals_the_full_computation(small):
    cfg, _src, raw = small
    store = get_store(cfg)
    spec = F.make_spec(store, "small")
    full = _features(cfg, "small", spec)  # also builds the feature file
    picked = full.index[[10, 2000, 4500, -1]]
    stored = [F.compute_for_transaction(store, "small", spec, tid) for tid in picked]
    feature_store.remove(cfg.home, "small")  # now each row is computed from its own history
    for tid, from_file in zip(picked, stored):
        one = F.compute_for_transaction(store, "small", spec, tid).set_index("transaction_id")
        pd.testing.assert_frame_equal(one, full.loc[[tid]], check_exact=False, rtol=1e-9)
        pd.testing.assert_frame_equal(from_file.set_index("transaction_id"), one)


def _reference(raw: pd.DataFrame, delay_days: int) -> pd.DataFrame:
    """Slow, obviously correct versions of a few features, one row at a time."""
    df = raw.copy()
    df["ts"] = df["transaction_datetime"].dt.tz_convert("UTC").dt.tz_localize(None)
    df = df.sort_values(["ts", "transaction_id"]).reset_index(drop=True)
    out = []
    for row in df.itertuples():
        acc = df[(df["account_id"] == row.account_id) & (df["ts"] < row.ts)]
        last_hour = acc[acc["ts"] >= row.ts - pd.Timedelta(hours=1)]
        last_day = acc[acc["ts"] >= row.ts - pd.Timedelta(hours=24)]
        earlier = df[(df["account_id"] == row.account_id) & (
            (df["ts"] < row.ts) | ((df["ts"] == row.ts) & (df["transaction_id"] < row.transaction_id)))]
        merch = df[(df["merchant_id"] == row.merchant_id)
                   & (df["ts"] >= row.ts - pd.Timedelta(days=7 + delay_days))
                   & (df["ts"] <= row.ts - pd.Timedelta(days=delay_days))]
        out.append({
            "transaction_id": row.transaction_id,
            "acct_count_1h": len(last_hour),
            "acct_sum_24h": last_day["transaction_amount"].sum() if len(last_day) else np.nan,
            "acct_max_24h": last_day["transaction_amount"].max() if len(last_day) else np.nan,
            "seconds_since_previous": (row.ts - earlier["ts"].max()).total_seconds() if len(earlier) else np.nan,
            "first_use_of_merchant": int(not (earlier["merchant_id"] == row.merchant_id).any()),
            "merchant_count_7d": len(merch),
            "merchant_fraud_rate_7d": merch["fraudulent_activity"].fillna(False).astype(bool).mean()
            if len(merch) else np.nan,
        })
    return pd.DataFrame(out).set_index("transaction_id").sort_index()


def test_features_match_a_slow_pandas_reference(home, tmp_path):
    src = tmp_path / "tiny.parquet"
    generate(src, 1_500, seed=11, days=20)
    ingest(src, "tiny", cfg=home)
    spec = F.make_spec(get_store(home), "tiny", label_delay_days=3)
    ours = _features(home, "tiny", spec)
    ref = _reference(pq.read_table(src).to_pandas(), 3)
    for col in ref.columns:
        pd.testing.assert_series_equal(ours[col].astype(float), ref[col].astype(float), check_names=False,
                                       rtol=1e-9, obj=col)


def test_a_dataset_with_few_columns_still_gets_features(home, tmp_path):
    frame = pd.DataFrame({
        "id": [f"t{i}" for i in range(50)],
        "when": pd.date_range("2025-01-01", periods=50, freq="7h").astype(str),
        "account": [f"a{i % 5}" for i in range(50)],
        "amount": np.arange(50) * 3.5,
        "merchant": [f"m{i % 3}" for i in range(50)],
        "fraud": [i % 10 == 0 for i in range(50)],
    })
    path = tmp_path / "few.csv"
    frame.to_csv(path, index=False)
    ingest(path, "few", mapping={"transaction_id": "id", "transaction_datetime": "when",
                                 "account_id": "account", "transaction_amount": "amount",
                                 "merchant_id": "merchant", "fraudulent_activity": "fraud"}, cfg=home)
    spec = F.make_spec(get_store(home), "few")
    names = F.feature_names(spec)
    assert "merchant_fraud_rate_7d" in names and "amount_to_balance" not in names
    assert "ip_address_changed" not in names
    out = F.compute(get_store(home), "few", spec)
    assert len(out) == 50 and set(names) <= set(out.columns)


def test_catalogue_describes_every_feature(small):
    cfg, _src, _raw = small
    spec = F.make_spec(get_store(cfg), "small")
    for feature in F.catalogue(spec):
        d = feature.describe()
        assert d["name"] and d["description"] and d["formula"] and d["sources"]
        assert d["type"] in ("numeric", "binary", "count")
    assert {f.name for f in F.catalogue(spec) if f.uses_labels} >= {"merchant_fraud_rate_7d"}
    assert "fraud_scenario" not in F.feature_names(spec)


def test_bad_label_delay_is_refused(small):
    cfg, _src, _raw = small
    with pytest.raises(Exception, match="label_delay_days"):
        F.make_spec(get_store(cfg), "small", label_delay_days=-1)


def test_reason_codes_read_as_sentences():
    assert F.reason_text("amount_to_mean_30d", 8.43) == "the amount is 8.4× this account's 30-day average"
    assert F.reason_text("seconds_since_previous", 50) == "50 seconds since the account's previous transaction"
    assert F.reason_text("acct_count_1h", 4) == "the account made 4 transactions in the previous 1h"
    assert F.reason_text("merchant_fraud_rate_7d", 0.125) == "the merchant's known-fraud rate over 7d is 12.5%"
    assert "no earlier history" in F.reason_text("amount_to_mean_30d", float("nan"), "Amount / mean")
    assert F.reason_text("ip_address_new_for_account", 1) == "an ip address never seen before for this account"
    assert F.reason_text("channel_atm", 1, "channel is 'atm'") == "the channel is 'atm'"
    assert F.reason_text("transaction_type_purchase", 0, "transaction_type is 'purchase'") == (
        "the transaction type is not 'purchase'")
