"""Plotly figures of the Monitoring page: a weekly table from :mod:`fraudlens.monitor` in, a figure out.

Same conventions as :mod:`fraudlens.charts` (its Okabe-Ito palette, fonts and layout): every
figure has a title and axis titles with units, and reads at 1366x768. Partial weeks (the first and
last of the data) are drawn distinctly, hollow markers on lines and hatched bars, because their
mix of weekdays alone moves the figures; the page says so in a caption.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go

from fraudlens.charts import FRAUD, LEGIT, OKABE_ITO, SEQUENTIAL, UNKNOWN, Draft, _empty, _list, _style, _tz_label
from fraudlens.monitor import STABLE, WATCH

HEIGHT = 380
PSI_SHOWN_FLOOR = 1e-3  # a log axis cannot show 0; smaller PSIs are drawn here (hover has the value)
SCORE_SHOWN_FLOOR = 1e-6
BAND_FILLS = {"stable": "rgba(0, 158, 115, 0.08)", "watch": "rgba(230, 159, 0, 0.16)",
              "act": "rgba(213, 94, 0, 0.16)"}
FEATURE_COLOURS = (OKABE_ITO["blue"], OKABE_ITO["orange"], OKABE_ITO["green"], OKABE_ITO["purple"],
                   OKABE_ITO["sky_blue"], OKABE_ITO["vermillion"], OKABE_ITO["yellow"])
STATUS_BARS = (  # column, legend name, colour
    ("confirmed", "confirmed fraud", FRAUD),
    ("false_positive", "false positive", LEGIT),
    ("needs_info", "needs information", OKABE_ITO["orange"]),
    ("open", "open", UNKNOWN),
)
CAUGHT = OKABE_ITO["green"]
HALF_WIDTH = 470  # px of a chart in one of two columns at 1366x768 with the sidebar open
FULL_WIDTH = 960
LEGEND_ITEM_PX, LEGEND_CHAR_PX, LEGEND_ROW_PX = 46, 6.5, 21


# ---------------------------------------------------------------------------------------------
# Helpers


def _weeks(frame: pd.DataFrame) -> list:
    return _list(pd.to_datetime(frame["week"]).dt.strftime("%Y-%m-%d"))


def _is_partial(frame: pd.DataFrame, partial: Collection) -> list[bool]:
    marked = {pd.Timestamp(w) for w in partial}
    return [pd.Timestamp(w) in marked for w in pd.to_datetime(frame["week"])]


def _line(fig: Draft, x: list, y: list, hollow: Sequence[bool], name: str, colour: str, *,
          width: float = 2, dash: str | None = None, hover: str, custom: list | None = None,
          yaxis: str = "y", meta: list | None = None, size: int = 7) -> None:
    """A line through every week, solid markers on complete weeks and hollow ones on partial
    weeks; the legend shows the line (the markers are extra traces of its legend group)."""
    line = {"color": colour, "width": width} | ({"dash": dash} if dash else {})
    fig.add("scatter", x=x, y=y, mode="lines", name=name, legendgroup=name, meta=meta, yaxis=yaxis, line=line,
            hoverinfo="skip", connectgaps=False)
    for partial in (False, True):
        keep = [i for i, h in enumerate(hollow) if h == partial]
        if not keep:
            continue
        fig.add(
            "scatter", x=[x[i] for i in keep], y=[y[i] for i in keep], mode="markers", name=name, legendgroup=name,
            showlegend=False, yaxis=yaxis, meta=meta,
            customdata=None if custom is None else [custom[i] for i in keep],
            marker={"color": "white" if partial else colour, "size": size, "line": {"color": colour, "width": 2},
                    "symbol": "circle"},  # white inside: hollow (an -open symbol would take the white)
            hovertemplate=hover + (" — partial week" if partial else "") + "<extra></extra>")


def _bars(fig: Draft, x: list, y: list, hollow: Sequence[bool], name: str, colour: str, *, hover: str,
          custom: list | None = None, text: list | None = None, **extra) -> None:
    """Bars of complete weeks, and hatched bars of partial weeks in the same legend group."""
    for partial in (False, True):
        keep = [i for i, h in enumerate(hollow) if h == partial]
        if not keep:
            continue
        pattern = {"pattern": {"shape": "/", "fgcolor": "white", "size": 6, "solidity": 0.4}} if partial else {}
        fig.add(
            "bar", x=[x[i] for i in keep], y=[y[i] for i in keep], name=name, legendgroup=name,
            showlegend=not partial or all(hollow), marker={"color": colour, **pattern},
            customdata=None if custom is None else [custom[i] for i in keep],
            text=None if text is None else [text[i] for i in keep],
            hovertemplate=hover + (" — partial week" if partial else "") + "<extra></extra>", **extra)


def _partial_key(fig: Draft, bars: bool = False) -> None:
    """A legend entry explaining how partial weeks look."""
    if bars:
        fig.add("bar", x=[None], y=[None], name="partial week (hatched)",
                marker={"color": "#9CA3AF", "pattern": {"shape": "/", "fgcolor": "white"}}, hoverinfo="skip")
    else:
        fig.add("scatter", x=[None], y=[None], mode="markers", name="partial week (hollow)",
                marker={"symbol": "circle", "color": "white", "size": 8, "line": {"color": "#4B5563", "width": 2}},
                hoverinfo="skip")


def _finish(fig: Draft, title: str, y_title: str, *, height: int, subtitle: str | None = None,
            width: int = HALF_WIDTH, x_title: str | None = None) -> Draft:
    """The shared style, with the legend in a band between the title and the plot (below the
    plot it would collide with the week axis title), sized for ``width`` pixels."""
    _style(fig, title, x_title or "", y_title, height=height, subtitle=subtitle, legend=True)
    names = [t["name"] for t in fig.data if t.get("showlegend") is not False and t.get("name")]
    needed = sum(LEGEND_ITEM_PX + LEGEND_CHAR_PX * len(n) for n in names)
    rows = max(1, math.ceil(needed / max(width - 40, 200))) if names else 0
    top = (64 if subtitle else 44) + LEGEND_ROW_PX * rows + 8
    return fig.update({
        "height": height + LEGEND_ROW_PX * rows,
        "margin": {"t": top},
        "title": {"y": 1.0, "yref": "container", "yanchor": "top", "pad": {"t": 10}},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "left", "x": 0.0,
                   "bgcolor": "rgba(255, 255, 255, 0)", "font": {"size": 12}, "traceorder": "normal"},
        "showlegend": bool(names), "hovermode": "closest"})


def _week_axis(fig: Draft, tz: str) -> Draft:
    return fig.update(x={"title": {"text": f"Week starting Monday ({_tz_label(tz)})"}, "type": "date",
                         "tickformat": "%d %b\n%Y"})


def _log_ticks(low: float, high: float) -> tuple[list[float], list[str]]:
    first, last = math.floor(math.log10(low)), math.ceil(math.log10(high))
    values = [10.0 ** k for k in range(first, last + 1)]
    return values, [f"{v:g}" for v in values]


def _finite(values: pd.Series) -> pd.Series:
    return pd.to_numeric(values, errors="coerce").dropna()


# ---------------------------------------------------------------------------------------------
# Scores and drift


def score_figure(frame: pd.DataFrame, threshold: float | None = None, partial: Collection = (),
                 tz: str = "America/Lima", height: int = HEIGHT) -> go.Figure:
    """Median, 90th and 99th percentile of the score per week (from ``monitor.weekly_scores``),
    on a log axis, with the live alert threshold as a dashed line."""
    title = "Score distribution per week"
    if frame.empty:
        return _empty(title, "No scored transactions yet.")
    x, hollow = _weeks(frame), _is_partial(frame, partial)
    fig = Draft()
    rows = [int(n) for n in frame["rows"]]
    for column, name, colour in (("p99", "99th percentile", FRAUD), ("p90", "90th percentile", OKABE_ITO["orange"]),
                                 ("p50", "median", LEGIT)):
        _line(fig, x, _list(frame[column]), hollow, name, colour, custom=rows,
              hover=f"week of %{{x|%Y-%m-%d}}<br>{name} %{{y:.4f}}<br>%{{customdata:,}} transactions")
    shown = _finite(pd.concat([frame["p50"], frame["p90"], frame["p99"]]))
    low = max(float(shown[shown > 0].min()) if (shown > 0).any() else SCORE_SHOWN_FLOOR, SCORE_SHOWN_FLOOR)
    has_threshold = threshold is not None and not math.isnan(threshold)
    if has_threshold:
        fig.add("scatter", x=[x[0], x[-1]], y=[threshold, threshold], mode="lines",
                name=f"alert threshold {threshold:.4g}",
                line={"color": OKABE_ITO["black"], "dash": "dash", "width": 1.5},
                hovertemplate=f"alert threshold {threshold:.4g}<extra></extra>")
        low = min(low, threshold)
    if any(hollow):
        _partial_key(fig)
    _finish(fig, title, "Score (0–1, log scale)", height=height,
            subtitle=None if has_threshold else "No live alert threshold for this version yet (Thresholds page).")
    _week_axis(fig, tz)
    ticks, text = _log_ticks(low, 1.0)
    return fig.update(y={"type": "log", "tickvals": ticks, "ticktext": text,
                         "range": [math.log10(ticks[0]), 0.05]}).figure()


def psi_figure(frame: pd.DataFrame, variables: Sequence[str] | None = None,
               title: str = "Population stability (PSI) per week", tz: str = "America/Lima", height: int = HEIGHT,
               width: int = HALF_WIDTH) -> go.Figure:
    """PSI per week of some variables (from ``monitor.weekly_psi``) on a log axis, over the bands:
    below 0.1 stable, 0.1–0.25 watch, above 0.25 act (shaded, and dotted lines at 0.1 and 0.25).

    ``variables`` defaults to every variable of ``frame``. Partial weeks (``complete`` False)
    have hollow markers. Each variable's line trace carries its name in ``meta``.
    """
    rows = frame if variables is None else frame[frame["variable"].isin(list(variables))]
    if rows.empty:
        return _empty(title, "No PSI to show.")
    present = set(rows["variable"])
    names = list(dict.fromkeys(rows["variable"])) if variables is None else [v for v in variables if v in present]
    fig = Draft()
    features = iter(FEATURE_COLOURS * 3)
    for variable in names:
        part = rows[rows["variable"] == variable].sort_values("week")
        colour, width_px = (OKABE_ITO["black"], 3) if variable == "score" else (next(features), 2)
        hollow = [not bool(c) for c in part["complete"]] if "complete" in part else [False] * len(part)
        custom = [[None if pd.isna(p) else float(p), str(b), int(n)]
                  for p, b, n in zip(part["psi"], part["band"], part["rows"])]
        _line(fig, _weeks(part), _list(part["psi"].clip(lower=PSI_SHOWN_FLOOR)), hollow, variable, colour,
              width=width_px, custom=custom, meta=[variable],
              hover=(f"{variable}<br>week of %{{x|%Y-%m-%d}}<br>PSI %{{customdata[0]:.3f}} (%{{customdata[1]}})"
                     "<br>%{customdata[2]:,} transactions"))
    finite = _finite(rows["psi"])
    top = max(1.0, float(finite.max()) * 1.3) if len(finite) else 1.0
    _bands(fig, rows, top)
    if "complete" in rows and not rows["complete"].astype(bool).all():
        _partial_key(fig)
    _finish(fig, title, "PSI (log scale)", height=height, width=width,
            subtitle=f"Against the training window. Under {PSI_SHOWN_FLOOR:g} drawn at {PSI_SHOWN_FLOOR:g}.")
    _week_axis(fig, tz)
    ticks, text = _log_ticks(PSI_SHOWN_FLOOR, top)
    return fig.update(y={"type": "log", "tickvals": ticks + [WATCH], "ticktext": text + [f"{WATCH:g}"],
                         "range": [math.log10(PSI_SHOWN_FLOOR), math.log10(top)]}).figure()


def _bands(fig: Draft, rows: pd.DataFrame, top: float) -> None:
    """Shaded bands (layout shapes, named on the right) and the 0.1 and 0.25 lines (traces, so
    they have legend entries)."""
    for band, low, high in (("stable", PSI_SHOWN_FLOOR, STABLE), ("watch", STABLE, WATCH), ("act", WATCH, top)):
        fig.shape(type="rect", x0=0, x1=1, xref="x domain", y0=low, y1=high, yref="y", fillcolor=BAND_FILLS[band],
                  line={"width": 0}, layer="below", name=band)
        # Named at the band's middle on the log axis (annotations take log10 positions there).
        fig.annotate(x=1.0, xref="paper", xanchor="right", y=(math.log10(low) + math.log10(high)) / 2,
                     yref="y", text=band, showarrow=False, font={"size": 11, "color": "#4B5563"})
    first, last = _weeks(rows.sort_values("week").iloc[[0, -1]])
    for value, name, colour in ((STABLE, f"{STABLE:g}: watch above", OKABE_ITO["orange"]),
                                (WATCH, f"{WATCH:g}: act above", FRAUD)):
        fig.add("scatter", x=[first, last], y=[value, value], mode="lines", name=name, meta=["band"],
                line={"color": colour, "dash": "dot", "width": 1.5}, hoverinfo="skip")


# ---------------------------------------------------------------------------------------------
# Alerts and labels


def alerts_figure(frame: pd.DataFrame, partial: Collection = (), tz: str = "America/Lima",
                  height: int = HEIGHT) -> go.Figure:
    """Alerts per week by status (stacked) and their precision (confirmed / resolved) on a right
    axis, from ``monitor.weekly_alerts``."""
    title = "Alerts per week and their precision"
    if frame.empty:
        return _empty(title, "No alerts raised yet.")
    x, hollow = _weeks(frame), _is_partial(frame, partial)
    fig = Draft()
    for column, name, colour in STATUS_BARS:
        _bars(fig, x, _list(frame[column]), hollow, name, colour, hover=f"week of %{{x|%Y-%m-%d}}<br>{name}: %{{y:,}}")
    resolved = [int(c) + int(f) for c, f in zip(frame["confirmed"], frame["false_positive"])]
    _line(fig, x, _list(frame["precision"]), hollow, "precision (right axis)", OKABE_ITO["black"], yaxis="y2",
          custom=resolved, hover="week of %{x|%Y-%m-%d}<br>precision %{y:.1%} of %{customdata:,} resolved")
    if any(hollow):
        _partial_key(fig, bars=True)
    _finish(fig, title, "Alerts per week (transactions)", height=height,
            subtitle="Precision = confirmed fraud ÷ resolved alerts.")
    _week_axis(fig, tz)
    return fig.update({"barmode": "stack", "yaxis": {"tickformat": ",.0f", "rangemode": "tozero"},
                       "yaxis2": {"title": {"text": "Precision (%)"}, "overlaying": "y", "side": "right",
                                  "range": [0, 1.05], "tickvals": [0, 0.25, 0.5, 0.75, 1.0], "tickformat": ".0%",
                                  "showgrid": False, "automargin": True, "showline": True,
                                  "linecolor": "#9CA3AF"}}).figure()


def money_figure(frame: pd.DataFrame, partial: Collection = (), tz: str = "America/Lima",
                 height: int = HEIGHT) -> go.Figure:
    """Money caught per week (amounts of alerts confirmed as fraud) and the expected loss of all
    alerts (score × amount), in PEN, from ``monitor.weekly_alerts``."""
    title = "Money caught per week"
    if frame.empty:
        return _empty(title, "No alerts raised yet.")
    x, hollow = _weeks(frame), _is_partial(frame, partial)
    fig = Draft()
    _bars(fig, x, _list(frame["money_caught"]), hollow, "caught (confirmed fraud)", CAUGHT,
          hover="week of %{x|%Y-%m-%d}<br>caught PEN %{y:,.2f}")
    _line(fig, x, _list(frame["expected_loss"]), hollow, "expected loss of all alerts", "#4B5563", dash="dot",
          size=6, hover="week of %{x|%Y-%m-%d}<br>expected loss PEN %{y:,.2f}")
    if any(hollow):
        _partial_key(fig, bars=True)
    _finish(fig, title, "PEN per week", height=height, subtitle="Expected loss = score × amount of each alert.")
    return _week_axis(fig, tz).update(y={"tickformat": ",.0f", "rangemode": "tozero"}).figure()


def maturity_figure(frame: pd.DataFrame, partial: Collection = (), tz: str = "America/Lima",
                    height: int = HEIGHT) -> go.Figure:
    """Share of each week's transactions whose label is still unknown (``monitor.label_maturity``)."""
    title = "Labels still unknown per week"
    if frame.empty:
        return _empty(title, "No transactions yet.")
    x, hollow = _weeks(frame), _is_partial(frame, partial)
    share = frame["unknown_share"].astype(float)
    custom = [[int(u), int(n)] for u, n in zip(frame["unknown"], frame["rows"])]
    text = [f"{s:.0%}" if s >= 0.005 or s == 0 else "<1%" for s in share]
    fig = Draft()
    _bars(fig, x, _list(share), hollow, "labels unknown", OKABE_ITO["sky_blue"], custom=custom,
          text=text, hover=("week of %{x|%Y-%m-%d}<br>%{y:.1%} unknown: %{customdata[0]:,} of "
                            "%{customdata[1]:,} transactions"),
          textposition="outside", cliponaxis=False, textfont={"size": 10, "color": "#4B5563"})
    if any(hollow):
        _partial_key(fig, bars=True)
    _finish(fig, title, "Unlabelled (% of transactions)", height=height,
            subtitle="Recent weeks look better than they are until their frauds are reported.")
    _week_axis(fig, tz)
    top = float(share.max()) if share.notna().any() else 0.0
    return fig.update(y={"tickformat": ".0%", "range": [0, max(0.1, top * 1.25)]}).figure()


# ---------------------------------------------------------------------------------------------
# Data quality per ingest


def ingest_labels(history: pd.DataFrame, tz: str = "America/Lima") -> dict[str, str]:
    """ingest id -> ``#2 · 2025-03-01 10:15`` (local time), numbered oldest first."""
    out = {}
    for number, (ingest_id, at) in enumerate(zip(history["ingest_id"], history["at"]), start=1):
        stamp = pd.Timestamp(at)
        if pd.isna(stamp):
            out[str(ingest_id)] = f"#{number}"
            continue
        stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp
        out[str(ingest_id)] = f"#{number} · {stamp.tz_convert(tz):%Y-%m-%d %H:%M}"
    return out


def ingest_figure(history: pd.DataFrame, tz: str = "America/Lima", height: int = HEIGHT) -> go.Figure:
    """Rows loaded and rejected per ingest, stacked, labelled with the reject share
    (from ``monitor.ingest_history``)."""
    title = "Rows loaded and rejected per ingest"
    if history.empty:
        return _empty(title, "No ingest recorded.")
    labels = ingest_labels(history, tz)
    x = [labels[str(i)] for i in history["ingest_id"]]
    fig = Draft()
    custom = [[m, s, r or "-"] for m, s, r in zip(history["mode"], history["sources"], history["top_reject_reason"])]
    fig.add("bar", x=x, y=_list(history["loaded"]), name="loaded", marker={"color": LEGIT}, customdata=custom,
            hovertemplate="%{x}<br>%{y:,} rows loaded (%{customdata[0]})<br>%{customdata[1]}<extra></extra>")
    fig.add(
        "bar", x=x, y=_list(history["rejected"]), name="rejected", marker={"color": FRAUD}, customdata=custom,
        text=["" if pd.isna(s) else f"{s:.1%} rejected" for s in history["reject_share"]], textposition="outside",
        cliponaxis=False, textfont={"size": 11, "color": "#4B5563"},
        hovertemplate="%{x}<br>%{y:,} rows rejected<br>most common reason: %{customdata[2]}<extra></extra>")
    _finish(fig, title, "Rows per ingest (transactions)", height=height,
            x_title=f"Ingest (oldest first, {_tz_label(tz)})")
    top = float((history["loaded"] + history["rejected"]).max() or 1)
    return fig.update({"barmode": "stack", "bargap": 0.5 if len(history) < 3 else 0.25}, x={"type": "category"},
                      y={"tickformat": ",.0f", "range": [0, top * 1.15]}).figure()


def nulls_figure(nulls: pd.DataFrame, labels: Mapping[str, str] | None = None, height: int | None = None) -> go.Figure:
    """Share of empty values per canonical column (rows) and ingest (columns), from
    ``monitor.ingest_nulls``; ``labels`` names the ingests (see :func:`ingest_labels`)."""
    title = "Empty values per column and ingest"
    if nulls.empty:
        return _empty(title, "No ingest recorded.")
    ingests = list(dict.fromkeys(nulls["ingest_id"]))
    columns = sorted(set(nulls["column"]), reverse=True)  # alphabetical from the top
    table = nulls.pivot_table(index="column", columns="ingest_id", values="null_share", aggfunc="first")
    table = table.reindex(index=columns, columns=ingests)
    counts = nulls.pivot_table(index="column", columns="ingest_id", values="nulls", aggfunc="first").reindex(
        index=columns, columns=ingests)
    names = [(labels or {}).get(str(i), str(i)) for i in ingests]
    z = [[None if pd.isna(v) else float(v) for v in row] for row in table.to_numpy()]
    text = [["" if v is None else (f"{v:.1%}" if v else "0") for v in row] for row in z]
    fig = Draft()
    fig.add(
        "heatmap", z=z, x=names, y=columns, text=text, texttemplate="%{text}", textfont={"size": 12},
        colorscale=SEQUENTIAL, zmin=0, zmax=max(0.05, max((v for r in z for v in r if v is not None), default=0.0)),
        customdata=[[None if pd.isna(c) else int(c) for c in row] for row in counts.to_numpy()], xgap=2, ygap=2,
        colorbar={"title": {"text": "Empty (%)", "side": "right"}, "tickformat": ".0%", "thickness": 14},
        hovertemplate="%{y} in %{x}<br>%{z:.2%} empty (%{customdata:,} rows)<extra></extra>")
    _style(fig, title, "Ingest (oldest first)", "Column", height=height or max(260, 120 + 26 * len(columns)),
           subtitle="Share of the rows each ingest loaded that have no value in the column.")
    return fig.update(x={"type": "category", "showgrid": False}, y={"type": "category", "showgrid": False}).figure()
