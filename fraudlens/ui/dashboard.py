"""Widgets the dashboard pages share: the filter form, KPI tiles, charts that drill down, and the
paged table of the transactions behind a selection.

Widget keys follow ``"<page>_<field>"``. A page's drill-down lives in session state under
``"<page>_drill"`` (``{"source": chart key, "extra": {key: [values]}, "label": words}``) and its
table offset under ``"<page>_offset"``; applying filters clears both, and bumps
``"<page>_generation"``, which is part of every chart key so old selections disappear with them.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from fraudlens import analytics, charts, export
from fraudlens.analytics import Filters, FilterOptions, Kpis
from fraudlens.errors import FraudLensError
from fraudlens.store import get_store
from fraudlens.ui import auth, cached, downloads

LABEL_NAMES = {"all": "All", "fraud": "Fraud", "legit": "Legitimate", "unknown": "Not labelled yet"}
PAGE_ROWS = 50
TABLE_ROWS = 15  # rows visible without scrolling inside the table
EXPORT_ROWS = 100_000
SORT_NAMES = {
    "transaction_datetime": "time", "transaction_amount": "amount", "transaction_id": "transaction id",
    "merchant_id": "merchant", "account_id": "account", "channel": "channel",
    "transaction_type": "type", "merchant_location": "region", "account_balance": "balance",
}
EXPLAIN_PAGE = "pages/explain.py"
EXPLAIN_ID = "explain_transaction_id"
TABLE_COLUMNS = {
    "transaction_id": st.column_config.TextColumn("transaction", pinned=True),
    "local_time": st.column_config.DatetimeColumn("time (local)", format="YYYY-MM-DD HH:mm:ss"),
    "transaction_amount": st.column_config.NumberColumn("amount (PEN)", format="%.2f"),
    "transaction_type": st.column_config.TextColumn("type"),
    "account_type": st.column_config.TextColumn("account type"),
    "merchant_id": st.column_config.TextColumn("merchant"),
    "merchant_location": st.column_config.TextColumn("region"),
    "account_id": st.column_config.TextColumn("account"),
    "ip_address": st.column_config.TextColumn("IP address"),
    "account_balance": st.column_config.NumberColumn("balance (PEN)", format="%.2f"),
    "account_age_days": st.column_config.NumberColumn("account age (days)"),
}
PLOTLY_CONFIG = {
    "displaylogo": False,
    "modeBarButtonsToRemove": ["lasso2d", "autoScale2d", "toggleSpikelines"],
}


# ---------------------------------------------------------------------------- filters


def _key(page: str, field: str) -> str:
    return f"{page}_{field}"


def reset_drill(page: str) -> None:
    """Forget the page's drill-down and table position, and clear the charts' selections."""
    st.session_state.pop(_key(page, "drill"), None)
    st.session_state.pop(_key(page, "seen"), None)
    st.session_state[_key(page, "offset")] = 0
    st.session_state[_key(page, "generation")] = st.session_state.get(_key(page, "generation"), 0) + 1


def keep_choices(*keys: str) -> None:
    """Remember the values of widgets a run may not draw (those in a closed tab): Streamlit
    forgets a widget's value in a run that does not draw it, unless the page sets it again."""
    for key in keys:
        if key in st.session_state:
            st.session_state[key] = st.session_state[key]


def _settle(key: str, allowed: Sequence[str]) -> None:
    """Drop remembered choices the current dataset does not have (Streamlit refuses them)."""
    if key in st.session_state:
        st.session_state[key] = [v for v in st.session_state[key] or [] if v in allowed]


def _default_period(options: FilterOptions, last_days: int | None) -> tuple[date, date]:
    first, last = options.first_date, options.last_date
    if last_days:
        first = max(first, last - timedelta(days=last_days - 1))
    return first, last


def filter_form(page: str, options: FilterOptions, *, detailed: bool = True,
                last_days: int | None = None) -> Filters | None:
    """The filter form; returns the applied Filters, or None (with a message) if they are wrong.

    ``detailed`` adds type, region, amount and label to the period and channel; ``last_days``
    makes the default period the last days of data rather than all of it.
    """
    if options.first_date is None:
        return Filters()
    dates_key = _key(page, "dates")
    span = (options.first_date, options.last_date)
    chosen = st.session_state.get(dates_key)
    if not chosen or any(not span[0] <= d <= span[1] for d in chosen):
        st.session_state[dates_key] = _default_period(options, last_days)
    for field, allowed in (("channels", options.channels), ("types", options.types),
                           ("regions", options.regions)):
        _settle(_key(page, field), allowed)
    values: dict = {}
    with st.form(_key(page, "filters"), border=True):
        columns = st.columns([2, 2, 2, 2] if detailed else [2, 3, 1])
        dates = columns[0].date_input(
            "Period (local days)", key=dates_key, min_value=span[0], max_value=span[1],
            format="YYYY-MM-DD", help="Both days included. Deltas compare with the period of the "
                                      "same length just before it.")
        values["channels"] = columns[1].multiselect(
            "Channel", options.channels, key=_key(page, "channels"), placeholder="All channels")
        if detailed:
            values["types"] = columns[2].multiselect(
                "Transaction type", options.types, key=_key(page, "types"), placeholder="All types")
            values["regions"] = columns[3].multiselect(
                "Region", options.regions, key=_key(page, "regions"), placeholder="All regions")
            more = st.columns([2, 2, 4])
            values["amount_min"] = more[0].number_input(
                "Amount from (PEN)", min_value=0.0, value=None, step=10.0, key=_key(page, "amount_min"),
                placeholder="Any", help=f"Amounts in the data: {options.amount_min:,.2f} to "
                                        f"{options.amount_max:,.2f} PEN.")
            values["amount_max"] = more[1].number_input(
                "Amount up to (PEN)", min_value=0.0, value=None, step=10.0, key=_key(page, "amount_max"),
                placeholder="Any")
            values["label"] = more[2].radio(
                "Label", list(LABEL_NAMES), key=_key(page, "label"), format_func=LABEL_NAMES.get,
                horizontal=True, help="Rows whose label is not known yet count neither for nor "
                                      "against the fraud rate.")
        submit = columns[-1] if not detailed else st
        submit.form_submit_button("Apply filters", key=_key(page, "apply"), type="primary",
                                  on_click=reset_drill, args=(page,))
    dates = tuple(dates or ())
    try:
        return Filters(date_from=dates[0] if dates else None,
                       date_until=dates[-1] if dates else None, **values)
    except FraudLensError as exc:
        st.error(f"{exc} Change the filter and apply again.")
        return None


# ---------------------------------------------------------------------------- KPI tiles


@dataclass(frozen=True)
class Tile:
    label: str
    value: str
    delta: str | None
    delta_color: str
    help: str


def compact(value: float, signed: bool = False) -> str:
    """``682839.5`` -> ``682.8k``, ``37412345`` -> ``37.4M``, ``9876`` -> ``9,876`` (tiles are narrow)."""
    sign = "+" if signed and value > 0 else ""
    size = abs(value)
    if size >= 1e6:
        return f"{sign}{value / 1e6:,.1f}M"
    if size >= 1e4:
        return f"{sign}{value / 1e3:,.1f}k"
    return f"{sign}{value:,.0f}"


def _pct(value: float, digits: int = 2) -> str:
    return "–" if value is None or math.isnan(value) else f"{value:.{digits}%}"


def _relative(now: float, before: float) -> str:
    return f" ({(now - before) / before:+.1%})" if before else ""


def _points_delta(delta: float | None, digits: int) -> tuple[str | None, bool]:
    """A change of a share in percentage points, and whether it shows as zero."""
    if delta is None or math.isnan(delta):
        return None, True
    shown = round(100 * delta, digits)
    return f"{shown:+.{digits}f} pp", shown == 0


def kpi_tiles(k: Kpis) -> list[Tile]:
    """The four headline tiles with deltas against the previous period of equal length.

    Deltas are grey when they show as zero (an arrow coloured for "+0.0" would mislead).
    """
    now, before = k.current, k.previous
    compare = (f"Compared with {k.previous_from} to {k.previous_until}." if before
               else "No data in the period before, so no comparison.")
    rate_delta, rate_flat = _points_delta(k.delta("fraud_rate"), 2)
    share_delta, share_flat = _points_delta(k.delta("labelled_share"), 1)
    amount_change = None if before is None else now.fraud_amount - before.fraud_amount
    return [
        Tile("Transactions", f"{now.transactions:,}",
             None if before is None else f"{now.transactions - before.transactions:+,}"
             + _relative(now.transactions, before.transactions),
             "off", f"Transactions from {k.date_from} to {k.date_until}. {compare}"),
        Tile("Fraud rate", _pct(now.fraud_rate), rate_delta, "off" if rate_flat else "inverse",
             "Frauds as a share of the transactions whose label is known. " + compare),
        Tile("Fraud amount (PEN)", compact(now.fraud_amount),
             None if amount_change is None else compact(amount_change, signed=True)
             + _relative(now.fraud_amount, before.fraud_amount),
             "off" if not amount_change else "inverse",
             f"Sum of the amounts of fraudulent transactions: PEN {now.fraud_amount:,.2f}. " + compare),
        Tile("Labelled share", _pct(now.labelled_share, 1), share_delta, "off" if share_flat else "normal",
             "Share of transactions whose fraud label is known; recent ones often wait for a "
             "report. " + compare),
    ]


def money_tiles(k: Kpis) -> list[Tile]:
    """Volume, losses, the share of volume lost and the average fraud, for the current period."""
    now = k.current
    return [
        Tile("Transaction volume (PEN)", compact(now.amount), None, "off",
             f"Sum of all transaction amounts in the period: PEN {now.amount:,.2f}."),
        Tile("Lost to fraud (PEN)", compact(now.fraud_amount), None, "off",
             f"Sum of the amounts of transactions labelled fraudulent: PEN {now.fraud_amount:,.2f}."),
        Tile("Share of volume lost", _pct(now.fraud_amount_share, 3), None, "off",
             "Fraud amount as a share of the transaction volume."),
        Tile("Average fraud (PEN)", f"{now.fraud_amount / now.frauds:,.0f}" if now.frauds else "–",
             None, "off", "Fraud amount divided by the number of frauds."),
    ]


def live_tiles(live: cached.LivePoint) -> list[Tile]:
    """What the live operating point catches, as measured on its model's test window."""
    return [
        Tile("Fraud amount caught (PEN)", compact(live.fraud_amount_caught), None, "off",
             f"Fraud amount the alerts catch on the model's test window: PEN "
             f"{live.fraud_amount_caught:,.2f}."),
        Tile("Alerts per day", f"{live.alerts_per_day:,.1f}", None, "off",
             "Transactions sent for review per day at this threshold."),
        Tile("Alert precision", _pct(live.precision, 1), None, "off",
             "Share of alerts that are fraud."),
    ]


def draw_tiles(tiles: Sequence[Tile]) -> None:
    for column, tile in zip(st.columns(len(tiles)), tiles):
        column.metric(tile.label, tile.value, tile.delta, delta_color=tile.delta_color,
                      help=tile.help, border=True)


def kpi_table(k: Kpis) -> pd.DataFrame:
    """The KPIs of both periods as a table, for the CSV download."""
    rows = []
    for period, figures, start, end in (("current", k.current, k.date_from, k.date_until),
                                        ("previous", k.previous, k.previous_from, k.previous_until)):
        if figures is None:
            continue
        rows.append({"period": period, "from": start, "until": end,
                     "transactions": figures.transactions, "labelled": figures.labelled,
                     "frauds": figures.frauds, "fraud_rate": figures.fraud_rate,
                     "fraud_amount_pen": round(figures.fraud_amount, 2),
                     "amount_pen": round(figures.amount, 2), "labelled_share": figures.labelled_share})
    return pd.DataFrame(rows)


# ---------------------------------------------------------------------------- charts and drill-down


def chart_key(page: str, name: str) -> str:
    return f"{page}_{name}_{st.session_state.get(_key(page, 'generation'), 0)}"


def _points(event) -> list[dict]:
    try:
        return list(event.selection.points or [])
    except AttributeError:
        return []


def _signature(points: list[dict]) -> str:
    return json.dumps([(p.get("curve_number"), p.get("point_index")) for p in points])


def draw_chart(fig: go.Figure, page: str | None = None, name: str | None = None,
               file_name: str = "fraudlens-chart") -> None:
    """Draw ``fig`` as built (our own colours and fonts); selectable when ``page``/``name`` are given.

    A selection sets the page's drill-down to the selected elements; clearing the selection of
    the chart that set it clears the drill-down. The chart toolbar's camera button saves a PNG.
    """
    config = {**PLOTLY_CONFIG, "toImageButtonOptions": {"format": "png", "filename": file_name, "scale": 2}}
    if page is None or name is None:
        st.plotly_chart(fig, theme=None, config=config)
        return
    key = chart_key(page, name)
    event = st.plotly_chart(fig, theme=None, config=config, key=key, on_select="rerun",
                            selection_mode=("points", "box"))
    points = _points(event)
    seen = st.session_state.setdefault(_key(page, "seen"), {})
    signature = _signature(points)
    if seen.get(key, "[]") == signature:
        return
    seen[key] = signature
    drill = st.session_state.get(_key(page, "drill"))
    extra = charts.selection_extra(fig, points)
    if extra:
        st.session_state[_key(page, "drill")] = {
            "source": key, "extra": extra, "label": charts.selection_label(extra)}
        st.session_state[_key(page, "offset")] = 0
    elif drill and drill.get("source") == key:
        st.session_state.pop(_key(page, "drill"), None)
        st.session_state[_key(page, "offset")] = 0


def drill(page: str) -> dict | None:
    return st.session_state.get(_key(page, "drill"))


def keep_drill_of(page: str, names: Sequence[str]) -> None:
    """Forget the page's drill-down unless one of the charts ``names`` (those on screen) set it."""
    found = drill(page)
    if found and found.get("source") not in {chart_key(page, name) for name in names}:
        reset_drill(page)


def _move(page: str, step: int) -> None:
    st.session_state[_key(page, "offset")] = max(0, st.session_state.get(_key(page, "offset"), 0) + step)


def _first_page(page: str) -> None:
    st.session_state[_key(page, "offset")] = 0


def matching_csv(home: Path, name: str, filters: Filters, extra: dict, sort: str, descending: bool,
                 masked: bool) -> Callable[[], bytes]:
    """A deferred CSV of (up to EXPORT_ROWS of) the matching transactions, made on click only."""

    def make() -> bytes:
        page = analytics.transactions_page(get_store(cached.cfg_for(home)), name, filters, extra,
                                           sort=sort, descending=descending, limit=EXPORT_ROWS)
        rows = export.mask_personal(page.rows, auth.EXECUTIVE_MASKED) if masked else page.rows
        return export.to_csv_bytes(rows)

    return make


def transactions_table(page: str, home: Path, name: str, filters: Filters, extra: dict, title: str,
                       total: analytics.PeriodFigures | None = None) -> analytics.TransactionsPage | None:
    """The matching transactions, 50 a page, with sort, Prev/Next and a CSV download.
    ``total``: the totals of ``filters`` when the page has them already (no ``extra``)."""
    tz = cached.dataset_timezone(home, name)
    if total is None or extra:
        total = cached.count_matching(home, name, filters, extra)
    st.markdown(f"**{title}** — {total.transactions:,} transactions, {total.frauds:,} frauds, "
                f"fraud amount PEN {total.fraud_amount:,.2f}")
    if not total.transactions:
        st.info("No transaction matches. Widen the filters or select another chart element.")
        return None
    controls = st.columns([2, 2, 1, 1, 3], vertical_alignment="bottom")
    sort = controls[0].selectbox("Sort by", list(SORT_NAMES), format_func=SORT_NAMES.get,
                                 key=_key(page, "sort"), on_change=_first_page, args=(page,))
    descending = controls[1].toggle("Descending", value=True, key=_key(page, "descending"),
                                    on_change=_first_page, args=(page,))
    offset = st.session_state.get(_key(page, "offset"), 0)
    result = cached.transactions_page(home, name, filters, extra, sort=sort, descending=descending,
                                      limit=PAGE_ROWS, offset=offset)
    controls[2].button("◀ Prev", key=_key(page, "prev"), disabled=offset == 0, on_click=_move,
                       args=(page, -PAGE_ROWS), width="stretch")
    controls[3].button("Next ▶", key=_key(page, "next"), disabled=not result.more, on_click=_move,
                       args=(page, PAGE_ROWS), width="stretch")
    masked = auth.masks_personal()
    downloads.file_button(
        home,
        (f"Download CSV ({total.transactions:,} rows)" if total.transactions <= EXPORT_ROWS
         else f"Download CSV (first {EXPORT_ROWS:,} of {total.transactions:,} rows)"),
        matching_csv(home, name, filters, extra, sort, descending, masked),
        f"{name}-transactions.csv", _key(page, "download"), what=f"{page.capitalize()} transactions",
        rows=min(total.transactions, EXPORT_ROWS), personal=not masked, container=controls[4],
        help="Every matching transaction (up to 100,000), in the order shown; "
             "cells a spreadsheet would run as formulas are escaped.")
    rows = auth.protect(result.rows)
    st.caption(f"Rows {result.first:,}–{result.last:,} of {total.transactions:,}. "
               f"Times in {tz} time.")
    st.dataframe(
        rows, hide_index=True, placeholder="-", height=min(TABLE_ROWS, len(rows)) * 35 + 38,
        column_config=TABLE_COLUMNS,
    )
    return result


def explain_link(page: str, ids: Sequence[str]) -> None:
    """Pick a transaction and open its explanation on the Explain page, when the role has it."""
    if not len(ids) or not auth.may_open(auth.role(), EXPLAIN_PAGE):
        return
    left, right = st.columns([2, 3], vertical_alignment="bottom")
    chosen = left.selectbox("Transaction to explain", list(ids), key=_key(page, "transaction"),
                            help="One of the transactions on this page of the table.")
    if right.button("Open its explanation", key=_key(page, "explain")):
        st.session_state[EXPLAIN_ID] = chosen
        auth.switch_page(EXPLAIN_PAGE)


def labels_note(home, name: str) -> None:
    """Say so when alert dispositions have labelled transactions these figures do not count yet."""
    n = cached.case_labels(home, name)
    if n:
        st.caption(f"Fraud figures use the labels as loaded; {n:,} label(s) set by alert dispositions are "
                   "counted by the Alerts and Monitoring pages and by the next training.")
