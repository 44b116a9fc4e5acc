"""CSV export that a spreadsheet cannot turn into a formula.

A cell whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a
formula by Excel and LibreOffice (CSV injection). Such cells get a leading ``'``, which the
spreadsheet shows as text. Numbers are left alone: ``-12.5`` is a number, not a formula.
"""

from __future__ import annotations

import pandas as pd

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def escape_cell(value: object) -> object:
    """``value`` with a leading ``'`` if it is text a spreadsheet would read as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` with every text cell (and column name) escaped."""
    out = frame.copy()
    for column in out.columns:
        series = out[column]
        if _may_hold_text(series):
            out[column] = series.astype(object).map(escape_cell, na_action="ignore")
    out.columns = [escape_cell(str(c)) for c in out.columns]
    return out


def _may_hold_text(series: pd.Series) -> bool:
    kind = series.dtype
    return not (
        pd.api.types.is_numeric_dtype(kind)
        or pd.api.types.is_bool_dtype(kind)
        or pd.api.types.is_datetime64_any_dtype(kind)
        or isinstance(kind, pd.DatetimeTZDtype)
    )


def to_csv_bytes(frame: pd.DataFrame | None) -> bytes:
    """UTF-8 CSV of ``frame`` (no index) with formula-like cells escaped; empty frame if None.

    Parameters
    ----------
    frame : DataFrame of shape (n_rows, n_columns), or None.

    Returns
    -------
    bytes
        The CSV text, header line first; a UTF-8 byte-order mark so spreadsheets read accents.
    """
    if frame is None:
        frame = pd.DataFrame()
    # CRLF line ends (RFC 4180) also make the writer quote cells holding a bare CR or LF.
    return safe_frame(frame).to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")


__all__ = ["FORMULA_STARTS", "escape_cell", "safe_frame", "to_csv_bytes"]
