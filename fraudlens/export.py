"""CSV export that a spreadsheet cannot turn into a formula, and masking of personal columns.

A cell whose text starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is run as a
formula by Excel and LibreOffice (CSV injection). Such cells get a leading ``'``, which the
spreadsheet shows as text. Numbers are left alone: ``-12.5`` is a number, not a formula.

:func:`mask_personal` hides account ids and IP addresses (all but their last four characters)
for readers who must not see them; tables and exports go through it alike.
"""

from __future__ import annotations

from collections.abc import Iterable

import pandas as pd

from fraudlens.schema import PERSONAL

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
MASK = "••••"
KEEP = 4  # trailing characters left visible


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


def mask_value(value: object) -> object:
    """``A00001234`` -> ``••••1234``; values of at most four characters are masked whole; empty
    values stay empty."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return value
    text = str(value)
    if not text:
        return text
    return MASK + text[-KEEP:] if len(text) > KEEP else MASK


def mask_personal(frame: pd.DataFrame, columns: Iterable[str] = PERSONAL) -> pd.DataFrame:
    """A copy of ``frame`` with the personal ``columns`` it has masked by :func:`mask_value`.

    Parameters
    ----------
    frame : DataFrame of shape (n_rows, n_columns)
    columns : names of personal columns (default: account_id and ip_address); absent ones are
        ignored.

    Returns
    -------
    DataFrame of the same shape; masked columns hold text.
    """
    out = frame.copy()
    for column in columns:
        if column in out.columns:
            out[column] = out[column].astype(object).map(mask_value, na_action="ignore")
    return out


__all__ = ["FORMULA_STARTS", "MASK", "escape_cell", "mask_personal", "mask_value", "safe_frame",
           "to_csv_bytes"]
