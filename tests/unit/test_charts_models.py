"""Figures of the model pages: they draw exactly the library's numbers, the waterfall adds up to the
model output, every figure is titled with labelled axes, and colours come from the Okabe-Ito set."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from fraudlens import charts_models as charts
from fraudlens import metrics
from fraudlens.explain import Explanation
from fraudlens.thresholds import ThresholdTable, bootstrap_bands

ALLOWED = {c.upper() for c in (*charts.PALETTE, charts.GREY)}


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(11)
    n = 3000
    y = rng.random(n) < 0.05
    scores = np.clip(np.where(y, rng.beta(4, 2, n), rng.beta(1, 8, n)), 0, 1)
    amounts = rng.integers(1, 5000, n).astype(float)
    days = np.repeat(np.arange(30), n // 30)
    table = ThresholdTable(y, scores, amounts, days)
    return y, scores, table


def explanation(n_features: int = 20, base: float = -3.0, units: str = "log-odds") -> Explanation:
    rng = np.random.default_rng(2)
    contrib = rng.normal(0, 0.8, n_features)
    table = pd.DataFrame({
        "feature": [f"f{i}" for i in range(n_features)],
        "description": [f"Feature number {i} with a rather long description to be shortened" if i == 0
                        else f"Feature number {i}" for i in range(n_features)],
        "value": [1.0, 0.0, 1234.5, np.nan, 3.0] + list(rng.random(n_features - 5)),
        "contribution": contrib,
    })
    table = table.reindex(table["contribution"].abs().sort_values(ascending=False).index).reset_index(drop=True)
    output = base + contrib.sum()
    score = 1 / (1 + math.exp(-output)) if units == "log-odds" else output
    return Explanation("T1", "m", 1, score, base, output, units, table, [])


def colours(fig: go.Figure) -> set[str]:
    found = set()
    for trace in fig.data:
        for path in ("line.color", "marker.color", "marker.line.color"):
            obj = trace
            for part in path.split("."):
                obj = getattr(obj, part, None)
                if obj is None:
                    break
            if isinstance(obj, str) and obj.startswith("#"):
                found.add(obj.upper())
        for side in ("increasing", "decreasing", "totals"):
            marker = getattr(getattr(trace, side, None), "marker", None)
            if marker is not None and isinstance(marker.color, str):
                found.add(marker.color.upper())
    return found


def assert_labelled(fig: go.Figure) -> None:
    layout = fig.layout
    assert layout.title.text, "figure has no title"
    assert layout.xaxis.title.text, "x axis has no title"
    assert colours(fig) <= ALLOWED, colours(fig) - ALLOWED


# ---------------------------------------------------------------------------------------------


def test_roc_and_pr_draw_the_curves_of_every_version(data):
    y, scores, _ = data
    first = metrics.curves(y, scores)
    second = metrics.curves(y, np.sqrt(scores))
    roc = charts.roc_figure({"m v1": first, "m v2": second})
    assert [t.name for t in roc.data] == ["chance", f"m v1 (AUC {first.roc_auc:.3f})",
                                          f"m v2 (AUC {second.roc_auc:.3f})"]
    np.testing.assert_array_equal(roc.data[1].x, first.fpr)
    np.testing.assert_array_equal(roc.data[2].y, second.tpr)
    pr = charts.pr_figure({"m v1": first}, {"m v1": float(y.mean())})
    np.testing.assert_array_equal(pr.data[0].x, first.recall)
    np.testing.assert_array_equal(pr.data[0].y, first.precision)
    assert pr.data[1].y == (pytest.approx(y.mean()),) * 2
    for fig in (roc, pr):
        assert_labelled(fig)
        assert "%" in fig.layout.xaxis.title.text and "%" in fig.layout.yaxis.title.text
    assert roc.data[1].line.color != roc.data[2].line.color


def test_calibration_draws_the_bins_and_brier(data):
    y, scores, _ = data
    cal = metrics.calibration(y, scores)
    fig = charts.calibration_figure(cal, "m v1")
    np.testing.assert_array_equal(fig.data[1].x, cal.mean_predicted)
    np.testing.assert_array_equal(fig.data[1].y, cal.observed_rate)
    assert list(fig.data[1].text) == [f"{c:,}" for c in cal.count]
    assert f"{cal.brier:.4f}" in fig.layout.title.text
    assert_labelled(fig)


def test_threshold_figures_mark_the_current_point(data):
    y, scores, table = data
    point = table.at(0.42)
    curve = table.curve_frame(300)
    pr = charts.threshold_pr_figure(curve, point)
    assert (pr.data[1].x[0], pr.data[1].y[0]) == (point.recall, point.precision)
    bands = bootstrap_bands(y, scores, 0.42)
    prf = charts.threshold_metrics_figure(curve, point, bands)
    errors = [t for t in prf.data if t.error_y and t.error_y.array is not None]
    assert [t.y[0] for t in errors] == [bands.precision, bands.recall]
    assert errors[0].error_y.array[0] == pytest.approx(bands.precision_high - bands.precision)
    assert errors[0].error_y.arrayminus[0] == pytest.approx(bands.precision - bands.precision_low)
    alerts = charts.alerts_figure(curve, point, 25.0)
    capacity = next(t for t in alerts.data if t.name.startswith("team capacity"))
    assert capacity.y == (25.0, 25.0) and "25 per day" in capacity.name
    marker = next(t for t in alerts.data if t.name == "current threshold")
    assert marker.y[0] == point.alerts_per_day
    best = table.min_cost(5.0)
    cost = charts.cost_figure(curve, point, best)
    assert [t.y[0] for t in cost.data[1:]] == [best.expected_cost, point.expected_cost]
    for fig in (pr, prf, alerts, cost):
        assert_labelled(fig)
    assert "per day" in alerts.layout.yaxis.title.text and "PEN" in cost.layout.yaxis.title.text


def test_confusion_and_money_show_the_point_counts(data):
    _, _, table = data
    point = table.at(0.5)
    fig = charts.confusion_figure(point)
    assert [list(row) for row in fig.data[0].customdata] == [[point.tp, point.fn], [point.fp, point.tn]]
    assert f"<b>{point.tp:,}</b>" in fig.data[0].text[0][0]
    money = charts.money_figure(point)
    assert [t.x[0] for t in money.data] == [point.fraud_amount_caught, point.fraud_amount_missed]
    assert f"PEN {point.fraud_amount_missed:,.0f}" in money.data[1].name
    for f in (fig, money):
        assert f.layout.title.text


def test_no_alert_point_draws_without_a_precision_marker(data):
    _, _, table = data
    point = table.at(1.0)
    assert math.isnan(point.precision)
    fig = charts.threshold_pr_figure(table.curve_frame(), point)
    assert len(fig.data) == 1


@pytest.mark.parametrize("units", ["log-odds", "probability"])
def test_the_waterfall_adds_up_to_the_model_output(units):
    exp = explanation(units=units, base=-3.0 if units == "log-odds" else 0.02)
    fig = charts.waterfall_figure(exp, top=8)
    trace = fig.data[0]
    assert trace.measure[0] == "absolute" and trace.measure[-1] == "total"
    assert charts.waterfall_total(fig) == pytest.approx(exp.output, abs=1e-12)
    assert trace.y[-2] == "12 other features"  # 20 features, 8 shown
    assert trace.x[-2] == pytest.approx(exp.table["contribution"].iloc[8:].sum())
    assert units in fig.layout.xaxis.title.text and f"{exp.score:.1%}" in fig.layout.title.text
    if units == "log-odds":  # the total bar reads as the probability too
        assert trace.text[-1] == f"{exp.output:+.2f} = {exp.score:.1%}"
    assert_labelled(fig)


def test_waterfall_labels_carry_raw_values():
    exp = explanation()
    by_feature = dict(zip(exp.table["feature"], exp.table.index))
    fig = charts.waterfall_figure(exp, kinds={"f0": "binary", "f1": "binary"}, top=20)
    labels = list(fig.data[0].y)
    assert labels[1 + by_feature["f0"]].endswith(": yes")
    assert labels[1 + by_feature["f0"]].startswith("Feature number 0 with a rather long description")
    assert "…" in labels[1 + by_feature["f0"]]
    assert labels[1 + by_feature["f1"]] == "Feature number 1: no"
    assert labels[1 + by_feature["f2"]] == "Feature number 2: 1,234.50"
    assert labels[1 + by_feature["f3"]] == "Feature number 3: missing"
    assert labels[1 + by_feature["f4"]] == "Feature number 4: 3"


@pytest.mark.parametrize(("value", "kind", "text"), [
    (1.0, "binary", "yes"), (0.0, "binary", "no"), (1.0, None, "1"), (12500.0, None, "12,500"),
    (0.4812, None, "0.48"), (0.00123, None, "0.0012"), (float("nan"), None, "missing"), (None, None, "missing"),
])
def test_format_value(value, kind, text):
    assert charts.format_value(value, kind) == text


def test_timeline_marks_this_transaction_and_splits_labels():
    rows = pd.DataFrame({
        "transaction_id": ["a", "b", "c", "d"],
        "local_datetime": pd.to_datetime(["2025-03-01 10:00", "2025-03-02 11:00", "2025-03-03 12:00",
                                          "2025-03-04 13:00"]),
        "transaction_amount": [10.0, 20.0, 30.0, 40.0],
        "channel": ["pos", "atm", "pos", "online"],
        "fraudulent_activity": pd.array([False, True, None, False], dtype="boolean"),
    })
    fig = charts.timeline_figure(rows, "b", "America/Lima")
    by_name = {t.name: t for t in fig.data}
    assert list(by_name) == ["legitimate", "fraud", "unknown", "this transaction"]
    assert list(by_name["legitimate"].y) == [10.0, 40.0]
    assert list(by_name["this transaction"].y) == [20.0]
    assert "America/Lima" in fig.layout.xaxis.title.text and "PEN" in fig.layout.yaxis.title.text
    assert fig.layout.title.text


def test_dependence_keeps_outliers_from_squeezing_the_plot():
    rng = np.random.default_rng(5)
    values = np.append(rng.random(200), [500.0])
    frame = pd.DataFrame({"value": values, "contribution": rng.normal(0, 1, 201),
                          "fraudulent_activity": rng.random(201) < 0.1, "score": rng.random(201)})
    fig = charts.dependence_figure(frame, "ratio", "A ratio", "log-odds")
    low, high = fig.layout.xaxis.range
    assert high < 2 and low > -0.2
    assert sum(len(t.x) for t in fig.data) == 201  # every point is still drawn
    assert "central 98% shown" in fig.layout.xaxis.title.text
    plain = charts.dependence_figure(frame.iloc[:200], "ratio", "A ratio", "log-odds")
    assert plain.layout.xaxis.range is None


def test_importance_shows_the_largest_first_from_the_top():
    frame = pd.DataFrame({"feature": ["a", "b", "c"], "description": ["A", "B", "C"],
                          "mean_abs_contribution": [0.9, 0.5, 0.1]})
    fig = charts.importance_figure(frame, "mean_abs_contribution", "Importance", "Mean |contribution|", top=2)
    assert list(fig.data[0].y) == ["b", "a"]  # drawn bottom-up, so the largest is on top
    assert list(fig.data[0].x) == [0.5, 0.9]
    assert_labelled(fig)
