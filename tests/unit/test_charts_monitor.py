"""Monitoring figures: titles, axis titles with units, the PSI bands, partial weeks, empty tables."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from fraudlens import charts_monitor as charts
from fraudlens import monitor

WEEKS = pd.to_datetime(["2025-01-06", "2025-01-13", "2025-01-20", "2025-01-27"])
PARTIAL = [WEEKS[0], WEEKS[-1]]


def psi_frame() -> pd.DataFrame:
    rows = []
    for variable, values in (("score", [0.3, 0.05, 0.12, 0.0]), ("amount", [0.02, 0.3, 0.2, 1.5])):
        for week, value, complete in zip(WEEKS, values, [False, True, True, False]):
            rows.append({"week": week, "variable": variable, "psi": value, "band": monitor.psi_band(value),
                         "rows": 500, "reference_rows": 4000, "complete": complete})
    return pd.DataFrame(rows)


def scores_frame() -> pd.DataFrame:
    return pd.DataFrame({"week": WEEKS, "rows": [100, 700, 710, 90], "mean": [0.01] * 4,
                         "p50": [0.001, 0.0012, 0.0011, 0.001], "p90": [0.01, 0.02, 0.015, 0.01],
                         "p99": [0.4, 0.9, 0.5, 0.3], "above": [0.01] * 4})


def alerts_frame() -> pd.DataFrame:
    return pd.DataFrame({"week": WEEKS, "alerts": [3, 10, 8, 2], "open": [0, 2, 8, 2], "needs_info": [0, 1, 0, 0],
                         "confirmed": [2, 5, 0, 0], "false_positive": [1, 2, 0, 0],
                         "precision": [2 / 3, 5 / 7, math.nan, math.nan], "money_caught": [100.0, 2500.5, 0.0, 0.0],
                         "expected_loss": [150.0, 3000.0, 900.0, 80.0]})


def maturity_frame() -> pd.DataFrame:
    return pd.DataFrame({"week": WEEKS, "rows": [100, 700, 710, 90], "unknown": [0, 7, 355, 90],
                         "unknown_share": [0.0, 0.01, 0.5, 1.0], "labelled_from_ops": [0, 3, 0, 0],
                         "frauds": [1, 5, 2, 0]})


def history_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "ingest_id": ["a1", "b2"], "at": pd.to_datetime(["2025-02-01 15:00", "2025-03-01 15:30"], utc=True),
        "mode": ["create", "append"], "sources": ["jan.csv", "feb.csv"], "rows_read": [1000, 500],
        "loaded": [990, 450], "rejected": [10, 50], "reject_share": [0.01, 0.1],
        "top_reject_reason": ["bad amount", None]})


def nulls_frame() -> pd.DataFrame:
    return pd.DataFrame({"ingest_id": ["a1", "a1", "b2", "b2"], "column": ["ip_address", "channel"] * 2,
                         "rows": [990, 990, 450, 450], "nulls": [99, 0, 450, 9],
                         "null_share": [0.1, 0.0, 1.0, 0.02]})


def title(fig) -> str:
    return fig.layout.title.text


def axis_titles(fig) -> tuple[str, str]:
    return fig.layout.xaxis.title.text, fig.layout.yaxis.title.text


def named(fig, name: str, mode: str | None = None):
    found = [t for t in fig.data if t.name == name and (mode is None or t.mode == mode)]
    assert found, f"no trace {name!r} in {[t.name for t in fig.data]}"
    return found[0]


# ---------------------------------------------------------------------------------------------
# Scores and PSI


def test_score_figure_draws_the_quantiles_and_the_threshold():
    fig = charts.score_figure(scores_frame(), threshold=0.3, partial=PARTIAL, tz="America/Lima")
    assert title(fig).startswith("Score distribution per week")
    assert axis_titles(fig) == ("Week starting Monday (Lima time)", "Score (0–1, log scale)")
    assert fig.layout.yaxis.type == "log"
    assert list(named(fig, "99th percentile", "lines").y) == [0.4, 0.9, 0.5, 0.3]
    assert list(named(fig, "median", "lines").y) == [0.001, 0.0012, 0.0011, 0.001]
    assert list(named(fig, "alert threshold 0.3").y) == [0.3, 0.3]
    # Partial weeks: white-filled (hollow) markers on the first and last week.
    hollow = [t for t in fig.data if t.name == "99th percentile" and t.mode == "markers" and t.marker.color == "white"]
    assert [list(t.x) for t in hollow] == [["2025-01-06", "2025-01-27"]]
    assert any(t.name == "partial week (hollow)" for t in fig.data)


def test_score_figure_without_a_threshold_says_so():
    fig = charts.score_figure(scores_frame())
    assert not any((t.name or "").startswith("alert threshold") for t in fig.data)
    assert "No live alert threshold" in title(fig)
    assert not any(t.name == "partial week (hollow)" for t in fig.data)


def test_psi_figure_has_the_bands_and_one_line_per_variable():
    fig = charts.psi_figure(psi_frame(), ["score"], "Score PSI per week")
    assert title(fig).startswith("Score PSI per week")
    assert axis_titles(fig) == ("Week starting Monday (Lima time)", "PSI (log scale)")
    lines = [t for t in fig.data if t.mode == "lines" and t.meta and t.meta[0] != "band"]
    assert [t.name for t in lines] == ["score"]
    # PSI 0 cannot sit on a log axis: drawn at the floor, the hover keeps the real value.
    assert list(lines[0].y) == [0.3, 0.05, 0.12, charts.PSI_SHOWN_FLOOR]
    band_lines = [t for t in fig.data if t.meta and t.meta[0] == "band"]
    assert [(t.name, list(t.y)) for t in band_lines] == [("0.1: watch above", [0.1, 0.1]),
                                                         ("0.25: act above", [0.25, 0.25])]
    shapes = [(s.name, s.y0, s.y1) for s in fig.layout.shapes]
    assert [s[0] for s in shapes] == ["stable", "watch", "act"]
    assert shapes[1][1:] == (0.1, 0.25) and shapes[2][1] == 0.25
    assert {a.text for a in fig.layout.annotations} >= {"stable", "watch", "act"}


def test_psi_figure_of_features_leaves_out_the_score_and_keeps_the_order():
    fig = charts.psi_figure(psi_frame(), ["amount", "missing_feature"], "Features")
    lines = [t for t in fig.data if t.mode == "lines" and t.meta and t.meta[0] != "band"]
    assert [t.name for t in lines] == ["amount"]
    assert list(lines[0].y) == [0.02, 0.3, 0.2, 1.5]
    assert 10 ** fig.layout.yaxis.range[1] >= 1.5  # the largest PSI fits


def test_alerts_figure_stacks_statuses_and_puts_precision_on_the_right():
    fig = charts.alerts_figure(alerts_frame(), PARTIAL)
    assert title(fig).startswith("Alerts per week and their precision")
    assert axis_titles(fig) == ("Week starting Monday (Lima time)", "Alerts per week (transactions)")
    assert fig.layout.yaxis2.title.text == "Precision (%)" and fig.layout.barmode == "stack"
    confirmed = [t for t in fig.data if t.name == "confirmed fraud"]
    # complete weeks in one trace, partial weeks hatched in another of the same legend group
    assert [list(t.y) for t in confirmed] == [[5, 0], [2, 0]]
    assert confirmed[1].marker.pattern.shape == "/" and confirmed[1].showlegend is False
    precision = named(fig, "precision (right axis)", "lines")
    assert precision.yaxis == "y2" and precision.y[0] == pytest.approx(2 / 3) and precision.y[2] is None


def test_money_and_maturity_figures():
    money = charts.money_figure(alerts_frame(), PARTIAL)
    assert title(money).startswith("Money caught per week")
    assert axis_titles(money)[1] == "PEN per week"
    caught = [t for t in money.data if t.name == "caught (confirmed fraud)"]
    assert sorted(v for t in caught for v in t.y) == [0.0, 0.0, 100.0, 2500.5]
    assert list(named(money, "expected loss of all alerts", "lines").y) == [150.0, 3000.0, 900.0, 80.0]

    mature = charts.maturity_figure(maturity_frame(), PARTIAL)
    assert title(mature).startswith("Labels still unknown per week")
    assert axis_titles(mature)[1] == "Unlabelled (% of transactions)"
    assert mature.layout.yaxis.tickformat == ".0%" and mature.layout.yaxis.range[1] >= 1.0
    bars = [t for t in mature.data if t.name == "labels unknown"]
    assert sorted(v for t in bars for v in t.y) == [0.0, 0.01, 0.5, 1.0]


def test_ingest_and_null_figures_name_ingests_in_local_time():
    history = history_frame()
    labels = charts.ingest_labels(history, "America/Lima")
    assert labels == {"a1": "#1 · 2025-02-01 10:00", "b2": "#2 · 2025-03-01 10:30"}
    fig = charts.ingest_figure(history, "America/Lima")
    assert title(fig).startswith("Rows loaded and rejected per ingest")
    assert axis_titles(fig) == ("Ingest (oldest first, Lima time)", "Rows per ingest (transactions)")
    assert list(named(fig, "loaded").y) == [990, 450] and list(named(fig, "rejected").y) == [10, 50]
    assert list(named(fig, "rejected").text) == ["1.0% rejected", "10.0% rejected"]

    heat = charts.nulls_figure(nulls_frame(), labels)
    assert title(heat).startswith("Empty values per column and ingest")
    assert axis_titles(heat) == ("Ingest (oldest first)", "Column")
    assert list(heat.data[0].x) == ["#1 · 2025-02-01 10:00", "#2 · 2025-03-01 10:30"]
    assert list(heat.data[0].y) == ["ip_address", "channel"]
    assert [list(r) for r in heat.data[0].z] == [[0.1, 1.0], [0.0, 0.02]]


@pytest.mark.parametrize("build", [
    lambda: charts.score_figure(scores_frame().iloc[0:0]),
    lambda: charts.psi_figure(psi_frame().iloc[0:0], ["score"], "Score PSI per week"),
    lambda: charts.alerts_figure(alerts_frame().iloc[0:0]),
    lambda: charts.money_figure(alerts_frame().iloc[0:0]),
    lambda: charts.maturity_figure(maturity_frame().iloc[0:0]),
    lambda: charts.ingest_figure(history_frame().iloc[0:0]),
    lambda: charts.nulls_figure(nulls_frame().iloc[0:0]),
])
def test_empty_tables_give_a_titled_figure_with_a_message(build):
    fig = build()
    assert title(fig) and len(fig.data) == 0
    assert fig.layout.annotations[0].text


def test_every_figure_serialises_to_plain_json():
    for fig in (charts.score_figure(scores_frame(), 0.3, PARTIAL), charts.psi_figure(psi_frame()),
                charts.alerts_figure(alerts_frame(), PARTIAL), charts.money_figure(alerts_frame(), PARTIAL),
                charts.maturity_figure(maturity_frame(), PARTIAL), charts.ingest_figure(history_frame()),
                charts.nulls_figure(nulls_frame())):
        assert fig.to_json()
