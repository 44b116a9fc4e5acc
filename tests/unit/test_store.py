"""The store: one DuckDB connection per data directory, a cursor per query, views that follow the
manifest, and no access outside the data directory."""

from __future__ import annotations

import subprocess
import sys
import threading
from dataclasses import replace
from pathlib import Path

import pytest

from fraudlens import datasets, ingest
from fraudlens import store as store_module
from fraudlens.config import settings
from fraudlens.errors import DatasetError, FraudLensError, QueryError, SchemaError
from fraudlens.store import Store, get_store

N = 2000


@pytest.fixture
def amounts(home, write):
    """Dataset ``d`` whose amounts are 0, 1, ..., N-1."""
    body = "".join(f"a{i},2025-01-03 10:00:00,acc{i % 17},{i}\n" for i in range(N))
    path = write("amounts.csv", "transaction_id,transaction_datetime,account_id,transaction_amount\n" + body)
    ingest.ingest(path, "d", cfg=home)
    return home


def count_above(store, x: float) -> int:
    view = store.table("d")
    return store.query_rows("count_above", f"SELECT count(*) FROM {view} WHERE transaction_amount > $x",
                            {"x": x})[0][0]


def test_eight_threads_get_their_own_answers(amounts):
    store = get_store(amounts)
    thresholds = [-1, 0, 10.5, 99, 500, 1234, 1998, 5000]
    expected = {x: sum(1 for i in range(N) if i > x) for x in thresholds}
    rounds = 40
    barrier = threading.Barrier(len(thresholds))
    wrong: list = []
    errors: list = []

    def work(x):
        try:
            barrier.wait()
            for k in range(rounds):
                if k % 3 == 0:
                    got = store.query("df", f"SELECT count(*) AS n FROM {store.table('d')} "
                                      "WHERE transaction_amount > $x", {"x": x})["n"].iloc[0]
                elif k % 3 == 1:
                    got = store.query_arrow("arrow", f"SELECT count(*) AS n FROM {store.table('d')} "
                                            "WHERE transaction_amount > $x", {"x": x}).column(0)[0].as_py()
                else:
                    got = count_above(store, x)
                if int(got) != expected[x]:
                    wrong.append((x, got))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(x,)) for x in thresholds]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert wrong == []


def read_during_ingests(count, readers: int, files: list, cfg) -> tuple[list, list]:
    """Run ``readers`` threads calling ``count()`` while ``files`` are ingested into dataset ``d``
    (replace, append, replace, ...); returns the errors and the counts that were not a whole
    number of files (N rows each)."""
    stop = threading.Event()
    errors: list = []
    partial: list = []

    def read():
        while not stop.is_set():
            try:
                n = count()
                if n % N:
                    partial.append(n)
            except Exception as exc:  # noqa: BLE001 - collected and returned
                errors.append(repr(exc)[:300])

    threads = [threading.Thread(target=read) for _ in range(readers)]
    for t in threads:
        t.start()
    try:
        for k, path in enumerate(files, 1):
            ingest.ingest(path, "d", mode="replace" if k % 2 else "append", cfg=cfg)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
    return errors, partial


@pytest.mark.slow
def test_readers_keep_working_while_the_dataset_is_replaced(amounts, write):
    """Sessions browsing while someone appends or replaces never get an error, only whole versions."""
    header = "transaction_id,transaction_datetime,account_id,transaction_amount\n"
    store = get_store(amounts)
    errors, partial = read_during_ingests(
        lambda: store.query_rows("n", f"SELECT count(*) FROM {store.table('d')}")[0][0], readers=4,
        files=[write(f"v{k}.csv", header + "".join(f"v{k}_{i},2025-01-03 10:00:00,x,{i}\n" for i in range(N)))
               for k in range(1, 7)], cfg=amounts)
    assert errors == []
    assert partial == []


def test_a_failing_query_names_itself(amounts):
    store = get_store(amounts)
    with pytest.raises(QueryError) as err:
        store.query("amount_by_shop", f"SELECT no_such_column FROM {store.table('d')} WHERE 1 = $one",
                    {"one": 1})
    assert err.value.name == "amount_by_shop"
    assert err.value.params == {"one": 1}
    assert "amount_by_shop" in str(err.value)
    assert isinstance(err.value, FraudLensError)
    # The store still works afterwards.
    assert count_above(store, 1000) == N - 1001


def test_values_are_bound_not_spliced(amounts):
    store = get_store(amounts)
    tricky = "a1' OR '1'='1"
    rows = store.query_rows("by_id", f"SELECT count(*) FROM {store.table('d')} WHERE transaction_id = $id",
                            {"id": tricky})
    assert rows == [(0,)]


@pytest.mark.parametrize("sql", [
    "SELECT * FROM read_csv($p)",
    "SELECT * FROM read_text($p)",
    "SELECT * FROM read_parquet($p)",
])
def test_refuses_to_read_outside_the_data_directory(amounts, tmp_path, sql):
    outside = tmp_path / "outside.csv"
    outside.write_text("a,b\n1,2\n")
    with pytest.raises(QueryError) as err:
        get_store(amounts).query("sneaky", sql, {"p": str(outside)})
    assert err.value.name == "sneaky"
    assert "permission" in str(err.value).lower() or "not allowed" in str(err.value).lower() \
        or "disabled" in str(err.value).lower()


def test_refuses_to_write_outside_or_unlock_the_configuration(amounts, tmp_path):
    store = get_store(amounts)
    target = tmp_path / "leak.csv"
    with pytest.raises(QueryError):
        store.query("copy_out", f"COPY (SELECT 1) TO '{target}'")
    assert not target.exists()
    with pytest.raises(QueryError):
        store.query("unlock", "SET enable_external_access = true")
    with pytest.raises(QueryError):
        store.query("escape", "SELECT * FROM read_text('/etc/passwd')")


def test_home_prefix_is_not_a_loophole(amounts):
    """``<home>-evil/x`` starts with the same characters as ``<home>`` but is outside it."""
    sibling = Path(str(amounts.home) + "-evil")
    sibling.mkdir()
    (sibling / "x.csv").write_text("a\n1\n")
    with pytest.raises(QueryError):
        get_store(amounts).query("sibling", "SELECT * FROM read_csv($p)", {"p": str(sibling / "x.csv")})


def test_view_follows_an_ingest_in_another_process(amounts, write, cli_env):
    store = get_store(amounts)
    assert count_above(store, -1) == N
    more = write("more.csv", "transaction_id,transaction_datetime,account_id,transaction_amount\n"
                 "b1,2025-02-01 10:00:00,x,1\nb2,2025-02-01 10:00:00,x,2\n")
    done = subprocess.run([sys.executable, "-m", "fraudlens", "ingest", str(more), "--dataset", "d",
                           "--append"], env=cli_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert count_above(store, -1) == N + 2
    done = subprocess.run([sys.executable, "-m", "fraudlens", "ingest", str(more), "--dataset", "d",
                           "--replace"], env=cli_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert count_above(store, -1) == 2


def test_missing_and_bad_dataset_names(amounts):
    store = get_store(amounts)
    with pytest.raises(DatasetError, match="nope"):
        store.table("nope")
    with pytest.raises(SchemaError):
        store.table("../d")
    with pytest.raises(SchemaError):
        store.table('d"; DROP VIEW x; --')


def test_one_store_per_directory(home, tmp_path, monkeypatch):
    assert get_store(home) is get_store(home)
    assert get_store() is get_store(home)
    monkeypatch.setenv("FRAUDLENS_HOME", str(tmp_path / "other"))
    other = settings()
    assert get_store(other) is not get_store(home)
    assert get_store(other).home == other.home


def test_store_session_uses_the_dataset_time_zone(home):
    store = Store(home)
    try:
        assert store.query_rows("tz", "SELECT current_setting('TimeZone')") == [("America/Lima",)]
    finally:
        store.close()


def test_parts_not_in_the_manifest_are_invisible(amounts):
    """A part renamed into place by an ingest that died before its manifest swap is never read."""
    base = Path(amounts.home) / "d"
    info = datasets.read(amounts.home, "d")
    stray = base / datasets.PARTS / "part-stray.parquet"
    stray.write_bytes((base / info.files[0]).read_bytes())
    assert count_above(get_store(amounts), -1) == N
    fresh = Store(amounts)  # a reader that builds its view now, with the stray part on disk
    try:
        assert count_above(fresh, -1) == N
    finally:
        fresh.close()


# ---------------------------------------------------------------------------- analytics table


HEADER = "transaction_id,transaction_datetime,account_id,transaction_amount,channel\n"


@pytest.fixture
def channels(home, write):
    """Dataset ``d`` of N rows with a low-variety ``channel`` (one value has a quote in it)."""
    names = ["pos", "o'nline", "Ábaco", ""]
    body = "".join(f"c{i},2025-01-{1 + i % 28:02d} 10:00:00,acc{i % 17},{i},{names[i % 4]}\n"
                   for i in range(N))
    ingest.ingest(write("channels.csv", HEADER + body), "d", cfg=home)
    return home


def hot_count(store) -> int:
    return store.query_analytics("n", "d", lambda t: (f"SELECT count(*) AS n FROM {t}", {}))["n"].iloc[0]


def hot_catalogs(store) -> list[str]:
    return [name for name, in store.query_rows(
        "dbs", "SELECT database_name FROM duckdb_databases() WHERE database_name LIKE 'hot%' ORDER BY 1")]


def hot_files(cfg) -> list[str]:
    folder = cfg.home / store_module.HOT_DIR / "d"
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


def test_analytics_table_is_kept_in_a_file_with_enum_text(channels):
    store = get_store(channels)
    table = store.analytics_table("d")
    assert table.startswith('"hot_d_v1".') and table != store.table("d")
    assert len(hot_files(channels)) == 1 and hot_files(channels)[0].startswith("v1-")
    assert store.analytics_table("d") == table  # built once
    types = dict(store.query_rows("types", f"SELECT column_name, column_type FROM (DESCRIBE {table})"))
    assert set(types) == set(store_module.ANALYTICS_COLUMNS)  # ingest adds absent ones as NULL
    assert types["channel"].startswith("ENUM") and types["account_id"].startswith("ENUM")
    assert types["merchant_id"] == "VARCHAR"  # no value at all: nothing to enumerate
    assert types["transaction_amount"] == "DOUBLE"
    same = "SELECT channel, count(*) AS n, min(transaction_datetime) AS t FROM {} GROUP BY 1 ORDER BY 1"
    view = store.table("d")
    assert store.query_rows("hot", same.format(table)) == store.query_rows("view", same.format(view))
    ordered = store.query_rows("order", f"SELECT transaction_datetime FROM {table}")
    assert ordered == sorted(ordered)


def test_a_restarted_process_attaches_the_kept_table(channels, monkeypatch):
    first = get_store(channels)
    table = first.analytics_table("d")
    enums = first.enum_columns("d", table)
    assert {"channel", "account_id"} <= enums

    def no_build(*_args, **_kw):
        raise AssertionError("the kept table should be attached, not built")

    monkeypatch.setattr(Store, "_fill_hot", no_build)
    again = Store(channels)
    try:
        assert again.analytics_table("d") == table
        assert again.enum_columns("d", table) == enums
        same = "SELECT channel, count(*) FROM {} GROUP BY 1 ORDER BY 1"
        assert again.query_rows("a", same.format(table)) == first.query_rows("b", same.format(table))
    finally:
        again.close()


def test_an_unreadable_kept_table_is_built_again(channels, caplog):
    get_store(channels).analytics_table("d")
    kept = channels.home / store_module.HOT_DIR / "d" / hot_files(channels)[0]
    kept.write_bytes(b"not a database")
    again = Store(channels)
    try:
        table = again.analytics_table("d")
        assert table.startswith('"hot_d_v1".')
        assert again.query_rows("n", f"SELECT count(*) FROM {table}") == [(N,)]
    finally:
        again.close()
    assert "unreadable" in caplog.text
    assert kept.stat().st_size > 1000


def test_older_kept_tables_are_removed_but_not_builds_in_progress(tmp_path):
    names = ["v1-aaaa.duckdb", "v1-aaaa.1234abcd.tmp", "v1-aaaa.1234abcd.tmp.wal", "v2-bbbb.duckdb",
             "v2-cccc.duckdb", "v2-cccc.5678abcd.tmp", "v3-dddd.duckdb", "notes.txt"]
    for name in names:
        (tmp_path / name).write_text("x")
    store_module._remove_older(tmp_path / "v2-cccc.duckdb", 2)
    # the same version built another way goes; a build under way and a newer version stay
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "notes.txt", "v2-cccc.5678abcd.tmp", "v2-cccc.duckdb", "v3-dddd.duckdb"]


def test_deleting_the_dataset_removes_its_kept_table(channels):
    get_store(channels).analytics_table("d")
    assert hot_files(channels)
    datasets.delete(channels.home, "d")
    assert not (channels.home / store_module.HOT_DIR / "d").exists()


def test_high_variety_text_stays_varchar(channels, monkeypatch):
    monkeypatch.setattr("fraudlens.store.ENUM_MAX_VALUES", 16)
    monkeypatch.setattr("fraudlens.store.ID_ENUM_MAX_VALUES", 16)
    store = get_store(channels)
    table = store.analytics_table("d")
    types = dict(store.query_rows("types", f"SELECT column_name, column_type FROM (DESCRIBE {table})"))
    assert types["account_id"] == "VARCHAR" and types["channel"].startswith("ENUM")


def test_analytics_table_follows_an_append_in_another_process(channels, write, cli_env):
    store = get_store(channels)
    first = store.analytics_table("d")
    assert hot_count(store) == N
    more = write("more.csv", HEADER + "m1,2025-02-01 10:00:00,x,1,new\nm2,2025-02-01 11:00:00,x,2,pos\n")
    done = subprocess.run([sys.executable, "-m", "fraudlens", "ingest", str(more), "--dataset", "d",
                           "--append"], env=cli_env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert hot_count(store) == N + 2
    second = store.analytics_table("d")
    assert second != first and second.startswith('"hot_d_v2".')
    assert hot_catalogs(store) == ["hot_d_v2"]  # the old version's table is detached
    assert [f[:3] for f in hot_files(channels)] == ["v2-"]  # and its file removed
    tables = store.query_rows("tables", "SELECT table_name FROM duckdb_tables() WHERE database_name = 'hot_d_v2'")
    name = second.split(".")[-1].strip('"')
    # No rollups (built without the derived columns they group by); the rows of the accounts with a fraud.
    assert sorted(tables) == [(name,), (f"{name}_by_amount",), (f"{name}_frauds",), (f"{name}_rows_account_id",)]
    by_amount = store.by_amount("d", second)
    amounts = [a for a, in store.query_rows("a", f"SELECT transaction_amount FROM {by_amount}")]
    assert amounts == sorted(amounts, reverse=True) and len(amounts) == N + 2
    assert store.by_amount("d", store.table("d")) == store.table("d")
    frauds = store.fraud_rows("d", second)
    assert frauds == second[:-1] + '_frauds"'
    fraud_rows = "SELECT transaction_id FROM {} WHERE fraudulent_activity ORDER BY 1"
    assert store.query_rows("f", f"SELECT transaction_id FROM {frauds} ORDER BY 1") == \
        store.query_rows("v", fraud_rows.format(store.table("d")))
    assert store.fraud_rows("d", store.table("d")) == store.table("d")
    assert ("new", 1) in store.query_rows("new", f"SELECT channel, count(*) FROM {second} GROUP BY 1")


@pytest.mark.parametrize("chunk_rows", [store_module.HOT_CHUNK_ROWS, 7])
@pytest.mark.parametrize("when", ["2025-02-01", "2024-12-01"])
def test_analytics_table_is_in_time_order_after_appends(channels, write, when, chunk_rows, monkeypatch):
    """Parts in time order are copied as they are; otherwise the table is sorted. Built a few
    rows at a time, it holds every row once, still in time order."""
    monkeypatch.setattr(store_module, "HOT_CHUNK_ROWS", chunk_rows)
    ingest.ingest(write("more.csv", HEADER + f"m1,{when} 10:00:00,x,1,pos\n"), "d", mode="append",
                  cfg=channels)
    store = get_store(channels)
    table = store.analytics_table("d")
    times = [t for t, in store.query_rows("times", f"SELECT transaction_datetime FROM {table}")]
    assert len(times) == N + 1 and times == sorted(times)
    rows = "SELECT transaction_id, transaction_datetime, CAST(channel AS VARCHAR) FROM {} ORDER BY 1"
    assert store.query_rows("hot", rows.format(table)) == store.query_rows("view", rows.format(store.table("d")))
    # The copy by amount, built a range of amounts at a time, holds every row once, largest first.
    by_amount = store.by_amount("d", table)
    assert sorted(store.query_rows("a", rows.format(by_amount))) == store.query_rows("hot", rows.format(table))
    amounts = [a for a, in store.query_rows("amounts", f"SELECT transaction_amount FROM {by_amount}")]
    assert amounts == sorted(amounts, reverse=True)


@pytest.mark.parametrize("hot_rows", [0, N - 1])
def test_off_or_too_many_rows_uses_the_view(channels, hot_rows):
    store = Store(replace(channels, hot_rows=hot_rows))
    try:
        assert store.analytics_table("d") == store.table("d")
        assert hot_count(store) == N
        assert hot_catalogs(store) == []
    finally:
        store.close()


def test_hot_rows_setting(monkeypatch, home):
    monkeypatch.setenv("FRAUDLENS_HOT_ROWS", "1_000")
    assert settings().hot_rows == 1000
    monkeypatch.setenv("FRAUDLENS_HOT_ROWS", "lots")
    with pytest.raises(FraudLensError, match="FRAUDLENS_HOT_ROWS"):
        settings()


def test_out_of_memory_while_building_falls_back_to_the_view(channels, monkeypatch, caplog):
    tries = []

    def no_memory(self, cur, dataset, version, view, sort, derived, rows):
        tries.append(version)
        cur.execute(f"CREATE TYPE {store_module.hot_name(dataset, version, 'channel')} AS ENUM ('a')")
        raise store_module.duckdb.OutOfMemoryException("Out of Memory Error: could not allocate")

    monkeypatch.setattr(Store, "_fill_hot", no_memory)
    store = get_store(channels)
    assert store.analytics_table("d") == store.table("d")
    assert hot_count(store) == N
    assert tries == [1]  # not tried again for the same version
    assert "could not build the analytics table" in caplog.text
    assert hot_catalogs(store) == []
    assert hot_files(channels) == []  # the half-built file is gone


def test_a_manifest_read_before_an_append_never_moves_the_view_back(channels, write, monkeypatch):
    """A session that read the manifest just before another session's append, and reaches the
    view after the store moved on, keeps the newer version (its table would hold too few rows)."""
    store = get_store(channels)
    old = datasets.read(channels.home, "d")
    ingest.ingest(write("more.csv", HEADER + "m1,2025-02-01 10:00:00,x,1,pos\n"), "d",
                  mode="append", cfg=channels)
    assert hot_count(store) == N + 1
    reads = []
    real_read = datasets.read

    def first_read_is_stale(home, name):
        reads.append(name)
        return old if len(reads) == 1 else real_read(home, name)

    monkeypatch.setattr(datasets, "read", first_read_is_stale)
    assert hot_count(store) == N + 1
    assert store.query_rows("n", f"SELECT count(*) FROM {store.table('d')}")[0][0] == N + 1


def test_a_table_built_for_a_dataset_deleted_meanwhile_is_not_kept(channels, write, monkeypatch):
    """The dataset is deleted and made again (its versions restart at 1) while its table is built:
    the table of the old rows must not be kept for the new dataset of the same version number."""
    store = get_store(channels)
    real_rollups = store_module._rollups_of
    made_again = []

    def made_again_meanwhile(cur, dataset, version):
        if not made_again:
            made_again.append(True)
            datasets.delete(channels.home, "d")
            ingest.ingest(write("new.csv", HEADER + "".join(f"n{i},2025-02-01 10:00:00,x,{i},pos\n"
                                                            for i in range(5))), "d", cfg=channels)
            store.table("d")  # another session moves the view on
        return real_rollups(cur, dataset, version)

    monkeypatch.setattr(store_module, "_rollups_of", made_again_meanwhile)
    assert datasets.read(channels.home, "d").version == 1
    store.analytics_table("d")
    assert made_again and datasets.read(channels.home, "d").version == 1
    assert hot_count(store) == 5


def test_a_table_dropped_between_naming_and_running_is_named_again(channels, write):
    store = get_store(channels)
    named = []

    def build(table):
        if not named:  # another session sees a new version and drops this table meanwhile
            ingest.ingest(write("more.csv", HEADER + "m1,2025-02-01 10:00:00,x,1,pos\n"), "d",
                          mode="append", cfg=channels)
            store.table("d")
        named.append(table)
        return f"SELECT count(*) AS n FROM {table}", {}

    assert store.query_analytics("n", "d", build)["n"].iloc[0] == N + 1
    assert len(named) == 2 and named[0] != named[1]


def test_aggregates_keep_working_while_the_dataset_changes(channels, write):
    """Sessions aggregating while someone appends or replaces see whole versions, never errors."""
    store = get_store(channels)
    errors, partial = read_during_ingests(
        lambda: hot_count(store), readers=3,
        files=[write(f"v{k}.csv", HEADER + "".join(f"v{k}_{i},2025-01-03 10:00:00,x,{i},pos\n" for i in range(N)))
               for k in range(1, 5)], cfg=channels)
    assert errors == []
    assert partial == []
    assert hot_count(store) == 2 * N


def test_rollups_count_every_row_and_are_attached_again(channels, monkeypatch):
    from fraudlens import analytics
    first = get_store(channels)
    table = analytics.prepare(first, "d")  # with the derived columns the rollups group by
    rollups = first.rollups("d", table)
    assert {r.table.rsplit("_v1_", 1)[1].strip('"') for r in rollups} >= {"rollup_hour", "rollup_amount"}
    for rollup in rollups:
        total, amount = first.query_rows("sums", f"SELECT sum(row_count), sum(amount_sum) FROM {rollup.table}")[0]
        assert (total, amount) == (N, sum(range(N)))
    bins = first.amount_bins("d", table)
    assert bins and all(low <= high for _b, low, high in bins) and bins[0][1] == 0 and bins[-1][2] == N - 1
    monkeypatch.setattr(Store, "_fill_hot", lambda *_a, **_k: pytest.fail("the kept table should be attached"))
    again = Store(channels)
    try:
        assert again.analytics_table("d", analytics.derived_columns(analytics.dataset_zone(again, "d"))) == table
        assert again.rollups("d", table) == rollups and again.amount_bins("d", table) == bins
    finally:
        again.close()
    assert first.rollups("d", first.table("d")) == () and first.amount_bins("d", first.table("d")) == ()


def test_streamed_parquet_keeps_the_rows_order_and_full_row_groups(tmp_path):
    import duckdb
    import pyarrow.parquet as pq

    con = duckdb.connect()
    out = tmp_path / "rows.parquet"
    store_module.stream_to_parquet(
        con, "SELECT i, i % 3 AS few, 'r' || i AS label FROM range(300000) t(i)", out, 16_384, ["few"])
    meta = pq.read_metadata(out)
    assert meta.num_rows == 300_000
    assert meta.row_group(0).num_rows == 16_384
    assert "RLE_DICTIONARY" in meta.row_group(0).column(1).encodings
    assert "RLE_DICTIONARY" not in meta.row_group(0).column(0).encodings
    table = pq.read_table(out)
    assert table["i"].to_pylist() == list(range(300_000))
    assert table["label"][299_999].as_py() == "r299999"


def test_streamed_parquet_raises_the_query_error_after_rows_were_written(tmp_path):
    import duckdb

    con = duckdb.connect()
    sql = "SELECT i, CASE WHEN i < 250000 THEN i ELSE error('row ' || i || ' is bad') END AS v FROM range(300000) t(i)"
    with pytest.raises(duckdb.Error, match="is bad"):
        store_module.stream_to_parquet(con, sql, tmp_path / "rows.parquet", 16_384, [])


def test_streamed_parquet_stops_its_reader_when_the_file_cannot_be_written(tmp_path):
    import duckdb

    con = duckdb.connect()
    with pytest.raises(OSError):
        store_module.stream_to_parquet(con, "SELECT i FROM range(3000000) t(i)",
                                       tmp_path / "missing" / "rows.parquet", 16_384, [])
    assert not any(t.name == "parquet-rows" for t in threading.enumerate())
