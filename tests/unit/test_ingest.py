"""Ingest: messy files in, canonical transactions out; bad rows rejected with file/line/column/reason;
bad files refused with nothing stored; a killed ingest leaves the dataset as it was.

Line numbers are spreadsheet rows: the header is line 1, the first record line 2, and a quoted
record that spans several physical lines counts as one line.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fraudlens import datasets, ingest
from fraudlens.errors import IngestError
from fraudlens.ingest import load_mapping, read_rejects
from fraudlens.store import Store, get_store

HEADER = "transaction_id,transaction_datetime,account_id,transaction_amount"
GOOD = HEADER + "\nt1,2025-01-03 10:00:00,a1,10.5\nt2,2025-01-04 11:30:00,a2,20\nt3,2025-01-05 12:00:00,a3,0\n"


# ---------------------------------------------------------------------------- helpers


def renamed(prefix: str) -> str:
    """GOOD with other transaction ids (t1.. -> <prefix>1..)."""
    return GOOD.replace("\nt", "\n" + prefix)


def utc(value) -> datetime:
    """A stored timestamp as a naive UTC datetime, whether it was stored naive-UTC or with a zone."""
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value


def fetch(cfg, dataset: str, columns: str = "*", order: str = "transaction_id") -> list[dict]:
    store = get_store(cfg)
    sql = f"SELECT {columns} FROM {store.table(dataset)} ORDER BY {order}"
    return store.query_arrow("test_fetch", sql).to_pylist()


def fresh_count(cfg, dataset: str) -> int:
    """Rows a new reader (a new process, say) sees: a new Store, no cached view."""
    store = Store(cfg)
    try:
        return store.query_rows("n", f"SELECT count(*) FROM {store.table(dataset)}")[0][0]
    finally:
        store.close()


def rejects(cfg, dataset: str) -> list[dict]:
    frame = read_rejects(dataset, cfg=cfg)
    if frame is None:
        return []
    return [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in frame.to_dict("records")
    ]


def by_line(cfg, dataset: str) -> dict[int, dict]:
    return {int(r["line"]): r for r in rejects(cfg, dataset)}


@pytest.fixture
def base(home, write, snapshot):
    """Dataset ``d`` with three good rows; returns its snapshot."""
    ingest.ingest(write("base.csv", GOOD), "d", cfg=home)
    return snapshot("d")


def assert_unchanged(snapshot, before: dict, name: str = "d") -> None:
    after = snapshot(name)
    assert after["manifest"] == before["manifest"]
    assert after["rows"] == before["rows"]
    assert after["files"] == before["files"], "files in the dataset folder changed"


def assert_nothing_stored(home, name: str) -> None:
    base = Path(home.home) / name
    assert not (base / "manifest.json").exists()
    left = [p for p in base.rglob("*") if p.is_file()] if base.exists() else []
    assert left == [], f"a failed ingest left files behind: {left}"
    assert name not in [d.name for d in datasets.list_all(home.home)]


# ---------------------------------------------------------------------------- formats


def test_csv_values_land_in_the_canonical_columns(home, write):
    path = write("a.csv", HEADER + ",city,note\nt1,2025-01-03 10:00:00,a1,\"S/ 1,234.50\",Lima,x\n"
                 "t2,2025-01-03 11:00:00,a2,7,Cusco,\n")
    result = ingest.ingest(path, "d", cfg=home)
    assert (result.rows_read, result.loaded, result.rejected) == (2, 2, 0)
    rows = fetch(home, "d")
    assert [r["transaction_id"] for r in rows] == ["t1", "t2"]
    assert [r["account_id"] for r in rows] == ["a1", "a2"]
    assert [r["transaction_amount"] for r in rows] == [1234.5, 7.0]
    assert [r["merchant_location"] for r in rows] == ["Lima", "Cusco"]
    assert rows[0]["note"] == "x"  # unmapped column kept as an extra
    info = datasets.read(home.home, "d")
    assert (info.version, info.rows, info.rejected) == (1, 2, 0)
    assert "note" in info.columns and "transaction_amount" in info.columns


def test_a_part_keeps_the_canonical_types_with_dictionaries_on_few_valued_columns(home, write):
    import pyarrow.parquet as pq

    path = write("a.csv", HEADER + ",channel,account_age_days,fraudulent_activity\n"
                 + "".join(f"t{i},2025-01-03 10:00:{i:02d},a{i},{i}.5,{'pos' if i % 2 else 'atm'},{i % 3},false\n"
                           for i in range(40)))
    ingest.ingest(path, "d", cfg=home)
    part = datasets.part_paths(home.home, datasets.read(home.home, "d"))[0]
    meta = pq.read_metadata(part)
    columns = {meta.row_group(0).column(k).path_in_schema: meta.row_group(0).column(k) for k in range(meta.num_columns)}
    assert "RLE_DICTIONARY" in columns["channel"].encodings
    assert "RLE_DICTIONARY" not in columns["transaction_id"].encodings
    assert columns["transaction_amount"].compression == "ZSTD"
    schema = pq.read_schema(part)
    assert str(schema.field("transaction_datetime").type) == "timestamp[us]"
    assert str(schema.field("account_age_days").type) == "int32"
    assert pq.read_table(part)["transaction_id"].to_pylist() == [f"t{i}" for i in range(40)]  # file order


def test_a_parquet_source_with_other_types_keeps_them_in_its_part(home, tmp_path):
    import duckdb

    source = tmp_path / "src.parquet"
    duckdb.sql("SELECT 't' || i AS transaction_id, TIMESTAMP '2025-01-03 10:00:00' + to_minutes(i) AS "
               "transaction_datetime, 'a' || i AS account_id, i * 1.5 AS transaction_amount, "
               "CAST('00000000-0000-0000-0000-00000000000' || i AS UUID) AS ref, to_days(i) AS wait "
               "FROM range(5) t(i)").write_parquet(str(source))
    ingest.ingest(source, "d", cfg=home)
    part = datasets.part_paths(home.home, datasets.read(home.home, "d"))[0]
    types = dict(duckdb.sql(f"DESCRIBE SELECT ref, wait FROM read_parquet('{part}')").fetchall()[i][:2] for i in range(2))
    assert types == {"ref": "UUID", "wait": "INTERVAL"}


def test_csv_gz(home, write):
    path = write("a.csv.gz", gzip.compress(GOOD.encode()))
    result = ingest.ingest(path, "d", cfg=home)
    assert result.loaded == 3
    assert [r["transaction_amount"] for r in fetch(home, "d")] == [10.5, 20.0, 0.0]


def test_json_lines_gz(home, write):
    lines = "".join(json.dumps({"transaction_id": f"g{i}", "transaction_datetime": "2025-01-03 10:00:00",
                                "account_id": "a", "transaction_amount": i}) + "\n" for i in range(3))
    result = ingest.ingest(write("a.jsonl.gz", gzip.compress(lines.encode())), "d", cfg=home)
    assert (result.loaded, result.rejected) == (3, 0)
    assert [r["transaction_amount"] for r in fetch(home, "d")] == [0.0, 1.0, 2.0]


def test_parquet_with_native_types(home, tmp_path):
    path = tmp_path / "p.parquet"
    table = pa.table({
        "transaction_id": ["p1", "p2", "p3"],
        "transaction_datetime": pa.array(
            [datetime(2025, 1, 3, 10), datetime(2025, 1, 3, 11), datetime(2025, 1, 3, 12)],
            pa.timestamp("us")),
        "account_id": ["a1", "a2", "a3"],
        "transaction_amount": [1.5, -2.0, 3.0],
        "fraudulent_activity": [True, False, None],
        "account_age_days": pa.array([10, 20, 30], pa.int32()),
    })
    pq.write_table(table, path)
    result = ingest.ingest(path, "d", cfg=home)
    assert (result.rows_read, result.loaded, result.rejected) == (3, 2, 1)
    rows = fetch(home, "d")
    assert [utc(r["transaction_datetime"]) for r in rows] == [datetime(2025, 1, 3, 15),
                                                             datetime(2025, 1, 3, 17)]
    assert [r["fraudulent_activity"] for r in rows] == [True, None]
    assert [r["account_age_days"] for r in rows] == [10, 30]
    rej = rejects(home, "d")
    assert len(rej) == 1
    assert rej[0]["file"] == "p.parquet"
    assert rej[0]["line"] == 2  # Parquet has no header: line = row number
    assert rej[0]["column"] == "transaction_amount"
    assert "negative" in rej[0]["reason"]


def test_parquet_typed_nulls_are_missing_values_and_numbers_convert(home, tmp_path):
    path = tmp_path / "t.parquet"
    pq.write_table(pa.table({
        "transaction_id": ["t1", "t2", "t3", "t4"],
        "transaction_datetime": pa.array(
            [datetime(2025, 1, 3, 10), None, datetime(2025, 1, 3, 12), datetime(2025, 1, 3, 13)],
            pa.timestamp("us")),
        "account_id": ["a1", "a2", "a3", "a4"],
        "transaction_amount": pa.array([1, 2, None, 4], pa.int64()),
        "account_age_days": [10.4, 20.6, 30.0, None],
        "fraudulent_activity": pa.array([1, 0, 1, 7], pa.int8()),
    }), path)
    result = ingest.ingest(path, "d", cfg=home)
    assert (result.loaded, result.rejected) == (1, 3)
    row = fetch(home, "d")[0]
    assert (row["transaction_amount"], row["account_age_days"], row["fraudulent_activity"]) == (1.0, 10, True)
    reasons = {r["line"]: (r["column"], r["reason"]) for r in rejects(home, "d")}
    assert reasons == {
        2: ("transaction_datetime", "missing required value (transaction_datetime)"),
        3: ("transaction_amount", "missing required value (transaction_amount)"),
        4: ("fraudulent_activity",
            "bad label (fraudulent_activity): not one of 1/0, true/false, yes/no, fraud/legit"),
    }


def test_parquet_with_zoned_timestamps_is_stored_in_utc(home, tmp_path):
    path = tmp_path / "z.parquet"
    pq.write_table(pa.table({
        "transaction_id": ["z1"],
        "transaction_datetime": pa.array([datetime(2025, 1, 3, 15, tzinfo=timezone.utc)],
                                         pa.timestamp("us", tz="UTC")),
        "account_id": ["a"],
        "transaction_amount": [1.0],
    }), path)
    ingest.ingest(path, "d", cfg=home)
    assert utc(fetch(home, "d")[0]["transaction_datetime"]) == datetime(2025, 1, 3, 15)


def test_json_lines_invalid_line_and_blank_lines(home, write):
    path = write("t.jsonl", (
        '{"id": "j1", "fecha": "2025-01-03 10:00:00", "cuenta": "a1", "monto": 10, "fraude": true}\n'
        "\n"
        '{"id": "j2", "fecha": \n'
        '   \n'
        '{"id": "j3", "fecha": "2025-01-03 11:00:00", "cuenta": "a3", "monto": "2.5", "extra": "x"}\n'
        '{"id": "j4", "fecha": "2025-01-03 12:00:00", "cuenta": "a4", "monto": -1}\n'
    ))
    result = ingest.ingest(path, "d", cfg=home)
    assert (result.loaded, result.rejected, result.rows_read) == (2, 2, 4)
    rows = fetch(home, "d")
    assert [r["transaction_id"] for r in rows] == ["j1", "j3"]
    assert [r["transaction_amount"] for r in rows] == [10.0, 2.5]
    assert [r["fraudulent_activity"] for r in rows] == [True, None]
    lines = by_line(home, "d")
    assert sorted(lines) == [3, 6]  # physical lines: blank lines still count
    assert lines[3]["reason"] == "invalid JSON"
    assert lines[3]["file"] == "t.jsonl"
    assert lines[3]["value"].startswith('{"id": "j2"')
    assert lines[6]["column"] == "transaction_amount" and "negative" in lines[6]["reason"]


# ---------------------------------------------------------------------------- encodings


@pytest.mark.parametrize("encoding,bom", [("utf-8", b""), ("utf-8", b"\xef\xbb\xbf"), ("latin-1", b""),
                                          ("utf-16", b"")])  # Python's utf-16 writes its own BOM
def test_encodings(home, write, encoding, bom):
    text = ("transaction_id,fecha,cuenta,monto,departamento\n"
            "e1,2025-01-03 10:00:00,a1,1,Junín\n"
            "e2,2025-01-03 10:00:00,a2,2,Áncash\n"
            "e3,2025-01-03 10:00:00,a3,3,Ñuñoa São\n")
    path = write("enc.csv", bom + text.encode(encoding))
    info = ingest.inspect(path, cfg=home)
    assert info.mapping["transaction_id"] == "transaction_id"  # the BOM is not part of the header
    result = ingest.ingest(path, "d", cfg=home)
    assert result.loaded == 3
    rows = fetch(home, "d")
    assert [r["transaction_id"] for r in rows] == ["e1", "e2", "e3"]
    assert [r["merchant_location"] for r in rows] == ["Junín", "Áncash", "Ñuñoa São"]


def test_excel_export_latin1_semicolon_crlf(home, write):
    """What a Peruvian bank's spreadsheet export looks like, in a file name with a quote and a space."""
    text = ("id_operacion;fecha;cuenta;monto;departamento\r\n"
            "t1;03/01/2025 10:00;a;1.234,50;Junín\r\n"
            "t2;25/01/2025 10:00;b;x;Áncash\r\n"
            "t3;31/01/2025 23:59;c;0,5;Cusco\r\n")
    path = write("o'brien export.csv", text.encode("latin-1"))
    result = ingest.ingest(path, "d", cfg=home)
    assert (result.loaded, result.rejected) == (2, 1)
    rows = fetch(home, "d")
    assert [r["transaction_amount"] for r in rows] == [1234.5, 0.5]
    assert [r["merchant_location"] for r in rows] == ["Junín", "Cusco"]  # no stray \r
    assert [utc(r["transaction_datetime"]) for r in rows] == [datetime(2025, 1, 3, 15),
                                                             datetime(2025, 2, 1, 4, 59)]
    (rej,) = rejects(home, "d")
    assert (rej["file"], rej["line"], rej["value"]) == ("o'brien export.csv", 3, "x")


def test_awkward_home_path(tmp_path, monkeypatch, write):
    from fraudlens import quality
    from fraudlens.config import settings

    monkeypatch.setenv("FRAUDLENS_HOME", str(tmp_path / "we'ird dir" / "h o'me"))
    monkeypatch.delenv("FRAUDLENS_PSEUDONYMISATION_KEY", raising=False)
    cfg = settings()
    ingest.ingest(write("a.csv", GOOD + "t4,never,a,1\n"), "d", cfg=cfg)
    ingest.ingest(write("b.csv", renamed("u")), "d", mode="append", cfg=cfg)
    assert len(fetch(cfg, "d")) == 6
    assert quality.load("d", cfg=cfg)["rows"] == 6
    assert ingest.read_rejects("d", ingest_id=datasets.read(cfg.home, "d").ingests[0]["id"],
                               cfg=cfg)["line"].tolist() == [5]


def test_a_rowid_column_is_kept_as_an_extra(home, write):
    """Oracle and SQLite exports carry a ROWID column; it must not disturb line numbers."""
    path = write("ora.csv", "ROWID," + HEADER + "\nAAA1,t1,2025-01-03 10:00:00,a,1\n"
                 "AAA2,t2,2025-01-03 10:00:00,a,-1\nAAA3,t1,2025-01-03 10:00:00,a,1\n")
    result = ingest.ingest(path, "d", cfg=home)
    assert (result.loaded, result.rejected) == (1, 2)
    assert fetch(home, "d")[0]["extra_rowid"] == "AAA1"
    assert sorted(by_line(home, "d")) == [3, 4]
    assert "line 2" in by_line(home, "d")[4]["reason"]


# ---------------------------------------------------------------------------- delimiters


@pytest.mark.parametrize("delim", [";", "\t", "|"])
def test_delimiters_decimal_comma_and_multiline_records(home, write, delim):
    d = delim
    lines = [
        d.join(["id_operacion", "fecha", "cuenta", "monto", "nota"]),
        d.join(["m1", "03/01/2025 10:00", "a1", "1.234,56", '"first line\nsecond line"']),
        d.join(["m2", "03/01/2025 10:00", "a2", "10,5", '"say ""hi"""']),
        d.join(["m3", "03/01/2025 10:00", "a3", "abc", "x"]),
        d.join(["m4", "03/01/2025 10:00", "a4", "7,00", "y", "surplus"]),
        d.join(["m5", "03/01/2025 10:00", "a5", "-1,5", '"two\nlines"']),
        d.join(["m6", "03/01/2025 10:00", "a6", "0,99", "z"]),
    ]
    path = write("sep.csv", "\n".join(lines) + "\n")
    result = ingest.ingest(path, "d", cfg=home)
    assert (result.rows_read, result.loaded, result.rejected) == (6, 3, 3)
    rows = fetch(home, "d")
    assert [r["transaction_id"] for r in rows] == ["m1", "m2", "m6"]
    assert [r["transaction_amount"] for r in rows] == [1234.56, 10.5, 0.99]
    assert rows[0]["nota"] == "first line\nsecond line"
    assert rows[1]["nota"] == 'say "hi"'
    lines_ = by_line(home, "d")
    assert sorted(lines_) == [4, 5, 6]
    assert lines_[4]["column"] == "transaction_amount" and "not a number" in lines_[4]["reason"]
    assert lines_[4]["value"] == "abc" and lines_[4]["header"] == "monto"
    assert "too many columns" in lines_[5]["reason"]
    assert lines_[6]["column"] == "transaction_amount" and "negative" in lines_[6]["reason"]
    assert all(r["file"] == "sep.csv" for r in lines_.values())


# ---------------------------------------------------------------------------- timestamps


@pytest.mark.parametrize("text,expected", [
    ("2025-01-03 10:00:00", datetime(2025, 1, 3, 15)),        # naive: Lima local time
    ("2025-01-03T10:00:00", datetime(2025, 1, 3, 15)),
    ("2025-01-03T10:00:00-05:00", datetime(2025, 1, 3, 15)),
    ("2025-01-03T15:00:00+00:00", datetime(2025, 1, 3, 15)),
    ("2025-01-03T15:00:00Z", datetime(2025, 1, 3, 15)),
    ("2025-01-03T17:30:00+02:30", datetime(2025, 1, 3, 15)),
    ("03/01/2025 10:00", datetime(2025, 1, 3, 15)),            # day first: 3 January
    ("03/01/2025", datetime(2025, 1, 3, 5)),
    ("2025-01-03", datetime(2025, 1, 3, 5)),                   # date only: local midnight
    ("20250103", datetime(2025, 1, 3, 5)),                     # compact date, not epoch seconds
    ("1735916400", datetime(2025, 1, 3, 15)),                  # epoch seconds are UTC
    ("1735916400000", datetime(2025, 1, 3, 15)),               # epoch milliseconds
])
def test_timestamps_are_stored_in_utc(home, write, text, expected):
    path = write("ts.csv", f"id,fecha,cuenta,monto\nx1,{text},a,1\n")
    result = ingest.ingest(path, "d", cfg=home)
    assert result.loaded == 1, rejects(home, "d")
    assert utc(fetch(home, "d")[0]["transaction_datetime"]) == expected


def test_mixed_offsets_in_one_column(home, write):
    path = write("ts.csv", "id,fecha,cuenta,monto\n"
                 "x1,2025-01-03T10:00:00-05:00,a,1\nx2,2025-01-03T15:00:00Z,a,1\n"
                 "x3,2025-01-03 10:00:00,a,1\nx4,2025-07-03T10:00:00+00:00,a,1\n")
    ingest.ingest(path, "d", cfg=home)
    got = [utc(r["transaction_datetime"]) for r in fetch(home, "d")]
    assert got == [datetime(2025, 1, 3, 15)] * 3 + [datetime(2025, 7, 3, 10)]


def test_day_first_is_unambiguous_when_a_day_exceeds_12(home, write):
    path = write("ts.csv", "id,fecha,cuenta,monto\nx1,03/01/2025 10:00,a,1\nx2,31/01/2025 10:00,a,1\n")
    ingest.ingest(path, "d", cfg=home)
    got = [utc(r["transaction_datetime"]) for r in fetch(home, "d")]
    assert got == [datetime(2025, 1, 3, 15), datetime(2025, 1, 31, 15)]


def test_paysim_steps_are_hours(home, write):
    path = write("steps.csv", "id,step,cuenta,monto\ns1,1,a,1\ns2,2,a,1\ns3,25,a,1\n")
    ingest.ingest(path, "d", cfg=home)
    got = [utc(r["transaction_datetime"]) for r in fetch(home, "d")]
    assert got[1] - got[0] == timedelta(hours=1)
    assert (got[2] - got[0]).total_seconds() == 24 * 3600
    # Step 0 is the simulation origin in the dataset's local time (Lima, UTC-5).
    origin = datetime.fromisoformat(ingest.STEP_ORIGIN)
    assert (got[0] - origin).total_seconds() == 3600 + 5 * 3600


def test_bad_dates_are_rejected_not_guessed(home, write):
    path = write("ts.csv", "id,fecha,cuenta,monto\nx1,2025-01-03 10:00:00,a,1\n"
                 "x2,2025-13-45 10:00:00,a,1\nx3,yesterday,a,1\nx4,,a,1\n")
    result = ingest.ingest(path, "d", cfg=home)
    assert (result.loaded, result.rejected) == (1, 3)
    lines = by_line(home, "d")
    assert "bad date" in lines[3]["reason"] and lines[3]["value"] == "2025-13-45 10:00:00"
    assert lines[3]["column"] == "transaction_datetime"
    assert lines[3]["header"] == "fecha"  # the file's own name for the column
    assert "bad date" in lines[4]["reason"] and lines[4]["value"] == "yesterday"
    assert "missing required value" in lines[5]["reason"]
    assert lines[5]["column"] == "transaction_datetime"


# ---------------------------------------------------------------------------- mapping


PAYSIM = "step,type,amount,nameOrig,oldbalanceOrg,newbalanceOrig,nameDest,oldbalanceDest,newbalanceDest,isFraud,isFlaggedFraud"
CARDSIM = "TRANSACTION_ID,TX_DATETIME,CUSTOMER_ID,TERMINAL_ID,TX_AMOUNT,TX_TIME_SECONDS,TX_TIME_DAYS,TX_FRAUD,TX_FRAUD_SCENARIO"
SPANISH = "id_operacion,fecha,cuenta,monto,tipo,canal,comercio,departamento,saldo,fraude,observación"


def test_paysim_headers_are_detected(home, write):
    path = write("paysim.csv", PAYSIM + "\n1,PAYMENT,9839.64,C1231006815,170136.0,160296.36,"
                 "M1979787155,0.0,0.0,0,0\n")
    info = ingest.inspect(path, cfg=home)
    assert info.mapping == {
        "transaction_datetime": "step", "account_id": "nameOrig", "transaction_amount": "amount",
        "transaction_type": "type", "account_balance": "oldbalanceOrg", "merchant_id": "nameDest",
        "fraudulent_activity": "isFraud",
    }
    # PaySim has no transaction id: ids are generated from the file name and the row.
    result = ingest.ingest(path, "d", cfg=home)
    assert result.loaded == 1 and any("ids generated" in n for n in result.notes)
    assert [r["transaction_id"] for r in fetch(home, "d")] == ["paysim-1"]
    # The same file again is caught as duplicates, not loaded twice.
    with pytest.raises(IngestError, match="duplicate transaction_id"):
        ingest.ingest(path, "d", mode="append", cfg=home)


def test_paysim_with_an_id_column_loads_with_extras(home, write):
    path = write("paysim.csv", "id," + PAYSIM + "\n"
                 "p1,1,PAYMENT,9839.64,C1231006815,170136.0,160296.36,M1979787155,0.0,0.0,0,0\n"
                 "p2,1,TRANSFER,181.0,C1305486145,181.0,0.0,C553264065,0.0,0.0,1,0\n")
    ingest.ingest(path, "d", cfg=home)
    rows = fetch(home, "d")
    assert [r["account_id"] for r in rows] == ["C1231006815", "C1305486145"]
    assert [r["merchant_id"] for r in rows] == ["M1979787155", "C553264065"]
    assert [r["transaction_type"] for r in rows] == ["PAYMENT", "TRANSFER"]
    assert [r["account_balance"] for r in rows] == [170136.0, 181.0]
    assert [r["fraudulent_activity"] for r in rows] == [False, True]
    for extra in ("newbalanceorig", "oldbalancedest", "newbalancedest", "isflaggedfraud"):
        assert extra in rows[0], extra


def test_card_simulator_headers(home, write):
    path = write("cards.csv", CARDSIM + "\n0,2025-04-01 00:00:31,596,3156,57.16,31,0,0,0\n"
                 "1,2025-04-01 00:02:10,4961,3412,81.51,130,0,1,1\n")
    info = ingest.inspect(path, cfg=home)
    assert info.mapping == {
        "transaction_id": "TRANSACTION_ID", "transaction_datetime": "TX_DATETIME",
        "account_id": "CUSTOMER_ID", "transaction_amount": "TX_AMOUNT", "merchant_id": "TERMINAL_ID",
        "fraudulent_activity": "TX_FRAUD",
    }
    ingest.ingest(path, "d", cfg=home)
    rows = fetch(home, "d")
    assert [r["transaction_id"] for r in rows] == ["0", "1"]
    assert [r["fraudulent_activity"] for r in rows] == [False, True]
    assert {"tx_time_seconds", "tx_time_days", "tx_fraud_scenario"} <= set(rows[0])
    assert datasets.read(home.home, "d").frauds == 1


def test_spanish_headers(home, write):
    path = write("banco.csv", SPANISH + "\nop1,03/01/2025 10:00,001-22,150,transferencia,móvil,"
                 "COM9,Junín,500,sí,revisar\n")
    info = ingest.inspect(path, cfg=home)
    assert info.mapping == {
        "transaction_id": "id_operacion", "transaction_datetime": "fecha", "account_id": "cuenta",
        "transaction_amount": "monto", "transaction_type": "tipo", "channel": "canal",
        "account_balance": "saldo", "merchant_id": "comercio", "merchant_location": "departamento",
        "fraudulent_activity": "fraude",
    }
    ingest.ingest(path, "d", cfg=home)
    row = fetch(home, "d")[0]
    assert row["observacion"] == "revisar"
    assert row["channel"] == "móvil" and row["merchant_location"] == "Junín"
    assert row["fraudulent_activity"] is True
    assert utc(row["transaction_datetime"]) == datetime(2025, 1, 3, 15)


def test_explicit_mapping_file(home, write, tmp_path):
    path = write("odd.csv", 'Ref,When,"Who Paid",How much,[select],TX_ID\n'
                 "r1,2025-01-03 10:00:00,acc1,5,s,decoy1\nr2,2025-01-03 10:00:00,acc2,6,t,decoy2\n")
    mapping_path = tmp_path / "m.json"
    mapping_path.write_text(json.dumps({
        "transaction_id": "Ref", "transaction_datetime": "When", "account_id": "Who Paid",
        "transaction_amount": "How much",
    }))
    mapping = load_mapping(mapping_path)
    ingest.ingest(path, "d", mapping=mapping, cfg=home)
    rows = fetch(home, "d")
    assert [r["transaction_id"] for r in rows] == ["r1", "r2"]
    assert [r["account_id"] for r in rows] == ["acc1", "acc2"]
    assert [r["select"] for r in rows] == ["s", "t"]
    assert [r["tx_id"] for r in rows] == ["decoy1", "decoy2"]  # unmapped: an extra, not the id


@pytest.mark.parametrize("content,needle", [
    ("{not json", "not valid JSON"),
    ("", "not valid JSON"),
    ('["transaction_id", "Ref"]', "JSON object"),
    ('{"transaction_id": 5}', "JSON object"),
    ('{"transaction_idd": "Ref", "transaction_id": "Ref"}', "transaction_idd"),
])
def test_bad_mapping_files_name_the_file(tmp_path, content, needle):
    path = tmp_path / "my_mapping.json"
    path.write_text(content)
    with pytest.raises(IngestError) as err:
        load_mapping(path)
    assert "my_mapping.json" in str(err.value)
    assert needle in str(err.value)


def test_missing_mapping_file(tmp_path):
    with pytest.raises(IngestError, match=r"nowhere\.json"):
        load_mapping(tmp_path / "nowhere.json")


@pytest.mark.parametrize("mapping,needles", [
    ({"transaction_id": "Ref", "transaction_datetime": "When", "account_id": "Who",
      "transaction_amount": "Missing Col"}, ["odd.csv", "Missing Col", "transaction_amount"]),
    ({"transaction_id": "Ref", "transaction_datetime": "When", "transaction_amount": "Amt"},
     ["odd.csv", "account_id"]),
    ({"transaction_id": "Ref", "transaction_datetime": "When", "account_id": "Ref",
      "transaction_amount": "Amt"}, ["odd.csv", "Ref"]),
])
def test_mapping_that_does_not_fit_the_file(home, write, base, snapshot, mapping, needles):
    path = write("odd.csv", "Ref,When,Who,Amt\nr1,2025-01-03 10:00:00,acc1,5\n")
    with pytest.raises(IngestError) as err:
        ingest.ingest(path, "d", mapping=mapping, mode="append", cfg=home)
    for needle in needles:
        assert needle in str(err.value)
    assert_unchanged(snapshot, base)


# ---------------------------------------------------------------------------- labels


def test_label_spellings(home, write):
    spellings = [("1", True), ("0", False), ("true", True), ("FALSE", False), ("yes", True),
                 ("No", False), ("Y", True), ("n", False), ("fraud", True), ("legit", False),
                 ("sí", True), ("SÍ", True), ("si", True), ("no", False), ("", None), (" 1 ", True)]
    body = "".join(f"l{i:02d},2025-01-03 10:00:00,a,1,{s}\n" for i, (s, _v) in enumerate(spellings))
    body += "l99,2025-01-03 10:00:00,a,1,maybe\n"
    path = write("labels.csv", HEADER + ",fraudulent_activity\n" + body)
    result = ingest.ingest(path, "d", cfg=home)
    assert (result.loaded, result.rejected) == (len(spellings), 1)
    got = [r["fraudulent_activity"] for r in fetch(home, "d")]
    assert got == [v for _s, v in spellings]
    (rej,) = rejects(home, "d")
    assert rej["line"] == len(spellings) + 2
    assert rej["column"] == "fraudulent_activity" and "bad label" in rej["reason"]
    assert rej["value"] == "maybe"
    assert datasets.read(home.home, "d").frauds == sum(1 for _s, v in spellings if v)


# ---------------------------------------------------------------------------- row rejects


@pytest.fixture(params=["by order", "as read"])
def numbering(request, monkeypatch):
    """Rows numbered by their place in the staged table, or as they are read (when its plan
    might reorder them)."""
    if request.param == "as read":
        monkeypatch.setattr(ingest, "_keeps_order", lambda *_a: False)
        yield request.param
        return
    seen, real = [], ingest._keeps_order
    monkeypatch.setattr(ingest, "_keeps_order", lambda *a: seen.append(real(*a)) or seen[-1])
    yield request.param
    assert seen and all(seen)  # every CSV's staging plan was found to keep the file's order


def test_row_rejects_have_file_line_column_reason_value(home, write, numbering):
    path = write("rows.csv", HEADER + ",account_balance\n"
                 "r1,2025-01-03 10:00:00,a1,10,100\n"        # 2 ok
                 "r2,not a date,a2,10,100\n"                 # 3 bad date
                 "r3,2025-01-03 10:00:00,a3,ten,100\n"       # 4 amount text
                 "r4,2025-01-03 10:00:00,a4,-0.01,100\n"     # 5 negative
                 "r5,2025-01-03 10:00:00,a5,inf,100\n"       # 6 infinite
                 "r6,2025-01-03 10:00:00,a6,NaN,100\n"       # 7 nan
                 "r7,2025-01-03 10:00:00,,10,100\n"          # 8 missing account
                 ",2025-01-03 10:00:00,a8,10,100\n"          # 9 missing id
                 "r9,2025-01-03 10:00:00,a9,10,100,surplus\n"  # 10 too many columns
                 "r1,2025-01-03 11:00:00,a10,10,100\n"       # 11 duplicate of line 2
                 "r11,2025-01-03 10:00:00,a11,10,lots\n"     # 12 bad optional number
                 "r12,2025-01-03 10:00:00,a12,0,\n")         # 13 ok (zero amount, empty balance)
    result = ingest.ingest(path, "d", cfg=home)
    assert result.loaded == 2
    assert result.loaded + result.rejected == 12 == result.rows_read
    assert [r["transaction_id"] for r in fetch(home, "d")] == ["r1", "r12"]
    lines = by_line(home, "d")
    assert sorted(lines) == list(range(3, 13))
    expect = {
        3: ("transaction_datetime", "bad date", "not a date"),
        4: ("transaction_amount", "not a number", "ten"),
        5: ("transaction_amount", "negative", "-0.01"),
        6: ("transaction_amount", "not finite", "inf"),
        7: ("transaction_amount", "not finite", "NaN"),
        8: ("account_id", "missing required value", None),
        9: ("transaction_id", "missing required value", None),
        11: ("transaction_id", "duplicate transaction_id", "r1"),
        12: ("account_balance", "not a number", "lots"),
    }
    for line, (column, reason, value) in expect.items():
        r = lines[line]
        assert r["file"] == "rows.csv"
        assert r["column"] == column, (line, r)
        assert reason in r["reason"], (line, r)
        if value is not None:
            assert r["value"] == value, (line, r)
    assert "too many columns" in lines[10]["reason"]
    # The duplicate says where the first one is, in the same line numbering.
    assert "line 2" in lines[11]["reason"], lines[11]["reason"]
    assert sum(result.rejects_by_reason.values()) == result.rejected == 10
    frame = read_rejects("d", cfg=home)
    assert {"file", "line", "column", "reason", "value"} <= set(frame.columns)
    info = datasets.read(home.home, "d")
    assert (info.rows, info.rejected) == (2, 10)


def test_many_duplicates_count_under_one_reason(home, write, numbering):
    body = "".join(f"x{i},2025-01-03 10:00:00,a,1\n" for i in range(5)) * 3
    result = ingest.ingest(write("dups.csv", HEADER + "\n" + body), "d", cfg=home)
    assert (result.loaded, result.rejected) == (5, 10)
    assert result.rejects_by_reason == {"duplicate transaction_id": 10}
    lines = by_line(home, "d")
    assert "first seen at line 2 of dups.csv" in lines[7]["reason"]  # x0 again
    assert "first seen at line 6 of dups.csv" in lines[16]["reason"]  # x4 a third time


def test_duplicates_across_files_name_the_first_file(home, write, numbering):
    a = write("a.csv", HEADER + "\nx1,2025-01-03 10:00:00,a,1\nx2,2025-01-03 10:00:00,a,1\n")
    b = write("b.csv", HEADER + "\nx3,2025-01-03 10:00:00,a,1\nx2,2025-01-03 10:00:00,a,1\n")
    result = ingest.ingest([a, b], "d", cfg=home)
    assert (result.loaded, result.rejected) == (3, 1)
    (rej,) = rejects(home, "d")
    assert (rej["file"], rej["line"], rej["column"]) == ("b.csv", 3, "transaction_id")
    assert "a.csv" in rej["reason"] and "line 3" in rej["reason"], rej["reason"]


def test_duplicate_across_append(home, write, base, numbering):
    path = write("more.csv", HEADER + "\nt9,2025-02-01 10:00:00,a9,1\nt2,2025-02-01 10:00:00,a9,1\n")
    result = ingest.ingest(path, "d", mode="append", cfg=home)
    assert (result.loaded, result.rejected) == (1, 1)
    (rej,) = rejects(home, "d")
    assert (rej["file"], rej["line"], rej["column"], rej["value"]) == ("more.csv", 3, "transaction_id", "t2")
    assert "already in the dataset" in rej["reason"]
    assert [r["transaction_id"] for r in fetch(home, "d")] == ["t1", "t2", "t3", "t9"]


def test_missing_columns_line_is_rejected(home, write):
    path = write("short.csv", HEADER + ",city\nq1,2025-01-03 10:00:00,a,1,Lima\nq2,2025-01-03 10:00:00\n"
                 "q3,2025-01-03 10:00:00,a,1,Ica\n")
    result = ingest.ingest(path, "d", cfg=home)
    assert (result.loaded, result.rejected, result.rows_read) == (2, 1, 3)
    (rej,) = rejects(home, "d")
    assert rej["line"] == 3 and rej["file"] == "short.csv"


def test_only_bad_rows_is_a_failure_and_stores_nothing(home, write):
    path = write("bad.csv", HEADER + "\nq1,never,a,1\nq2,2025-01-03 10:00:00,a,-4\n")
    with pytest.raises(IngestError) as err:
        ingest.ingest(path, "d", cfg=home)
    assert "bad.csv" in str(err.value) and "line 2" in str(err.value)
    assert_nothing_stored(home, "d")


# ---------------------------------------------------------------------------- file problems


def test_missing_file(home, base, snapshot, tmp_path):
    with pytest.raises(IngestError, match=r"ghost\.csv"):
        ingest.ingest(tmp_path / "ghost.csv", "d", mode="append", cfg=home)
    assert_unchanged(snapshot, base)


@pytest.mark.parametrize("name,content,needle", [
    ("empty.csv", b"", "empty"),
    ("blank.csv", b"\n\n  \n", "empty"),
    ("empty.csv.gz", gzip.compress(b""), "empty"),
    ("bom-only.csv", b"\xef\xbb\xbf\n", ""),
    ("header.csv", (HEADER + "\n").encode(), "no rows"),
    ("empty.jsonl", b"\n\n", ""),
    ("nocols.csv", (HEADER.replace("account_id", "someone") + "\nx,2025-01-03,b,1\n").encode(),
     "account_id"),
    ("junk.parquet", b"PAR1 not really parquet", ""),
    ("data.xlsx", b"PK\x03\x04 a zip", "unknown file type"),
])
def test_file_problems_store_nothing(home, write, base, snapshot, name, content, needle):
    path = write(name, content)
    with pytest.raises(IngestError) as err:
        ingest.ingest(path, "d", mode="append", cfg=home)
    assert name in str(err.value) and needle in str(err.value)
    assert_unchanged(snapshot, base)
    with pytest.raises(IngestError):
        ingest.ingest(path, "fresh", cfg=home)
    assert_nothing_stored(home, "fresh")


@pytest.mark.parametrize("name", ["../x", "a/b", "1abc", "", "models", "x" * 64, "a b", "tx;drop"])
def test_bad_dataset_names(home, write, tmp_path, name):
    path = write("a.csv", GOOD)
    with pytest.raises(IngestError) as err:
        ingest.ingest(path, name, cfg=home)
    assert repr(name) in str(err.value)
    assert not (tmp_path / "x").exists() and not (Path(home.home).parent / "x").exists()
    assert datasets.list_all(home.home) == []


def test_create_on_an_existing_dataset(home, write, base, snapshot):
    with pytest.raises(IngestError, match="already exists.*--append.*--replace"):
        ingest.ingest(write("more.csv", GOOD.replace("t1", "t7")), "d", cfg=home)
    assert_unchanged(snapshot, base)


def test_strict_with_one_bad_row(home, write, base, snapshot):
    path = write("strict.csv", HEADER + "\ns1,2025-01-03 10:00:00,a,1\ns2,2025-01-03 10:00:00,a,x\n")
    with pytest.raises(IngestError) as err:
        ingest.ingest(path, "d", mode="append", strict=True, cfg=home)
    message = str(err.value)
    assert "strict.csv" in message and "line 3" in message and "transaction_amount" in message
    assert_unchanged(snapshot, base)
    with pytest.raises(IngestError):
        ingest.ingest(path, "fresh", strict=True, cfg=home)
    assert_nothing_stored(home, "fresh")
    # A file of its own column names: the message uses them, with the field each maps to.
    own = write("propio.csv", "id,fecha,cuenta,monto\ns1,2025-01-03 10:00:00,a,1\ns2,2025-01-03 10:00:00,a,x\n")
    with pytest.raises(IngestError, match=r"propio.csv line 3 column monto \(transaction_amount\): "):
        ingest.ingest(own, "fresh", strict=True, cfg=home)


def test_pseudonymise_without_a_key(home, write, base, snapshot, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no .streamlit/secrets.toml of a developer's checkout
    with pytest.raises(IngestError, match="FRAUDLENS_PSEUDONYMISATION_KEY"):
        ingest.ingest(write("p.csv", GOOD), "fresh", pseudonymise=True, cfg=home)
    assert_nothing_stored(home, "fresh")


def test_bad_mode(home, write):
    with pytest.raises(IngestError, match="mode"):
        ingest.ingest(write("a.csv", GOOD), "d", mode="merge", cfg=home)


# ---------------------------------------------------------------------------- append / replace


def test_append_adds_rows_and_cumulates_rejects(home, write, base):
    first = datasets.read(home.home, "d")
    path = write("more.csv", HEADER + ",fraudulent_activity\n"
                 "t4,2025-02-01 10:00:00,a4,4,1\nt5,2025-02-02 10:00:00,a5,5,0\nt6,bad,a6,6,0\n")
    result = ingest.ingest(path, "d", mode="append", cfg=home)
    info = datasets.read(home.home, "d")
    assert info.version == first.version + 1 == result.version
    assert info.rows == first.rows + 2
    assert info.rejected == first.rejected + 1
    assert info.frauds == 1
    assert info.last.startswith("2025-02-02 15:00") or info.last.startswith("2025-02-02T15:00")
    assert info.first == first.first
    assert len(fetch(home, "d")) == 5
    assert set(first.files) < set(info.files)
    path2 = write("more2.csv", HEADER + "\nt7,x,a,1\nt8,2025-03-01 10:00:00,a,1\n")
    ingest.ingest(path2, "d", mode="append", cfg=home)
    info = datasets.read(home.home, "d")
    assert (info.rows, info.rejected, info.version) == (6, 2, 3)


def test_replace_swaps_and_removes_old_parts(home, write, base):
    first = datasets.read(home.home, "d")
    path = write("new.csv", HEADER + ",fraudulent_activity\nn1,2025-03-01 10:00:00,b1,1,1\n"
                 "n2,oops,b2,1,0\n")
    ingest.ingest(path, "d", mode="replace", cfg=home)
    info = datasets.read(home.home, "d")
    assert (info.version, info.rows, info.frauds) == (2, 1, 1)
    assert info.rejected == first.rejected + 1  # cumulative over the dataset's ingests
    assert info.first == info.last
    assert [r["transaction_id"] for r in fetch(home, "d")] == ["n1"]
    folder = Path(home.home) / "d" / datasets.PARTS
    on_disk = {f"{datasets.PARTS}/{p.name}" for p in folder.iterdir()}
    assert on_disk == set(info.files)
    assert not set(first.files) & on_disk
    assert not (Path(home.home) / "d" / datasets.STAGING).exists()
    # An id of the replaced version is not a duplicate any more.
    ingest.ingest(write("again.csv", GOOD), "d", mode="append", cfg=home)
    assert datasets.read(home.home, "d").rows == 4


def test_append_to_missing_dataset_creates_it(home, write):
    ingest.ingest(write("a.csv", GOOD), "d", mode="append", cfg=home)
    assert datasets.read(home.home, "d").rows == 3


# ---------------------------------------------------------------------------- pseudonymisation

SECRET_ROWS = ("transaction_id,transaction_datetime,account_id,transaction_amount,ip_address\n"
               "k1,2025-01-03 10:00:00,ACC-SECRET-0001,10,203.0.113.77\n"
               "k2,2025-01-03 11:00:00,ACC-SECRET-0002,20,198.51.100.23\n"
               "k3,never,ACC-SECRET-0003,20,192.0.2.199\n"
               "k4,2025-01-03 11:00:00,ACC-SECRET-0004,20,192.0.2.55,surplus\n")
RAW = ["ACC-SECRET-0001", "ACC-SECRET-0002", "ACC-SECRET-0003", "ACC-SECRET-0004",
       "203.0.113.77", "198.51.100.23", "192.0.2.199", "192.0.2.55"]


def _all_text(folder: Path) -> str:
    """Every file's bytes, plus every Parquet cell decoded, as one searchable text."""
    chunks = []
    for path in folder.rglob("*"):
        if not path.is_file():
            continue
        chunks.append(path.read_bytes().decode("latin-1"))
        if path.suffix == ".parquet":
            chunks.append(json.dumps(pq.read_table(path).to_pylist(), default=str))
    return "\n".join(chunks)


def test_pseudonymised_ids_leave_no_trace(home, write, monkeypatch):
    monkeypatch.setenv("FRAUDLENS_PSEUDONYMISATION_KEY", "key-one")
    path = write("secret.csv", SECRET_ROWS)
    result = ingest.ingest(path, "d", pseudonymise=True, cfg=home)
    assert (result.loaded, result.rejected) == (2, 2)
    text = _all_text(Path(home.home))
    for raw in RAW:
        assert raw not in text, f"{raw} stored in clear"
    rows = fetch(home, "d")
    assert all(r["account_id"] and r["account_id"] not in RAW for r in rows)
    assert all(r["ip_address"] and r["ip_address"] not in RAW for r in rows)
    assert len({r["account_id"] for r in rows}) == 2
    assert datasets.read(home.home, "d").pseudonymised is True
    rej = rejects(home, "d")
    assert sorted(r["line"] for r in rej) == [4, 5]  # still says where the problem is


def test_pseudonyms_are_stable_per_key(home, write, monkeypatch):
    path = write("secret.csv", SECRET_ROWS)
    monkeypatch.setenv("FRAUDLENS_PSEUDONYMISATION_KEY", "key-one")
    ingest.ingest(path, "one", pseudonymise=True, cfg=home)
    ingest.ingest(path, "again", pseudonymise=True, cfg=home)
    monkeypatch.setenv("FRAUDLENS_PSEUDONYMISATION_KEY", "key-two")
    ingest.ingest(path, "two", pseudonymise=True, cfg=home)
    one, again, two = (fetch(home, n, "account_id, ip_address") for n in ("one", "again", "two"))
    assert one == again
    assert all(a["account_id"] != b["account_id"] and a["ip_address"] != b["ip_address"]
               for a, b in zip(one, two))


def test_append_must_keep_the_pseudonymisation_setting(home, write, base, snapshot, monkeypatch):
    monkeypatch.setenv("FRAUDLENS_PSEUDONYMISATION_KEY", "key-one")
    with pytest.raises(IngestError, match="pseudonymisation"):
        ingest.ingest(write("m.csv", renamed("u")), "d", mode="append", pseudonymise=True,
                      cfg=home)
    assert_unchanged(snapshot, base)


def test_a_plan_that_could_reorder_rows_is_seen(home, write):
    """A long IN list becomes a join unless the optimiser's in_clause rule is off; a join may
    reorder rows, so such a stage numbers its rows as it reads them."""
    from fraudlens.store import connect

    path = write("words.csv", "id,label\n1,yes\n2,no\n")
    words = ", ".join(f"'w{i}'" for i in range(12))
    select = f"SELECT id, label IN ({words}) AS known FROM read_csv($path, all_varchar = true)"
    for options, keeps in ((None, False), ({"disabled_optimizers": "in_clause"}, True)):
        con = connect(home, readable=[path], options=options)
        try:
            assert ingest._keeps_order(con, select, {"path": str(path)}) is keeps
        finally:
            con.close()


# ---------------------------------------------------------------------------- crash safety


def _csv_of(path: Path, columns: str, rows: int) -> Path:
    """``columns`` over ``i`` in ``range(rows)``, written to ``path`` as CSV with a header."""
    import duckdb

    con = duckdb.connect()
    try:
        con.execute(f"COPY (SELECT {columns} FROM range($n) t(i)) TO '{path}' (HEADER)", {"n": rows})
    finally:
        con.close()
    return path


def _big_csv(path: Path, rows: int) -> Path:
    return _csv_of(path, "'big' || i AS transaction_id, "
                   "strftime(TIMESTAMP '2025-02-01' + to_seconds(i), '%Y-%m-%d %H:%M:%S') AS transaction_datetime, "
                   "'acc' || (i % 5000) AS account_id, round((i % 1000) / 7.0, 2) AS transaction_amount, "
                   "CASE WHEN i % 97 = 0 THEN 'yes' ELSE 'no' END AS fraudulent_activity, "
                   "'Lima' AS merchant_location", rows)


@pytest.fixture(scope="module")
def big_csv(tmp_path_factory):
    return _big_csv(tmp_path_factory.mktemp("big") / "big.csv", 1_000_000)


@pytest.mark.slow
def test_line_numbers_of_a_large_csv_are_its_own(home, tmp_path):
    """Large enough for a join in the staging plan to store blocks of rows out of file order."""
    rows = 1_500_000
    path = _csv_of(tmp_path / "large.csv",
                   "CASE WHEN i = $n - 1 THEN 'big1' ELSE 'big' || i END AS transaction_id, "
                   "strftime(TIMESTAMP '2025-02-01' + to_seconds(i), '%Y-%m-%d %H:%M:%S') AS transaction_datetime, "
                   "'acc' || (i % 5000) AS account_id, "
                   "CASE WHEN i = 1234567 THEN -1 ELSE i % 1000 END AS transaction_amount, "
                   "CASE WHEN i % 97 = 0 THEN 'yes' ELSE 'no' END AS fraudulent_activity", rows)
    result = ingest.ingest(path, "d", cfg=home)
    assert (result.loaded, result.rejected) == (rows - 2, 2)
    found = {r["line"]: r["reason"] for r in rejects(home, "d")}
    assert found == {
        1234567 + 2: "bad amount (transaction_amount): negative",
        rows + 1: "duplicate transaction_id (first seen at line 3 of large.csv)",
    }
    store = get_store(home)
    order = store.query_rows("order", "SELECT count(*) FILTER (WHERE back) FROM (SELECT transaction_datetime < "
                             f"lag(transaction_datetime) OVER () AS back FROM {store.table('d')})")
    assert order == [(0,)]  # the part is in time order


@pytest.mark.slow
def test_a_large_csv_with_line_breaks_in_quoted_notes(home, tmp_path):
    """Records spanning lines, in a file both threads split: every record read, lines exact."""
    rows = 1_000_000
    path = _csv_of(tmp_path / "notes.csv",
                   "'n' || i AS transaction_id, '2025-02-01 10:00:00' AS transaction_datetime, "
                   "'acc' || (i % 5000) AS account_id, "
                   "CASE WHEN i = 777777 THEN -1 ELSE i % 1000 END AS transaction_amount, "
                   "CASE WHEN i % 3 = 0 THEN 'said: ' || chr(10) || 'call back, \"urgent\"' ELSE 'ok' END AS note",
                   rows)
    result = ingest.ingest(path, "d", cfg=home)
    assert (result.loaded, result.rejected) == (rows - 1, 1)
    (rej,) = rejects(home, "d")
    assert (rej["line"], rej["column"]) == (777777 + 2, "transaction_amount")  # a record is one line
    store = get_store(home)
    notes = store.query_rows("notes", f"SELECT count(*) FILTER (WHERE note LIKE 'said: %urgent%'), "
                             f"count(*) FILTER (WHERE note = 'ok') FROM {store.table('d')}")
    assert notes == [(333_334 - 1, rows - 333_334)]  # 777777 is a multiple of 3: its note went too


@pytest.mark.slow
def test_a_large_csv_keeps_its_order_rows_of_one_time_included(home, tmp_path):
    """Large enough for a join in the plan (a long IN list, rewritten) to reorder the rows."""
    rows = 2_000_000
    path = _csv_of(tmp_path / "clean.csv",
                   "'c' || i AS transaction_id, '2025-02-01 10:00:00' AS transaction_datetime, "
                   "'acc' || (i % 5000) AS account_id, i % 1000 AS transaction_amount, "
                   "CASE WHEN i % 97 = 0 THEN 'yes' ELSE 'no' END AS fraudulent_activity", rows)
    result = ingest.ingest(path, "d", cfg=home)
    assert (result.loaded, result.rejected) == (rows, 0)
    store = get_store(home)
    moved = store.query_rows("order", "SELECT count(*) FROM (SELECT CAST(substr(transaction_id, 2) AS BIGINT) "
                             f"AS i, row_number() OVER () - 1 AS k FROM {store.table('d')}) WHERE i <> k")
    assert moved == [(0,)]


@pytest.mark.slow
@pytest.mark.parametrize("flag,delay", [
    ("--append", 0.0),          # as soon as the staging folder appears (reading the source)
    ("--replace", 0.5),         # half a second later
    ("--append", "staged"),     # while a part is being written into staging
    ("--replace", "parts"),     # a part renamed into place, manifest not yet swapped
])
def test_kill_9_mid_ingest_leaves_the_dataset_as_it_was(home, write, base, snapshot, run_cli, cli_env,
                                                        big_csv, flag, delay):
    staging = Path(home.home) / "d" / datasets.STAGING
    parts = Path(home.home) / "d" / datasets.PARTS
    live = set(base["manifest"]["files"])
    proc = subprocess.Popen([sys.executable, "-m", "fraudlens", "ingest", str(big_csv), "--dataset",
                             "d", flag], env=cli_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        if delay in ("parts", "staged"):
            def ready():
                if delay == "parts":
                    return any(f"{datasets.PARTS}/{p.name}" not in live for p in parts.iterdir())
                return staging.exists() and any(p.is_file() for p in staging.rglob("*"))

            while not ready():
                assert proc.poll() is None, f"ingest ended before the {delay} moment"
                assert time.monotonic() < deadline
            os.kill(proc.pid, signal.SIGKILL)
        else:
            while not staging.exists():
                assert proc.poll() is None, proc.communicate()
                assert time.monotonic() < deadline
                time.sleep(0.002)
            time.sleep(delay)
            assert proc.poll() is None, "ingest finished before the kill; use a bigger file"
            os.kill(proc.pid, signal.SIGKILL)
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    after = snapshot("d")
    if after["manifest"] != base["manifest"]:
        # Killed just after the manifest swap (rare): then the new version must be complete.
        assert after["manifest"]["version"] == base["manifest"]["version"] + 1
        assert after["manifest"]["rows"] == 1_000_000 + (3 if flag == "--append" else 0)
        assert len(after["rows"]) == after["manifest"]["rows"]
    else:
        assert after["manifest"] == base["manifest"]
        assert after["rows"] == base["rows"]
        assert after["live"] == base["live"]
        assert fresh_count(home, "d") == 3
    listing = run_cli("datasets", "--json")
    assert listing.returncode == 0, listing.stderr
    (entry,) = json.loads(listing.stdout)
    assert entry["name"] == "d" and entry["rows"] == after["manifest"]["rows"]
    # The next ingest works and sweeps the leftovers.
    result = ingest.ingest(write("next.csv", HEADER + "\nn1,2025-03-01 10:00:00,a,1\n"), "d",
                           mode="append", cfg=home)
    assert result.loaded == 1
    assert not staging.exists()
    info = datasets.read(home.home, "d")
    assert {f"{datasets.PARTS}/{p.name}" for p in parts.iterdir()} == set(info.files)
    rejects_dir = Path(home.home) / "d" / datasets.REJECTS
    listed = {i.get("rejects_file") for i in info.ingests}
    assert {f"{datasets.REJECTS}/{p.name}" for p in rejects_dir.glob("*")} <= listed
    assert info.rows == after["manifest"]["rows"] + 1
    assert fresh_count(home, "d") == info.rows


def test_a_partial_mapping_keeps_the_other_columns_detected(home, write):
    path = write("partial.csv", "ref,cuando,cuenta,monto,canal,fraude\n"
                 "a1,2025-01-03 10:00,C1,10.5,pos,1\n"
                 "a2,2025-01-03 11:00,C2,7,online,0\n")
    mapping = {"transaction_id": "ref", "transaction_datetime": "cuando"}
    info = ingest.inspect(path, cfg=home, mapping=mapping, complete_mapping=True)
    assert info.mapping["transaction_id"] == "ref" and info.mapping["transaction_datetime"] == "cuando"
    assert info.mapping["fraudulent_activity"] == "fraude" and info.mapping["channel"] == "canal"
    # A mapping reviewed in full (the Data page) leaves out what the user cleared.
    assert "channel" not in ingest.inspect(path, cfg=home, mapping={**mapping, "account_id": "cuenta",
                                                                    "transaction_amount": "monto"}).mapping
    ingest.ingest(path, "d", mapping=mapping, complete_mapping=True, cfg=home)
    rows = fetch(home, "d")
    assert [r["fraudulent_activity"] for r in rows] == [True, False]
    assert [r["channel"] for r in rows] == ["pos", "online"]
