"""The feature file: built once per dataset version and spec, replaced when the data moves on,
never left half-written, and equal to computing the features directly."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from fraudlens import datasets, feature_store
from fraudlens import features as F
from fraudlens.errors import QueryError
from fraudlens.ingest import ingest
from fraudlens.store import get_store
from fraudlens.synth import generate


@pytest.fixture
def small(home, tmp_path):
    src = tmp_path / "small.parquet"
    generate(src, 3_000, seed=5, days=30)
    ingest(src, "small", cfg=home)
    return home, src


def test_built_once_per_version_and_replaced_after_an_append(small, tmp_path):
    cfg, src = small
    store = get_store(cfg)
    spec = F.make_spec(store, "small")
    assert feature_store.existing(store, "small", spec) is None
    first = feature_store.feature_file(store, "small", spec)
    stamp = first.stat().st_mtime_ns
    assert feature_store.feature_file(store, "small", spec) == first
    assert first.stat().st_mtime_ns == stamp  # read, not rebuilt
    assert pq.ParquetFile(first).metadata.num_rows == 3_000

    later = pq.read_table(src).to_pandas().tail(500)
    for batch in (1, 2):
        more = later.assign(transaction_id=f"L{batch}" + later["transaction_id"].astype(str),
                            transaction_datetime=later["transaction_datetime"] + pd.Timedelta(days=31 * batch))
        more.to_parquet(tmp_path / f"more{batch}.parquet")
        ingest(tmp_path / f"more{batch}.parquet", "small", mode="append", cfg=cfg)
        newer = feature_store.feature_file(store, "small", spec)
        assert pq.ParquetFile(newer).metadata.num_rows == 3_000 + 500 * batch
        # The previous version's file stays (a reader may still hold its path); older ones go.
        assert first.exists() == (batch == 1) and newer != first


def test_file_holds_what_the_sql_computes(small):
    cfg, _src = small
    store = get_store(cfg)
    spec = F.make_spec(store, "small", label_delay_days=3)
    direct = store.query("direct", F.features_sql(store.table("small"), spec))
    stored = F.compute(store, "small", spec)
    pd.testing.assert_frame_equal(stored, direct, check_exact=False, rtol=1e-12)
    # Another spec gets its own file beside the first.
    other = feature_store.feature_file(store, "small", F.make_spec(store, "small", label_delay_days=7))
    assert other != feature_store.existing(store, "small", spec)
    assert len(list(feature_store.folder(cfg.home, "small").glob("*.parquet"))) == 2


def test_a_build_logs_where_its_time_went(small, caplog):
    cfg, _src = small
    store = get_store(cfg)
    with caplog.at_level("INFO", logger=feature_store.logger.name):
        feature_store.feature_file(store, "small", F.make_spec(store, "small"))
    (record,) = [r for r in caplog.records if hasattr(r, "phases")]
    assert list(record.phases) == ["read", "windows", "write", "fsync"]
    assert all(p["seconds"] >= 0 and p["cpu_seconds"] >= 0 for p in record.phases.values())
    assert "read " in record.getMessage() and "cores)" in record.getMessage()


def test_a_failed_build_leaves_no_file(small, monkeypatch):
    cfg, _src = small
    store = get_store(cfg)
    spec = F.make_spec(store, "small")
    monkeypatch.setenv("FRAUDLENS_FEATURE_MEMORY", "1MB")
    with pytest.raises(QueryError, match="features of small"):
        feature_store.feature_file(store, "small", spec)
    assert feature_store.existing(store, "small", spec) is None
    assert list(feature_store.folder(cfg.home, "small").iterdir()) == []


def test_a_dataset_deleted_and_made_again_never_reads_the_old_file(small, tmp_path):
    cfg, src = small
    store = get_store(cfg)
    spec = F.make_spec(store, "small")
    before = feature_store.feature_file(store, "small", spec)
    datasets.delete(cfg.home, "small")
    assert not feature_store.folder(cfg.home, "small").exists()
    other = tmp_path / "other.parquet"
    generate(other, 2_000, seed=9, days=30)
    ingest(other, "small", cfg=cfg)
    after = feature_store.feature_file(store, "small", spec)
    assert pq.ParquetFile(after).metadata.num_rows == 2_000
    assert after != before  # same version number, other parts: another key


def test_one_row_is_found_by_its_time_across_row_groups(tmp_path):
    # Three rows share 10:00:01 and straddle a row-group boundary (groups of 4 rows).
    seconds = [0, 0, 1, 1, 1, 2, 3, 3, 5, 8]
    frame = pd.DataFrame({
        "transaction_id": [f"T{i:02d}" for i in range(10)],
        "transaction_datetime": pd.to_datetime("2025-03-01 10:00:00") + pd.to_timedelta(seconds, unit="s"),
        "amount": [float(i) * 1.5 for i in range(10)],
    })
    path = tmp_path / "d1-000000000000.parquet"
    frame.to_parquet(path, index=False, row_group_size=4)
    assert pq.ParquetFile(path).metadata.num_row_groups == 3
    for i, row in frame.iterrows():
        got = feature_store.read_row(path, row["transaction_datetime"].to_pydatetime(), row["transaction_id"])
        pd.testing.assert_frame_equal(got, frame.iloc[[i]].reset_index(drop=True))
    last = frame["transaction_datetime"].iloc[9].to_pydatetime()
    assert feature_store.read_row(path, last, "T00") is None  # only the last group is read
    assert feature_store.read_row(path, last, "T99") is None
    path.unlink()
    assert feature_store.read_row(path, last, "T09") is None  # a file replaced since
