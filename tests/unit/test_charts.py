"""Figure builders: titles and axis units, the colour-blind-safe palette, nothing fetched from the
web, empty data as a message, and selections mapped back to drill-down keys."""

from __future__ import annotations

import json
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from fraudlens import analytics, charts


def counts(n: int, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    transactions = rng.integers(50, 500, n)
    labelled = transactions - rng.integers(0, 20, n)
    frauds = (labelled * rng.uniform(0, 0.05, n)).astype(int)
    frame = pd.DataFrame({"transactions": transactions, "labelled": labelled, "frauds": frauds,
                          "fraud_amount": frauds * 310.5, "amount": transactions * 120.0})
    return analytics._rated(frame)


def heat_frame() -> pd.DataFrame:
    grid = pd.MultiIndex.from_product([range(1, 8), range(24)], names=["weekday", "hour"]).to_frame(index=False)
    return pd.concat([grid, counts(168)], axis=1)


def series_frame(days: int = 20) -> pd.DataFrame:
    frame = counts(days)
    frame.insert(0, "period", [date(2025, 1, 1) + timedelta(days=i) for i in range(days)])
    frame.loc[days - 1, ["labelled", "frauds"]] = [3, 1]  # labels still to come
    return analytics._rated(frame)


def segment_frame() -> pd.DataFrame:
    frame = counts(4)
    frame.insert(0, "segment", ["pos", "online", "atm", analytics.MISSING])
    return frame


def entity_frame() -> pd.DataFrame:
    frame = counts(5).sort_values("fraud_amount", ascending=False).reset_index(drop=True)
    frame.insert(0, "entity", [f"M{i}" for i in range(5)])
    return frame


def amount_frame() -> pd.DataFrame:
    bins = list(range(-2, 18))
    frame = pd.DataFrame({"bin": bins, "low": [analytics.amount_bin_edges(b)[0] for b in bins],
                          "high": [analytics.amount_bin_edges(b)[1] for b in bins],
                          "legit": np.arange(20) * 10, "fraud": np.arange(20)[::-1], "unknown": 0})
    frame["legit_share"] = frame["legit"] / frame["legit"].sum()
    frame["fraud_share"] = frame["fraud"] / frame["fraud"].sum()
    return frame


FIGURES = {
    "heatmap": lambda: charts.heatmap(heat_frame()),
    "trend_rate": lambda: charts.trend(series_frame(), "fraud_rate"),
    "trend_amount": lambda: charts.trend(series_frame(), "fraud_amount", "week"),
    "segments": lambda: charts.segment_bars(segment_frame(), "channel"),
    "regions": lambda: charts.region_bars(segment_frame()),
    "entities": lambda: charts.top_entities_bars(entity_frame(), "merchant_id"),
    "amounts": lambda: charts.amount_histogram(amount_frame()),
}


@pytest.mark.parametrize("name", FIGURES)
def test_figures_have_titles_units_and_no_web_resources(name):
    fig = FIGURES[name]()
    spec = fig.to_plotly_json()
    assert spec["layout"]["title"]["text"]
    x_title = spec["layout"]["xaxis"]["title"]["text"]
    assert x_title
    units = ("PEN", "%", "time", "Hour", "Day", "Week")
    y_title = spec["layout"]["yaxis"]["title"].get("text", "")
    assert any(u in x_title + y_title for u in units) or name == "heatmap"
    text = json.dumps(spec, default=str)
    assert "http://" not in text and "https://" not in text
    assert "mapbox" not in text and "geo" not in spec["layout"]
    assert spec["layout"]["height"] <= 700  # fits a 1366x768 screen with the page around it


def test_palette_is_okabe_ito():
    assert charts.FRAUD == "#D55E00" and charts.LEGIT == "#0072B2"
    amounts = charts.amount_histogram(amount_frame()).to_plotly_json()["data"]
    assert [t["marker"]["color"] for t in amounts] == [charts.LEGIT, charts.FRAUD]


def test_empty_frames_give_a_message_not_an_error():
    for fig in (charts.heatmap(heat_frame().iloc[0:0]), charts.segment_bars(segment_frame().iloc[0:0], "channel"),
                charts.top_entities_bars(entity_frame().iloc[0:0], "account_id"),
                charts.amount_histogram(amount_frame().iloc[0:0]), charts.trend(series_frame().iloc[0:0])):
        annotations = fig.to_plotly_json()["layout"].get("annotations", [])
        assert annotations and "No" in annotations[0]["text"]


def test_rates_with_too_few_labels_are_not_drawn():
    frame = series_frame()
    rate = next(t for t in charts.trend(frame, "fraud_rate").to_plotly_json()["data"] if t.get("name") == "fraud rate")
    assert rate["y"][-1] is None and rate["y"][0] == pytest.approx(frame["fraud_rate"].iloc[0])
    heat = heat_frame()
    heat.loc[5, "labelled"] = 3
    z = charts.heatmap(heat).to_plotly_json()["data"][0]["z"]
    assert z[0][5] is None and z[0][6] == pytest.approx(heat.loc[6, "fraud_rate"])


def test_segment_error_bars_are_the_wilson_interval():
    frame = segment_frame()
    bar = charts.segment_bars(frame, "channel").to_plotly_json()["data"][0]
    by = frame.set_index("segment")
    for segment, x, plus, minus in zip(bar["y"], bar["x"], bar["error_x"]["array"], bar["error_x"]["arrayminus"]):
        assert x + plus == pytest.approx(by.loc[segment, "ci_high"])
        assert x - minus == pytest.approx(by.loc[segment, "ci_low"])


def test_selections_map_back_to_drill_down_keys():
    heat = charts.heatmap(heat_frame())
    points = [{"curve_number": 1, "point_index": 27, "customdata": [2, 3, 10, 9, 1, 0.1, 0.0, 0.3]},
              {"curve_number": 1, "point_index": 28, "customdata": [2, 4, 10, 9, 1, 0.1, 0.0, 0.3]}]
    extra = charts.selection_extra(heat, points)
    assert extra == {"local_weekday": [2], "local_hour": [3, 4]}
    assert charts.selection_label(extra) == "weekday Tue; hour 03:00, 04:00"
    assert analytics.normalise_extra(extra) == (("local_hour", (3, 4)), ("local_weekday", (2,)))

    bars = charts.segment_bars(segment_frame(), "channel")
    text_trace = {"curve_number": 1, "point_index": 0, "customdata": None}  # the count labels
    extra = charts.selection_extra(bars, [{"curve_number": 0, "customdata": ["online", 1, 1, 0, 0.0]}, text_trace])
    assert extra == {"channel": ["online"]}
    amounts = charts.amount_histogram(amount_frame())
    assert charts.selection_extra(amounts, [{"curve_number": 1, "customdata": [8, 100.0, 177.8, 3]}]) == {
        "amount_bin": [8]}
    assert charts.selection_label({"amount_bin": [8]}) == "amount PEN 100–178"
    trend = charts.trend(series_frame(), "frauds", "week")
    assert charts.selection_extra(trend, [{"curve_number": 0, "customdata": ["2025-01-06", 5, 1]}]) == {
        "local_week": ["2025-01-06"]}
    assert charts.selection_extra(trend, []) == {}


def test_partial_weeks_are_hatched_or_hollow_and_the_chart_says_why():
    weeks = series_frame(4).assign(period=[date(2025, 1, 6) + timedelta(weeks=i) for i in range(4)], days=[3, 7, 7, 5])
    bars = charts.trend(weeks, "transactions", "week")
    assert list(bars.data[0].marker.pattern.shape) == ["/", "", "", "/"]
    assert "partly in the range are hatched" in bars.layout.title.text
    line = next(t for t in charts.trend(weeks, "fraud_rate", "week").data if t.name == "fraud rate")
    assert list(line.marker.symbol) == ["circle-open", "circle", "circle", "circle-open"]
    full = charts.trend(weeks.assign(days=7), "transactions", "week")
    assert set(full.data[0].marker.pattern.shape) == {""}
    assert "<sup>" not in full.layout.title.text
