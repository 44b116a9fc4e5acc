"""The feature file: built once per dataset version and spec, replaced when the data moves on,
never left half-written, and equal to computing the features directly."""

from __future__ import annotations

import pandas as pd
import pyarrow.parquet as pq
import pytest

from fraudlens import feature_store
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
    later["transaction_id"] = "L" + later["transaction_id"].astype(str)
    later["transaction_datetime"] += pd.Timedelta(days=31)
    more = tmp_path / "more.parquet"
    later.to_parquet(more)
    ingest(more, "small", mode="append", cfg=cfg)
    second = feature_store.feature_file(store, "small", spec)
    assert second != first and not first.exists()
    assert pq.ParquetFile(second).metadata.num_rows == 3_500


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


def test_a_failed_build_leaves_no_file(small, monkeypatch):
    cfg, _src = small
    store = get_store(cfg)
    spec = F.make_spec(store, "small")
    monkeypatch.setenv("FRAUDLENS_FEATURE_MEMORY", "1MB")
    with pytest.raises(QueryError, match="features of small"):
        feature_store.feature_file(store, "small", spec)
    assert feature_store.existing(store, "small", spec) is None
    assert list(feature_store.folder(cfg.home, "small").iterdir()) == []
