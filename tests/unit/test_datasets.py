"""Datasets on disk: the manifest is the single source of truth and is swapped atomically."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fraudlens import datasets, ingest
from fraudlens.errors import DatasetError, SchemaError
from fraudlens.store import Store, get_store

GOOD = ("transaction_id,transaction_datetime,account_id,transaction_amount,fraudulent_activity\n"
        "t1,2025-01-03 10:00:00,a1,10.5,1\nt2,2025-01-04 11:30:00,a2,20,0\n")


@pytest.fixture
def d(home, write):
    ingest.ingest(write("good.csv", GOOD), "d", cfg=home)
    return home


def manifest(home, name="d") -> dict:
    return json.loads((Path(home.home) / name / datasets.MANIFEST).read_text())


def test_read_gives_the_manifest(d):
    info = datasets.read(d.home, "d")
    assert (info.name, info.version, info.rows, info.rejected, info.frauds) == ("d", 1, 2, 0, 1)
    assert info.first.replace("T", " ").startswith("2025-01-03 15:00:00")
    assert info.last.replace("T", " ").startswith("2025-01-04 16:30:00")
    assert all((Path(d.home) / "d" / f).is_file() for f in info.files)
    assert info.size_bytes == sum((Path(d.home) / "d" / f).stat().st_size for f in info.files)
    assert info.to_summary()["name"] == "d"
    assert {"name", "rows", "rejected", "frauds", "first", "last"} <= set(info.to_summary())


def test_read_missing_dataset(home):
    with pytest.raises(DatasetError, match="no dataset named 'ghost'"):
        datasets.read(home.home, "ghost")
    assert datasets.exists(home.home, "ghost") is False


@pytest.mark.parametrize("name", ["../d", "a/b", "", "1abc", "models", "staging"])
def test_dataset_dir_refuses_bad_names(home, name):
    with pytest.raises(SchemaError):
        datasets.dataset_dir(home.home, name)


def test_corrupt_manifest_is_a_dataset_error_and_skipped_in_listings(d, write):
    ingest.ingest(write("other.csv", GOOD), "other", cfg=d)
    (Path(d.home) / "other" / datasets.MANIFEST).write_text("{ half a manif")
    with pytest.raises(DatasetError, match="other"):
        datasets.read(d.home, "other")
    assert [i.name for i in datasets.list_all(d.home)] == ["d"]
    # A manifest missing a field is skipped too, not a crash.
    (Path(d.home) / "other" / datasets.MANIFEST).write_text(json.dumps({"name": "other"}))
    assert [i.name for i in datasets.list_all(d.home)] == ["d"]


def test_list_all_ignores_folders_without_manifest(d):
    (Path(d.home) / "half").mkdir()
    (Path(d.home) / "half" / "junk.parquet").write_bytes(b"x")
    assert [i.name for i in datasets.list_all(d.home)] == ["d"]
    assert datasets.list_all(Path(d.home) / "nowhere") == []


def test_write_manifest_replaces_atomically(d):
    data = manifest(d)
    data["version"] = 7
    datasets.write_manifest(d.home, data)
    assert datasets.read(d.home, "d").version == 7
    leftovers = [p.name for p in (Path(d.home) / "d").iterdir() if p.name.endswith(".tmp")]
    assert leftovers == []


def test_remove_unlisted_sweeps_dead_ingest_leftovers(d):
    base = Path(d.home) / "d"
    info = datasets.read(d.home, "d")
    live = base / info.files[0]
    (base / datasets.PARTS / "part-dead-0.parquet").write_bytes(live.read_bytes())
    (base / datasets.REJECTS).mkdir(exist_ok=True)
    (base / datasets.REJECTS / "rejects-dead.parquet").write_bytes(b"x")
    (base / datasets.STAGING / "dead").mkdir(parents=True)
    (base / datasets.STAGING / "dead" / "part-dead-1.parquet").write_bytes(b"x")
    # A new reader sees only the listed parts while the leftovers are there.
    store = Store(d)
    try:
        assert store.query_rows("n", f"SELECT count(*) FROM {store.table('d')}") == [(2,)]
    finally:
        store.close()
    datasets.remove_unlisted(d.home, "d")
    assert sorted(f"{datasets.PARTS}/{p.name}" for p in (base / datasets.PARTS).iterdir()) == sorted(info.files)
    assert not (base / datasets.REJECTS / "rejects-dead.parquet").exists()
    assert not (base / datasets.STAGING).exists()
    assert live.is_file()


def test_leftovers_do_not_disturb_the_next_ingest(d, write):
    base = Path(d.home) / "d"
    (base / datasets.STAGING / "dead").mkdir(parents=True)
    (base / datasets.STAGING / "dead" / "part-x.parquet").write_bytes(b"garbage")
    (base / datasets.PARTS / "part-zombie.parquet").write_bytes(b"garbage")
    (base / f".{datasets.MANIFEST}.tmp").write_text("{half")
    result = ingest.ingest(write("more.csv", GOOD.replace("t1", "t3").replace("t2", "t4")), "d",
                           mode="append", cfg=d)
    assert result.loaded == 2
    info = datasets.read(d.home, "d")
    assert info.rows == 4
    assert not (base / datasets.STAGING).exists()
    assert not (base / datasets.PARTS / "part-zombie.parquet").exists()
    store = get_store(d)
    assert store.query_rows("n", f"SELECT count(*) FROM {store.table('d')}") == [(4,)]


def test_rejects_files_of_history_are_kept(d, write):
    bad = GOOD.replace("t1", "t5").replace("t2", "t6") + "t7,never,a,1,0\n"
    ingest.ingest(write("bad1.csv", bad), "d", mode="append", cfg=d)
    first = datasets.read(d.home, "d").ingests[-1]["rejects_file"]
    ingest.ingest(write("bad2.csv", bad.replace("t5", "t8").replace("t6", "t9").replace("t7", "t10")),
                  "d", mode="append", cfg=d)
    second = datasets.read(d.home, "d").ingests[-1]["rejects_file"]
    assert first and second and first != second
    assert (Path(d.home) / "d" / first).is_file() and (Path(d.home) / "d" / second).is_file()
    older = ingest.read_rejects("d", ingest_id=datasets.read(d.home, "d").ingests[1]["id"], cfg=d)
    assert list(older["file"]) == ["bad1.csv"]


def test_delete(d):
    datasets.delete(d.home, "d")
    assert not (Path(d.home) / "d").exists()
    with pytest.raises(DatasetError):
        datasets.delete(d.home, "d")
