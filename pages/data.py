"""Data: upload a file, map its columns, ingest it; list the datasets; profile the active one."""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from fraudlens.errors import FraudLensError, SchemaError
from fraudlens.ingest import MODES, SourceInfo
from fraudlens.schema import check_mapping
from fraudlens.ui import cached, layout, state, upload

MODE_LABELS = {"create": "Create new", "append": "Append to existing", "replace": "Replace existing"}
FILE_TYPES = ["csv", "gz", "parquet", "jsonl"]
ROW_PX = 35  # st.dataframe row height: tables sized to show every row without scrolling


def table_height(rows: int, most: int = 20) -> int:
    return ROW_PX * (min(rows, most) + 1) + 3


def draw_mapping(home: Path, info: SourceInfo) -> tuple[dict[str, str], str | None]:
    """The editable mapping table; returns the mapping and what is wrong with it, if anything."""
    st.subheader("Column mapping")
    st.caption("Which column of the file feeds each standard field. Required fields are ticked; "
               "leave a field blank if the file does not have it. Unmapped columns are kept as "
               "extra columns.")
    st.file_uploader("Load a saved mapping (JSON)", type=["json"], key="data_mapping_file",
                     on_change=upload.on_mapping_file, args=(home, info.headers))
    if st.session_state.get("data_mapping_error"):
        st.error(st.session_state["data_mapping_error"])
    for note in st.session_state.get("data_mapping_notes") or []:
        st.warning(note)
    table = upload.mapping_table(upload.base_mapping(info.mapping), info.headers)
    edited = st.data_editor(
        table, key=upload.editor_key(), hide_index=True, height=table_height(len(table)),
        disabled=["canonical", "description", "required"], placeholder="-",
        column_config={
            "canonical": st.column_config.TextColumn("field", width="medium"),
            "description": st.column_config.TextColumn("description", width="large"),
            "required": st.column_config.CheckboxColumn("required", width="small"),
            upload.SOURCE: st.column_config.SelectboxColumn(
                "source column", options=info.headers, required=False, width="medium",
                help="A column of the uploaded file, or blank."),
        },
    )
    mapping = upload.mapping_from_table(edited)
    st.download_button("Download mapping JSON", upload.mapping_json(mapping),
                       file_name="mapping.json", mime="application/json",
                       key="data_mapping_download", on_click="ignore")
    try:
        check_mapping(mapping, info.headers, info.path.name)
    except SchemaError as exc:
        return mapping, str(exc)
    return mapping, None


def draw_ingest_form(home: Path, path: str, mapping: dict[str, str], problem: str | None) -> None:
    """Dataset name, mode, options and the Ingest button with its progress bar."""
    st.subheader("Ingest")
    names = cached.dataset_names(home)
    left, right = st.columns(2)
    with left:
        name = st.text_input("Dataset name", key="data_name", max_chars=63,
                             help="A letter, then letters, digits or _ (for example bank_2025_q1).")
        mode = st.radio("Mode", MODES, key="data_mode", format_func=MODE_LABELS.get,
                        horizontal=True,
                        help="Append adds rows to a dataset; replace swaps it whole, atomically.")
    with right:
        pseudonymise = st.checkbox(
            "Pseudonymise account ids and IPs", key="data_pseudonymise",
            help="Store keyed hashes instead of the raw values. Needs the pseudonymisation key "
                 "(FRAUDLENS_PSEUDONYMISATION_KEY).")
        strict = st.checkbox("Strict: store nothing if any row is rejected", key="data_strict")
    name_problem = upload.name_problem(name)
    if name_problem:
        st.error(name_problem)
    elif mode == "create" and name in names:
        st.warning(f"Dataset '{name}' already exists: choose another name, or append or replace.")
    elif mode != "create" and name not in names:
        st.warning(f"There is no dataset '{name}' to {mode}: choose 'Create new'.")
    if problem:
        st.warning(problem)
    if not st.button("Ingest", key="data_ingest", type="primary",
                     disabled=bool(name_problem or problem)):
        return
    bar = st.progress(0.0, text="Starting")
    try:
        summary = upload.run_ingest(
            home, path, name, mapping=mapping, mode=mode, strict=strict, pseudonymise=pseudonymise,
            progress=lambda f, m: bar.progress(min(max(f, 0.0), 1.0), text=m),
        )
    except FraudLensError as exc:
        bar.empty()
        st.error(str(exc))
        return
    upload.finish_ingest(summary)
    st.rerun()


def draw_load_section(home: Path) -> None:
    st.header("Load a file")
    st.file_uploader(
        "Transactions file: CSV, CSV.gz, Parquet or JSON Lines", type=FILE_TYPES,
        key=upload.file_key(),
        help="Column names are matched to the standard fields; you can correct them below.",
    )
    path = upload.take_upload(home)
    if path is None:
        return
    try:
        info = cached.inspect_source(path)
    except FraudLensError as exc:
        st.error(str(exc))
        return
    details = f", {info.encoding}, delimiter {info.delimiter!r}" if info.format == "csv" else ""
    st.caption(f"{info.path.name}: {info.format.upper()}{details}, {len(info.headers)} columns. "
               "First rows:")
    st.dataframe(info.preview.head(10), hide_index=True, placeholder="-")
    mapping, problem = draw_mapping(home, info)
    draw_ingest_form(home, path, mapping, problem)


def draw_last_result(home: Path) -> None:
    """The numbers of the last ingest run from this page, and its rejected rows."""
    result = st.session_state.get("data_result")
    if result is None:
        return
    st.subheader(f"Last ingest: {result.dataset}")
    st.success(f"Loaded {result.loaded:,} of {result.rows_read:,} rows into '{result.dataset}' "
               f"({result.mode}) in {result.seconds:.1f} s. It is now the active dataset.")
    cols = st.columns(3)
    cols[0].metric("Rows read", f"{result.rows_read:,}", border=True)
    cols[1].metric("Loaded", f"{result.loaded:,}", border=True)
    cols[2].metric("Rejected", f"{result.rejected:,}", border=True)
    for note in result.notes:
        st.caption(f"Note: {note}")
    if not result.rejected:
        return
    reasons = cached.reasons_table(result.rejects_by_reason)
    left, _ = st.columns([3, 2])
    left.markdown("**Rejected rows by reason**")
    left.dataframe(reasons, hide_index=True, height=table_height(len(reasons)),
                   column_config={"reason": st.column_config.TextColumn(width="large")})
    try:
        rejects = cached.rejects(home, result.dataset, result.ingest_id)
    except FraudLensError as exc:
        st.error(str(exc))
        return
    if rejects is None:
        return
    st.markdown("**Rejected rows** (the first 200; the download has them all)")
    st.dataframe(rejects.preview, hide_index=True, placeholder="-",
                 height=table_height(len(rejects.preview), most=10),
                 column_order=["file", "line", "header", "column", "reason", "value"],
                 column_config={"reason": st.column_config.TextColumn(width="large"),
                                "header": st.column_config.TextColumn("column in the file"),
                                "column": st.column_config.TextColumn("FraudLens field")})
    st.download_button(
        f"Download rejected rows (CSV, {rejects.shown:,} rows)", rejects.csv,
        file_name=f"{result.dataset}-rejects-{result.ingest_id}.csv", mime="text/csv",
        key="data_rejects_download", on_click="ignore",
    )


def draw_datasets(home: Path) -> str | None:
    """Every dataset, and the choice of the active one; returns the active dataset's name."""
    st.header("Datasets")
    table = cached.datasets_table(home)
    if table.empty:
        st.info("No dataset yet: load a file above.")
        return None
    tz = cached.timezone_name()
    st.dataframe(
        table, hide_index=True, height=table_height(len(table)),
        column_config={
            "rows": st.column_config.NumberColumn(format="localized"),
            "rejected": st.column_config.NumberColumn(format="localized"),
            "frauds": st.column_config.NumberColumn(format="localized"),
            "first": st.column_config.TextColumn(f"first ({tz})"),
            "last": st.column_config.TextColumn(f"last ({tz})"),
            "size MB": st.column_config.NumberColumn(format="%.2f"),
        },
    )
    names = table["name"].tolist()
    active = st.session_state.get(state.ACTIVE_DATASET)
    st.session_state["data_active"] = active if active in names else names[0]
    st.selectbox("Active dataset", names, key="data_active", width=400,
                 on_change=lambda: state.set_active(st.session_state["data_active"]),
                 help="The dataset every page works on (the same choice as in the sidebar).")
    return st.session_state["data_active"]


def draw_profile(home: Path, name: str) -> None:
    """Data-quality profile of ``name``: per column, then rejects and ingest history."""
    st.header(f"Data quality: {name}")
    st.caption("Per column: empty values, distinct values, range and most common values. "
               f"Times in {cached.timezone_name()} time.")
    try:
        tables = cached.profile_tables(home, name)
    except FraudLensError as exc:
        st.error(str(exc))
        return
    st.dataframe(
        tables.columns, hide_index=True, placeholder="-",
        height=table_height(len(tables.columns), most=30),
        column_config={
            "column": st.column_config.TextColumn(width=160),
            "type": st.column_config.TextColumn(width=100),
            "in source": st.column_config.CheckboxColumn(
                width=80, help="Unticked: the ingested file had no such column, so it is empty."),
            "nulls %": st.column_config.ProgressColumn(
                "empty %", min_value=0.0, max_value=100.0, format="%.1f%%", width=110,
                help="Share of rows with no value."),
            "distinct": st.column_config.NumberColumn(
                "≈ distinct", format="localized", width=90,
                help="Number of different values, estimated (about 2% off); exact for transaction ids, "
                     "which ingest keeps unique."),
            "min": st.column_config.TextColumn(width=140),
            "max": st.column_config.TextColumn(width=140),
            "top values": st.column_config.TextColumn(width="large", help="Most common first."),
        },
    )
    left, right = st.columns([2, 3])
    left.markdown("**Rejected rows by reason** (all ingests)")
    if tables.rejects.empty:
        left.caption("None.")
    else:
        left.dataframe(tables.rejects, hide_index=True, height=table_height(len(tables.rejects)))
    right.markdown(f"**Ingest history** (newest first, {cached.timezone_name()} time)")
    right.dataframe(tables.ingests, hide_index=True, height=table_height(len(tables.ingests)))


home = layout.ensure_frame("pages/data.py")
st.title("Data")
draw_load_section(home)
draw_last_result(home)
active = draw_datasets(home)
if active:
    draw_profile(home, active)
