"""Downloads of what a page shows, each recorded in the audit log when it is clicked.

CSV cells a spreadsheet would run as formulas are escaped (:mod:`fraudlens.export`); pages mask
the columns a role may not see (:func:`auth.protect`) before they hand a table over.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import streamlit as st

from fraudlens import audit
from fraudlens import export as exporting
from fraudlens.schema import PERSONAL
from fraudlens.ui import auth
from fraudlens.ui.cached import cfg_for

FORMATS = {"csv": "text/csv", "parquet": "application/vnd.apache.parquet", "json": "application/json",
           "zip": "application/zip"}


def record(home: Path, what: str, file_name: str, rows: int | None, personal: bool) -> None:
    """The audit entry of one download: who, what, and whether it holds personal data."""
    audit.record(auth.user(), audit.EXPORT, {"what": what, "file": file_name, "rows": rows,
                                             "personal_data": personal, "role": auth.role()},
                 cfg=cfg_for(home))


def table_bytes(frame: pd.DataFrame, fmt: str) -> bytes:
    """``frame`` as CSV (formula cells escaped) or Parquet."""
    if fmt == "csv":
        return exporting.to_csv_bytes(frame)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False)
    return buffer.getvalue()


def holds_personal(frame: pd.DataFrame) -> bool:
    return any(c in frame.columns for c in PERSONAL) and not auth.masks_personal()


def file_button(home: Path, label: str, data: bytes, file_name: str, key: str, *, what: str,
                rows: int | None = None, personal: bool = False, container=st, **kwargs) -> None:
    """A download button for bytes already made (a zip, a log export), audited on click."""
    fmt = file_name.rsplit(".", 1)[-1]
    container.download_button(label, data, file_name=file_name, mime=FORMATS.get(fmt, "application/octet-stream"),
                              key=key, on_click=record, args=(home, what, file_name, rows, personal), **kwargs)


def format_picker(key: str, container=st) -> str:
    """``"csv"`` or ``"parquet"``: the file format of a page's table downloads."""
    choice = container.segmented_control("File format", ["csv", "parquet"], default="csv", key=key,
                                         format_func=str.upper, help="CSV opens in a spreadsheet (formula "
                                         "cells escaped); Parquet keeps the column types.")
    return choice or "csv"


def table_button(home: Path, label: str, frame: pd.DataFrame, stem: str, key: str, fmt: str, *, what: str,
                 container=st, **kwargs) -> None:
    """A download of ``frame`` (already masked for the role) as ``fmt``, audited on click."""
    file_button(home, f"{label} ({fmt.upper()})", table_bytes(frame, fmt), f"{stem}.{fmt}", f"{key}_{fmt}",
                what=what, rows=len(frame), personal=holds_personal(frame), container=container, **kwargs)
