"""The Data page's steps without the drawing: keep an upload, edit the mapping, run the ingest.

Uploaded bytes go to ``<home>/.tmp/uploads/<random>/<file name>``: inside the data folder
(the only place DuckDB may read) and under the user's own file name, which the rejects report
quotes. Old uploads are swept after a day.

Page state lives under ``data_*`` keys. The file uploader's key carries a generation number
(``data_file_<n>``): a successful ingest moves to the next one, which empties the uploader so
the page is ready for the next file.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pandas as pd
import streamlit as st

from fraudlens import audit, ingest
from fraudlens.errors import FraudLensError, SchemaError
from fraudlens.schema import CANONICAL, COLUMNS, check_dataset_name, normalise_header
from fraudlens.ui import auth, state
from fraudlens.ui.cached import cfg_for

UPLOADS = Path(".tmp") / "uploads"
MAX_AGE_SECONDS = 24 * 3600
SOURCE = "source column"
Progress = Callable[[float, str], None]


def uploads_dir(home: Path) -> Path:
    return Path(home) / UPLOADS


def safe_file_name(name: str) -> str:
    """The last path part of ``name`` with only letters, digits, ``.``, ``-`` and ``_``."""
    base = Path(str(name).replace("\\", "/")).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "upload"
    return cleaned[-120:]


def save_upload(home: Path, name: str, data: BinaryIO) -> Path:
    """Copy an uploaded file into the uploads folder and return its path."""
    sweep_uploads(home)
    folder = uploads_dir(home) / uuid.uuid4().hex
    folder.mkdir(parents=True)
    target = folder / safe_file_name(name)
    with target.open("wb") as fh:
        shutil.copyfileobj(data, fh, length=1 << 20)
    return target


def discard_upload(home: Path, path: str | Path | None) -> None:
    """Delete an upload's folder (only ever one inside the uploads folder)."""
    if not path:
        return
    folder = Path(path).resolve().parent
    if folder.parent == uploads_dir(home).resolve():
        shutil.rmtree(folder, ignore_errors=True)


def sweep_uploads(home: Path, max_age: float = MAX_AGE_SECONDS) -> None:
    """Delete uploads older than ``max_age`` seconds (left by closed browser tabs)."""
    root = uploads_dir(home)
    if not root.is_dir():
        return
    cutoff = time.time() - max_age
    for folder in root.iterdir():
        if folder.is_dir() and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)


def suggest_name(file_name: str) -> str:
    """A dataset name from a file name: ``Ventas Enero.csv.gz`` -> ``ventas_enero``."""
    stem = Path(file_name).name.split(".")[0]
    name = normalise_header(stem)[:63] or "dataset"
    return name if name[0].isalpha() else f"d_{name}"[:63]


# ---------------------------------------------------------------------------- mapping


def mapping_table(mapping: dict[str, str], headers: list[str]) -> pd.DataFrame:
    """One row a canonical column for the mapping editor; unknown sources are left blank."""
    return pd.DataFrame(
        [
            {
                "canonical": c.name,
                "description": c.description,
                "required": c.required,
                SOURCE: mapping.get(c.name) if mapping.get(c.name) in headers else "",
            }
            for c in COLUMNS
        ]
    )


def mapping_from_table(table: pd.DataFrame) -> dict[str, str]:
    """``{canonical: source column}`` for the rows with a source chosen."""
    found = {}
    for canonical, source in zip(table["canonical"], table[SOURCE], strict=True):
        if isinstance(source, str) and source.strip():
            found[str(canonical)] = source
    return found


def mapping_json(mapping: dict[str, str]) -> bytes:
    """The mapping file ``--mapping`` reads, canonical order."""
    ordered = {c: mapping[c] for c in CANONICAL if c in mapping}
    return (json.dumps(ordered, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


@dataclass(frozen=True)
class LoadedMapping:
    mapping: dict[str, str]
    skipped: list[str] = field(default_factory=list)


def read_mapping(home: Path, name: str, data: bytes, headers: list[str]) -> LoadedMapping:
    """Parse a saved mapping JSON; entries that do not fit this file are skipped, with a reason.

    Raises IngestError when the file is not a mapping of canonical names at all.
    """
    folder = uploads_dir(home) / uuid.uuid4().hex
    folder.mkdir(parents=True)
    path = folder / safe_file_name(name)
    try:
        path.write_bytes(data)
        raw = ingest.load_mapping(path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    kept, skipped = {}, []
    for canonical, source in raw.items():  # load_mapping refused unknown canonical names
        if source not in headers:
            skipped.append(f"'{canonical}' -> '{source}': the file has no column '{source}'")
        else:
            kept[canonical] = source
    return LoadedMapping(kept, skipped)


# ---------------------------------------------------------------------------- ingest


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a dataset name, or None when it can."""
    try:
        check_dataset_name(name)
    except SchemaError as exc:
        return str(exc)
    return None


@dataclass(frozen=True)
class IngestSummary:
    """What the page shows after an ingest: the library's own numbers."""

    dataset: str
    ingest_id: str
    mode: str
    rows_read: int
    loaded: int
    rejected: int
    rejects_by_reason: dict[str, int]
    seconds: float
    notes: list[str]


def run_ingest(
    home: Path,
    path: str | Path,
    dataset: str,
    *,
    mapping: dict[str, str],
    mode: str = "create",
    strict: bool = False,
    pseudonymise: bool = False,
    progress: Progress | None = None,
) -> IngestSummary:
    """Ingest one uploaded file into ``dataset`` under ``home``.

    Raises FraudLensError (shown to the user) for anything the user can fix.
    """
    result = ingest.ingest(
        [Path(path)],
        dataset,
        mapping=mapping,
        mode=mode,
        strict=strict,
        pseudonymise=pseudonymise,
        progress=progress,
        cfg=cfg_for(home),
    )
    audit.record(auth.user(), audit.INGEST, {
        "dataset": result.dataset, "ingest_id": result.ingest_id, "mode": result.mode, "file": Path(path).name,
        "rows_read": result.rows_read, "loaded": result.loaded, "rejected": result.rejected,
        "pseudonymised": pseudonymise}, cfg=cfg_for(home))
    return IngestSummary(
        dataset=result.dataset,
        ingest_id=result.ingest_id,
        mode=result.mode,
        rows_read=result.rows_read,
        loaded=result.loaded,
        rejected=result.rejected,
        rejects_by_reason=dict(result.rejects_by_reason),
        seconds=result.seconds,
        notes=list(result.notes),
    )


# ---------------------------------------------------------------------------- page state


def file_key() -> str:
    """The key of the data-file uploader of the current generation."""
    return f"data_file_{st.session_state.get('data_file_gen', 0)}"


def take_upload(home: Path) -> str | None:
    """Save a newly uploaded file once, forget it when it is removed; returns its saved path."""
    uploaded = st.session_state.get(file_key())
    saved = st.session_state.get("data_upload")
    if uploaded is None:
        if saved:
            discard_upload(home, saved["path"])
            st.session_state.pop("data_upload", None)
        return None
    if not saved or saved["file_id"] != uploaded.file_id:
        if saved:
            discard_upload(home, saved["path"])
        path = save_upload(home, uploaded.name, uploaded)
        st.session_state["data_upload"] = {"file_id": uploaded.file_id, "path": str(path)}
        _reset_mapping(None)
        st.session_state["data_name"] = suggest_name(uploaded.name)
    return st.session_state["data_upload"]["path"]


def _reset_mapping(mapping: dict[str, str] | None, notes: list[str] | None = None) -> None:
    """Start the mapping editor afresh from ``mapping`` (None: the detected one)."""
    st.session_state["data_mapping_base"] = mapping
    st.session_state["data_mapping_notes"] = notes or []
    st.session_state["data_mapping_error"] = None
    st.session_state["data_mapping_rev"] = st.session_state.get("data_mapping_rev", 0) + 1


def editor_key() -> str:
    return f"data_mapping_{st.session_state.get('data_mapping_rev', 0)}"


def base_mapping(detected: dict[str, str]) -> dict[str, str]:
    """The mapping the editor starts from: a loaded one, else what was detected."""
    if st.session_state.get("data_mapping_base") is None:
        st.session_state["data_mapping_base"] = dict(detected)
    return st.session_state["data_mapping_base"]


def on_mapping_file(home: Path, headers: list[str]) -> None:
    """Callback of the mapping-JSON uploader: a valid saved mapping becomes the editor's start."""
    uploaded = st.session_state.get("data_mapping_file")
    if uploaded is None:
        return
    try:
        loaded = read_mapping(home, uploaded.name, uploaded.getvalue(), headers)
    except FraudLensError as exc:
        st.session_state["data_mapping_error"] = f"{exc} The mapping below is unchanged."
        st.session_state["data_mapping_notes"] = []
        return
    _reset_mapping(loaded.mapping, [f"Skipped {s}." for s in loaded.skipped])


def finish_ingest(summary: IngestSummary) -> None:
    """Keep the result, make the dataset active and empty the uploader for the next file."""
    st.session_state["data_result"] = summary
    state.request_active(summary.dataset)
    st.session_state["data_file_gen"] = st.session_state.get("data_file_gen", 0) + 1
