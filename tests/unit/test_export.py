"""CSV export escapes cells a spreadsheet would run as formulas, and nothing else."""

from __future__ import annotations

import csv
import io

import numpy as np
import pandas as pd
import pytest

from fraudlens.export import escape_cell, safe_frame, to_csv_bytes


def _rows(data: bytes) -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))


@pytest.mark.parametrize(
    "text", ["=1+1", "+51 999", "-2+3", "@SUM(A1)", "\tx", "\rx", '=HYPERLINK("http://x")']
)
def test_formula_like_text_gets_a_quote(text):
    assert escape_cell(text) == "'" + text


@pytest.mark.parametrize("value", ["lima", "", "a=b", "1-2", " =x", 5, -3.5, None, True])
def test_other_values_are_unchanged(value):
    assert escape_cell(value) == value


def test_csv_escapes_text_cells_and_headers_but_not_numbers():
    frame = pd.DataFrame(
        {
            "reason": ["=cmd|' /C calc'!A0", "bad date", "@x"],
            "value": ["-5", "+1", "ok"],
            "amount": [-12.5, 3.0, np.nan],
            "line": [2, 3, 4],
            "=head": ["a", "b", "c"],
        }
    )
    rows = _rows(to_csv_bytes(frame))
    assert rows[0] == ["reason", "value", "amount", "line", "'=head"]
    assert rows[1] == ["'=cmd|' /C calc'!A0", "'-5", "-12.5", "2", "a"]
    assert rows[2] == ["bad date", "'+1", "3.0", "3", "b"]
    assert rows[3] == ["'@x", "ok", "", "4", "c"]


def test_line_breaks_inside_cells_do_not_split_rows():
    frame = pd.DataFrame({"value": ["a\rb", "c\nd", "\r=x"], "n": [1, 2, 3]})
    assert _rows(to_csv_bytes(frame))[1:] == [["a\rb", "1"], ["c\nd", "2"], ["'\r=x", "3"]]


def test_nulls_in_text_columns_stay_empty():
    frame = pd.DataFrame({"value": pd.Series(["=x", None, pd.NA], dtype="str")})
    assert _rows(to_csv_bytes(frame))[1:] == [["'=x"], [""], [""]]


def test_no_cell_starting_with_a_formula_character_survives():
    rng = np.random.default_rng(0)
    starts = list("=+-@\t\rab1 ")
    cells = ["".join(rng.choice(starts, size=3)) for _ in range(500)]
    frame = pd.DataFrame({"c": cells})
    for (cell,) in _rows(to_csv_bytes(frame))[1:]:
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


def test_accents_survive_and_input_is_not_modified():
    frame = pd.DataFrame({"city": ["Ñaña", "=Cusco"]})
    data = to_csv_bytes(frame)
    assert data.startswith(b"\xef\xbb\xbf")
    assert _rows(data)[1:] == [["Ñaña"], ["'=Cusco"]]
    assert frame["city"].tolist() == ["Ñaña", "=Cusco"]


def test_none_and_empty_frames():
    assert not any(_rows(to_csv_bytes(None)))
    assert _rows(to_csv_bytes(pd.DataFrame({"a": pd.Series([], dtype="str")}))) == [["a"]]


def test_categorical_and_timestamps():
    frame = pd.DataFrame(
        {
            "kind": pd.Categorical(["-x", "y"]),
            "at": pd.to_datetime(["2025-01-01 10:00", "2025-01-02 00:00"]),
        }
    )
    out = safe_frame(frame)
    assert out["kind"].tolist() == ["'-x", "y"]
    assert out["at"].dtype == frame["at"].dtype
