"""The store: one DuckDB connection per data directory, a cursor per query, views that follow the
manifest, and no access outside the data directory."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from fraudlens import datasets, ingest
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


@pytest.mark.slow
def test_readers_keep_working_while_the_dataset_is_replaced(amounts, write):
    """Sessions browsing while someone appends or replaces never get an error, only whole versions."""
    header = "transaction_id,transaction_datetime,account_id,transaction_amount\n"
    store = get_store(amounts)
    stop = threading.Event()
    errors: list = []
    partial: list = []

    def read():
        while not stop.is_set():
            try:
                n = store.query_rows("n", f"SELECT count(*) FROM {store.table('d')}")[0][0]
                if n % N:
                    partial.append(n)
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(repr(exc)[:300])

    threads = [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for k in range(1, 7):
            body = "".join(f"v{k}_{i},2025-01-03 10:00:00,x,{i}\n" for i in range(N))
            ingest.ingest(write(f"v{k}.csv", header + body), "d", mode="replace" if k % 2 else "append",
                          cfg=amounts)
    finally:
        stop.set()
        for t in threads:
            t.join(60)
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
