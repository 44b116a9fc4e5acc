"""The app under AppTest: first start, Home, and the Data page's upload, mapping and ingest.

Numbers on the pages are compared with what the library reports for the same data.
"""

from __future__ import annotations

import ast
import json
import threading
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from fraudlens import datasets, demo, quality
from fraudlens.config import DEMO_DATASET
from fraudlens.ui import bootstrap, upload as uploads

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
DEMO_ROWS = 5000  # as FRAUDLENS_DEMO_ROWS in conftest.py
BAD_CSV = (
    "TX_ID,Fecha,Cuenta,Monto,Canal,Ciudad,Fraude\n"
    "A1,2025-02-01 10:00:00,C1,100.50,pos,Lima,0\n"
    "A2,2025-02-01 11:00:00,C2,20,online,Cusco,1\n"
    "A3,not a date,C3,15,atm,Lima,0\n"
    "A4,2025-02-02 09:30:00,C4,-5,pos,Piura,0\n"
    "A5,2025-02-02 10:30:00,,40,mobile,Lima,0\n"
    "A1,2025-02-03 12:00:00,C1,70,pos,Lima,0\n"
    "A7,2025-02-03 13:00:00,C7,abc,pos,Ica,0\n"
    "A8,2025-02-04 14:00:00,C8,=1+1,pos,Lima,0\n"
    "A9,2025-02-04 15:00:00,C9,99.99,branch,Tacna,1\n"
)


def run_ok(at: AppTest) -> AppTest:
    """Run the app and fail with the app's own message if any element is an exception."""
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def metrics(at: AppTest) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def upload(at: AppTest, name: str, content: str | bytes) -> AppTest:
    """Upload through the Data page's file uploader (the first one on the page)."""
    data = content.encode("utf-8") if isinstance(content, str) else content
    at.file_uploader[0].set_value((name, data, "text/csv"))
    return run_ok(at)


def open_data_page(at: AppTest) -> AppTest:
    at.switch_page("pages/data.py")
    return run_ok(at)


def frame_with(at: AppTest, column: str):
    """The first table on the page that has ``column``."""
    for frame in at.dataframe:
        value = frame.value
        if column in value.columns:
            return value
    raise AssertionError(f"no table with a '{column}' column")


# ---------------------------------------------------------------------------- first start and Home


def test_first_start_builds_the_demo_and_home_shows_its_figures(app, app_home):
    info = datasets.read(app_home.home, DEMO_DATASET)
    assert info.rows == DEMO_ROWS
    shown = metrics(app)
    assert shown["Transactions"] == f"{info.rows:,}"
    assert shown["Frauds"] == f"{info.frauds:,}"
    assert shown["Frauds among all rows"] == f"{info.frauds / info.rows:.2%}"
    assert shown["Rejected at ingest"] == f"{info.rejected:,}"
    assert shown["First transaction"].startswith("2025-01-01")
    assert app.session_state["active_dataset"] == DEMO_DATASET
    assert app.sidebar.selectbox(key="active_dataset").value == DEMO_DATASET
    # The generated source file is gone once it is ingested.
    assert not list((Path(app_home.home) / ".tmp").glob("demo-*"))


def test_later_runs_do_not_build_the_demo_again(app, app_home):
    before = datasets.read(app_home.home, DEMO_DATASET).version
    run_ok(app)
    run_ok(app)
    assert datasets.read(app_home.home, DEMO_DATASET).version == before
    assert metrics(app)["Transactions"] == f"{DEMO_ROWS:,}"


def test_each_page_run_is_logged_with_its_time(app, caplog):
    with caplog.at_level("INFO", logger="fraudlens.ui.layout"):
        run_ok(app)
        open_data_page(app)
    runs = [r.getMessage() for r in caplog.records if r.getMessage().startswith("page run ")]
    assert len(runs) == 2 and runs[0].startswith("page run Home: ") and runs[1].startswith("page run Data: ")
    assert all(float(m.rsplit(" ", 2)[1]) > 0 for m in runs)


def test_fraudlens_log_sends_the_library_log_to_stderr_once(monkeypatch, capsys):
    import logging

    from fraudlens.config import LOG_HANDLER, configure_logging

    root = logging.getLogger("fraudlens")
    monkeypatch.setattr(root, "handlers", [])
    monkeypatch.setattr(root, "level", logging.NOTSET)
    monkeypatch.delenv("FRAUDLENS_LOG", raising=False)
    configure_logging()
    assert root.handlers == []  # off unless asked for
    monkeypatch.setenv("FRAUDLENS_LOG", "loud")
    configure_logging()
    configure_logging()
    assert [h.get_name() for h in root.handlers] == [LOG_HANDLER] and root.level == logging.INFO
    assert "FRAUDLENS_LOG='LOUD' is not a log level" in capsys.readouterr().err
    logging.getLogger("fraudlens.ui.layout").info("page run Home: 0.100 s")
    assert "page run Home: 0.100 s" in capsys.readouterr().err


def test_without_a_demo_both_pages_show_an_empty_state(home, monkeypatch):
    monkeypatch.setenv("FRAUDLENS_DEMO_ROWS", "0")
    at = run_ok(AppTest.from_file(str(APP), default_timeout=120))
    assert not at.metric
    assert any("No dataset yet" in t for t in texts(at.info))
    assert datasets.list_all(home.home) == []
    open_data_page(at)
    assert any("No dataset yet" in t for t in texts(at.info))


def test_a_bad_demo_size_is_a_message_not_a_traceback(home, monkeypatch):
    monkeypatch.setenv("FRAUDLENS_DEMO_ROWS", "lots")
    at = run_ok(AppTest.from_file(str(APP), default_timeout=120))
    assert any("FRAUDLENS_DEMO_ROWS" in t for t in texts(at.error))


def test_two_tabs_starting_at_once_build_the_demo_once(app_home):
    results, errors = [], []

    def start():
        try:
            results.append(demo.build_demo(app_home.home, 2000, train_model=False))
        except Exception as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert sorted(r.built for r in results) == [False, False, True]
    info = datasets.read(app_home.home, DEMO_DATASET)
    assert (info.rows, info.version) == (2000, 1)


# ---------------------------------------------------------------------------- Data page


def test_data_page_lists_datasets_and_profiles_the_active_one(app, app_home):
    open_data_page(app)
    info = datasets.read(app_home.home, DEMO_DATASET)
    listed = frame_with(app, "size MB")
    row = listed.set_index("name").loc[DEMO_DATASET]
    assert (row["rows"], row["rejected"], row["frauds"]) == (info.rows, info.rejected, info.frauds)
    assert f"Data quality: {DEMO_DATASET}" in texts(app.header)
    profile = quality.load(DEMO_DATASET)
    shown = frame_with(app, "top values").set_index("column")
    assert sorted(shown.index) == sorted(c["column"] for c in profile["columns"])
    for column in profile["columns"]:
        assert shown.loc[column["column"], "nulls %"] == pytest.approx(100 * column["null_share"], abs=0.01)
    history = frame_with(app, "rows read")
    assert history["loaded"].tolist() == [info.rows]


def test_upload_and_ingest_show_the_library_numbers(app, app_home):
    open_data_page(app)
    upload(app, "bad file.csv", BAD_CSV)
    assert app.text_input(key="data_name").value == "bad_file"
    mapping = frame_with(app, "source column").set_index("canonical")["source column"]
    assert mapping["transaction_id"] == "TX_ID" and mapping["transaction_amount"] == "Monto"
    assert not app.button(key="data_ingest").disabled

    app.button(key="data_ingest").click()
    run_ok(app)

    info = datasets.read(app_home.home, "bad_file")
    entry = info.ingests[-1]
    shown = metrics(app)
    assert shown["Rows read"] == f"{entry['rows_read']:,}" == "9"
    assert shown["Loaded"] == f"{entry['loaded']:,}" == f"{info.rows:,}" == "3"
    assert shown["Rejected"] == f"{entry['rejected']:,}" == "6"
    reasons = frame_with(app, "reason")
    by_reason = dict(zip(reasons["reason"], reasons["rows"], strict=True))
    assert by_reason == entry["rejects_by_reason"]
    # The new dataset is active everywhere, and its rejects can be downloaded.
    assert app.session_state["active_dataset"] == "bad_file"
    assert "Data quality: bad_file" in texts(app.header)
    assert "6 rows" in app.download_button(key="data_rejects_download").label
    # Each rejected row names the file's own column beside the field it maps to.
    rejected = frame_with(app, "header").set_index("line")
    assert (rejected.loc[4, "header"], rejected.loc[4, "column"]) == ("Fecha", "transaction_datetime")
    assert (rejected.loc[8, "header"], rejected.loc[8, "column"]) == ("Monto", "transaction_amount")
    # The uploader is empty again, ready for the next file; the saved upload is gone.
    assert app.file_uploader[0].value is None
    assert not [p for p in (Path(app_home.home) / ".tmp" / "uploads").rglob("*") if p.is_file()]
    at_home = run_ok(app.switch_page("pages/home.py"))
    assert metrics(at_home)["Transactions"] == "3"
    assert metrics(at_home)["Rejected at ingest"] == "6"


def test_ingest_problems_are_shown_as_errors(app, app_home):
    open_data_page(app)
    upload(app, "bad file.csv", BAD_CSV)
    app.text_input(key="data_name").set_value(DEMO_DATASET)
    run_ok(app)
    assert any("already exists" in t for t in texts(app.warning))
    app.button(key="data_ingest").click()
    run_ok(app)
    assert any("already exists" in t for t in texts(app.error))
    assert datasets.read(app_home.home, DEMO_DATASET).rows == DEMO_ROWS

    app.text_input(key="data_name").set_value("9 bad name")
    run_ok(app)
    assert any("plain identifier" in t for t in texts(app.error))
    assert app.button(key="data_ingest").disabled


def test_append_and_pseudonymise_without_a_key(app, app_home):
    open_data_page(app)
    upload(app, "bad file.csv", BAD_CSV)
    app.checkbox(key="data_pseudonymise").check()
    app.button(key="data_ingest").click()
    run_ok(app)
    assert any("Pseudonymisation needs a key" in t for t in texts(app.error))
    assert not datasets.exists(app_home.home, "bad_file")

    app.checkbox(key="data_pseudonymise").uncheck()
    app.text_input(key="data_name").set_value(DEMO_DATASET)
    app.radio(key="data_mode").set_value("append")
    app.button(key="data_ingest").click()
    run_ok(app)
    assert datasets.read(app_home.home, DEMO_DATASET).rows == DEMO_ROWS + 3
    assert metrics(app)["Loaded"] == "3"


def test_a_missing_required_column_blocks_the_ingest(app):
    open_data_page(app)
    upload(app, "no_amount.csv", "TX_ID,Fecha,Cuenta\nA1,2025-02-01 10:00:00,C1\n")
    assert any("transaction_amount" in t for t in texts(app.warning))
    assert app.button(key="data_ingest").disabled


def test_an_unreadable_file_is_an_error_message(app):
    open_data_page(app)
    upload(app, "empty.csv", "")
    assert any("empty" in t for t in texts(app.error))
    assert not [b for b in app.button if b.key == "data_ingest"]


def test_editing_the_mapping_changes_what_is_loaded(app, app_home):
    open_data_page(app)
    upload(app, "bad file.csv", BAD_CSV)
    editor = app.data_editor[0]
    rows = editor.value.reset_index(drop=True)
    where = int(rows.index[rows["canonical"] == "merchant_location"][0])
    app.session_state[editor.key] = {
        "edited_rows": {where: {"source column": None}}, "added_rows": [], "deleted_rows": [],
    }
    run_ok(app)
    app.button(key="data_ingest").click()
    run_ok(app)
    info = datasets.read(app_home.home, "bad_file")
    assert "merchant_location" not in info.ingests[-1]["mappings"][0]
    assert "ciudad" in info.columns  # kept as an extra column, never a feature


def test_a_saved_mapping_json_is_applied_and_odd_entries_reported(app):
    open_data_page(app)
    upload(app, "bad file.csv", BAD_CSV)
    saved = {"transaction_id": "TX_ID", "transaction_datetime": "Fecha", "account_id": "Cuenta",
             "transaction_amount": "Monto", "channel": "Ciudad", "merchant_id": "Nope"}
    app.file_uploader(key="data_mapping_file").set_value(
        ("mapping.json", json.dumps(saved).encode(), "application/json"))
    run_ok(app)
    mapping = frame_with(app, "source column").set_index("canonical")["source column"]
    assert mapping["channel"] == "Ciudad"
    assert not mapping["merchant_location"]  # not in the saved mapping
    assert any("'merchant_id' -> 'Nope'" in t for t in texts(app.warning))
    assert not app.button(key="data_ingest").disabled


def test_a_mapping_json_with_unknown_fields_is_refused(app):
    open_data_page(app)
    upload(app, "bad file.csv", BAD_CSV)
    app.file_uploader(key="data_mapping_file").set_value(
        ("mapping.json", b'{"colour": "Canal"}', "application/json"))
    run_ok(app)
    assert any("colour" in t and "unchanged" in t for t in texts(app.error))
    mapping = frame_with(app, "source column").set_index("canonical")["source column"]
    assert mapping["channel"] == "Canal"
    app.file_uploader(key="data_mapping_file").set_value(
        ("mapping.json", b"not json", "application/json"))
    run_ok(app)
    assert any("not valid JSON" in t for t in texts(app.error))


def test_choosing_the_active_dataset_on_the_data_page_switches_the_profile(app):
    open_data_page(app)
    upload(app, "bad file.csv", BAD_CSV)
    app.button(key="data_ingest").click()
    run_ok(app)
    assert app.selectbox(key="data_active").value == "bad_file"
    app.selectbox(key="data_active").set_value(DEMO_DATASET)
    run_ok(app)
    assert app.session_state["active_dataset"] == DEMO_DATASET
    assert app.sidebar.selectbox(key="active_dataset").value == DEMO_DATASET
    assert f"Data quality: {DEMO_DATASET}" in texts(app.header)


def test_the_sidebar_choice_is_shared_by_every_page(app):
    open_data_page(app)
    upload(app, "bad file.csv", BAD_CSV)
    app.button(key="data_ingest").click()
    run_ok(app)
    app.sidebar.selectbox(key="active_dataset").set_value(DEMO_DATASET)
    run_ok(app)
    run_ok(app.switch_page("pages/home.py"))
    assert metrics(app)["Transactions"] == f"{DEMO_ROWS:,}"


# ---------------------------------------------------------------------------- upload helpers


@pytest.mark.parametrize(
    ("name", "saved"),
    [("../../etc/passwd", "passwd"), ("Ventas Enero 2025.csv.gz", "Ventas_Enero_2025.csv.gz"),
     ("C:\\Users\\ana\\datos.csv", "datos.csv"), ("...", "upload"), ("año;rm -rf.csv", "a_o_rm_-rf.csv")],
)
def test_uploads_keep_only_a_plain_file_name(name, saved):
    assert uploads.safe_file_name(name) == saved


@pytest.mark.parametrize(
    ("name", "suggested"),
    [("Ventas Enero.csv.gz", "ventas_enero"), ("2025_q1.parquet", "d_2025_q1"), ("...csv", "dataset"),
     ("Transacciones-Lima.jsonl", "transacciones_lima")],
)
def test_suggested_dataset_names_are_valid(name, suggested):
    assert uploads.suggest_name(name) == suggested
    assert uploads.name_problem(suggested) is None


def test_uploads_are_saved_inside_the_data_folder_and_discarded(app_home, tmp_path):
    import io

    home = Path(app_home.home)
    path = uploads.save_upload(home, "../x.csv", io.BytesIO(b"a,b\n1,2\n"))
    assert path.read_bytes() == b"a,b\n1,2\n"
    assert path.resolve().is_relative_to((home / ".tmp" / "uploads").resolve())
    outside = tmp_path / "keep" / "x.csv"
    outside.parent.mkdir()
    outside.write_text("x")
    uploads.discard_upload(home, outside)  # not an upload: left alone
    uploads.discard_upload(home, path)
    assert outside.exists() and not path.exists()


def test_mapping_table_round_trip():
    headers = ["TX_ID", "Fecha", "Cuenta", "Monto"]
    mapping = {"transaction_id": "TX_ID", "transaction_datetime": "Fecha", "account_id": "Cuenta",
               "transaction_amount": "Monto", "channel": "gone"}
    table = uploads.mapping_table(mapping, headers)
    back = uploads.mapping_from_table(table)
    assert back == {k: v for k, v in mapping.items() if v in headers}
    assert json.loads(uploads.mapping_json(back)) == back


# ---------------------------------------------------------------------------- pages only draw


@pytest.mark.parametrize("path", sorted((ROOT / "pages").glob("*.py")) + [APP], ids=lambda p: p.name)
def test_pages_hold_no_sql_or_data_shaping(path):
    source = path.read_text(encoding="utf-8")
    tree = ast.parse(source)
    imported = {n.names[0].name for n in ast.walk(tree) if isinstance(n, ast.Import)}
    imported |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}
    assert not {m for m in imported if m.split(".")[0] in ("duckdb", "pandas", "numpy")}
    assert ".groupby(" not in source and "SELECT " not in source
    assert ":material/" not in source
