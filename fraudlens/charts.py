"""Plotly figure builders for the dashboard: a small table in, a figure out (no Streamlit).

Every figure has a title, axis titles with units, the colour-blind-safe Okabe-Ito palette (fraud
in vermillion, legitimate in blue, unknown in grey), no web resources (no map tiles, no CDN, no
web fonts: text uses the page's own font) and a size that reads at 1366x768. Data go into the
figures as plain lists, so a figure's JSON is readable (tests compare its numbers).

Selectable figures carry ``customdata`` whose first item is a drill-down value and whose
``meta`` names the drill-down key (see :func:`selection_extra`), so a selected element maps back
to the transactions behind it.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

from fraudlens.analytics import AMOUNT_BINS_PER_DECADE, MISSING, WEEKDAYS

# Every figure is drawn on the white template, set as the default: naming a template on a figure
# validates and deep-copies it, about 12 ms a figure and a third of the Explore page's run time.
pio.templates.default = "plotly_white"

# Okabe & Ito (2008), "Color Universal Design".
OKABE_ITO = {
    "black": "#000000", "orange": "#E69F00", "sky_blue": "#56B4E9", "green": "#009E73",
    "yellow": "#F0E442", "blue": "#0072B2", "vermillion": "#D55E00", "purple": "#CC79A7",
}
FRAUD = OKABE_ITO["vermillion"]
LEGIT = OKABE_ITO["blue"]
UNKNOWN = "#999999"
BLANK_CELL = "#D1D5DB"  # heatmap cells without a readable rate
NEUTRAL = OKABE_ITO["blue"]
# Sequential scale for the heatmap: light to dark by lightness, readable with any colour vision.
SEQUENTIAL = [[0.0, "#FFF7EC"], [0.25, "#FDD49E"], [0.5, "#FC8D59"], [0.75, "#D7301F"],
              [1.0, "#7F0000"]]
FONT = "'Source Sans', 'Source Sans Pro', 'Liberation Sans', Arial, sans-serif"  # the page's own
HEIGHT = 360
MIN_LABELLED = 10  # cells and days with fewer labelled transactions show no rate

METRICS = {
    # metric: (title noun, axis title, hover format)
    "transactions": ("Transactions", "Transactions", ",.0f"),
    "frauds": ("Frauds", "Frauds", ",.0f"),
    "fraud_amount": ("Fraud amount", "Fraud amount (PEN)", ",.2f"),
    "fraud_rate": ("Fraud rate", "Fraud rate (% of labelled)", ".2%"),
}
SEGMENT_LABELS = {
    "channel": "channel", "transaction_type": "transaction type", "account_type": "account type",
    "merchant_location": "region",
}
ENTITY_LABELS = {"merchant_id": "merchants", "account_id": "accounts"}


def _list(values: Any) -> list:
    """Plain Python values (NaN -> None) so the figure's JSON holds readable numbers."""
    out = []
    for v in pd.Series(values).tolist():
        if isinstance(v, float) and math.isnan(v):
            out.append(None)
        elif hasattr(v, "isoformat"):
            out.append(v.isoformat())
        else:
            out.append(v)
    return out


AXIS_LINE = {"automargin": True, "showline": True, "linecolor": "#9CA3AF"}


class Draft:
    """A figure's traces and layout as plain dicts, made a plotly Figure once by :meth:`figure`.

    plotly validates and deep-copies on every ``add_trace`` and ``update_*`` call (2-5 ms each,
    10-17 ms a chart, most of a warm run of a page with seven charts); from dicts, a figure is
    validated once.
    """

    def __init__(self) -> None:
        self.data: list[dict] = []
        self.layout: dict = {}

    def add(self, kind: str, **props: Any) -> None:
        """Append a trace of type ``kind``; properties given as None are left unset."""
        self.data.append({"type": kind, **{k: v for k, v in props.items() if v is not None}})

    def update(self, layout: Mapping[str, Any] | None = None, *, x: Mapping[str, Any] | None = None,
               y: Mapping[str, Any] | None = None) -> Draft:
        """Merge ``layout`` into the layout (nested dicts key by key), and ``x``/``y`` into every
        x/y axis it has (``update_layout`` with ``update_xaxes``/``update_yaxes``)."""
        changes = dict(layout or {})
        for letter, axis in (("x", x), ("y", y)):
            if axis is not None:
                numbered = (k for k in {*self.layout, *changes} if re.fullmatch(f"{letter}axis\\d+", k))
                names = {f"{letter}axis", *numbered}
                changes.update({name: _merged(changes.get(name, {}), axis) for name in names})
        self.layout = _merged(self.layout, changes)
        return self

    def annotate(self, **props: Any) -> None:
        self.layout["annotations"] = [*self.layout.get("annotations", []), props]

    def shape(self, **props: Any) -> None:
        self.layout["shapes"] = [*self.layout.get("shapes", []), props]

    def figure(self) -> go.Figure:
        return go.Figure({"data": self.data, "layout": self.layout})


def _style(fig: Draft, title: str, x_title: str, y_title: str, *, height: int = HEIGHT,
           subtitle: str | None = None, legend: bool = False) -> Draft:
    text = f"{title}<br><sup>{subtitle}</sup>" if subtitle else title
    style = {
        "title": {"text": text, "x": 0.0, "xanchor": "left", "font": {"size": 16}},
        "font": {"family": FONT, "size": 13, "color": "#1F2937"},
        "height": height,
        "margin": {"l": 10, "r": 10, "t": 64 if subtitle else 48, "b": 10},
        "showlegend": legend,
        "legend": {"orientation": "h", "yanchor": "top", "y": 0.99, "xanchor": "right", "x": 0.99,
                   "bgcolor": "rgba(255, 255, 255, 0.8)"},
        "hoverlabel": {"font": {"family": FONT, "size": 13}},
        "paper_bgcolor": "white", "plot_bgcolor": "white",
    }
    return fig.update(style, x={"title": {"text": x_title}, **AXIS_LINE}, y={"title": {"text": y_title}, **AXIS_LINE})


def _merged(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict:
    out = dict(base)
    for key, value in extra.items():
        both = isinstance(value, Mapping) and isinstance(out.get(key), Mapping)
        out[key] = _merged(out[key], value) if both else value
    return out


def _empty(title: str, message: str = "No transactions match the filters.") -> go.Figure:
    fig = Draft()
    fig.annotate(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                 font={"size": 14, "color": "#6B7280"})
    _style(fig, title, "", "", height=220)
    return fig.update(x={"visible": False}, y={"visible": False}).figure()


def _tz_label(tz: str) -> str:
    return tz.split("/")[-1].replace("_", " ") + " time"


# ---------------------------------------------------------------------------------------------
# Calendar heatmap
# ---------------------------------------------------------------------------------------------


def heatmap(frame: pd.DataFrame, tz: str = "America/Lima", min_labelled: int = MIN_LABELLED) -> go.Figure:
    """Fraud rate per local weekday x hour (from ``analytics.hour_weekday_heatmap``).

    Cells with fewer than ``min_labelled`` labelled transactions are grey (too few to read a
    rate). An invisible marker on each cell makes cells selectable (Plotly heatmaps are not);
    its drill-down keys are ``local_weekday`` and ``local_hour``.
    """
    title = "Fraud rate by hour and weekday"
    if frame.empty or frame["transactions"].sum() == 0:
        return _empty(title)
    cells = frame.sort_values(["weekday", "hour"])
    shown = cells["fraud_rate"].where(cells["labelled"] >= min_labelled)
    z = [[None] * 24 for _ in range(7)]
    for (wd, hr), rate in zip(zip(cells["weekday"], cells["hour"]), shown):
        z[int(wd) - 1][int(hr)] = None if pd.isna(rate) else float(rate)
    fig = Draft()
    fig.add("heatmap",
            z=z, x=list(range(24)), y=list(range(1, 8)), colorscale=SEQUENTIAL, hoverinfo="skip",
            xgap=1, ygap=1, zmin=0,
            colorbar={"title": {"text": "Fraud rate", "side": "right"}, "tickformat": ".1%",
                      "thickness": 14})
    custom = [[int(wd), int(hr), int(n), int(lab), int(k), None if pd.isna(r) else float(r),
               None if pd.isna(lo) else float(lo), None if pd.isna(hi) else float(hi)]
              for wd, hr, n, lab, k, r, lo, hi in zip(
                  cells["weekday"], cells["hour"], cells["transactions"], cells["labelled"],
                  cells["frauds"], cells["fraud_rate"], cells["ci_low"], cells["ci_high"])]
    fig.add(
        "scatter", x=_list(cells["hour"]), y=_list(cells["weekday"]), mode="markers", customdata=custom,
        meta=["local_weekday", "local_hour"], name="cells", showlegend=False,
        marker={"symbol": "square-open", "size": 26, "color": OKABE_ITO["black"], "opacity": 0,
                "line": {"width": 3}},
        selected={"marker": {"opacity": 1}}, unselected={"marker": {"opacity": 0}},
        hovertemplate=(
            "%{text}<br>fraud rate %{customdata[5]:.2%} (95% CI %{customdata[6]:.2%}–"
            "%{customdata[7]:.2%})<br>%{customdata[2]:,} transactions, %{customdata[4]:,} frauds"
            "<extra></extra>"),
        text=[f"{WEEKDAYS[int(wd) - 1]} {int(hr):02d}:00–{int(hr):02d}:59"
              for wd, hr in zip(cells["weekday"], cells["hour"])],
    )
    _style(fig, title, f"Hour of day ({_tz_label(tz)})", "",
           subtitle=f"Grey: fewer than {min_labelled} labelled transactions, too few for a rate. "
                    "Click or box-select cells to list their transactions.")
    return fig.update({"plot_bgcolor": BLANK_CELL, "hovermode": "closest", "hoverdistance": 40},
                      x={"tickmode": "array", "tickvals": list(range(0, 24, 2)),
                         "ticktext": [f"{h:02d}" for h in range(0, 24, 2)], "range": [-0.5, 23.5],
                         "showgrid": False, "zeroline": False},
                      y={"tickmode": "array", "tickvals": list(range(1, 8)), "ticktext": list(WEEKDAYS),
                         "range": [7.5, 0.5], "showgrid": False, "zeroline": False}).figure()


# ---------------------------------------------------------------------------------------------
# Time series
# ---------------------------------------------------------------------------------------------


def trend(frame: pd.DataFrame, metric: str = "fraud_rate", grain: str = "day",
          tz: str = "America/Lima", height: int = HEIGHT) -> go.Figure:
    """One metric of ``analytics.daily_series`` over time: bars for counts and amounts, a line
    with its Wilson 95% band for the fraud rate. Drill-down key ``local_date`` or ``local_week``."""
    if metric not in METRICS:
        raise ValueError(f"The 'metric' parameter must be one of {list(METRICS)}. Got {metric!r} instead.")
    noun, axis, fmt = METRICS[metric]
    per = "per day" if grain == "day" else "per week"
    title = f"{noun} {per}"
    if frame.empty:
        return _empty(title)
    x = _list(frame["period"])
    key = "local_date" if grain == "day" else "local_week"
    custom = [[p, int(n), int(k)] for p, n, k in zip(x, frame["transactions"], frame["frauds"])]
    partial = _partial_periods(frame, grain)
    notes = []
    fig = Draft()
    if metric == "fraud_rate":
        # Periods with few labelled transactions (labels still to come) give no readable rate.
        enough = frame["labelled"] >= MIN_LABELLED
        rate, low, high = (_list(frame[c].where(enough)) for c in ("fraud_rate", "ci_low", "ci_high"))
        fig.add("scatter", x=x, y=low, mode="lines", line={"width": 0}, hoverinfo="skip",
                showlegend=False, connectgaps=False)
        fig.add("scatter",
                x=x, y=high, mode="lines", fill="tonexty", fillcolor="rgba(213, 94, 0, 0.18)",
                line={"width": 0}, hoverinfo="skip", name="95% interval", connectgaps=False)
        fig.add(
            "scatter", x=x, y=rate, mode="lines+markers", name="fraud rate", connectgaps=False,
            line={"color": FRAUD, "width": 2}, customdata=custom, meta=[key],
            marker={"size": [8 if p else 5 for p in partial],
                    "symbol": ["circle-open" if p else "circle" for p in partial]},
            hovertemplate=f"%{{x}}<br>fraud rate %{{y:{fmt}}}<br>%{{customdata[1]:,}} transactions, "
                          "%{customdata[2]:,} frauds<extra></extra>")
        y_axis = {"tickformat": ".1%", "rangemode": "tozero"}
        if not enough.all():
            notes.append(f"No rate where fewer than {MIN_LABELLED} transactions are labelled yet.")
    else:
        colour = NEUTRAL if metric == "transactions" else FRAUD
        fig.add("bar",
                x=x, y=_list(frame[metric]), marker={"color": colour, "pattern": {
                    "shape": ["/" if p else "" for p in partial]}}, name=noun.lower(), customdata=custom,
                meta=[key], hovertemplate=f"%{{x}}<br>{noun.lower()} %{{y:{fmt}}}<extra></extra>")
        y_axis = {"tickformat": ",.0f"}
    x_title = f"Day ({_tz_label(tz)})" if grain == "day" else f"Week starting Monday ({_tz_label(tz)})"
    y_title = axis if metric == "fraud_rate" else f"{axis.replace(' (PEN)', '')} {per}" + \
        (" (PEN)" if metric == "fraud_amount" else "")
    if any(partial):
        shown = "hollow" if metric == "fraud_rate" else "hatched"
        notes.append(f"Weeks only partly in the range are {shown}: their totals are not comparable.")
    _style(fig, title, x_title, y_title, height=height, legend=metric == "fraud_rate",
           subtitle=" ".join(notes) or None)
    return fig.update(x={"type": "date"}, y=y_axis).figure()


def _partial_periods(frame: pd.DataFrame, grain: str) -> list[bool]:
    """Weeks with fewer than 7 of their days in the range (``days`` of ``daily_series``)."""
    if grain != "week" or "days" not in frame:
        return [False] * len(frame)
    return [int(d) < 7 for d in frame["days"]]


# ---------------------------------------------------------------------------------------------
# Segments, regions, entities
# ---------------------------------------------------------------------------------------------


def segment_bars(frame: pd.DataFrame, by: str, height: int | None = None) -> go.Figure:
    """Fraud rate per segment (from ``analytics.segments``) with Wilson 95% error bars, highest
    rate on top. Drill-down key: the segment column ``by``."""
    label = SEGMENT_LABELS.get(by, by)
    title = f"Fraud rate by {label}"
    if frame.empty:
        return _empty(title)
    rows = frame.sort_values(["fraud_rate", "transactions"], ascending=[True, True], na_position="first")
    rate = rows["fraud_rate"].fillna(0.0)
    custom = [[seg, int(n), int(lab), int(k), float(a)] for seg, n, lab, k, a in zip(
        rows["segment"], rows["transactions"], rows["labelled"], rows["frauds"], rows["fraud_amount"])]
    fig = Draft()
    fig.add(
        "bar", x=_list(rate), y=_list(rows["segment"]), orientation="h", marker={"color": NEUTRAL},
        error_x={"type": "data", "symmetric": False, "array": _list(rows["ci_high"].fillna(0) - rate),
                 "arrayminus": _list(rate - rows["ci_low"].fillna(0)), "color": "#374151",
                 "thickness": 1.5},
        customdata=custom, meta=[by], name="fraud rate",
        hovertemplate=("%{y}<br>fraud rate %{x:.2%}<br>%{customdata[3]:,} frauds of "
                       "%{customdata[2]:,} labelled (%{customdata[1]:,} transactions)<br>"
                       "fraud amount PEN %{customdata[4]:,.2f}<extra></extra>"),
    )
    # Counts written just right of each interval, where they cannot overlap it.
    ends = rows["ci_high"].fillna(rate)
    fig.add(
        "scatter", x=_list(ends), y=_list(rows["segment"]), mode="text", textposition="middle right",
        text=[f"  {k:,} of {lab:,}" for k, lab in zip(rows["frauds"], rows["labelled"])],
        textfont={"size": 11, "color": "#4B5563"}, hoverinfo="skip", showlegend=False,
        unselected={"textfont": {"color": "#4B5563"}})  # stays readable while bars are selected
    bars = len(rows)
    _style(fig, title, "Fraud rate (% of labelled)", label.capitalize(),
           height=height or max(220, 110 + 30 * bars),
           subtitle="Lines: 95% Wilson interval. Labels: frauds of labelled transactions.")
    top = float(ends.max()) if bars else 0.0
    return fig.update(x={"tickformat": ".1%", "range": [0, (top or 0.01) * 1.4]}, y={"type": "category"}).figure()


def region_bars(frame: pd.DataFrame, height: int | None = None) -> go.Figure:
    """Fraud amount per region (from ``analytics.region_breakdown``), largest on top; the label
    gives the fraud rate. Drill-down key ``merchant_location``."""
    title = "Fraud amount by region"
    if frame.empty:
        return _empty(title)
    rows = frame.sort_values(["fraud_amount", "transactions"], ascending=True)
    custom = [[seg, int(n), int(k), None if pd.isna(r) else float(r)] for seg, n, k, r in zip(
        rows["segment"], rows["transactions"], rows["frauds"], rows["fraud_rate"])]
    fig = Draft()
    fig.add(
        "bar", x=_list(rows["fraud_amount"]), y=_list(rows["segment"]), orientation="h", marker={"color": FRAUD},
        customdata=custom, meta=["merchant_location"], name="fraud amount",
        text=["" if pd.isna(r) else f"{r:.2%}" for r in rows["fraud_rate"]], textposition="outside",
        cliponaxis=False, textfont={"size": 11, "color": "#4B5563"},
        hovertemplate=("%{y}<br>fraud amount PEN %{x:,.2f}<br>%{customdata[2]:,} frauds in "
                       "%{customdata[1]:,} transactions<extra></extra>"),
    )
    _style(fig, title, "Fraud amount (PEN)", "Region", height=height or max(220, 110 + 26 * len(rows)),
           subtitle="Labels: fraud rate of the region's labelled transactions.")
    return _amount_axis(fig, rows)


def top_entities_bars(frame: pd.DataFrame, by: str, height: int | None = None) -> go.Figure:
    """The entities with the largest fraud amount (from ``analytics.top_entities``), largest on
    top; labels give their number of frauds. Drill-down key ``by``."""
    label = ENTITY_LABELS.get(by, by)
    title = f"Top {label} by fraud amount"
    if frame.empty:
        return _empty(title, "No fraud among the filtered transactions.")
    rows = frame.iloc[::-1]
    custom = [[e, int(n), int(k)] for e, n, k in zip(rows["entity"], rows["transactions"], rows["frauds"])]
    fig = Draft()
    fig.add(
        "bar", x=_list(rows["fraud_amount"]), y=_list(rows["entity"]), orientation="h", marker={"color": FRAUD},
        customdata=custom, meta=[by], name="fraud amount",
        text=[f"{k:,} fraud{'s' if k != 1 else ''}" for k in rows["frauds"]], textposition="outside",
        cliponaxis=False, textfont={"size": 11, "color": "#4B5563"},
        hovertemplate=("%{y}<br>fraud amount PEN %{x:,.2f}<br>%{customdata[2]:,} frauds in "
                       "%{customdata[1]:,} transactions<extra></extra>"),
    )
    _style(fig, title, "Fraud amount (PEN)", label[:-1].capitalize(),
           height=height or max(220, 110 + 22 * len(rows)))
    return _amount_axis(fig, rows)


def _amount_axis(fig: Draft, rows: pd.DataFrame) -> go.Figure:
    top = max(float(rows["fraud_amount"].max()), 1.0) * 1.2
    return fig.update(x={"tickformat": ",.0f", "range": [0, top]}, y={"type": "category"}).figure()


# ---------------------------------------------------------------------------------------------
# Amounts
# ---------------------------------------------------------------------------------------------


def _amount_text(value: float) -> str:
    if value >= 1000:
        return f"{value / 1000:,.0f}k" if value >= 10_000 else f"{value / 1000:,.1f}k".replace(".0k", "k")
    return f"{value:,.2f}".rstrip("0").rstrip(".") if value < 1 else f"{value:,.0f}"


def amount_histogram(frame: pd.DataFrame, height: int = HEIGHT) -> go.Figure:
    """Amount distribution of legitimate and fraudulent transactions on a log amount axis
    (from ``analytics.amount_distribution``): each class as its share per bin, so classes of very
    different sizes compare. Drill-down key ``amount_bin``."""
    title = "Amounts of legitimate and fraudulent transactions"
    if frame.empty:
        return _empty(title)
    per = AMOUNT_BINS_PER_DECADE
    centre = [(b + 0.5) / per for b in frame["bin"]]
    fig = Draft()
    for name, colour, share, count in (("legitimate", LEGIT, "legit_share", "legit"),
                                       ("fraud", FRAUD, "fraud_share", "fraud")):
        custom = [[int(b), float(lo), float(hi), int(n)] for b, lo, hi, n in zip(
            frame["bin"], frame["low"], frame["high"], frame[count])]
        fig.add("bar",
                x=centre, y=_list(frame[share].fillna(0.0)), width=1 / per * 0.96, name=name,
                marker={"color": colour}, opacity=0.7, customdata=custom, meta=["amount_bin"],
                hovertemplate=(f"{name}<br>PEN %{{customdata[1]:,.2f}}–%{{customdata[2]:,.2f}}<br>"
                               "%{y:.1%} of the class (%{customdata[3]:,} transactions)<extra></extra>"))
    low = math.floor(min(frame["bin"]) / per)
    high = math.ceil((max(frame["bin"]) + 1) / per)
    ticks = list(range(low, high + 1))
    _style(fig, title, "Transaction amount (PEN, log scale)", "Share of the class's transactions",
           height=height, legend=True,
           subtitle=f"{per} bins per factor of 10. Unlabelled transactions are left out.")
    return fig.update({"barmode": "overlay", "bargap": 0},
                      x={"tickmode": "array", "tickvals": ticks, "ticktext": [_amount_text(10.0 ** t) for t in ticks],
                         "range": [min(centre) - 0.5 / per, max(centre) + 0.5 / per]},
                      y={"tickformat": ".0%", "rangemode": "tozero"}).figure()


# ---------------------------------------------------------------------------------------------
# Selections
# ---------------------------------------------------------------------------------------------


def selection_extra(figure: go.Figure | Mapping, points: Sequence[Mapping]) -> dict[str, list]:
    """Drill-down equalities for the selected ``points`` of a figure built here.

    Each selectable trace names its keys in ``meta``; a point's ``customdata`` starts with their
    values. Returns ``{key: [values]}`` (empty if nothing usable was selected).
    """
    data = figure["data"] if isinstance(figure, Mapping) else figure.to_plotly_json()["data"]
    extra: dict[str, list] = {}
    for point in points:
        curve = point.get("curve_number")
        custom = point.get("customdata")
        if curve is None or curve >= len(data) or not custom:
            continue
        keys = data[curve].get("meta") or []
        values = custom if isinstance(custom, list) else [custom]
        for key, value in zip(keys, values):
            bucket = extra.setdefault(key, [])
            if value not in bucket:
                bucket.append(value)
    return extra


def selection_label(extra: Mapping[str, Sequence]) -> str:
    """Human words for a drill-down, e.g. ``weekday Tue, hour 03`` or ``channel online, pos``."""
    words = []
    for key, values in extra.items():
        if key == "local_weekday":
            shown = [WEEKDAYS[int(v) - 1] for v in values]
        elif key == "local_hour":
            shown = [f"{int(v):02d}:00" for v in values]
        elif key == "amount_bin":
            shown = [f"PEN {_amount_text(10 ** (int(v) / AMOUNT_BINS_PER_DECADE))}–"
                     f"{_amount_text(10 ** ((int(v) + 1) / AMOUNT_BINS_PER_DECADE))}" for v in values]
        else:
            shown = [MISSING if v is None else str(v) for v in values]
        name = {"local_weekday": "weekday", "local_hour": "hour", "local_date": "day",
                "local_week": "week of", "amount_bin": "amount", "merchant_location": "region",
                "transaction_type": "type", "merchant_id": "merchant", "account_id": "account",
                "account_type": "account type"}.get(key, key)
        if len(shown) > 6:
            shown = shown[:6] + [f"… ({len(values)} in all)"]
        words.append(f"{name} {', '.join(shown)}")
    return "; ".join(words)
