"""Dashboard aggregates: each one equals a plain pandas computation on the same generated data.

The reference frame is read straight from the dataset's Parquet parts (not through the library)
and its local times come from pandas' own zone conversion, so the SQL, the zone handling and the
filters are all checked against an independent computation.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fraudlens import analytics as an
from fraudlens import datasets, ingest, synth
from fraudlens.analytics import Filters, LocalZone
from fraudlens.config import Settings
from fraudlens.errors import FraudLensError, SchemaError
from fraudlens.store import Rollup, Store

ROWS = 4000
TZ = "America/Lima"
START = date(2025, 2, 1)
DAYS = 45


def _settings(home: Path, tz: str) -> Settings:
    return Settings(home=home, memory_limit="1GB", threads=2, timezone=tz)


def _build(base: Path, tz: str, start: date, days: int, rows: int = ROWS) -> tuple[Store, pd.DataFrame]:
    """Generate and ingest dataset ``d`` under ``base``; return its store and the reference frame."""
    cfg = _settings(base / "home", tz)
    source = base / "tx.parquet"
    synth.generate(source, rows, seed=7, start=start, days=days, late_labels=True, fraud_rate=0.03)
    ingest.ingest([source], "d", cfg=cfg)
    info = datasets.read(cfg.home, "d")
    ref = pd.concat([pd.read_parquet(p) for p in datasets.part_paths(cfg.home, info)], ignore_index=True)
    local = ref["transaction_datetime"].dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None)
    ref["local"] = local
    ref["local_date"] = local.dt.date
    ref["fraud"] = ref["fraudulent_activity"].astype("boolean")
    return Store(cfg), ref


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    store, ref = _build(tmp_path_factory.mktemp("analytics"), TZ, START, DAYS)
    store.close()
    return store.home, ref


# Aggregates run on the in-memory analytics table, or straight on Parquet when it is off.
SOURCES = {"analytics_table": ROWS, "parquet": 0}


def _store(home: Path, source: str) -> Store:
    return Store(replace(_settings(home, TZ), hot_rows=SOURCES[source]))


@pytest.fixture(scope="module", params=list(SOURCES))
def data(built, request):
    """The store (one per source of aggregates) and the reference frame."""
    home, ref = built
    store = _store(home, request.param)
    yield store, ref
    store.close()


# ---------------------------------------------------------------------------- reference helpers


def ref_filter(ref: pd.DataFrame, f: Filters) -> pd.DataFrame:
    keep = pd.Series(True, index=ref.index)
    if f.date_from:
        keep &= ref["local_date"] >= f.date_from
    if f.date_until:
        keep &= ref["local_date"] <= f.date_until
    for name, column in (("channels", "channel"), ("types", "transaction_type"),
                         ("regions", "merchant_location")):
        if getattr(f, name):
            keep &= ref[column].isin(getattr(f, name))
    if f.amount_min is not None:
        keep &= ref["transaction_amount"] >= f.amount_min
    if f.amount_max is not None:
        keep &= ref["transaction_amount"] <= f.amount_max
    label = ref["fraud"]
    keep &= {"all": pd.Series(True, index=ref.index), "fraud": label.fillna(False).astype(bool),
             "legit": (~label).fillna(False).astype(bool), "unknown": label.isna()}[f.label]
    return ref[keep.astype(bool)]


def ref_counts(frame: pd.DataFrame, keys) -> pd.DataFrame:
    """transactions, labelled, frauds, fraud_amount, amount per group of ``keys``."""
    work = frame.assign(
        is_labelled=frame["fraud"].notna().astype(int),
        is_fraud=frame["fraud"].fillna(False).astype(bool).astype(int),
    )
    work["fraud_amt"] = work["transaction_amount"].where(work["is_fraud"] == 1, 0.0)
    out = work.groupby(keys, dropna=False).agg(
        transactions=("transaction_id", "size"), labelled=("is_labelled", "sum"),
        frauds=("is_fraud", "sum"), fraud_amount=("fraud_amt", "sum"),
        amount=("transaction_amount", "sum"))
    return out


def assert_counts_equal(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    for column in ("transactions", "labelled", "frauds"):
        assert got[column].tolist() == expected[column].astype(int).tolist(), column
    for column in ("fraud_amount", "amount"):
        np.testing.assert_allclose(got[column].to_numpy(float), expected[column].to_numpy(float),
                                   rtol=1e-9, atol=1e-6)
    rate = np.where(expected["labelled"] > 0, expected["frauds"] / expected["labelled"].where(
        expected["labelled"] > 0, 1), np.nan)
    np.testing.assert_allclose(got["fraud_rate"].to_numpy(float), rate, rtol=1e-12)


FILTER_CASES = [
    Filters(),
    Filters(date_from=date(2025, 2, 10), date_until=date(2025, 2, 20)),
    Filters(channels=["online", "mobile"], label="fraud"),
    Filters(types=("purchase",), regions=("Lima", "Áncash"), amount_min=20, amount_max=500),
    Filters(label="unknown", date_from=date(2025, 3, 1)),
    Filters(label="legit", amount_max=50.5),
]


# ---------------------------------------------------------------------------- Wilson


def test_wilson_matches_a_hand_checked_value():
    # 5 of 100, z = 1.96: centre (0.05 + 1.9208/100)/1.038415 = 0.066649, half 0.045104.
    low, high = an.wilson_interval(5, 100)
    assert low == pytest.approx(0.021544, abs=1e-5)
    assert high == pytest.approx(0.111750, abs=1e-5)


def test_wilson_edges_and_vectors():
    low, high = an.wilson_interval([0, 10, 0], [10, 10, 0])
    assert low[0] == 0.0 and high[0] == pytest.approx(0.277533, abs=1e-5)
    assert low[1] == pytest.approx(0.722467, abs=1e-5) and high[1] == 1.0
    assert math.isnan(low[2]) and math.isnan(high[2])
    with pytest.raises(FraudLensError, match="successes"):
        an.wilson_interval(3, 2)


# ---------------------------------------------------------------------------- filters


def test_filters_are_normalised_and_checked():
    a = Filters(channels=["pos", "atm", "pos"], date_from="2025-02-01", amount_min=1)
    b = Filters(channels=("atm", "pos"), date_from=date(2025, 2, 1), amount_min=1.0)
    assert a == b and hash(a) == hash(b)
    assert a.channels == ("atm", "pos")
    with pytest.raises(FraudLensError, match="'label'"):
        Filters(label="maybe")
    with pytest.raises(FraudLensError, match="amount_min"):
        Filters(amount_min=10, amount_max=5)
    with pytest.raises(FraudLensError, match="date_from"):
        Filters(date_from=date(2025, 3, 1), date_until=date(2025, 2, 1))
    with pytest.raises(FraudLensError, match="amount_min"):
        Filters(amount_min=float("nan"))
    with pytest.raises(FraudLensError, match="channels"):
        Filters(channels="pos")
    assert "online" in Filters(channels=["online"]).describe()


def test_filter_values_are_bound_never_written_into_sql():
    nasty = "x'); DROP TABLE t; --"
    sql, params = an.segments_sql('"tx_d"', LocalZone(TZ, -18000),
                                  Filters(channels=[nasty], regions=[nasty]), "channel")
    assert nasty not in sql and "DROP" not in sql
    assert params["channels"] == [nasty]


# ---------------------------------------------------------------------------- options and KPIs


def test_filter_options_match_the_data(data):
    store, ref = data
    got = an.filter_options(store, "d")
    assert got.rows == len(ref)
    assert list(got.channels) == sorted(ref["channel"].dropna().unique())
    assert list(got.types) == sorted(ref["transaction_type"].dropna().unique())
    assert list(got.regions) == sorted(ref["merchant_location"].dropna().unique())
    assert (got.first_date, got.last_date) == (ref["local_date"].min(), ref["local_date"].max())
    assert got.amount_min == ref["transaction_amount"].min()
    assert got.amount_max == ref["transaction_amount"].max()


@pytest.mark.parametrize("f", [
    Filters(date_from=date(2025, 3, 1), date_until=date(2025, 3, 10)),
    Filters(date_from=date(2025, 2, 20), date_until=date(2025, 3, 17), channels=["pos", "online"]),
    Filters(date_from=date(2025, 2, 15), date_until=date(2025, 2, 28), label="fraud"),
])
def test_kpis_and_deltas_against_the_previous_period(data, f):
    store, ref = data
    got = an.kpis(store, "d", f)
    days = (f.date_until - f.date_from).days + 1
    assert got.days == days
    assert got.previous_from == f.date_from - timedelta(days=days)
    assert got.previous_until == f.date_from - timedelta(days=1)
    for fig, (start, end) in ((got.current, (f.date_from, f.date_until)),
                              (got.previous, (got.previous_from, got.previous_until))):
        part = ref_filter(ref, f.replace(date_from=start, date_until=end))
        labelled = int(part["fraud"].notna().sum())
        frauds = int(part["fraud"].fillna(False).sum())
        assert fig.transactions == len(part)
        assert fig.labelled == labelled and fig.frauds == frauds
        assert fig.fraud_amount == pytest.approx(
            part.loc[part["fraud"].fillna(False).astype(bool), "transaction_amount"].sum())
        assert fig.fraud_rate == pytest.approx(frauds / labelled)
        assert fig.labelled_share == pytest.approx(labelled / len(part))
    assert got.delta("transactions") == got.current.transactions - got.previous.transactions
    assert got.delta("fraud_rate") == pytest.approx(got.current.fraud_rate - got.previous.fraud_rate)


def test_kpis_without_dates_cover_the_data_and_have_no_previous_period(data):
    store, ref = data
    got = an.kpis(store, "d", Filters())
    assert got.current.transactions == len(ref)
    assert (got.date_from, got.date_until) == (ref["local_date"].min(), ref["local_date"].max())
    assert got.previous is None and got.delta("fraud_amount") is None
    with pytest.raises(FraudLensError, match="'name'"):
        got.delta("nope")


# ---------------------------------------------------------------------------- series and calendar


@pytest.mark.parametrize("f", FILTER_CASES)
def test_daily_series_equals_pandas(data, f):
    store, ref = data
    got = an.daily_series(store, "d", f, grain="day")
    part = ref_filter(ref, f)
    expected = ref_counts(part, "local_date")
    start = f.date_from or part["local_date"].min()
    end = f.date_until or part["local_date"].max()
    days = [start + timedelta(days=i) for i in range((end - start).days + 1)]
    expected = expected.reindex(days, fill_value=0)
    assert got["period"].tolist() == days
    assert_counts_equal(got, expected)


def test_weekly_series_equals_pandas(data):
    store, ref = data
    f = Filters(date_from=date(2025, 2, 5), date_until=date(2025, 3, 4), channels=["atm", "pos"])
    got = an.daily_series(store, "d", f, grain="week")
    part = ref_filter(ref, f)
    week = part["local_date"].map(lambda d: d - timedelta(days=d.weekday()))
    expected = ref_counts(part.assign(week=week), "week")
    assert all(d.weekday() == 0 for d in got["period"])
    assert got["period"].tolist() == list(expected.index)
    assert_counts_equal(got, expected)
    # 2025-02-05 is a Wednesday and 2025-03-04 a Tuesday: the first and last weeks are partial.
    assert got["days"].tolist() == [5, 7, 7, 7, 2]
    assert (an.daily_series(store, "d", f, grain="day")["days"] == 1).all()
    with pytest.raises(FraudLensError, match="'grain'"):
        an.daily_series(store, "d", f, grain="month")


@pytest.mark.parametrize("f", FILTER_CASES[:4])
def test_hour_weekday_heatmap_is_in_local_time(data, f):
    store, ref = data
    got = an.hour_weekday_heatmap(store, "d", f)
    assert len(got) == 168
    part = ref_filter(ref, f)
    keys = [part["local"].dt.day_of_week + 1, part["local"].dt.hour]
    expected = ref_counts(part.assign(weekday=keys[0], hour=keys[1]), ["weekday", "hour"])
    full = pd.MultiIndex.from_product([range(1, 8), range(24)], names=["weekday", "hour"])
    expected = expected.reindex(full, fill_value=0)
    assert list(zip(got["weekday"], got["hour"])) == list(full)
    assert_counts_equal(got, expected)


def test_a_zone_with_daylight_saving_uses_the_exact_conversion(tmp_path):
    # Santiago left summer time on 2025-04-06: the offset changes inside the data.
    store, ref = _build(tmp_path, "America/Santiago", date(2025, 3, 25), 20, rows=1500)
    try:
        zone = an.dataset_zone(store, "d")
        assert zone.name == "America/Santiago" and zone.offset_seconds is None
        got = an.hour_weekday_heatmap(store, "d", Filters())
        keys = [ref["local"].dt.day_of_week + 1, ref["local"].dt.hour]
        expected = ref_counts(ref.assign(weekday=keys[0], hour=keys[1]), ["weekday", "hour"])
        full = pd.MultiIndex.from_product([range(1, 8), range(24)], names=["weekday", "hour"])
        assert_counts_equal(got, expected.reindex(full, fill_value=0))
        daily = an.daily_series(store, "d", Filters(date_from=date(2025, 4, 6), date_until=date(2025, 4, 6)))
        assert daily["transactions"].tolist() == [int((ref["local_date"] == date(2025, 4, 6)).sum())]
    finally:
        store.close()


def test_lima_uses_its_fixed_offset_and_both_conversions_agree(data):
    store, _ref = data
    zone = an.dataset_zone(store, "d")
    assert zone == LocalZone(TZ, -5 * 3600)
    table = store.table("d")
    fast = store.query("fast", *an.hour_weekday_sql(table, zone, Filters()))
    exact = store.query("exact", *an.hour_weekday_sql(table, LocalZone(TZ, None), Filters()))
    key = ["weekday", "hour"]
    pd.testing.assert_frame_equal(fast.sort_values(key).reset_index(drop=True),
                                  exact.sort_values(key).reset_index(drop=True))


# ---------------------------------------------------------------------------- segments, entities, amounts


@pytest.mark.parametrize("by", an.SEGMENT_COLUMNS)
def test_segments_equal_pandas_with_wilson_bounds(data, by):
    store, ref = data
    f = Filters(date_from=date(2025, 2, 3), amount_min=5)
    got = an.segments(store, "d", f, by).set_index("segment")
    expected = ref_counts(ref_filter(ref, f), by)
    expected.index = expected.index.fillna(an.MISSING)
    expected = expected.reindex(got.index)
    assert sorted(got.index) == sorted(expected.index)
    assert_counts_equal(got, expected)
    low, high = an.wilson_interval(expected["frauds"], expected["labelled"])
    np.testing.assert_allclose(got["ci_low"], low)
    np.testing.assert_allclose(got["ci_high"], high)
    assert (got["ci_low"] <= got["fraud_rate"]).all() and (got["fraud_rate"] <= got["ci_high"]).all()


def test_region_breakdown_is_the_region_segments_by_fraud_amount(data):
    store, ref = data
    f = Filters(label="fraud")
    got = an.region_breakdown(store, "d", f)
    expected = ref_counts(ref_filter(ref, f), "merchant_location")
    assert got["fraud_amount"].is_monotonic_decreasing
    assert_counts_equal(got.set_index("segment"), expected.reindex(got["segment"]))


@pytest.mark.parametrize("f", [Filters(date_until=date(2025, 3, 5)),
                               Filters(amount_min=20, amount_max=500, channels=["online", "mobile"]),
                               Filters(amount_max=50.5, date_from=date(2025, 2, 10))])
@pytest.mark.parametrize("by", an.ENTITY_COLUMNS)
def test_top_entities_by_fraud_amount(data, by, f):
    store, ref = data
    got = an.top_entities(store, "d", f, by=by, n=7)
    expected = ref_counts(ref_filter(ref, f).dropna(subset=[by]), by)
    expected = expected[expected["frauds"] > 0].reset_index()
    expected = expected.sort_values(["fraud_amount", by], ascending=[False, True]).head(7)
    assert got["entity"].tolist() == expected[by].tolist()
    assert_counts_equal(got, expected.reset_index(drop=True))


def test_amount_distribution_uses_log_bins(data):
    store, ref = data
    f = Filters(channels=["pos", "online", "atm"])
    got = an.amount_distribution(store, "d", f)
    part = ref_filter(ref, f)
    bins = np.floor(np.log10(np.maximum(part["transaction_amount"], an.AMOUNT_FLOOR))
                    * an.AMOUNT_BINS_PER_DECADE).astype(int)
    label = part["fraud"]
    for name, mask in (("fraud", label.fillna(False).astype(bool)),
                       ("legit", (~label).fillna(False).astype(bool)), ("unknown", label.isna())):
        counts = bins[mask.to_numpy()].value_counts()
        assert got.set_index("bin")[name].reindex(counts.index).tolist() == counts.tolist()
        assert got[name].sum() == mask.sum()
    assert got["bin"].tolist() == list(range(bins.min(), bins.max() + 1))
    row = got.iloc[0]
    assert (row["low"], row["high"]) == pytest.approx(an.amount_bin_edges(int(row["bin"])))
    assert got["high"].iloc[0] == pytest.approx(got["low"].iloc[1])
    assert got["fraud_share"].sum() == pytest.approx(1.0)


# ---------------------------------------------------------------------------- transactions and drill-down


def test_paging_fetches_limit_plus_one_and_walks_every_row(data):
    store, ref = data
    f = Filters(channels=["atm"], date_from=date(2025, 2, 10), date_until=date(2025, 2, 24))
    expected = ref_filter(ref, f).sort_values(["transaction_amount", "transaction_id"],
                                              ascending=False)["transaction_id"].tolist()
    assert len(expected) > 100
    seen, offset = [], 0
    while True:
        page = an.transactions_page(store, "d", f, sort="transaction_amount", descending=True,
                                    limit=40, offset=offset)
        assert len(page.rows) <= 40
        seen += page.rows["transaction_id"].tolist()
        assert page.first == (offset + 1 if len(page.rows) else 0)
        if not page.more:
            break
        assert len(page.rows) == 40
        offset += 40
    assert seen == expected
    exact = an.transactions_page(store, "d", f, limit=len(expected))
    assert not exact.more and len(exact.rows) == len(expected)
    assert an.transactions_page(store, "d", f, limit=len(expected) - 1).more


def test_pages_show_local_time_and_text_labels(data):
    store, ref = data
    page = an.transactions_page(store, "d", Filters(), sort="transaction_id", descending=False, limit=5)
    assert list(page.rows.columns) == list(an.PAGE_COLUMNS)
    first = ref.sort_values("transaction_id").head(5)
    assert page.rows["local_time"].tolist() == first["local"].tolist()
    labels = first["fraud"].map({True: "fraud", False: "legit"}).fillna("unknown").tolist()
    assert page.rows["label"].tolist() == labels


@pytest.mark.parametrize("extra", [
    {"channel": "online"},
    {"channel": ["online", "mobile"], "local_hour": [0, 1, 2, 3]},
    {"local_weekday": 6, "transaction_type": "purchase"},
    {"local_date": "2025-02-14"},
    {"local_week": date(2025, 2, 10)},
    {"amount_bin": 8},
    {"merchant_location": an.MISSING},
])
def test_drill_down_equalities_match_pandas(data, extra):
    store, ref = data
    f = Filters(label="all", amount_max=5000)
    part = ref_filter(ref, f)
    keep = pd.Series(True, index=part.index)
    derived = {
        "local_hour": part["local"].dt.hour, "local_weekday": part["local"].dt.day_of_week + 1,
        "local_date": part["local_date"].astype(str),
        "local_week": part["local_date"].map(lambda d: str(d - timedelta(days=d.weekday()))),
        "amount_bin": np.floor(np.log10(np.maximum(part["transaction_amount"], 0.01)) * 4).astype(int),
    }
    for key, value in extra.items():
        values = value if isinstance(value, list) else [value]
        values = [str(v) if isinstance(v, date) else v for v in values]
        column = derived.get(key, part.get(key))
        if values == [an.MISSING]:
            keep &= column.isna()
        else:
            keep &= column.isin(values)
    expected = part[keep]
    total = an.count_matching(store, "d", f, extra)
    assert total.transactions == len(expected)
    assert total.frauds == int(expected["fraud"].fillna(False).sum())
    page = an.transactions_page(store, "d", f, extra, sort="transaction_id", descending=False,
                                limit=10_000)
    assert page.rows["transaction_id"].tolist() == sorted(expected["transaction_id"])


INJECTIONS = ['channel"; DROP TABLE x; --', "channel; DROP", "1=1", "", None, 3, "CHANNEL"]


@pytest.mark.parametrize("bad", INJECTIONS)
def test_identifiers_outside_the_whitelist_are_refused(data, bad):
    store, _ref = data
    with pytest.raises(FraudLensError):
        an.segments(store, "d", Filters(), by=bad)
    with pytest.raises(SchemaError):
        an.top_entities(store, "d", Filters(), by=bad)
    with pytest.raises(SchemaError):
        an.transactions_page(store, "d", Filters(), sort=bad)
    with pytest.raises(FraudLensError):
        an.transactions_page(store, "d", Filters(), extra={bad: "x"})
    # The dataset is still there and whole.
    assert an.filter_options(store, "d").rows == ROWS


def test_bad_page_arguments_are_refused(data):
    store, _ref = data
    for kwargs in ({"limit": 0}, {"limit": an.MAX_LIMIT + 1}, {"offset": -1}, {"limit": True}):
        with pytest.raises(FraudLensError):
            an.transactions_page(store, "d", Filters(), **kwargs)
    with pytest.raises(FraudLensError, match="'n'"):
        an.top_entities(store, "d", Filters(), n=0)
    with pytest.raises(FraudLensError, match="local_hour"):
        an.count_matching(store, "d", Filters(), {"local_hour": "3; DROP"})
    with pytest.raises(FraudLensError, match="'channel'.*non-empty list"):
        an.count_matching(store, "d", Filters(), {"channel": []})


def test_an_empty_selection_gives_empty_tables_not_errors(data):
    store, _ref = data
    f = Filters(regions=["Nowhere"])
    assert an.kpis(store, "d", f).current.transactions == 0
    assert an.segments(store, "d", f, "channel").empty
    assert an.top_entities(store, "d", f).empty
    assert an.amount_distribution(store, "d", f).empty
    assert an.hour_weekday_heatmap(store, "d", f)["transactions"].sum() == 0
    assert an.daily_series(store, "d", f).empty
    page = an.transactions_page(store, "d", f)
    assert page.rows.empty and not page.more and page.first == 0


@pytest.mark.parametrize("descending", [True, False])
@pytest.mark.parametrize("sort", ["merchant_id", "account_balance", "transaction_datetime", "transaction_amount"])
def test_paging_by_any_key_walks_every_row_once(data, sort, descending):
    store, ref = data
    f = Filters(date_from=date(2025, 2, 10), date_until=date(2025, 2, 12))
    rows = ref_filter(ref, f)
    expected = rows.sort_values([sort, "transaction_id"], ascending=not descending, na_position="last")
    seen, offset = [], 0
    while True:
        page = an.transactions_page(store, "d", f, sort=sort, descending=descending, limit=97, offset=offset)
        seen += page.rows["transaction_id"].tolist()
        if not page.more:
            break
        offset += 97
    assert seen == expected["transaction_id"].tolist()


# ---------------------------------------------------------------------------- analytics table vs Parquet


AGGREGATES = {
    "filter_options": lambda s, ds, f: an.filter_options(s, ds),
    "kpis": lambda s, ds, f: an.kpis(s, ds, f),
    "daily": lambda s, ds, f: an.daily_series(s, ds, f, "day"),
    "weekly": lambda s, ds, f: an.daily_series(s, ds, f, "week"),
    "heatmap": lambda s, ds, f: an.hour_weekday_heatmap(s, ds, f),
    **{f"segments_{by}": (lambda by: lambda s, ds, f: an.segments(s, ds, f, by))(by)
       for by in an.SEGMENT_COLUMNS},
    "regions": lambda s, ds, f: an.region_breakdown(s, ds, f),
    "top_merchants": lambda s, ds, f: an.top_entities(s, ds, f, "merchant_id", 15),
    "top_accounts": lambda s, ds, f: an.top_entities(s, ds, f, "account_id", 1000),
    "amounts": lambda s, ds, f: an.amount_distribution(s, ds, f),
    "count": lambda s, ds, f: an.count_matching(s, ds, f),
    "count_drill": lambda s, ds, f: an.count_matching(s, ds, f, {"channel": ["online", an.MISSING],
                                                                 "local_hour": [1, 2, 3]}),
    "count_by_id": lambda s, ds, f: an.count_matching(s, ds, f, {"transaction_id": "nope"}),
    "page_by_amount": lambda s, ds, f: an.transactions_page(s, ds, f, sort="transaction_amount", limit=30,
                                                            offset=10).rows,
    "page_by_amount_up": lambda s, ds, f: an.transactions_page(s, ds, f, sort="transaction_amount",
                                                               descending=False, limit=30).rows,
}


def _leaves(value):
    if dataclasses.is_dataclass(value):
        value = dataclasses.astuple(value)
    if isinstance(value, tuple):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]


def assert_same_answer(got, expected) -> None:
    """Equal tables or dataclasses, dtypes included; sums may differ in the last bits."""
    if isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(got, expected, check_exact=False, rtol=1e-9)
        return
    assert type(got) is type(expected)
    for a, b in zip(_leaves(got), _leaves(expected), strict=True):
        assert a == (pytest.approx(b, rel=1e-9, nan_ok=True) if isinstance(b, float) else b)


@pytest.fixture(scope="module")
def both(built):
    home, _ref = built
    stores = {source: _store(home, source) for source in SOURCES}
    an.prepare(stores["analytics_table"], "d")  # with the derived columns and rollups aggregates ask for
    yield stores
    for store in stores.values():
        store.close()


@pytest.mark.parametrize("f", [*FILTER_CASES, Filters(regions=["Nowhere"]),
                               Filters(date_from=date(2025, 2, 20), date_until=date(2025, 3, 1)),
                               Filters(channels=["online", "Nowhere"], types=("purchase", "transfer")),
                               Filters(regions=["Nowhere", "Atlantis"])])
def test_the_analytics_table_gives_the_parquet_answers(both, f):
    hot, parquet = both["analytics_table"], both["parquet"]
    assert hot.analytics_table("d").startswith('"hot_d_v')
    assert parquet.analytics_table("d") == parquet.table("d")
    for name, aggregate in AGGREGATES.items():
        try:
            assert_same_answer(aggregate(hot, "d", f), aggregate(parquet, "d", f))
        except AssertionError as exc:
            raise AssertionError(f"{name}: {exc}") from None


def assert_summary_is_each_aggregate(store, ds: str, f: Filters, by: str = "channel") -> None:
    got = an.summary(store, ds, f, by)
    expected = {
        "count": an.count_matching(store, ds, f), "heatmap": an.hour_weekday_heatmap(store, ds, f),
        "daily": an.daily_series(store, ds, f, "day"), "weekly": an.daily_series(store, ds, f, "week"),
        "amounts": an.amount_distribution(store, ds, f), "regions": an.region_breakdown(store, ds, f),
        "merchant_location": an.segments(store, ds, f, "merchant_location"), by: an.segments(store, ds, f, by),
    }
    answers = {"count": got.count, "heatmap": got.heatmap, "daily": got.series("day"),
               "weekly": got.series("week"), "amounts": got.amounts, "regions": got.regions, **got.segments}
    assert set(answers) == set(expected)
    for name, value in expected.items():
        try:
            assert_same_answer(answers[name], value)
        except AssertionError as exc:
            raise AssertionError(f"summary {name} {f}: {exc}") from None


@pytest.mark.parametrize("f", [*FILTER_CASES, Filters(regions=["Nowhere"]), Filters(date_from=date(2025, 2, 20))])
def test_the_summary_equals_each_aggregate(data, f):
    store, _ref = data
    for by in an.SEGMENT_COLUMNS:
        assert_summary_is_each_aggregate(store, "d", f, by)


def test_extra_columns_named_like_the_summary_groups_change_nothing(tmp_path):
    """An upload's own period/hour/segment/region/bin columns stay in the Parquet view."""
    lines = ["transaction_id,transaction_datetime,account_id,transaction_amount,channel,merchant_location,"
             "fraudulent_activity,period,hour,segment,region,bin"]
    for i in range(300):
        lines.append(f"t{i},2025-03-{1 + i % 28:02d} {i % 24:02d}:15:00,a{i % 5},{10 + i},"
                     f"{'pos' if i % 3 else 'online'},{'Lima' if i % 2 else 'Cusco'},{'true' if i % 4 == 0 else 'false'},"
                     f"p{i % 2},{i % 5},s{i % 3},r{i % 7},{i}")
    source = tmp_path / "extras.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = _settings(tmp_path / "home", TZ)
    ingest.ingest([source], "x", cfg=cfg)
    for rows in SOURCES.values():
        store = Store(replace(cfg, hot_rows=rows))
        try:
            for f in (Filters(), Filters(channels=["pos"])):
                for by in ("channel", "merchant_location"):
                    assert_summary_is_each_aggregate(store, "x", f, by)
            assert an.summary(store, "x", Filters()).count.transactions == 300
        finally:
            store.close()


def test_awkward_text_gives_the_same_answers_and_order(tmp_path):
    """Quotes, accents, case and ties: ENUM order must sort like the text it stands for."""
    channels = ["pos", "POS", "o'nline", "Ábaco", "zeta", ""]
    merchants = [f"m{k}" for k in (10, 9, 1, 100, 2)] + ["M1", "ñ", "m 1"]
    lines = ["transaction_id,transaction_datetime,account_id,transaction_amount,channel,"
             "merchant_id,fraudulent_activity"]
    for i in range(960):
        label = "" if i % 7 == 0 else ("true" if i % 3 == 0 else "false")
        lines.append(f"t{i},2025-03-{1 + i % 30:02d} {i % 24:02d}:15:00,a{i % 5},10,"
                     f"{channels[i % 6]},{merchants[i % 8]},{label}")
    source = tmp_path / "awkward.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = _settings(tmp_path / "home", TZ)
    ingest.ingest([source], "w", cfg=cfg)
    stores = {source: Store(replace(cfg, hot_rows=SOURCES[source])) for source in SOURCES}
    try:
        for f in (Filters(), Filters(channels=["o'nline", "Ábaco", "nowhere"]), Filters(label="fraud")):
            for name, aggregate in AGGREGATES.items():
                got = aggregate(stores["analytics_table"], "w", f)
                try:
                    assert_same_answer(got, aggregate(stores["parquet"], "w", f))
                except AssertionError as exc:
                    raise AssertionError(f"{name} {f}: {exc}") from None
            for store in stores.values():
                for by in ("channel", "merchant_location"):
                    assert_summary_is_each_aggregate(store, "w", f, by)
        options = an.filter_options(stores["analytics_table"], "w")
        assert list(options.channels) == sorted(c for c in channels if c)
    finally:
        for store in stores.values():
            store.close()


# ---------------------------------------------------------------------------- derived columns


EDGE_AMOUNTS = [0, 0.005, 0.01, 0.0177, 1, 1.7782, 1.7783, 9.99, 10, 12345.6]
# Lima's midnight is 05:00 UTC: Sat->Sun, Sun->Mon, a year's end; Santiago leaves summer
# time at 03:00 UTC on 2025-04-06.
EDGE_DAYS = [date(2024, 12, 31), date(2025, 1, 1), date(2025, 2, 9), date(2025, 2, 10),
             date(2025, 4, 5), date(2025, 4, 6), date(2025, 4, 7)]


def _edge_dataset(base: Path, tz: str) -> Settings:
    """Rows at the start and end of every UTC hour of EDGE_DAYS, amounts on bin edges."""
    lines = ["transaction_id,transaction_datetime,account_id,transaction_amount,channel,"
             "fraudulent_activity"]
    n = 0
    for day in EDGE_DAYS:
        for hour in range(24):
            for minute in ("00:00", "59:59"):
                label = ("", "true", "false")[n % 3]
                lines.append(f"t{n:04d},{day} {hour:02d}:{minute},a{n % 7},"
                             f"{EDGE_AMOUNTS[n % len(EDGE_AMOUNTS)]},{('pos', 'online')[n % 2]},{label}")
                n += 1
    source = base / "edges.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = _settings(base / "home", tz)
    ingest.ingest([source], "e", cfg=cfg)
    return cfg


def _pandas_derived(frame: pd.DataFrame, tz: str) -> pd.DataFrame:
    local = frame["transaction_datetime"].dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None)
    return pd.DataFrame({
        "local_date": local.dt.date,
        "local_hour": local.dt.hour, "local_weekday": local.dt.day_of_week + 1,
        "amount_bin": np.floor(np.log10(np.maximum(frame["transaction_amount"], 0.01)) * 4).astype(int),
    })


@pytest.mark.parametrize("tz, derived", [
    (TZ, {"local_date", "local_hour", "local_weekday", "amount_bin"}),
    ("America/Santiago", {"amount_bin"}),  # its offset changes inside the data
])
def test_derived_columns_equal_the_per_row_values(tmp_path, tz, derived):
    cfg = _edge_dataset(tmp_path, tz)
    stores = {source: Store(replace(cfg, hot_rows=SOURCES[source])) for source in SOURCES}
    try:
        hot = stores["analytics_table"]
        an.filter_options(hot, "e")  # builds the table as the aggregates ask for it
        table = hot.analytics_table("e")
        assert set(hot.derived_columns("e", table)) == derived
        # Every row has its own time (the table holds no ids).
        columns = ", ".join(["transaction_datetime", *sorted(derived)])
        got = hot.query("derived", f"SELECT {columns} FROM {table} ORDER BY transaction_datetime")
        info = datasets.read(cfg.home, "e")
        raw = pd.concat([pd.read_parquet(p) for p in datasets.part_paths(cfg.home, info)])
        expected = _pandas_derived(raw.sort_values("transaction_datetime").reset_index(drop=True), tz)
        if "local_date" in got:
            got["local_date"] = pd.to_datetime(got["local_date"]).dt.date
        for key in sorted(derived):
            assert got[key].tolist() == expected[key].tolist(), key
        for f in (Filters(), Filters(date_from=date(2025, 2, 9), date_until=date(2025, 4, 5)),
                  Filters(channels=["pos"], label="fraud")):
            for name, aggregate in AGGREGATES.items():
                try:
                    assert_same_answer(aggregate(hot, "e", f), aggregate(stores["parquet"], "e", f))
                except AssertionError as exc:
                    raise AssertionError(f"{name} {f}: {exc}") from None
    finally:
        for store in stores.values():
            store.close()


def test_builders_read_derived_columns_only_when_the_table_has_them():
    plain = LocalZone(TZ, -18000)
    stored = replace(plain, derived=frozenset(an.DERIVED_TYPES))
    for build in (lambda z: an.hour_weekday_sql("t", z, Filters()),
                  lambda z: an.daily_series_sql("t", z, Filters(), "day"),
                  lambda z: an.daily_series_sql("t", z, Filters(), "week"),
                  lambda z: an.count_sql("t", z, Filters(), {"local_hour": 3, "local_weekday": 1})):
        assert "to_seconds" in build(plain)[0]
        assert "to_seconds" not in build(stored)[0] and "tz_offset" not in build(stored)[1]
    assert "log10" not in an.amount_distribution_sql("t", stored, Filters())[0]
    assert "log10" in an.amount_distribution_sql("t", plain, Filters())[0]


def test_several_values_of_an_enum_column_are_compared_by_code():
    zone = LocalZone(TZ, -18000, enums=(("channel", ("atm", "online", "pos")),))
    sql, params = an.count_sql("t", zone, Filters(channels=["pos", "atm", "Nowhere"]), None)
    assert 'enum_code("channel") IN (0, 2)' in sql and "channels" not in params
    assert "false" in an.count_sql("t", zone, Filters(channels=["Nowhere", "Atlantis"]), None)[0]
    one = an.count_sql("t", zone, Filters(channels=["pos"]), None)  # an equality DuckDB pushes into the scan
    assert "enum_code" not in one[0] and one[1]["channels"] == ["pos"]
    plain = an.count_sql("t", LocalZone(TZ, -18000), Filters(channels=["pos", "atm"]), None)
    assert "enum_code" not in plain[0] and sorted(plain[1]["channels"]) == ["atm", "pos"]


def test_the_store_names_enum_values_of_its_analytics_table_only(both):
    hot, parquet = both["analytics_table"], both["parquet"]
    table = hot.analytics_table("d")
    values = hot.enum_values("d", table, "channel")
    assert values == tuple(sorted(an.filter_options(hot, "d").channels))
    assert hot.enum_values("d", table, "transaction_amount") is None
    assert parquet.enum_values("d", parquet.analytics_table("d"), "channel") is None


def test_filters_on_several_values_follow_a_dataset_made_again(tmp_path):
    """ENUM codes belong to one table: the dataset made again under the same name and version has
    other channels (so other codes), and a filter on two of them still counts the right rows."""
    cfg = _settings(tmp_path / "home", TZ)
    store = Store(cfg)
    wanted = Filters(channels=["online", "pos"])
    for channels in (["atm", "branch", "mobile", "online", "pos"], ["atm", "online", "pos"]):
        source = tmp_path / "tx.parquet"
        synth.generate(source, 600, seed=5, start=START, days=5)
        frame = pd.read_parquet(source)
        frame = frame[frame["channel"].isin(channels)]
        frame.to_parquet(source)
        ingest.ingest([source], "d", cfg=cfg, mode="replace")
        assert datasets.read(cfg.home, "d").version == 1
        assert store.enum_values("d", an.prepare(store, "d"), "channel") == tuple(channels)
        expected = int(frame["channel"].isin(wanted.channels).sum())
        assert an.count_matching(store, "d", wanted).transactions == expected
        datasets.delete(cfg.home, "d")
    store.close()


def test_filter_options_follow_a_new_version_and_a_dataset_made_again(tmp_path):
    """Options are kept per version and part files: an append, or the dataset deleted and
    ingested again under the same name (same version number), is scanned afresh."""
    cfg = _settings(tmp_path / "home", TZ)
    store = Store(cfg)

    def load(name: str, rows: int, seed: int, mode: str = "replace") -> None:
        source = tmp_path / name
        synth.generate(source, rows, seed=seed, start=START, days=5)
        frame = pd.read_parquet(source)
        frame["transaction_id"] = name[0] + frame["transaction_id"]  # ids of their own
        frame.to_parquet(source)
        ingest.ingest([source], "d", cfg=cfg, mode=mode)

    load("a.parquet", 300, 1)
    assert an.filter_options(store, "d").rows == 300
    load("b.parquet", 200, 2, mode="append")
    assert an.filter_options(store, "d").rows == 500
    datasets.delete(cfg.home, "d")
    load("c.parquet", 250, 3)
    assert datasets.read(cfg.home, "d").version == 1
    assert an.filter_options(store, "d").rows == 250
    store.close()


def _queried(store: Store, monkeypatch) -> list[str]:
    """The SQL of every aggregate query ``store`` runs from now on."""
    seen: list[str] = []
    for method in ("query", "query_rows"):
        real = getattr(store, method)

        def record(name, sql, params=None, _real=real):
            seen.append(sql)
            return _real(name, sql, params)
        monkeypatch.setattr(store, method, record)
    return seen


def test_aggregates_read_the_rollups_unless_they_need_the_rows(both, monkeypatch):
    hot = both["analytics_table"]
    table = hot.analytics_table("d")
    rollups = hot.rollups("d", table)
    assert [r.groups for r in rollups] == sorted(r.groups for r in rollups)
    assert len(rollups) == 3 and all(0 < r.groups < ROWS for r in rollups)
    assert both["parquet"].rollups("d", both["parquet"].analytics_table("d")) == ()
    seen = _queried(hot, monkeypatch)

    def sources(run) -> set[str]:
        seen.clear()
        run()
        names = [table, by_amount, by_account, *(r.table for r in rollups)]
        return {name for name in names if any(f"FROM {name} " in sql for sql in seen)}

    by_amount = hot.by_amount("d", table)
    keyed = {frozenset(r.keys) & {"local_hour", "amount_bin"}: r.table for r in rollups}
    by_hour, by_bin = keyed[frozenset({"local_hour"})], keyed[frozenset({"amount_bin"})]
    by_hour_bin = keyed[frozenset({"local_hour", "amount_bin"})]
    by_account = hot.entity_rows("d", table, "account_id")
    f = Filters(date_from=START, date_until=START + timedelta(days=9), channels=["online", "pos"], label="legit")
    assert sources(lambda: an.hour_weekday_heatmap(hot, "d", f)) == {by_hour}
    assert sources(lambda: an.segments(hot, "d", f, "account_type")) == {by_hour}
    for run in (lambda: an.kpis(hot, "d", f), lambda: an.daily_series(hot, "d", f, "week"),
                lambda: an.amount_distribution(hot, "d", f), lambda: an.segments(hot, "d", f, "channel"),
                lambda: an.count_matching(hot, "d", f)):
        assert sources(run) == {by_bin}
    assert sources(lambda: an.summary(hot, "d", f, "channel")) == {by_hour, by_bin}
    # A ranking reads the fraud rows, then counts its winners in the rows of the accounts with a fraud.
    assert sources(lambda: an.top_entities(hot, "d", f.replace(label="all"), "account_id", 5)) == {by_account}
    # Amount bounds: the bins wholly inside from a rollup, the edge bins' rows from those sorted by amount.
    bounded = f.replace(amount_min=10, amount_max=900)
    assert sources(lambda: an.kpis(hot, "d", bounded)) == {by_bin, by_amount}
    assert sources(lambda: an.summary(hot, "d", bounded, "channel")) == {by_hour_bin, by_bin, by_amount}
    assert sources(lambda: an.top_entities(hot, "d", bounded.replace(label="all"), "account_id", 5)) == {by_account}
    assert sources(lambda: an.count_matching(hot, "d", f, {"local_hour": 3})) == {table}  # drill-downs read rows


def test_a_rollup_is_picked_by_its_keys_then_its_size():
    day = ("local_date", "channel", "transaction_type", "merchant_location", "fraudulent_activity")
    small = Rollup((*day, "amount_bin"), table="small", groups=10)
    large = Rollup((*day, "local_hour", "local_weekday", "account_type"), table="large", groups=1000)
    zone = LocalZone(TZ, -18000, derived=frozenset(an.DERIVED_TYPES), rollups=(large, small))
    assert an.segments_sql("t", zone, Filters(), "channel")[0].count("FROM small ") == 1
    assert "FROM large " in an.segments_sql("t", zone, Filters(), "account_type")[0]
    assert "FROM t " in an.segments_sql("t", zone, Filters(amount_max=5), "channel")[0]
    sql, params = an.daily_series_sql("t", zone, Filters(date_from=START, date_until=START), "day")
    assert "transaction_datetime" not in sql and params == {"day_from": START, "day_until": START}
    assert "FROM t " in an.hour_weekday_sql("t", replace(zone, rollups=(small,)), Filters())[0]


# 1.0001 and 1.7781 cut bin [1, 1.7782] near its ends: the bin is taken whole less its other side.
BOUNDS = [0, 0.005, 0.01, 0.0177, 0.0178, 1, 1.0001, 1.7781, 10 ** 0.25, 1.7782, 1.7783, 9.99, 10, 12345.6, 20000]


def test_amount_bounds_on_bin_edges_count_every_row_once(tmp_path):
    """Amount bounds read whole bins from a rollup and the edge bins' rows (or a whole bin less
    the rows outside a bound): bounds on, just under and just over the bins' edges give the rows'
    own answers, in every aggregate and in Explore's summary."""
    cfg = _edge_dataset(tmp_path, TZ)
    stores = {source: Store(replace(cfg, hot_rows=SOURCES[source])) for source in SOURCES}
    try:
        hot = stores["analytics_table"]
        an.prepare(hot, "e")
        assert any("amount_bin" in r.keys for r in hot.rollups("e", hot.analytics_table("e")))
        info = datasets.read(cfg.home, "e")
        amounts = pd.concat([pd.read_parquet(p) for p in datasets.part_paths(cfg.home, info)])["transaction_amount"]
        cases = [Filters(amount_min=b) for b in BOUNDS] + [Filters(amount_max=b) for b in BOUNDS]
        cases += [Filters(amount_min=lo, amount_max=hi) for lo in BOUNDS for hi in BOUNDS if lo <= hi][::3]
        for f in cases:
            inside = amounts.between(f.amount_min if f.amount_min is not None else -np.inf,
                                     f.amount_max if f.amount_max is not None else np.inf)
            assert an.count_matching(hot, "e", f).transactions == int(inside.sum()), f
            for name in ("kpis", "daily", "heatmap", "segments_channel", "amounts", "regions", "top_accounts"):
                try:
                    assert_same_answer(AGGREGATES[name](hot, "e", f), AGGREGATES[name](stores["parquet"], "e", f))
                except AssertionError as exc:
                    raise AssertionError(f"{name} {f}: {exc}") from None
            assert_summary_is_each_aggregate(hot, "e", f)
    finally:
        for store in stores.values():
            store.close()


def test_regions_with_equal_fraud_amounts_keep_their_order(tmp_path):
    """0.1 + 0.2 + 0.3 summed by day first (a rollup) or row by row differ in the last bit:
    equal totals must still tie, and keep the segments' order."""
    lines = ["transaction_id,transaction_datetime,account_id,transaction_amount,channel,merchant_location,"
             "fraudulent_activity"]
    rows = [("Cusco", "2025-03-01 15:00", 0.1), ("Cusco", "2025-03-02 15:00", 0.2), ("Cusco", "2025-03-02 16:00", 0.3),
            ("Lima", "2025-03-01 15:00", 0.1), ("Lima", "2025-03-01 16:00", 0.2), ("Lima", "2025-03-02 15:00", 0.3)]
    lines += [f"t{i},{when},a{i},{amount},pos,{region},true" for i, (region, when, amount) in enumerate(rows)]
    source = tmp_path / "tie.csv"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cfg = _settings(tmp_path / "home", TZ)
    ingest.ingest([source], "t", cfg=cfg)
    for rows_only in (False, True):
        store = Store(replace(cfg, hot_rows=0) if rows_only else cfg)
        try:
            assert an.region_breakdown(store, "t", Filters())["segment"].tolist() == ["Cusco", "Lima"]
            assert an.summary(store, "t", Filters()).regions["segment"].tolist() == ["Cusco", "Lima"]
        finally:
            store.close()


def test_dates_at_the_calendars_ends_bound_nothing(both):
    """A rollup compares days, the rows compare UTC midnights: a midnight past the calendar's
    end is no bound, on either."""
    ends = Filters(date_from=date.min, date_until=date.max)
    for store in both.values():
        assert an.count_matching(store, "d", ends).transactions == ROWS
        assert an.kpis(store, "d", ends).current.transactions == ROWS
        assert an.count_matching(store, "d", ends, {"channel": "pos"}).transactions > 0  # a drill-down reads rows
