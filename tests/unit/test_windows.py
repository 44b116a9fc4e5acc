"""The feature file's window columns (computed in numba) equal the feature SQL's on awkward data:
timestamps shared within an account, NULL merchants, places, addresses and labels, windows far
longer than the exact-sum limit, no label delay, and datasets without the optional columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from fraudlens import feature_store
from fraudlens import features as F
from fraudlens import windows
from fraudlens.ingest import ingest
from fraudlens.store import get_store

MAPPING = {"transaction_id": "id", "transaction_datetime": "when", "account_id": "account",
           "transaction_amount": "amount", "fraudulent_activity": "fraud"}


def _awkward(n: int = 3_000, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2025-03-01")
    # Seconds drawn from a small range: many rows share a timestamp, also within an account.
    seconds = np.sort(rng.integers(0, 40 * 86_400 // 600, n)) * 600
    account = rng.choice(["a1", "a2", "a3", "busy"], n, p=[0.1, 0.1, 0.1, 0.7])

    def maybe_null(values, share):
        out = np.asarray(values, dtype=object)
        out[rng.random(n) < share] = None
        return out

    fraud = maybe_null(rng.random(n) < 0.05, 0.3)
    return pd.DataFrame({
        "id": [f"t{i:05d}" for i in rng.permutation(n)],  # ids not in time order
        "when": (start + pd.to_timedelta(seconds, unit="s")).strftime("%Y-%m-%d %H:%M:%S"),
        "account": account,
        "amount": np.round(rng.lognormal(4, 2, n), 2),
        "merchant": maybe_null(rng.choice([f"m{k}" for k in range(8)], n), 0.2),
        "place": maybe_null(rng.choice(["Lima", "Cusco", "Piura"], n), 0.2),
        "ip": maybe_null(rng.choice([f"10.0.0.{k}" for k in range(5)], n), 0.2),
        "channel": maybe_null(rng.choice(["pos", "online", "atm"], n), 0.2),
        "fraud": [None if f is None else bool(f) for f in fraud],
    })


def _load(home, tmp_path, frame: pd.DataFrame, name: str, extra: dict) -> None:
    path = tmp_path / f"{name}.csv"
    frame.to_csv(path, index=False)
    ingest(path, name, mapping={**MAPPING, **extra}, cfg=home)


@pytest.mark.parametrize("delay", [0, 3])
def test_window_columns_equal_the_sql(home, tmp_path, delay):
    _load(home, tmp_path, _awkward(), "awk", {"merchant_id": "merchant", "merchant_location": "place",
                                               "ip_address": "ip", "channel": "channel"})
    store = get_store(home)
    spec = F.make_spec(store, "awk", label_delay_days=delay)
    direct = store.query("direct", F.features_sql(store.table("awk"), spec))
    stored = F.compute(store, "awk", spec)
    assert feature_store.existing(store, "awk", spec) is not None
    pd.testing.assert_frame_equal(stored, direct, check_exact=False, rtol=1e-9)
    # The data is awkward enough to matter: shared timestamps, long windows, NULLs, known frauds.
    assert stored.duplicated(["account_id", "transaction_datetime"]).any()
    assert stored["acct_count_30d"].max() > 2 * windows.BLOCK
    assert stored["acct_distinct_merchants_24h"].max() > 1
    assert stored["label_known_fraud_before"].sum() > 0
    assert stored["merchant_count_1d"].isna().any()


def _hourly(account: str, amounts, start="2025-01-01", step="1h") -> pd.DataFrame:
    when = pd.date_range(start, periods=len(amounts), freq=step)
    return pd.DataFrame({"id": [f"{account}-{i:05d}" for i in range(len(amounts))],
                         "when": when.strftime("%Y-%m-%d %H:%M:%S.%f"), "account": account,
                         "amount": amounts, "fraud": [i % 97 == 5 for i in range(len(amounts))]})


def test_sums_and_spreads_do_not_drift(home, tmp_path):
    """Equal amounts that binary floats cannot hold have no spread (so no z-score); a long run
    of zeros after large amounts sums to exactly 0; sub-second gaps are exact."""
    rng = np.random.default_rng(2)
    frame = pd.concat([
        _hourly("equal", [0.1] * 120),
        _hourly("dues", [19.99] * 5 + [123.45] * 150).assign(  # the 19.99s 40 days before the rest
            when=lambda f: f["when"].where(f.index < 5, (pd.to_datetime(f["when"]) + pd.Timedelta(days=40))
                                           .dt.strftime("%Y-%m-%d %H:%M:%S.%f"))),
        _hourly("zeros", [*np.round(rng.lognormal(8, 3, 100), 2), *[0.0] * 800, 50.0]),
        _hourly("fast", np.round(rng.lognormal(3, 1, 300), 2), step="1500ms"),
    ])
    _load(home, tmp_path, frame, "drift", {})
    store = get_store(home)
    spec = F.make_spec(store, "drift", label_delay_days=1)
    direct = store.query("direct", F.features_sql(store.table("drift"), spec))
    stored = F.compute(store, "drift", spec)
    pd.testing.assert_frame_equal(stored, direct, check_exact=False, rtol=1e-9)
    rows = stored.set_index("transaction_id")
    assert rows.loc["equal-00119", "amount_zscore_30d"] != rows.loc["equal-00119", "amount_zscore_30d"]  # NULL
    assert rows.loc["dues-00154", "amount_zscore_30d"] != rows.loc["dues-00154", "amount_zscore_30d"]
    assert rows.loc["zeros-00900", "acct_sum_30d"] == 0.0
    assert rows.loc["fast-00299", "seconds_since_previous"] == 1.5


def test_a_spec_without_labels_never_reads_them(home, tmp_path):
    _load(home, tmp_path, _awkward(1_000, seed=6), "labelled", {"merchant_id": "merchant"})
    store = get_store(home)
    full = F.make_spec(store, "labelled", label_delay_days=0)
    spec = F.FeatureSpec(tuple(c for c in full.columns if c != "fraudulent_activity"), 0, full.timezone,
                         full.vocab)
    direct = store.query("direct", F.features_sql(store.table("labelled"), spec))
    stored = F.compute(store, "labelled", spec)
    pd.testing.assert_frame_equal(stored, direct, check_exact=False, rtol=1e-9)
    assert stored["label_known_fraud_before"].eq(0).all()
    assert stored["merchant_fraud_rate_7d"].fillna(0).eq(0).all()


def test_a_dataset_without_the_optional_columns(home, tmp_path):
    _load(home, tmp_path, _awkward(800, seed=9), "bare", {})
    store = get_store(home)
    spec = F.make_spec(store, "bare", label_delay_days=2)
    direct = store.query("direct", F.features_sql(store.table("bare"), spec))
    pd.testing.assert_frame_equal(F.compute(store, "bare", spec), direct, check_exact=False, rtol=1e-9)


def test_counting_sort_keeps_ties_in_input_order():
    codes = np.array([2, -1, 0, 2, 0, -1, 1], dtype=np.int32)
    order = windows._stable_order(codes, 3)
    assert order.tolist() == [1, 5, 2, 4, 6, 0, 3]


def test_window_max_and_sum_over_a_long_falling_and_rising_run():
    ts = np.arange(300, dtype=np.int64) * 1_000_000  # one row a second
    amount = np.concatenate([np.arange(150, 0, -1), np.arange(150)]).astype(float)
    count, total, biggest = windows._range_stats(ts, amount, np.array([0, 300]), 100 * 1_000_000)
    for i in (0, 1, 99, 100, 150, 299):
        frame = amount[max(0, i - 100):i]
        assert count[i] == len(frame)
        if len(frame):
            assert total[i] == pytest.approx(frame.sum(), rel=1e-12)
            assert biggest[i] == frame.max()
        else:
            assert np.isnan(total[i]) and np.isnan(biggest[i])


def test_parts_out_of_time_order_are_sorted_first(home, tmp_path):
    """Earlier rows appended after later ones: the parts are read out of time order."""
    frame = _awkward(1_500, seed=11)  # in time order
    extra = {"merchant_id": "merchant", "ip_address": "ip", "channel": "channel"}
    _load(home, tmp_path, frame.iloc[700:], "parts", extra)
    frame.iloc[:700].to_csv(tmp_path / "early.csv", index=False)
    ingest(tmp_path / "early.csv", "parts", mapping={**MAPPING, **extra}, mode="append", cfg=home)
    store = get_store(home)
    spec = F.make_spec(store, "parts", label_delay_days=1)
    direct = store.query("direct", F.features_sql(store.table("parts"), spec))
    pd.testing.assert_frame_equal(F.compute(store, "parts", spec), direct, check_exact=False, rtol=1e-9)
    first = store.query_rows("first", f"SELECT transaction_id FROM {store.table('parts')} LIMIT 1")[0][0]
    assert first != direct["transaction_id"].iloc[0]  # the parts really are out of order
    assert _file_ids(store, "parts", spec) == direct["transaction_id"].tolist()  # the file is in time order


def test_the_order_of_the_sql_as_positions():
    ts = pa.array([1, 2, 2, 3], pa.int64())
    assert feature_store._time_order(pa.table({"_ts": ts, "transaction_id": ["b", "a", "c", "d"]})) is None
    tied = feature_store._time_order(pa.table({"_ts": ts, "transaction_id": ["b", "c", "a", "d"]}))
    assert tied.tolist() == [0, 2, 1, 3] and feature_store._only_ties(ts.to_numpy(), tied)
    late = pa.array([5, 1, 2, 3], pa.int64())
    moved = feature_store._time_order(pa.table({"_ts": late, "transaction_id": ["a", "b", "c", "d"]}))
    assert moved.tolist() == [1, 2, 3, 0] and not feature_store._only_ties(late.to_numpy(), moved)


def _file_ids(store, dataset: str, spec) -> list[str]:
    path = feature_store.feature_file(store, dataset, spec)
    return [r[0] for r in store.query_rows("ids", "SELECT transaction_id FROM read_parquet($p)", {"p": str(path)})]


def test_ids_of_one_timestamp_in_byte_order(home, tmp_path):
    """The windows see rows of one timestamp by id bytes, as DuckDB orders them (capitals before
    small letters, accented letters last, shorter ids before longer ones that start alike); the
    file keeps the dataset's order of those rows."""
    frame = _awkward(600, seed=12)
    frame["when"] = frame["when"].str[:10] + " 00:00:00"  # 15 rows a day, all at midnight
    names = ["a", "B", "É", "b-10", "b-9", "Z", "é", "b"]
    frame["id"] = [f"{names[i % len(names)]}{i // len(names)}" for i in range(len(frame))][::-1]
    _load(home, tmp_path, frame, "bytes", {"merchant_id": "merchant", "channel": "channel"})
    store = get_store(home)
    spec = F.make_spec(store, "bytes", label_delay_days=0)
    direct = store.query("direct", F.features_sql(store.table("bytes"), spec))
    pd.testing.assert_frame_equal(F.compute(store, "bytes", spec), direct, check_exact=False, rtol=1e-9)
    # The windows saw the SQL's order; the file keeps the dataset's, which is not the same.
    stored = [r[0] for r in store.query_rows("order", f"SELECT transaction_id FROM {store.table('bytes')}")]
    assert _file_ids(store, "bytes", spec) == stored != direct["transaction_id"].tolist()


def test_codes_over_several_chunks():
    """One code per distinct value across chunks, -1 for NULL, dense from 0."""
    text = pa.chunked_array([["x", None, "y"], [], ["y", "z", None, "x"]])
    codes = feature_store._codes(text)
    assert codes.dtype == np.int32 and codes[[1, 5]].tolist() == [-1, -1]
    assert codes[0] == codes[6] and codes[2] == codes[3] and len({*codes[[0, 2, 4]]}) == 3
    assert sorted({*codes} - {-1}) == [0, 1, 2]
    assert feature_store._codes(text.cast(pa.large_string())).tolist() == codes.tolist()
    # Dictionary chunks with dictionaries of their own, as an ENUM could arrive.
    enum = pa.chunked_array([pa.array(["pos", None, "atm"]).dictionary_encode(),
                             pa.array(["atm", "web"]).dictionary_encode()])
    coded = feature_store._codes(enum)
    assert coded[1] == -1 and coded[2] == coded[3] and len({*coded[[0, 2, 4]]}) == 3
    assert feature_store._codes(pa.chunked_array([], pa.dictionary(pa.int8(), pa.string()))).tolist() == []
    assert feature_store._codes(pa.chunked_array([], pa.string())).tolist() == []


@pytest.mark.parametrize("merchants", ["some", "none"])
def test_columns_are_put_where_at_says(merchants):
    """With ``at``, the values of the i-th input row land at ``at[i]``: every column, the merchant
    windows of rows without a merchant (NULL) included."""
    rng = np.random.default_rng(3)
    n = 2_000
    ts = np.sort(rng.integers(0, 30, n)) * 3_600_000_000  # many rows share an hour
    account = rng.integers(0, 7, n).astype(np.int32)
    amount = np.round(rng.lognormal(3, 1, n), 2)
    label = rng.choice(np.array([-1, 0, 1], np.int8), n)
    merchant = rng.integers(-1, 5, n).astype(np.int32) if merchants == "some" else np.full(n, -1, np.int32)
    codes = {"merchant_id": merchant, "channel": rng.integers(-1, 3, n).astype(np.int32)}
    inputs = (ts, account, amount, label, codes, 2, F.ACCOUNT_WINDOWS, F.MERCHANT_WINDOWS)
    direct = windows.compute(*inputs)
    at = rng.permutation(n)
    put = windows.compute(*inputs, at=at)
    assert direct.keys() == put.keys() and "merch_count_7d" in put
    for name, values in direct.items():
        np.testing.assert_array_equal(put[name][at], values, err_msg=name)
    assert np.isnan(put["merch_count_1d"][at][merchant < 0]).all()
