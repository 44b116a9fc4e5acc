"""Tests for the synthetic transaction generator: shape, determinism, formats and fraud realism."""

from __future__ import annotations

import gzip
import re
from datetime import date, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from sklearn.metrics import average_precision_score
from sklearn.tree import DecisionTreeClassifier

from fraudlens.errors import FraudLensError
from fraudlens.schema import CANONICAL, GROUND_TRUTH, LABEL
from fraudlens.synth import COLUMNS, REGIONS, SCENARIOS, generate

START = date(2025, 1, 1)
LIMA = timezone(timedelta(hours=-5))


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    path = tmp_path_factory.mktemp("small") / "small.parquet"
    result = generate(path, 20_000, seed=11, days=30)
    return result, pd.read_parquet(path)


@pytest.fixture(scope="module")
def medium(tmp_path_factory):
    path = tmp_path_factory.mktemp("medium") / "medium.parquet"
    result = generate(path, 80_000, seed=7)
    return result, pd.read_parquet(path)


# ---------------------------------------------------------------------------------------------
# Shape and values


def test_columns_follow_the_canonical_schema(small):
    result, df = small
    assert tuple(df.columns) == COLUMNS == (*CANONICAL, GROUND_TRUTH)
    schema = pq.read_schema(result.path)
    assert schema.field("transaction_datetime").type == pa.timestamp("us", tz="America/Lima")
    assert schema.field("transaction_amount").type == pa.float64()
    assert schema.field("account_balance").type == pa.float64()
    assert schema.field("account_age_days").type == pa.int32()
    assert schema.field(LABEL).type == pa.bool_()
    for name in ("transaction_id", "account_id", "merchant_id", "ip_address", GROUND_TRUTH):
        assert schema.field(name).type == pa.string()


def test_exact_row_count_and_unique_ids(small):
    result, df = small
    assert result.rows == len(df) == 20_000
    assert df["transaction_id"].is_unique
    assert df["transaction_id"].str.fullmatch(r"T\d{12}").all()
    assert df["account_id"].str.fullmatch(r"A\d{7}").all()
    assert result.accounts == 500
    assert 450 <= df["account_id"].nunique() <= 500
    assert result.merchants > 0


def test_amounts_and_balances_are_plausible(small):
    _, df = small
    for col in ("transaction_amount", "account_balance"):
        values = df[col].to_numpy()
        assert np.isfinite(values).all() and (values >= 0).all()
        assert np.allclose(values * 100, np.round(values * 100))
    assert (df["account_age_days"] >= 1).all()
    # Balances move with the account's own rows: no account has a single constant balance.
    assert (df.groupby("account_id")["account_balance"].nunique() > 1).mean() > 0.9


def test_sorted_in_time_and_inside_the_period(small):
    _, df = small
    when = df["transaction_datetime"]
    assert when.is_monotonic_increasing
    first = datetime(2025, 1, 1, tzinfo=LIMA)
    assert when.min() >= pd.Timestamp(first)
    assert when.max() < pd.Timestamp(first + timedelta(days=30))


def test_categorical_values(small):
    _, df = small
    assert set(df["transaction_type"]) == {"purchase", "transfer", "withdrawal", "payment",
                                           "deposit"}
    assert set(df["channel"]) == {"pos", "online", "atm", "mobile", "branch"}
    assert set(df["account_type"]) == {"checking", "savings", "credit"}
    assert set(df["merchant_location"]) <= set(REGIONS)
    assert {"Junín", "Áncash", "San Martín"} <= set(df["merchant_location"])
    assert df["merchant_location"].value_counts().index[0] == "Lima"
    on_device = df["channel"].isin(["online", "mobile"])
    assert df.loc[on_device, "ip_address"].str.fullmatch(r"\d+\.\d+\.\d+\.\d+").all()
    assert df.loc[~on_device, "ip_address"].isna().all()


def test_labels_match_ground_truth_without_late_labels(small):
    result, df = small
    assert df[LABEL].notna().all()
    assert (df[LABEL] == df[GROUND_TRUTH].notna()).all()
    assert result.frauds == int(df[LABEL].sum()) == sum(result.scenario_counts.values())
    assert set(df[GROUND_TRUTH].dropna()) <= set(SCENARIOS)


# ---------------------------------------------------------------------------------------------
# Determinism and output formats


def test_same_seed_gives_identical_files(tmp_path):
    for name in ("a.parquet", "b.parquet", "a.csv", "b.csv"):
        generate(tmp_path / name, 3_000, seed=5)
    assert (tmp_path / "a.parquet").read_bytes() == (tmp_path / "b.parquet").read_bytes()
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()


def test_data_do_not_depend_on_chunk_rows(tmp_path):
    generate(tmp_path / "big.csv", 3_000, seed=5, chunk_rows=250_000)
    generate(tmp_path / "tiny.csv", 3_000, seed=5, chunk_rows=100)
    assert (tmp_path / "big.csv").read_bytes() == (tmp_path / "tiny.csv").read_bytes()


def test_different_seed_gives_different_data(tmp_path):
    generate(tmp_path / "a.parquet", 3_000, seed=5)
    generate(tmp_path / "b.parquet", 3_000, seed=6)
    a = pd.read_parquet(tmp_path / "a.parquet")
    b = pd.read_parquet(tmp_path / "b.parquet")
    assert not a.equals(b)
    assert not np.allclose(a["transaction_amount"], b["transaction_amount"])


def test_csv_and_parquet_agree(tmp_path):
    generate(tmp_path / "d.parquet", 4_000, seed=3, fraud_rate=0.05)
    generate(tmp_path / "d.csv", 4_000, seed=3, fraud_rate=0.05)
    pq_df = pd.read_parquet(tmp_path / "d.parquet")
    csv_df = pd.read_csv(tmp_path / "d.csv", dtype=str, keep_default_na=False)
    assert list(csv_df.columns) == list(COLUMNS)
    for col in ("transaction_id", "account_id", "merchant_id", "merchant_location", "channel"):
        assert (csv_df[col] == pq_df[col]).all()
    assert np.array_equal(csv_df["transaction_amount"].astype(float), pq_df["transaction_amount"])
    assert np.array_equal(csv_df["account_balance"].astype(float), pq_df["account_balance"])
    assert (csv_df["ip_address"] == pq_df["ip_address"].fillna("")).all()
    assert (csv_df[GROUND_TRUTH] == pq_df[GROUND_TRUTH].fillna("")).all()
    assert set(csv_df[LABEL]) == {"true", "false"}
    assert (csv_df[LABEL] == pq_df[LABEL].map({True: "true", False: "false"})).all()
    # Local time with its offset in the CSV, the same instant in the Parquet file.
    text = csv_df["transaction_datetime"]
    assert text.str.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d-05:00").all()
    csv_instants = pd.to_datetime(text, format="ISO8601", utc=True)
    assert (csv_instants == pq_df["transaction_datetime"].dt.tz_convert("UTC")).all()
    first = datetime.fromisoformat(text.iloc[0])
    assert pq_df["transaction_datetime"].iloc[0].to_pydatetime() == first


def test_csv_gz_output(tmp_path):
    result = generate(tmp_path / "d.csv.gz", 2_000, seed=1)
    with gzip.open(result.path, "rt", encoding="utf-8") as fh:
        lines = fh.read().splitlines()
    assert lines[0] == ",".join(COLUMNS)
    assert len(lines) == 2_001
    assert re.match(r"T000000000001,2025-01-01T\d\d:\d\d:\d\d-05:00,A\d{7},", lines[1])


def test_parquet_instants_are_peru_time(tmp_path):
    path = tmp_path / "d.parquet"
    generate(path, 1_000, seed=2, start=date(2024, 7, 1), days=2)
    column = pq.read_table(path).column("transaction_datetime")
    utc = pa.compute.cast(column, pa.timestamp("us", tz="UTC")).to_pylist()
    assert min(utc) >= datetime(2024, 7, 1, 5, tzinfo=timezone.utc)
    assert max(utc) < datetime(2024, 7, 3, 5, tzinfo=timezone.utc)


# ---------------------------------------------------------------------------------------------
# Bad arguments, atomic writes, progress


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"out": "x.txt"},
         "The 'out' path must end in .parquet, .csv or .csv.gz. Got 'x.txt' instead."),
        ({"rows": 0}, "The 'rows' parameter must be an integer >= 1. Got 0 instead."),
        ({"rows": 2.5}, "The 'rows' parameter must be an integer >= 1. Got 2.5 instead."),
        ({"fraud_rate": 0.5},
         "The 'fraud_rate' parameter must be a float in [0, 0.5). Got 0.5 instead."),
        ({"fraud_rate": -0.1},
         "The 'fraud_rate' parameter must be a float in [0, 0.5). Got -0.1 instead."),
        ({"days": 0}, "The 'days' parameter must be an integer >= 1. Got 0 instead."),
        ({"seed": -1}, "The 'seed' parameter must be an integer >= 0. Got -1 instead."),
    ],
)
def test_bad_arguments_raise_with_a_clear_message(tmp_path, kwargs, message):
    out = kwargs.pop("out", tmp_path / "d.parquet")
    rows = kwargs.pop("rows", 100)
    with pytest.raises(FraudLensError) as info:
        generate(out, rows, **kwargs)
    assert str(info.value) == message
    assert list(tmp_path.iterdir()) == []


def test_failure_leaves_no_partial_output(tmp_path):
    def explode(fraction: float, message: str) -> None:
        raise RuntimeError("stop")

    with pytest.raises(RuntimeError):
        generate(tmp_path / "d.parquet", 5_000, chunk_rows=1_000, progress=explode)
    assert list(tmp_path.iterdir()) == []


def test_progress_reaches_one(tmp_path):
    seen: list[tuple[float, str]] = []
    generate(tmp_path / "d.parquet", 5_000, chunk_rows=1_000,
             progress=lambda f, m: seen.append((f, m)))
    fractions = [f for f, _ in seen]
    assert len(seen) >= 4
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(isinstance(m, str) and m for _, m in seen)


def test_tiny_and_fraud_free_datasets(tmp_path):
    one = generate(tmp_path / "one.parquet", 1, days=1)
    assert len(pd.read_parquet(one.path)) == 1
    clean = generate(tmp_path / "clean.parquet", 2_000, fraud_rate=0.0)
    assert clean.frauds == 0 and not pd.read_parquet(clean.path)[LABEL].any()


# ---------------------------------------------------------------------------------------------
# Fraud: rate, scenarios, behaviour


def test_fraud_rate_and_scenario_mix(medium):
    result, df = medium
    rate = df[LABEL].mean()
    assert 0.7 * 0.008 <= rate <= 1.3 * 0.008
    counts = df[GROUND_TRUTH].value_counts()
    assert counts.to_dict() == {k: v for k, v in result.scenario_counts.items() if v}
    assert set(counts.index) == set(SCENARIOS)
    shares = counts / counts.sum()
    assert (shares > 0.08).all()
    assert 0.10 <= shares["subtle"] <= 0.20


def test_scenarios_look_like_their_story(medium):
    _, df = medium
    by = {name: df[df[GROUND_TRUTH] == name] for name in SCENARIOS}
    testing = by["card_testing"]
    assert (testing["channel"] == "online").all()
    assert (testing["transaction_amount"] <= 10).mean() > 0.8
    assert testing.groupby("account_id").size().median() >= 5
    takeover = by["account_takeover"]
    assert (takeover["transaction_type"] == "transfer").all()
    assert takeover["channel"].isin(["mobile", "online"]).all()
    drained = takeover["transaction_amount"] / takeover["account_balance"].clip(lower=0.01)
    assert drained.median() > 0.5
    cashout = by["atm_cashout"]
    assert (cashout["channel"] == "atm").all()
    assert (cashout["transaction_datetime"].dt.hour < 6).mean() > 0.95
    assert (cashout["transaction_amount"] % 100 == 0).all()
    mules = by["mule_transfer"]
    assert mules.groupby("merchant_id")["account_id"].nunique().max() >= 8
    shops = by["compromised_merchant"]
    assert shops.groupby("merchant_id")["account_id"].nunique().max() >= 8
    # Subtle fraud stays close to the account's usual channels and amounts.
    subtle = by["subtle"]
    assert subtle["transaction_amount"].median() < 5 * df["transaction_amount"].median()


def behaviour_features(df: pd.DataFrame) -> pd.DataFrame:
    """Obvious per-row features built from the columns only (never from fraud_scenario)."""
    when = df["transaction_datetime"]
    seconds = ((when - when.iloc[0]).dt.total_seconds()).to_numpy().astype(np.int64)
    amount = df["transaction_amount"]
    usual = df.groupby("account_id")["transaction_amount"].transform("median")
    out = pd.DataFrame({
        "hour": when.dt.hour,
        "night": (when.dt.hour < 6).astype(int),
        "amount": amount,
        "amount_ratio": amount / (usual + 1),
        "drain": amount / (df["account_balance"] + 1),
        "round": (amount % 100 == 0).astype(int),
    })
    for col in ("channel", "transaction_type"):
        for value in sorted(df[col].unique()):
            out[f"{col}_{value}"] = (df[col] == value).astype(int)
    home = df.groupby("account_id")["merchant_location"].agg(lambda s: s.mode().iloc[0])
    out["away"] = (df["merchant_location"] != df["account_id"].map(home)).astype(int)
    out["new_merchant"] = (df.groupby(["account_id", "merchant_id"]).cumcount() == 0).astype(int)
    ip = df["ip_address"].fillna("")
    first_ip = df.assign(ip=ip).groupby(["account_id", "ip"]).cumcount() == 0
    out["new_ip"] = (first_ip & (ip != "")).astype(int)
    out["account_last_hour"] = earlier_in_window(df["account_id"], seconds, 3600)
    merchant_day = earlier_in_window(df["merchant_id"], seconds, 86_400)
    per_day = df.groupby("merchant_id")["merchant_id"].transform("size") / (seconds[-1] / 86_400)
    out["merchant_surge"] = merchant_day / (per_day + 1)
    return out


def earlier_in_window(keys: pd.Series, seconds: np.ndarray, window: int) -> np.ndarray:
    """For each row, how many earlier rows with the same key fall within ``window`` seconds."""
    code = pd.factorize(keys)[0].astype(np.int64)
    combined = code * 10**9 + seconds
    order = np.argsort(combined, kind="stable")
    ordered = combined[order]
    count = np.empty(len(keys))
    count[order] = np.arange(len(ordered)) - np.searchsorted(ordered, ordered - window)
    return count


def test_labels_are_explained_by_behaviour(medium):
    _, df = medium
    features = behaviour_features(df)
    label = df[LABEL].astype(int).to_numpy()
    cut = int(len(df) * 0.7)
    tree = DecisionTreeClassifier(max_depth=4, random_state=0)
    tree.fit(features.iloc[:cut], label[:cut])
    score = tree.predict_proba(features.iloc[cut:])[:, 1]
    base = label[cut:].mean()
    ap = average_precision_score(label[cut:], score)
    assert ap > 0.3 and ap > 10 * base, (ap, base)
    # Subtle fraud stays hard: a shallow tree on obvious features misses most of it.
    truth = df[GROUND_TRUTH].iloc[cut:].fillna("")
    keep = (truth == "subtle") | (truth == "")
    subtle_ap = average_precision_score(label[cut:][keep], score[keep.to_numpy()])
    assert subtle_ap < ap / 3


def test_late_labels(tmp_path):
    kwargs = {"rows": 30_000, "seed": 4, "fraud_rate": 0.04, "days": 60}
    late = generate(tmp_path / "late.parquet", late_labels=True, **kwargs)
    prompt = generate(tmp_path / "prompt.parquet", **kwargs)
    a, b = pd.read_parquet(late.path), pd.read_parquet(prompt.path)
    # Only the label changes; the ground truth is the same.
    assert a.drop(columns=LABEL).equals(b.drop(columns=LABEL))
    fraud = a[GROUND_TRUTH].notna()
    label = a[LABEL]
    end = pd.Timestamp(datetime(2025, 1, 1, tzinfo=LIMA) + timedelta(days=60))
    recent = a["transaction_datetime"] >= end - pd.Timedelta(days=7)
    assert label[~fraud & recent].isna().all()
    assert (label[~fraud & ~recent] == False).all()  # noqa: E712
    assert label[fraud].isna().any()  # reported after the end
    assert (label[fraud] == False).any()  # never reported  # noqa: E712
    assert (label[fraud] == True).mean() > 0.5  # noqa: E712
    assert not (label[~fraud] == True).any()  # noqa: E712
    # Frauds without a label yet are mostly the recent ones.
    unknown = fraud & label.isna()
    when = a["transaction_datetime"]
    assert when[unknown].median() > when[fraud].median()
