"""Monitoring: PSI against a reference computation, weekly scores, alerts, label maturity, ingests."""

from __future__ import annotations

import math
from datetime import date

import numpy as np
import pandas as pd
import pytest

import opsdata
from fraudlens import alerts, monitor
from fraudlens.errors import FraudLensError

DATASET, MODEL = opsdata.DATASET, opsdata.MODEL


@pytest.fixture
def cfg(tmp_path_factory, tmp_path, monkeypatch):
    cfg = opsdata.fresh_home(tmp_path_factory, tmp_path / "home")
    monkeypatch.setenv("FRAUDLENS_HOME", str(cfg.home))
    return cfg


# ---------------------------------------------------------------------------------------------
# PSI


def slow_psi(expected, actual, bins=10, floor=1e-4):
    """Obviously correct PSI: decile cut points of ``expected``, right-closed bins, a missing bin."""
    expected = [float(v) for v in expected]
    actual = [float(v) for v in actual]
    finite = sorted(v for v in expected if not math.isnan(v))
    cuts = []
    for k in range(1, bins):  # the smallest value with at least k/bins of the values at or below it
        cuts.append(next(v for i, v in enumerate(finite) if (i + 1) * bins >= k * len(finite)))
    cuts = sorted(set(cuts))

    def bin_of(v):
        if math.isnan(v):
            return len(cuts) + 1
        for i, cut in enumerate(cuts):
            if v <= cut:
                return i
        return len(cuts)

    def shares(values):
        counts = [0] * (len(cuts) + 2)
        for v in values:
            counts[bin_of(v)] += 1
        return [max(c / len(values), floor) for c in counts]

    e, a = shares(expected), shares(actual)
    return sum((ai - ei) * math.log(ai / ei) for ai, ei in zip(a, e))


def test_psi_by_hand():
    # Reference: 0..9 once each -> with 2 bins the cut is 4 (the median value): 0..4 and 5..9.
    expected = np.arange(10, dtype=float)
    actual = np.array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9], dtype=float)  # 5 low, 15 high
    by_hand = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert monitor.psi(expected, actual, bins=2) == pytest.approx(by_hand, rel=1e-12)
    assert monitor.psi(expected, expected, bins=2) == 0.0


@pytest.mark.parametrize("seed", range(5))
def test_psi_matches_the_reference_implementation(seed):
    rng = np.random.default_rng(seed)
    expected = rng.lognormal(0, 1, 3000)
    actual = rng.lognormal(0.3 * seed, 1 + 0.1 * seed, 800)
    actual[rng.random(800) < 0.02 * seed] = np.nan
    expected[:5] = np.nan
    assert monitor.psi(expected, actual) == pytest.approx(slow_psi(expected, actual), rel=1e-9, abs=1e-12)


def test_psi_of_binary_and_constant_features():
    expected = np.array([0] * 900 + [1] * 100, dtype=float)
    actual = np.array([0] * 500 + [1] * 500, dtype=float)
    assert monitor.psi_edges(expected).tolist() == [0.0]
    by_hand = (0.5 - 0.9) * math.log(0.5 / 0.9) + (0.5 - 0.1) * math.log(0.5 / 0.1)
    assert monitor.psi(expected, actual) == pytest.approx(by_hand)
    assert monitor.psi(expected, actual) == pytest.approx(slow_psi(expected, actual))
    assert monitor.psi(np.zeros(50), np.zeros(20)) == 0.0
    assert math.isnan(monitor.psi(expected, np.array([])))


def test_psi_grows_with_the_shift_and_bands_follow():
    rng = np.random.default_rng(0)
    base = rng.normal(size=20_000)
    values = [monitor.psi(base, rng.normal(loc=shift, size=5_000)) for shift in (0.0, 0.3, 0.6, 1.2)]
    assert values == sorted(values) and values[0] < 0.01
    assert [monitor.psi_band(v) for v in (0.05, 0.1, 0.25, 0.26, float("nan"))] == [
        "stable", "watch", "watch", "act", "unknown"]


# ---------------------------------------------------------------------------------------------
# On the dataset


def test_weekly_scores_cover_every_row_and_are_cached(cfg):
    frame = monitor.weekly_scores(DATASET, MODEL, threshold=0.5, cfg=cfg)
    assert frame["rows"].sum() == opsdata.ROWS
    assert (pd.to_datetime(frame["week"]).dt.day_of_week == 0).all()  # weeks start on Monday
    assert ((frame["p50"] <= frame["p90"]) & (frame["p90"] <= frame["p99"])).all()
    assert frame["above"].between(0, 1).all()
    path = monitor.dataset_scores(DATASET, MODEL, cfg)
    stamp = path.stat().st_mtime_ns
    assert monitor.dataset_scores(DATASET, f"{MODEL}@1", cfg).stat().st_mtime_ns == stamp
    assert math.isnan(monitor.weekly_scores(DATASET, MODEL, cfg=cfg)["above"].iloc[0])  # no live point


def test_weekly_psi_against_the_training_window(cfg):
    frame = monitor.weekly_psi(DATASET, MODEL, features=["amount", "is_night"], cfg=cfg)
    assert set(frame["variable"]) == {"score", "amount", "is_night"}
    assert frame.groupby("variable")["rows"].sum().eq(opsdata.ROWS).all()
    full = frame[frame["complete"]]
    assert len(full) and (full["psi"] >= 0).all()
    # A complete week inside the training window looks like the training window.
    inside = full[(full["week"] >= pd.Timestamp("2025-01-13")) & (full["week"] <= pd.Timestamp("2025-01-27"))]
    assert (inside.loc[inside["variable"] == "amount", "psi"] < 0.1).all()
    status = monitor.drift_status(frame)
    assert status.band in ("stable", "watch", "act") and status.week == full["week"].max()
    with pytest.raises(FraudLensError, match="does not have"):
        monitor.weekly_psi(DATASET, MODEL, features=["no_such_feature"], cfg=cfg)


def test_default_weekly_psi_is_kept_per_dataset_and_model_version(cfg, tmp_path):
    from fraudlens import datasets
    from fraudlens.ingest import ingest
    from fraudlens.store import get_store

    first = monitor.weekly_psi(DATASET, MODEL, cfg=cfg)
    top = monitor.top_features(DATASET, MODEL, cfg=cfg)
    assert set(first["variable"]) == {"score", *top}
    pd.testing.assert_frame_equal(first, monitor.weekly_psi(DATASET, MODEL, features=top, cfg=cfg))
    folder = cfg.home / monitor.MONITOR_DIR / "psi" / DATASET
    [kept] = folder.glob("*.parquet")
    # The second call reads the kept table: a value changed in the file comes back.
    marked = first.assign(psi=first["psi"] + 1000.0)
    marked.to_parquet(kept, index=False)
    pd.testing.assert_frame_equal(monitor.weekly_psi(DATASET, MODEL, cfg=cfg), marked)

    # A new dataset version computes it again and drops the older table.
    assert datasets.read(cfg.home, DATASET).version == 1
    store = get_store(cfg)
    rows = store.query("rows", f"SELECT * FROM {store.table(DATASET)} ORDER BY transaction_id LIMIT 200")
    more = tmp_path / "more.csv"
    rows.assign(transaction_id="N" + rows["transaction_id"],
                transaction_datetime=rows["transaction_datetime"] + pd.Timedelta(days=1)).to_csv(more, index=False)
    ingest(more, DATASET, mode="append", cfg=cfg)
    again = monitor.weekly_psi(DATASET, MODEL, cfg=cfg)
    assert (again["psi"] < 1000).all() and again.groupby("variable")["rows"].sum().eq(opsdata.ROWS + 200).all()
    [newer] = folder.glob("*.parquet")
    assert newer != kept and "-d2-" in newer.name

    # Deleting the dataset forgets its kept scores and tables.
    datasets.delete(cfg.home, DATASET)
    assert not folder.exists() and not (cfg.home / monitor.MONITOR_DIR / "scores" / DATASET).exists()


def test_weekly_psi_equals_psi_of_each_week_computed_in_numpy(cfg):
    """The per-week PSI binned and counted in DuckDB equals :func:`monitor.psi` of that week's values."""
    from fraudlens import feature_store, features, operating, registry
    from fraudlens.store import get_store

    got = monitor.weekly_psi(DATASET, MODEL, features=["amount", "seconds_since_previous"], cfg=cfg)
    name, version = operating.resolve(cfg.home, MODEL)
    meta = registry.read_metadata(name, version, cfg.home)
    first, last = (date.fromisoformat(meta["windows"][k]) for k in ("train_from", "train_until"))
    path = feature_store.feature_file(get_store(cfg), DATASET, features.FeatureSpec.from_dict(meta["feature_spec"]))
    frame = pd.read_parquet(path).merge(pd.read_parquet(monitor.dataset_scores(DATASET, MODEL, cfg))[
        ["transaction_id", "score"]], on="transaction_id")
    local = frame["transaction_datetime"].dt.tz_localize("UTC").dt.tz_convert("America/Lima").dt.tz_localize(None)
    frame["week"] = local.dt.to_period("W-SUN").dt.start_time
    day = frame["transaction_datetime"].dt.date
    reference = frame[(day >= first) & (day <= last)]
    for variable in ("score", "amount", "seconds_since_previous"):
        mine = got[got["variable"] == variable].set_index("week")
        expected = {week: monitor.psi(reference[variable], group[variable])
                    for week, group in frame.groupby("week")}
        assert list(mine.index) == sorted(expected)
        assert np.allclose(mine["psi"].to_numpy(), [expected[w] for w in mine.index], rtol=1e-9, atol=1e-12)
        assert (mine["reference_rows"] == len(reference)).all()
    assert frame["seconds_since_previous"].isna().any()  # the missing-value bin is exercised


def test_top_features_are_model_features(cfg):
    from fraudlens import registry

    top = monitor.top_features(DATASET, MODEL, k=3, cfg=cfg)
    assert len(top) == 3 and set(top) <= set(registry.read_metadata(MODEL, 1, cfg.home)["features"])


def test_drift_status_reads_the_latest_complete_week():
    weeks = pd.to_datetime(["2025-01-06", "2025-01-13", "2025-01-20"])
    frame = pd.DataFrame({
        "week": list(weeks) * 2, "variable": ["score"] * 3 + ["amount"] * 3,
        "psi": [0.01, 0.02, 0.9, 0.05, 0.3, 0.9], "rows": [500] * 6, "complete": [True, True, False] * 2,
    })
    frame["band"] = frame["psi"].map(monitor.psi_band)
    status = monitor.drift_status(frame)
    assert status.week == weeks[1] and status.band == "act" and status.acting == ("amount",)
    assert "amount" in status.message
    assert monitor.drift_status(frame.iloc[0:0]).band == "unknown"


def test_weekly_alerts_precision_and_money_from_dispositions(cfg):
    alerts.raise_alerts(DATASET, MODEL, threshold=0.5, sample_rate=0.0, explain_top=0, cfg=cfg)
    rows = alerts.queue(limit=1000, cfg=cfg).rows
    confirmed, false = rows.iloc[:6], rows.iloc[6:8]
    alerts.bulk_dispose(confirmed["id"].tolist(), "confirmed_fraud", "ok", "rosa", cfg)
    alerts.bulk_dispose(false["id"].tolist(), "false_positive", "ok", "rosa", cfg)
    weekly = monitor.weekly_alerts(DATASET, cfg=cfg)
    assert weekly["alerts"].sum() == len(rows)
    assert weekly["confirmed"].sum() == 6 and weekly["false_positive"].sum() == 2
    assert weekly["open"].sum() == len(rows) - 8
    assert weekly["money_caught"].sum() == pytest.approx(confirmed["amount"].sum())
    precision = (weekly["confirmed"].sum()) / (weekly["confirmed"] + weekly["false_positive"]).sum()
    assert precision == pytest.approx(6 / 8)
    resolved = weekly[(weekly["confirmed"] + weekly["false_positive"]) > 0]
    assert np.allclose(resolved["precision"], resolved["confirmed"] / (resolved["confirmed"] + resolved["false_positive"]))
    assert weekly.loc[(weekly["confirmed"] + weekly["false_positive"]) == 0, "precision"].isna().all()


def test_label_maturity_counts_unknown_labels_and_dispositions_fill_them(cfg):
    before = monitor.label_maturity(DATASET, cfg=cfg)
    assert before["rows"].sum() == opsdata.ROWS
    assert before["unknown_share"].iloc[-1] > 0.5 > before["unknown_share"].iloc[1]  # late labels are recent
    from fraudlens.store import get_store

    store = get_store(cfg)
    unknown = [r[0] for r in store.query_rows(
        "u", f"SELECT transaction_id FROM {store.table(DATASET)} WHERE fraudulent_activity IS NULL LIMIT 3")]
    for tx in unknown:
        alerts.set_label(DATASET, tx, False, "rosa", cfg=cfg)
    after = monitor.label_maturity(DATASET, cfg=cfg)
    assert before["unknown"].sum() - after["unknown"].sum() == 3
    assert after["labelled_from_ops"].sum() == 3


def test_ingest_history_and_nulls_per_ingest(cfg, tmp_path):
    from fraudlens.ingest import ingest

    src = tmp_path / "late.csv"
    src.write_text(
        "transaction_id,transaction_datetime,account_id,transaction_amount,channel\n"
        "L1,2025-03-05 10:00:00,A1,10.5,\n"
        "L2,2025-03-05 11:00:00,A1,not a number,pos\n"
        "L3,2025-03-05 12:00:00,A2,7.0,online\n", encoding="utf-8")
    ingest(src, DATASET, mode="append", cfg=cfg)
    history = monitor.ingest_history(DATASET, cfg)
    assert list(history["rows_read"]) == [opsdata.ROWS, 3]
    assert list(history["rejected"]) == [0, 1] and history["reject_share"].iloc[1] == pytest.approx(1 / 3)
    assert history["top_reject_reason"].iloc[1]
    nulls = monitor.ingest_nulls(DATASET, cfg)
    late = nulls[nulls["ingest_id"] == history["ingest_id"].iloc[1]].set_index("column")
    assert late.loc["channel", "rows"] == 2 and late.loc["channel", "nulls"] == 1
    assert late.loc["merchant_id", "null_share"] == 1.0  # a column the new file lacks
    first = nulls[nulls["ingest_id"] == history["ingest_id"].iloc[0]].set_index("column")
    assert first.loc["transaction_id", "nulls"] == 0 and first.loc["transaction_id", "rows"] == opsdata.ROWS


def test_null_counts_come_from_the_footers_only_when_every_file_has_them(cfg):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from fraudlens.store import get_store

    table = pa.table({"transaction_id": ["a", None, "c"], "channel": [None, None, "pos"]})
    with_stats, without = cfg.home / "with.parquet", cfg.home / "without.parquet"
    pq.write_table(table, with_stats)
    pq.write_table(table, without, write_statistics=False)
    store = get_store(cfg)
    found = monitor._nulls_from_footers(store, [str(with_stats)], ["transaction_id", "channel", "merchant_id"])
    assert found.drop(columns="filename").to_dict("records") == [
        {"_rows": 3, "transaction_id": 1, "channel": 2, "merchant_id": 3}]
    assert monitor._nulls_from_footers(store, [str(with_stats), str(without)], ["channel"]) is None


@pytest.mark.parametrize("tz", ["America/Lima", "America/Santiago"])
def test_local_week_with_and_without_a_fixed_offset(tz):
    import duckdb

    from fraudlens import analytics

    # Around Monday midnight in Lima (05:00 UTC) and Santiago's end of summer time (2025-04-06).
    utc = pd.to_datetime(["2025-03-31 04:59:59", "2025-03-31 05:00:00", "2025-04-07 02:30:00",
                          "2025-04-07 03:30:00", "2025-04-07 04:30:00", "2025-04-14 03:59:59"])
    expected = [(t.tz_localize("UTC").tz_convert(tz).tz_localize(None).normalize()
                 - pd.Timedelta(days=t.tz_localize("UTC").tz_convert(tz).weekday())).date() for t in utc]
    offset = analytics.fixed_offset(tz, utc.min().to_pydatetime(), utc.max().to_pydatetime())
    assert (offset is None) == (tz == "America/Santiago")
    con = duckdb.connect()
    con.execute("CREATE TABLE t AS SELECT * FROM (SELECT unnest($ts::TIMESTAMP[]) AS ts)", {"ts": list(utc)})
    for zone in {analytics.LocalZone(tz, offset), analytics.LocalZone(tz, None)}:
        params = {}
        week = monitor._week_sql("ts", zone, params)
        got = [r[0] for r in con.execute(f"SELECT {week} FROM t", params).fetchall()]
        assert got == expected, zone


def test_recent_weeks_keeps_the_tail():
    frame = pd.DataFrame({"week": pd.to_datetime(["2025-01-06", "2025-01-13", "2025-01-20", "2025-01-27"])})
    assert list(monitor.recent_weeks(frame, 2)["week"].dt.date) == [date(2025, 1, 20), date(2025, 1, 27)]
