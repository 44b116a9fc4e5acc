"""Plotly figures of the model pages (Models, Thresholds, Explain): data in, figure out.

Every figure has a title, axes labelled with their units, and uses the Okabe-Ito palette, which
stays distinguishable for the common kinds of colour blindness. Nothing is fetched from the
internet (no web fonts, no map tiles). Builders never compute metrics: they draw what the
library returned (``metrics.Curves``, ``thresholds.OperatingPoint``, ``explain.Explanation``...).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from fraudlens.charts import Draft
from fraudlens.explain import Explanation
from fraudlens.metrics import Calibration, Curves
from fraudlens.thresholds import BootstrapBands, OperatingPoint

# Okabe & Ito (2008), "Color Universal Design".
BLACK, ORANGE, SKY, GREEN, YELLOW, BLUE, VERMILLION, PURPLE = (
    "#000000", "#E69F00", "#56B4E9", "#009E73", "#F0E442", "#0072B2", "#D55E00", "#CC79A7")
PALETTE = (BLUE, ORANGE, GREEN, VERMILLION, PURPLE, SKY, YELLOW, BLACK)
GREY = "#8C8C8C"
FRAUD, LEGIT, UNKNOWN = VERMILLION, BLUE, GREY
HEIGHT = 360
LABEL_CHARS = 60
CURRENCY = "PEN"
PERCENT_AXIS = {"range": [0, 1.02], "tickformat": ".0%"}


def _style(fig: Draft, title: str, x: str, y: str, height: int = HEIGHT) -> Draft:
    return fig.update({
        "title": {"text": title, "x": 0.0, "xanchor": "left", "font": {"size": 16}},
        "height": height, "margin": {"l": 10, "r": 10, "t": 48, "b": 10},
        "font": {"size": 13}, "colorway": list(PALETTE), "hovermode": "closest",
        "legend": {"orientation": "h", "yanchor": "top", "y": -0.3, "xanchor": "left", "x": 0.0},
    }, x={"title": {"text": x}, "automargin": True}, y={"title": {"text": y}, "automargin": True})


def _short(text: str, limit: int = LABEL_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _pct(value: float, digits: int = 1) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.{digits}%}"


def _money(value: float) -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{CURRENCY} {value:,.0f}"


def format_value(value: float, kind: str | None = None) -> str:
    """A feature value in raw units for a label: ``missing``, ``yes``/``no`` for a binary
    feature, whole numbers without decimals, others with two."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "missing"
    if kind == "binary" and value in (0, 1):
        return "yes" if value == 1 else "no"
    if float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}" if abs(value) >= 0.01 else f"{value:.2g}"


# ---------------------------------------------------------------------------------------------
# Models page


def roc_figure(curves: Mapping[str, Curves]) -> go.Figure:
    """ROC curves of several versions (label -> Curves) over the chance diagonal."""
    fig = Draft()
    fig.add("scatter", x=[0, 1], y=[0, 1], mode="lines", name="chance", line={"color": GREY, "dash": "dot"},
            hoverinfo="skip")
    for i, (label, c) in enumerate(curves.items()):
        fig.add("scatter",
                x=c.fpr, y=c.tpr, mode="lines", name=f"{label} (AUC {c.roc_auc:.3f})",
                line={"color": PALETTE[i % len(PALETTE)], "width": 2.5},
                hovertemplate="false alarms %{x:.1%}<br>frauds caught %{y:.1%}<extra>" + label + "</extra>")
    _style(fig, "ROC curve: frauds caught vs false alarms", "False positive rate (%)",
           "True positive rate = recall (%)", height=HEIGHT + 40)
    return fig.update(x=PERCENT_AXIS, y=PERCENT_AXIS).figure()


def pr_figure(curves: Mapping[str, Curves], fraud_rates: Mapping[str, float] | None = None) -> go.Figure:
    """Precision-recall curves of several versions; a dotted line at each fraud rate (chance)."""
    fig = Draft()
    for i, (label, c) in enumerate(curves.items()):
        colour = PALETTE[i % len(PALETTE)]
        fig.add("scatter",
                x=c.recall, y=c.precision, mode="lines", name=f"{label} (AP {c.average_precision:.3f})",
                line={"color": colour, "width": 2.5},
                hovertemplate="recall %{x:.1%}<br>precision %{y:.1%}<extra>" + label + "</extra>")
        rate = (fraud_rates or {}).get(label)
        if rate is not None and not math.isnan(rate):
            fig.add("scatter", x=[0, 1], y=[rate, rate], mode="lines", showlegend=False,
                    line={"color": colour, "dash": "dot", "width": 1},
                    hovertemplate=f"chance (fraud rate {rate:.2%})<extra></extra>")
    _style(fig, "Precision-recall curve (dotted: fraud rate)", "Recall: share of frauds caught (%)",
           "Precision: share of alerts that are fraud (%)", height=HEIGHT + 40)
    return fig.update(x=PERCENT_AXIS, y=PERCENT_AXIS).figure()


def calibration_figure(cal: Calibration, label: str) -> go.Figure:
    """Reliability curve: observed fraud rate per score bin against the mean score."""
    fig = Draft()
    fig.add("scatter", x=[0, 1], y=[0, 1], mode="lines", name="perfectly calibrated",
            line={"color": GREY, "dash": "dot"}, hoverinfo="skip")
    fig.add(
        "scatter", x=cal.mean_predicted, y=cal.observed_rate, mode="lines+markers+text", name=label,
        line={"color": BLUE, "width": 2.5}, text=[f"{c:,}" for c in cal.count], textposition="top center",
        textfont={"size": 11, "color": GREY}, cliponaxis=False,
        marker={"size": np.clip(4 + 3 * np.log10(np.maximum(cal.count, 1)), 6, 22), "color": BLUE},
        customdata=np.stack([cal.bin_lower, cal.bin_upper, cal.count], axis=-1) if len(cal.count) else None,
        hovertemplate=("scores %{customdata[0]:.1f}–%{customdata[1]:.1f}: %{customdata[2]:,} transactions"
                       "<br>mean score %{x:.1%}<br>observed fraud rate %{y:.1%}<extra></extra>"))
    _style(fig, f"Calibration (Brier score {cal.brier:.4f}, lower is better)",
           "Mean score in the bin (%)", "Observed fraud rate (%)", height=HEIGHT + 40)
    return fig.update(x=PERCENT_AXIS, y={"range": [0, 1.08], "tickformat": ".0%"}).figure()


def importance_figure(frame: pd.DataFrame, value: str, title: str, x_title: str, top: int = 15) -> go.Figure:
    """Horizontal bars of the ``top`` largest ``value`` of a frame with feature and description."""
    shown = frame.head(top).iloc[::-1]
    fig = Draft()
    fig.add("bar", x=shown[value].to_numpy(), y=shown["feature"].to_numpy(), orientation="h",
            marker={"color": BLUE}, customdata=shown["description"].to_numpy(),
            hovertemplate="%{y}: %{x:.4g}<br>%{customdata}<extra></extra>")
    return _style(fig, title, x_title, "Feature", height=max(HEIGHT, 26 * len(shown) + 90)).figure()


# ---------------------------------------------------------------------------------------------
# Thresholds page


def _drawn(fig: Draft, title: str, x_title: str, y_title: str, height: int = HEIGHT, *,
           x: Mapping[str, Any] | None = None, y: Mapping[str, Any] | None = None,
           layout: Mapping[str, Any] | None = None) -> go.Figure:
    """``fig`` styled, with ``x``/``y`` merged into the axes and ``layout`` into the layout."""
    return _style(fig, title, x_title, y_title, height).update(layout, x=x, y=y).figure()


def _marker(fig: Draft, x: float, y: float, colour: str, size: int, name: str, hover: str,
            symbol: str = "diamond") -> None:
    fig.add("scatter", x=[x], y=[y], mode="markers", name=name, hovertemplate=hover,
            marker={"color": colour, "size": size, "symbol": symbol, "line": {"color": BLACK, "width": 1}})


def _threshold_line(threshold: float) -> dict:
    """A dashed vertical line at the threshold, labelled above the plot (``add_vline``'s output)."""
    return {"shapes": [{"type": "line", "x0": threshold, "x1": threshold, "xref": "x", "y0": 0, "y1": 1,
                        "yref": "y domain", "line": {"color": VERMILLION, "width": 2, "dash": "dash"}}],
            "annotations": [{"text": f"threshold {threshold:.3f}", "x": threshold, "xref": "x", "y": 1,
                             "yref": "y domain", "xanchor": "center", "yanchor": "bottom", "showarrow": False,
                             "font": {"color": VERMILLION}}]}


def _curve(fig: Draft, curve: pd.DataFrame, x: str, y: str, name: str, colour: str, hover: str,
           dash: str | None = None, **extra: Any) -> None:
    """One column of the threshold curve against another, as a line."""
    line = {"color": colour, "width": 2.5} | ({"dash": dash} if dash else {})
    fig.add("scatter", x=curve[x].to_numpy(), y=curve[y].to_numpy(), mode="lines", name=name, line=line,
            hovertemplate=hover, **extra)


def threshold_pr_figure(curve: pd.DataFrame, point: OperatingPoint) -> go.Figure:
    """The precision-recall curve of the table, with the current operating point marked."""
    fig = Draft()
    _curve(fig, curve, "recall", "precision", "all thresholds", BLUE,
           "threshold %{customdata:.4f}<br>recall %{x:.1%}<br>precision %{y:.1%}<extra></extra>",
           customdata=curve["threshold"].to_numpy())
    if not math.isnan(point.precision) and not math.isnan(point.recall):
        _marker(fig, point.recall, point.precision, VERMILLION, 14, "current threshold",
                f"threshold {point.threshold:.4f}<br>recall %{{x:.1%}}<br>precision %{{y:.1%}}<extra></extra>")
    return _drawn(fig, "Precision vs recall, current threshold marked", "Recall: share of frauds caught (%)",
                  "Precision: share of alerts that are fraud (%)", x=PERCENT_AXIS, y=PERCENT_AXIS)


def threshold_metrics_figure(curve: pd.DataFrame, point: OperatingPoint,
                             bands: BootstrapBands | None = None) -> go.Figure:
    """Precision, recall and F1 against the threshold; bootstrap intervals at the current one."""
    fig = Draft()
    for column, colour, dash in (("precision", BLUE, "solid"), ("recall", ORANGE, "solid"), ("f1", GREEN, "dot")):
        _curve(fig, curve, "threshold", column, column if column != "f1" else "F1", colour,
               "threshold %{x:.4f}<br>" + column + " %{y:.1%}<extra></extra>", dash)
    if bands is not None:
        for value, low, high, colour, name in (
                (bands.precision, bands.precision_low, bands.precision_high, BLUE, "precision"),
                (bands.recall, bands.recall_low, bands.recall_high, ORANGE, "recall")):
            if math.isnan(value):
                continue
            fig.add("scatter", x=[point.threshold], y=[value], mode="markers", showlegend=False,
                    marker={"color": colour, "size": 10, "line": {"color": BLACK, "width": 1}},
                    error_y={"type": "data", "symmetric": False, "array": [high - value],
                             "arrayminus": [value - low], "color": colour, "thickness": 2, "width": 8},
                    hovertemplate=f"{name} %{{y:.1%}} (95% interval {low:.1%}–{high:.1%})<extra></extra>")
    return _drawn(fig, "Precision, recall and F1 by threshold (bars: 95% interval)",
                  "Alert threshold (score ≥)", "Value (%)", x={"range": [0, 1]},
                  y={"range": [0, 1.05], "tickformat": ".0%"}, layout=_threshold_line(point.threshold))


def confusion_figure(point: OperatingPoint) -> go.Figure:
    """2x2 counts: rows actual fraud / legitimate, columns alert / no alert."""
    counts = [[point.tp, point.fn], [point.fp, point.tn]]
    total = max(point.tp + point.fn + point.fp + point.tn, 1)
    names = [["frauds caught", "frauds missed"], ["false alarms", "correctly left alone"]]
    text = [[f"{names[i][j]}<br><b>{counts[i][j]:,}</b> ({counts[i][j] / total:.1%})" for j in range(2)]
            for i in range(2)]
    fig = Draft()
    fig.add("heatmap", z=np.log10(np.asarray(counts, dtype=float) + 1), x=["alert (score ≥ threshold)", "no alert"],
            y=["actual fraud", "legitimate"], text=text, texttemplate="%{text}", textfont={"size": 14},
            colorscale="Blues", showscale=False, customdata=counts,
            hovertemplate="%{y}, %{x}: %{customdata:,} transactions<extra></extra>")
    return _drawn(fig, f"Confusion matrix at threshold {point.threshold:.3f} (test window)",
                  "Model decision", "Actual label", height=300, y={"autorange": "reversed"})


def alerts_figure(curve: pd.DataFrame, point: OperatingPoint, capacity: float | None) -> go.Figure:
    """Alerts per day against the threshold, with the team's capacity and the current point."""
    fig = Draft()
    _curve(fig, curve, "threshold", "alerts_per_day", "alerts per day", BLUE,
           "threshold %{x:.4f}<br>%{y:,.1f} alerts per day<extra></extra>")
    if capacity is not None and capacity > 0:
        # A trace, not a line shape: shape annotations land in the wrong place on log axes.
        fig.add("scatter", x=[0, 1], y=[capacity, capacity], mode="lines",
                name=f"team capacity ({capacity:,.0f} per day)", line={"color": GREEN, "width": 2, "dash": "dot"},
                hovertemplate=f"team capacity {capacity:,.0f} alerts per day<extra></extra>")
    if not math.isnan(point.alerts_per_day):
        _marker(fig, point.threshold, point.alerts_per_day, VERMILLION, 13, "current threshold",
                "threshold %{x:.4f}<br>%{y:,.1f} alerts per day<extra></extra>")
    top = max(float(np.nanmax(curve["alerts_per_day"])) if len(curve) else 1.0, capacity or 0.0, 1.0)
    return _drawn(fig, "Alerts per day vs the team's capacity", "Alert threshold (score ≥)",
                  "Alerts per day (log scale)", x={"range": [0, 1]},
                  y={"type": "log", "range": [-1, math.log10(top * 1.5)], "dtick": 1, "tickformat": ",~g"})


def money_figure(point: OperatingPoint) -> go.Figure:
    """Fraud amount caught and missed at the threshold (PEN), one stacked bar."""
    fig = Draft()
    total = point.fraud_amount_caught + point.fraud_amount_missed
    for value, name, colour in ((point.fraud_amount_caught, "caught", GREEN),
                                (point.fraud_amount_missed, "missed", VERMILLION)):
        share = f" ({value / total:.0%})" if total and not math.isnan(value) else ""
        fig.add("bar", x=[0 if math.isnan(value) else value], y=["fraud amount"], orientation="h",
                name=f"{name}: {_money(value)}{share}", marker={"color": colour},
                hovertemplate=f"{name}: {_money(value)}{share}<extra></extra>")
    return _drawn(fig, "Fraud amount caught and missed (test window)", f"Amount ({CURRENCY})", "", height=240,
                  y={"showticklabels": False},
                  layout={"barmode": "stack", "margin": {"t": 84}, "legend": {
                      "y": 1.0, "yanchor": "bottom", "x": 0.0, "xanchor": "left", "traceorder": "normal"}})


def cost_figure(curve: pd.DataFrame, point: OperatingPoint, best: OperatingPoint | None = None) -> go.Figure:
    """Expected cost (reviews + missed fraud) against the threshold, current and cheapest marked."""
    fig = Draft()
    _curve(fig, curve, "threshold", "expected_cost", "expected cost", BLUE,
           "threshold %{x:.4f}<br>" + CURRENCY + " %{y:,.0f}<extra></extra>")
    if best is not None:
        _marker(fig, best.threshold, best.expected_cost, GREEN, 12, "lowest cost",
                "lowest cost at threshold %{x:.4f}<br>" + CURRENCY + " %{y:,.0f}<extra></extra>", symbol="circle")
    _marker(fig, point.threshold, point.expected_cost, VERMILLION, 13, "current threshold",
            "threshold %{x:.4f}<br>" + CURRENCY + " %{y:,.0f}<extra></extra>")
    return _drawn(fig, "Expected cost of the test window: reviews + missed fraud", "Alert threshold (score ≥)",
                  f"Expected cost ({CURRENCY})", x={"range": [0, 1]}, y={"rangemode": "tozero", "tickformat": ",.0f"})


# ---------------------------------------------------------------------------------------------
# Explain page


def waterfall_figure(explanation: Explanation, kinds: Mapping[str, str] | None = None, top: int = 12) -> go.Figure:
    """From the base value, each feature's contribution, to the model output (horizontal).

    The ``top`` largest contributions are drawn one by one; the rest are summed into one bar, so
    base + every bar = the model output exactly (in ``explanation.units``). Labels carry the
    feature values in raw units.
    """
    kinds = kinds or {}
    table = explanation.table
    shown, rest = table.head(top), table.iloc[top:]
    labels = ["Base value (average output)"]
    values = [explanation.base]
    hover = [f"base value {explanation.base:+.3f} {explanation.units}"]
    for _, row in shown.iterrows():
        value = format_value(row["value"], kinds.get(row["feature"]))
        labels.append(f"{_short(row['description'], 62)}: {value}")
        values.append(float(row["contribution"]))
        hover.append(f"{row['description']}: {value}<br>{row['feature']}: {row['contribution']:+.3f} "
                     f"{explanation.units}")
    if len(rest):
        labels.append(f"{len(rest)} other features")
        values.append(float(rest["contribution"].sum()))
        hover.append(f"{len(rest)} other features together: {rest['contribution'].sum():+.3f} {explanation.units}")
    labels.append("Model output")
    values.append(0.0)
    hover.append(f"model output {explanation.output:+.3f} {explanation.units} = score {explanation.score:.1%}")
    measure = ["absolute"] + ["relative"] * (len(labels) - 2) + ["total"]
    total_text = f"{explanation.output:+.2f}" + (f" = {explanation.score:.1%}" if explanation.units == "log-odds" else "")
    fig = Draft()
    fig.add(
        "waterfall", orientation="h", y=labels, x=values, measure=measure, base=0,
        increasing={"marker": {"color": VERMILLION}}, decreasing={"marker": {"color": BLUE}},
        totals={"marker": {"color": GREY}}, connector={"line": {"color": GREY, "width": 1}},
        text=[f"{values[0]:+.2f}"] + [f"{v:+.2f}" for v in values[1:-1]] + [total_text],
        textposition="outside", cliponaxis=False, hovertext=hover, hoverinfo="text",
        customdata=[explanation.output] * len(labels))
    running = np.cumsum([explanation.base, *values[1:-1]])
    low, high = min(0.0, float(running.min())), max(0.0, float(running.max()))
    pad = 0.12 * (high - low or 1.0)
    _style(fig, f"Why the score is {explanation.score:.1%}: contributions in {explanation.units}",
           f"Contribution to the model output ({explanation.units}); red raises the risk, blue lowers it",
           "", height=max(HEIGHT, 30 * len(labels) + 110))
    return fig.update({"showlegend": False}, x={"range": [low - pad, high + pad], "zeroline": True,
                                                "zerolinecolor": GREY},
                      y={"autorange": "reversed"}).figure()


def waterfall_total(fig: go.Figure) -> float:
    """Base + every relative bar of a :func:`waterfall_figure` (the output it draws)."""
    trace = fig.data[0]
    return float(sum(x for x, m in zip(trace.x, trace.measure) if m != "total"))


def _label_status(values: pd.Series) -> pd.Series:
    return values.map(lambda v: "unknown" if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
                      else ("fraud" if bool(v) else "legitimate"))


def timeline_figure(rows: pd.DataFrame, transaction_id: str, timezone: str) -> go.Figure:
    """The account's transactions over time (amount in PEN), the explained one marked."""
    frame = rows.copy()
    frame["status"] = _label_status(frame["fraudulent_activity"]) if "fraudulent_activity" in frame else "unknown"
    detail = [c for c in ("transaction_type", "channel", "merchant_location") if c in frame]
    frame["detail"] = frame[detail].astype(str).agg(", ".join, axis=1) if detail else ""
    fig = Draft()
    for status, colour, symbol in (("legitimate", LEGIT, "circle"), ("fraud", FRAUD, "x"),
                                   ("unknown", UNKNOWN, "circle-open")):
        part = frame[frame["status"] == status]
        if part.empty:
            continue
        fig.add(
            "scatter", x=part["local_datetime"].to_numpy(), y=part["transaction_amount"].to_numpy(), mode="markers",
            name=status, marker={"color": colour, "size": 9, "symbol": symbol},
            customdata=np.stack([part["transaction_id"], part["detail"]], axis=-1),
            hovertemplate="%{customdata[0]}<br>%{x|%Y-%m-%d %H:%M}<br>" + CURRENCY
                          + " %{y:,.2f}<br>%{customdata[1]}<extra>" + status + "</extra>")
    this = frame[frame["transaction_id"] == transaction_id]
    if not this.empty:
        fig.add(
            "scatter", x=this["local_datetime"].to_numpy(), y=this["transaction_amount"].to_numpy(), mode="markers",
            name="this transaction",
            marker={"color": "rgba(0,0,0,0)", "size": 22, "symbol": "circle",
                    "line": {"color": BLACK, "width": 3}},
            hovertemplate="this transaction<br>%{x|%Y-%m-%d %H:%M}<br>" + CURRENCY + " %{y:,.2f}<extra></extra>")
    _style(fig, "The account's transactions around this one", f"Local time ({timezone})", f"Amount ({CURRENCY})")
    return fig.update(y={"rangemode": "tozero", "tickformat": ",.0f"}).figure()


def dependence_figure(frame: pd.DataFrame, feature: str, description: str, units: str) -> go.Figure:
    """Feature value against its contribution for the sampled rows, frauds in another colour."""
    fig = Draft()
    status = _label_status(frame["fraudulent_activity"])
    for name, colour, symbol, size in (("legitimate", LEGIT, "circle", 6), ("fraud", FRAUD, "x", 9),
                                       ("unknown", UNKNOWN, "circle-open", 6)):
        part = frame[status == name]
        if part.empty:
            continue
        fig.add(
            "scatter", x=part["value"].to_numpy(), y=part["contribution"].to_numpy(), mode="markers", name=name,
            marker={"color": colour, "size": size, "symbol": symbol, "opacity": 0.7},
            customdata=part["score"].to_numpy(),
            hovertemplate="value %{x:,.4g}<br>contribution %{y:+.3f}<br>score %{customdata:.1%}<extra>"
                          + name + "</extra>")
    fig.shape(type="line", x0=0, x1=1, xref="x domain", y0=0, y1=0, yref="y", line={"color": GREY, "width": 1})
    values = frame["value"].dropna().to_numpy(dtype=float)
    x_title = f"{feature} (raw value)"
    if len(values) >= 20:
        low, high = np.percentile(values, [1, 99])
        if high > low and values.max() - values.min() > 3 * (high - low):
            # A few extreme values would squeeze everything else against one edge.
            pad = 0.05 * (high - low)
            fig.update(x={"range": [low - pad, high + pad]})
            x_title = f"{feature} (raw value; central 98% shown)"
    return _style(fig, f"How '{_short(description, 70)}' moves the score", x_title, f"Contribution ({units})").figure()


def bands_text(bands: BootstrapBands) -> dict[str, str]:
    """``{"precision": "81.0% (74.2%–87.5%)", "recall": ...}`` for captions."""
    return {
        "precision": f"{_pct(bands.precision)} ({_pct(bands.precision_low)}–{_pct(bands.precision_high)})",
        "recall": f"{_pct(bands.recall)} ({_pct(bands.recall_low)}–{_pct(bands.recall_high)})",
    }
