"""Aggregates for the dashboard pages: small tables computed in DuckDB, never a full-table load.

Every function takes the :class:`~fraudlens.store.Store`, a dataset name and a :class:`Filters`
and returns a small pandas DataFrame or a frozen dataclass. The SQL comes from ``*_sql()``
builders that return ``(sql, params)``: values are bound as ``$name`` parameters (only ENUM codes,
checked integers, are written in), and the only identifiers that enter SQL text are whitelisted
canonical columns quoted by :func:`fraudlens.schema.quote_ident`.

Conventions shared by every aggregate:

- Calendar views (days, weeks, hour of day, weekday) are in the dataset's local zone
  (``America/Lima`` unless the manifest or ``FRAUDLENS_TIMEZONE`` says otherwise); timestamps are
  stored as naive UTC. Date filters are local calendar days, both bounds inclusive.
- ``frauds`` counts rows labelled fraudulent, ``labelled`` rows with a known label, and the
  fraud rate is ``frauds / labelled`` (NaN when nothing is labelled): rows whose label is not
  known yet count neither for nor against it.
- Amounts are in the dataset's currency (PEN).
"""

from __future__ import annotations

import functools
import logging
import math
import numbers
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, fields, replace
from datetime import date, datetime, time, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd

from fraudlens import datasets
from fraudlens.errors import FraudLensError, SchemaError
from fraudlens.schema import LABEL, TYPES as SCHEMA_TYPES, quote_ident
from fraudlens.store import ENTITY_CODE, ROLLUP_AMOUNT, ROLLUP_ROWS, Rollup, Store

logger = logging.getLogger(__name__)

LABELS = ("all", "fraud", "legit", "unknown")
GRAINS = ("day", "week")
SEGMENT_COLUMNS = ("channel", "transaction_type", "account_type", "merchant_location")
ENTITY_COLUMNS = ("merchant_id", "account_id")
FILTER_COLUMNS = {"channels": "channel", "types": "transaction_type", "regions": "merchant_location"}
SORT_COLUMNS = (
    "transaction_datetime", "transaction_amount", "transaction_id", "account_id", "merchant_id",
    "channel", "transaction_type", "account_type", "merchant_location", "account_balance",
)
# Columns of a transactions page, in order; ``local_time`` and ``label`` are derived.
PAGE_COLUMNS = (
    "transaction_id", "local_time", "transaction_amount", "label", "transaction_type", "channel",
    "account_type", "merchant_id", "merchant_location", "account_id", "ip_address",
    "account_balance", "account_age_days",
)
MISSING = "(missing)"  # how a segment of rows without a value is named
AMOUNT_BINS_PER_DECADE = 4
AMOUNT_FLOOR = 0.01  # amounts below (including 0) fall in the first log bin
MAX_LIMIT = 100_000
Z_95 = 1.959963984540054

_UTC = timezone.utc


# ---------------------------------------------------------------------------------------------
# Filters
# ---------------------------------------------------------------------------------------------


def _param_error(name: str, expected: str, got: object) -> FraudLensError:
    return FraudLensError(f"The '{name}' filter must be {expected}. Got {got!r} instead.")


def _text_tuple(values: object, name: str) -> tuple[str, ...]:
    if values is None:
        return ()
    if isinstance(values, str) or not isinstance(values, Iterable):
        raise _param_error(name, "a list of text values", values)
    out = []
    for value in values:
        if not isinstance(value, str):
            raise _param_error(name, "a list of text values", values)
        out.append(value)
    return tuple(sorted(set(out)))


def _amount(value: object, name: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or value < 0:
        raise _param_error(name, "a finite number >= 0 or empty", value)
    return float(value)


def _day(value: object, name: str) -> date | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _param_error(name, "a date (YYYY-MM-DD) or empty", value)


@dataclass(frozen=True)
class Filters:
    """What the dashboard looks at; the same filters apply to every aggregate.

    Dates are local calendar days, both inclusive; an empty list of channels, types or regions
    means all of them; amounts are inclusive bounds in PEN; ``label`` keeps all rows, only
    fraud, only legitimate, or only rows whose label is not known yet. Values are checked and
    normalised (lists become sorted tuples), so equal filters compare and hash equal.
    """

    date_from: date | None = None
    date_until: date | None = None
    channels: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    amount_min: float | None = None
    amount_max: float | None = None
    label: str = "all"

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "date_from", _day(self.date_from, "date_from"))
        set_(self, "date_until", _day(self.date_until, "date_until"))
        for name in ("channels", "types", "regions"):
            set_(self, name, _text_tuple(getattr(self, name), name))
        set_(self, "amount_min", _amount(self.amount_min, "amount_min"))
        set_(self, "amount_max", _amount(self.amount_max, "amount_max"))
        if self.label not in LABELS:
            raise _param_error("label", f"one of {list(LABELS)}", self.label)
        if self.date_from and self.date_until and self.date_from > self.date_until:
            raise FraudLensError(
                f"The 'date_from' filter ({self.date_from}) must not be after 'date_until' "
                f"({self.date_until})."
            )
        if self.amount_min is not None and self.amount_max is not None \
                and self.amount_min > self.amount_max:
            raise FraudLensError(
                f"The 'amount_min' filter ({self.amount_min:g}) must not exceed 'amount_max' "
                f"({self.amount_max:g})."
            )

    def replace(self, **changes: Any) -> Filters:
        """A copy with ``changes`` applied (and checked)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        values.update(changes)
        return Filters(**values)

    def describe(self, dates: bool = True) -> str:
        """One line for captions and export headers, e.g. ``2025-01-01 to 2025-01-31; online``."""
        parts = []
        if dates and (self.date_from or self.date_until):
            parts.append(f"{self.date_from or 'start'} to {self.date_until or 'end'}")
        for values in (self.channels, self.types, self.regions):
            if values:
                parts.append(", ".join(values))
        if self.amount_min is not None or self.amount_max is not None:
            low = f"{self.amount_min:,.2f}" if self.amount_min is not None else "0"
            high = f"{self.amount_max:,.2f}" if self.amount_max is not None else "any"
            parts.append(f"amount {low} to {high} PEN")
        if self.label != "all":
            parts.append(f"label: {self.label}")
        return "; ".join(parts) or "all transactions"


# ---------------------------------------------------------------------------------------------
# SQL building blocks
# ---------------------------------------------------------------------------------------------


class _Params(dict):
    """Bound parameters of one query; :meth:`bind` returns the ``$name`` to put in the SQL."""

    def bind(self, name: str, value: Any) -> str:
        if name in self and self[name] != value:
            raise ValueError(f"parameter {name!r} bound twice with different values")
        self[name] = value
        return f"${name}"


def check_identifier(name: object, allowed: Iterable[str], what: str) -> str:
    """``name`` quoted for SQL if it is one of ``allowed``; SchemaError otherwise."""
    allowed = tuple(allowed)
    if not isinstance(name, str) or name not in allowed:
        raise SchemaError(f"The '{what}' parameter must be one of {list(allowed)}. Got {name!r} instead.")
    return quote_ident(name)


def _col(name: str) -> str:
    return quote_ident(name)


@dataclass(frozen=True)
class LocalZone:
    """The dataset's local zone, and its UTC offset if that is the same over the whole data.

    Converting with ``timezone(zone, timezone('UTC', ts))`` costs DuckDB a zone lookup per row;
    when the offset does not change over the data's span (America/Lima has kept UTC-5 since
    1994), adding the offset gives the same local time several times faster.

    ``derived`` names the values (keys of DERIVED_TYPES) the queried table holds as columns
    (see :func:`derived_columns`); SQL builders read those instead of computing them per row.
    ``enums`` gives, for the filter columns the queried table stores as ENUM, their values in
    code order (see :meth:`Store.enum_values`). ``rollups`` are the queried table's rollups whose
    calendar keys are this zone's (see :func:`_rollup`), ``amount_rows`` its rows sorted by amount
    (:meth:`Store.by_amount`) and ``amount_bins`` each amount bin's span (:meth:`Store.amount_bins`).
    ``rolled_up`` says the queried table is a rollup: counts and sums per group, not rows.
    """

    name: str
    offset_seconds: int | None = None
    derived: frozenset[str] = frozenset()
    enums: tuple[tuple[str, tuple[str, ...]], ...] = ()
    rollups: tuple[Rollup, ...] = ()
    amount_rows: str | None = None
    amount_bins: tuple[tuple[int, float, float], ...] = ()
    rolled_up: bool = False


@functools.lru_cache(maxsize=64)
def fixed_offset(tz: str, first: datetime | None, last: datetime | None) -> int | None:
    """The UTC offset of ``tz`` in seconds if it is constant from ``first`` to ``last`` (naive UTC)."""
    if first is None or last is None:
        return None
    zone = ZoneInfo(tz)
    moment = first.replace(tzinfo=_UTC) - timedelta(days=1)
    end = last.replace(tzinfo=_UTC) + timedelta(days=1)
    offsets = set()
    while moment <= end:  # zones change offset at most a few times a year, never twice a day
        offsets.add(moment.astimezone(zone).utcoffset())
        if len(offsets) > 1:
            return None
        moment += timedelta(hours=12)
    offsets.add(end.astimezone(zone).utcoffset())
    return int(offsets.pop().total_seconds()) if len(offsets) == 1 else None


def _local_ts(p: _Params, zone: LocalZone) -> str:
    """The transaction time in the local zone (naive): stored UTC -> ``zone``."""
    ts = _col("transaction_datetime")
    if zone.offset_seconds is not None:
        return f"({ts} + to_seconds({p.bind('tz_offset', zone.offset_seconds)}))"
    return f"timezone({p.bind('tz', zone.name)}, timezone('UTC', {ts}))"


def _amount_bin_expr() -> str:
    amount = _col("transaction_amount")
    return (f"CAST(floor(log10(greatest({amount}, {AMOUNT_FLOOR})) * {AMOUNT_BINS_PER_DECADE}) "
            "AS INTEGER)")


def _calendar_exprs(local: str) -> dict[str, str]:
    """Local calendar values of the naive local timestamp ``local`` (weekday 1 = Monday)."""
    return {
        "local_date": f"CAST({local} AS DATE)",
        "local_week": f"CAST(date_trunc('week', {local}) AS DATE)",
        "local_hour": f"hour({local})",
        "local_weekday": f"isodow({local})",
    }


# Values the analytics table can hold precomputed, and the narrow types they are stored as.
DERIVED_TYPES = {"local_date": "DATE", "local_hour": "UTINYINT", "local_weekday": "UTINYINT",
                 "amount_bin": "SMALLINT"}  # |bin| <= 1233 for any finite amount


def derived_columns(zone: LocalZone) -> dict[str, str]:
    """Name -> SQL of the columns to precompute in the analytics table for ``zone``.

    The amount bin always; the local calendar only when the zone's offset is fixed over the
    data, so one offset, written into the SQL, gives every row's local time.
    """
    exprs = {"amount_bin": _amount_bin_expr()}
    if zone.offset_seconds is not None:
        local = f"({_col('transaction_datetime')} + to_seconds({int(zone.offset_seconds)}))"
        calendar = _calendar_exprs(local)
        exprs.update((key, calendar[key]) for key in ("local_date", "local_hour", "local_weekday"))
    return {key: f"CAST({sql} AS {DERIVED_TYPES[key]})" for key, sql in exprs.items()}


def _count(zone: LocalZone, where: str | None = None) -> str:
    """How many rows (``where`` holds): counted, or summed over a rollup's groups."""
    if not zone.rolled_up:
        return f"count(*) FILTER (WHERE {where})" if where else "count(*)"
    total = f"sum({ROLLUP_ROWS})" + (f" FILTER (WHERE {where})" if where else "")
    return f"CAST(coalesce({total}, 0) AS BIGINT)"


def _label_counts(zone: LocalZone) -> str:
    """The per-group counts every aggregate shares."""
    label = _col(LABEL)
    amount = ROLLUP_AMOUNT if zone.rolled_up else _col("transaction_amount")
    labelled = _count(zone, f"{label} IS NOT NULL") if zone.rolled_up else f"count({label})"
    return (
        f"{_count(zone)} AS transactions, {labelled} AS labelled, "
        f"{_count(zone, label)} AS frauds, "
        f"{_amount_sum(zone, f'sum({amount}) FILTER (WHERE {label})')} AS fraud_amount, "
        f"{_amount_sum(zone, f'sum({amount})')} AS amount"
    )


def _amount_sum(zone: LocalZone, total: str) -> str:
    """``total`` or 0 when no row counts. Amounts are never negative: on a rollup, a sum less the
    same amounts taken away in another order (:func:`_bin_split`) is floored at 0, not -1e-13."""
    return f"greatest(coalesce({total}, 0), 0)" if zone.rolled_up else f"coalesce({total}, 0)"


# Every rollup has these keys, so it can apply any filter but the amount bounds.
_ROLLUP_FILTERS = frozenset(("local_date", *FILTER_COLUMNS.values(), LABEL))


def _bounded(filters: Filters) -> bool:
    return filters.amount_min is not None or filters.amount_max is not None


def _pick_rollup(zone: LocalZone, filters: Filters, keys: Iterable[str]) -> Rollup | None:
    """The rollup with the fewest groups holding ``keys`` and every filter's column; with amount
    bounds, also the amount bin and the rows sorted by amount (see :func:`_in_range`)."""
    wanted = _ROLLUP_FILTERS | set(keys)
    if _bounded(filters):
        if zone.amount_rows is None or not zone.amount_bins:
            return None
        wanted |= {"amount_bin"}
    return next((r for r in sorted(zone.rollups, key=lambda r: r.groups)
                 if wanted <= set(r.keys)), None)


def _rollup(p: _Params, table: str, zone: LocalZone, filters: Filters, keys: Iterable[str]) -> tuple[str, LocalZone]:
    """What to read for an aggregate over ``keys``, and the zone to read it in: the smallest rollup
    that can answer it, else ``table`` and ``zone``."""
    rollup = _pick_rollup(zone, filters, keys)
    if rollup is None:
        return table, zone
    source = _in_range(p, rollup, zone, filters) if _bounded(filters) else rollup.table
    return source, _rolled(zone, rollup)


def _bin_split(zone: LocalZone, filters: Filters) -> tuple[list[int], list[tuple], list[tuple]]:
    """Where the rows within the filters' amount bounds are, by each bin's smallest and largest
    amount: the bins to take whole from a rollup, the (bin, from, to) rows to add, and the
    (bin, op, bound) rows to take away (``amount op bound``, op ``<`` or ``>``).

    A bin one bound cuts is read as rows on the kept side, or, when that side is the larger
    (by log amount), taken whole less the rows on the other side: at 10M rows, at most 500 PEN
    keeps 875,747 rows of its bin and leaves 166,327."""
    low = -math.inf if filters.amount_min is None else filters.amount_min
    high = math.inf if filters.amount_max is None else filters.amount_max
    inside, edges, minus = [], [], []
    for b, lowest, highest in zone.amount_bins:
        if highest < low or lowest > high:
            continue
        if low <= lowest and highest <= high:
            inside.append(b)
        elif _mostly_kept(lowest, highest, low, high):
            inside.append(b)
            minus.append((b, "<", low) if low > lowest else (b, ">", high))
        else:
            edges.append((b, max(low, lowest), min(high, highest)))
    return inside, edges, minus


def _mostly_kept(lowest: float, highest: float, low: float, high: float) -> bool:
    """Whether one bound cuts the bin [lowest, highest] and keeps most of its log-amount span."""
    if (low > lowest) == (high < highest) or lowest <= 0:
        return False
    span = math.log(highest) - math.log(lowest)
    kept = math.log(highest) - math.log(low) if low > lowest else math.log(high) - math.log(lowest)
    return kept > span / 2


def _whole_bins(inside: list[int]) -> str:
    return f"{_col('amount_bin')} IN ({', '.join(map(str, inside))})" if inside else "false"


def _edge_rows(p: _Params, b: int, start: float, stop: float) -> list[str]:
    """The rows of bin ``b`` from ``start`` to ``stop``: on the rows sorted by amount, the
    bounds skip every other row group."""
    name = f"bin{int(b)}".replace("-", "m")  # a parameter name: bin -8 is bin_m8
    amount = _col("transaction_amount")
    return [f"{_col('amount_bin')} = {int(b)}", f"{amount} >= {p.bind(f'{name}_from', start)}",
            f"{amount} <= {p.bind(f'{name}_to', stop)}"]


def _minus_rows(p: _Params, b: int, op: str, bound: float) -> list[str]:
    """The rows of bin ``b`` with ``amount op bound``: the side of a cut bin a bound leaves out."""
    name = f"bin{int(b)}_{'below' if op == '<' else 'above'}".replace("-", "m")
    return [f"{_col('amount_bin')} = {int(b)}", f"{_col('transaction_amount')} {op} {p.bind(name, bound)}"]


def _in_range(p: _Params, rollup: Rollup, zone: LocalZone, filters: Filters) -> str:
    """The rollup's groups of the amount bins it takes whole, the rows of the bins the bounds
    cut, and minus the rows a whole cut bin must lose (see :func:`_bin_split`). Groups can net to
    zero rows: the queries over this drop them (:func:`_having_rows`)."""
    keys = ", ".join(map(_col, rollup.keys))
    inside, edges, minus = _bin_split(zone, filters)
    amount = _col("transaction_amount")
    parts = [f"SELECT {keys}, {ROLLUP_ROWS}, {ROLLUP_AMOUNT} FROM {rollup.table} WHERE {_whole_bins(inside)}"]
    parts += [f"SELECT {keys}, 1 AS {ROLLUP_ROWS}, {amount} AS {ROLLUP_AMOUNT} "
              f"FROM {zone.amount_rows} {_where_sql(_edge_rows(p, *edge))}" for edge in edges]
    parts += [f"SELECT {keys}, -1 AS {ROLLUP_ROWS}, -{amount} AS {ROLLUP_AMOUNT} "
              f"FROM {zone.amount_rows} {_where_sql(_minus_rows(p, *cut))}" for cut in minus]
    return "(" + " UNION ALL ".join(parts) + ") AS in_range"


def _having_rows(zone: LocalZone) -> str:
    """On a rollup, only groups with rows: rows taken away can leave a group at zero."""
    return f" HAVING {_count(zone)} > 0" if zone.rolled_up else ""


def _rolled(zone: LocalZone, rollup: Rollup) -> LocalZone:
    """The zone to query ``rollup`` in."""
    return replace(zone, derived=zone.derived & set(rollup.keys), rollups=(), amount_rows=None,
                   amount_bins=(), rolled_up=True)


def local_day_start_utc(day: date, tz: str) -> datetime:
    """Local midnight of ``day`` in ``tz`` as a naive UTC datetime (how times are stored)."""
    return datetime.combine(day, time(), ZoneInfo(tz)).astimezone(_UTC).replace(tzinfo=None)


def _where(p: _Params, filters: Filters, zone: LocalZone) -> list[str]:
    if zone.rolled_up:
        return _rollup_where(p, filters, zone)
    clauses = []
    ts = _col("transaction_datetime")
    # Bounds in stored UTC, so Parquet row-group statistics on the raw column can skip data.
    start = _day_start(filters.date_from, zone)
    if start is not None:
        clauses.append(f"{ts} >= {p.bind('utc_from', start)}")
    end = _day_start(filters.date_until + timedelta(days=1), zone) if filters.date_until and \
        filters.date_until < date.max else None
    if end is not None:
        clauses.append(f"{ts} < {p.bind('utc_until', end)}")
    clauses += _value_where(p, filters, zone)
    amount = _col("transaction_amount")
    if filters.amount_min is not None:
        clauses.append(f"{amount} >= {p.bind('amount_min', filters.amount_min)}")
    if filters.amount_max is not None:
        clauses.append(f"{amount} <= {p.bind('amount_max', filters.amount_max)}")
    return clauses


def _day_start(day: date | None, zone: LocalZone) -> datetime | None:
    """Local midnight of ``day`` in UTC; None (no bound) without a day, or for a day so near the
    calendar's ends that its midnight falls outside it: every stored time is on its side."""
    if day is None:
        return None
    try:
        return local_day_start_utc(day, zone.name)
    except OverflowError:
        return None


def _rollup_where(p: _Params, filters: Filters, zone: LocalZone) -> list[str]:
    """The filters on a rollup: dates on its local day (the same rows, as its zone's offset is
    fixed). Amount bounds were applied in building the source (see :func:`_rollup`)."""
    day = _col("local_date")
    clauses = []
    if filters.date_from:
        clauses.append(f"{day} >= {p.bind('day_from', filters.date_from)}")
    if filters.date_until:
        clauses.append(f"{day} <= {p.bind('day_until', filters.date_until)}")
    return clauses + _value_where(p, filters, zone)


def _value_where(p: _Params, filters: Filters, zone: LocalZone) -> list[str]:
    """The filters on channels, types, regions and the label."""
    clauses = []
    for name, column in FILTER_COLUMNS.items():
        values = getattr(filters, name)
        if values:
            clauses.append(_one_of(p, name, column, values, dict(zone.enums).get(column)))
    label = _col(LABEL)
    clauses += {"all": [], "fraud": [f"{label}"], "legit": [f"NOT {label}"],
                "unknown": [f"{label} IS NULL"]}[filters.label]
    return clauses


def _one_of(p: _Params, name: str, column: str, values: Sequence[str], enum: Sequence[str] | None) -> str:
    """``column`` is one of ``values``: several values on an ENUM column compare its codes (see
    :meth:`Store.enum_values`); one value is an equality DuckDB pushes into the scan."""
    if enum is None or len(values) == 1:
        return f"list_contains({p.bind(name, list(values))}, {_col(column)})"
    codes = sorted({enum.index(v) for v in values if v in enum})
    return f"enum_code({_col(column)}) IN ({', '.join(map(str, codes))})" if codes else "false"


def _where_sql(clauses: list[str]) -> str:
    return ("WHERE " + " AND ".join(f"({c})" for c in clauses)) if clauses else ""


# Drill-down keys: a chart element selects rows where one of these equals a value.
_CATEGORICAL_DRILLS = (*SEGMENT_COLUMNS, *ENTITY_COLUMNS, "ip_address", "transaction_id")
DRILL_KEYS = (*_CATEGORICAL_DRILLS, "local_date", "local_week", "local_hour", "local_weekday",
              "amount_bin")
_ID_DRILLS = (*ENTITY_COLUMNS, "ip_address")  # may be large ENUMs in the analytics table
ID_EQUALITIES = 64  # drill-downs on up to this many ids are OR-ed equalities


def _drill_expr(p: _Params, key: str, zone: LocalZone) -> str:
    """The SQL of a drill-down key: a stored or derived column, else computed per row."""
    if key in _CATEGORICAL_DRILLS or key in zone.derived:
        return _col(key)
    if key == "amount_bin":
        return _amount_bin_expr()
    if key == "local_week" and "local_date" in zone.derived:
        return _calendar_exprs(_col("local_date"))[key]  # a date's week starts the same Monday
    return _calendar_exprs(_local_ts(p, zone))[key]


def _drill_value(key: str, value: object) -> object:
    if value is None:
        return None
    if key in ("local_date", "local_week"):
        return _day(value, key)
    if key in ("local_hour", "local_weekday", "amount_bin"):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or value != int(value):
            raise _param_error(key, "a whole number", value)
        return int(value)
    if not isinstance(value, str):
        raise _param_error(key, "a text value", value)
    return value


def normalise_extra(extra: Mapping[str, object] | None) -> tuple[tuple[str, tuple], ...]:
    """Drill-down equalities as sorted ``((key, (value, ...)), ...)``, checked against DRILL_KEYS.

    A value may be one value or a list (any of them matches); ``None`` (or ``"(missing)"`` for a
    text key) matches rows without a value.
    """
    out = []
    for key, value in sorted((extra or {}).items(), key=lambda kv: str(kv[0])):
        check_identifier(key, DRILL_KEYS, "extra")
        values = value if isinstance(value, (list, tuple, set, frozenset)) else [value]
        if not values:
            raise _param_error(key, "one value or a non-empty list", value)
        cleaned = {None if v == MISSING else _drill_value(key, v) for v in values}
        out.append((key, tuple(sorted(cleaned, key=lambda v: (v is not None, str(v))))))
    return tuple(out)


def _extra_where(p: _Params, extra: Mapping[str, object] | None, zone: LocalZone) -> list[str]:
    clauses = []
    for n, (key, values) in enumerate(normalise_extra(extra)):
        expr = _drill_expr(p, key, zone)
        known = [v for v in values if v is not None]
        parts = []
        if known and key in _ID_DRILLS and len(known) <= ID_EQUALITIES:
            # Ids may be a large ENUM: an equality casts its one value, list_contains every row.
            parts += [f"{expr} = {p.bind(f'extra_{n}_{i}', v)}" for i, v in enumerate(known)]
        elif known:
            parts.append(f"list_contains({p.bind(f'extra_{n}', known)}, {expr})")
        if len(known) < len(values):
            parts.append(f"{expr} IS NULL")
        clauses.append(" OR ".join(parts))
    return clauses


# ---------------------------------------------------------------------------------------------
# Wilson interval (pure)
# ---------------------------------------------------------------------------------------------


def wilson_interval(successes, trials, z: float = Z_95) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval for a binomial proportion ``successes / trials``.

    Parameters
    ----------
    successes, trials : int or array-like of shape (n,)
        Counts with ``0 <= successes <= trials``.
    z : float
        Normal quantile; the default gives a 95% interval.

    Returns
    -------
    (low, high) : float or ndarray of shape (n,)
        The bounds, in [0, 1]; NaN where ``trials`` is 0.
    """
    k = np.asarray(successes, dtype=float)
    n = np.asarray(trials, dtype=float)
    if np.any(k < 0) or np.any(n < 0) or np.any(k > n):
        raise FraudLensError(
            "The 'successes' and 'trials' parameters must satisfy 0 <= successes <= trials. "
            f"Got {successes!r} and {trials!r} instead."
        )
    with np.errstate(divide="ignore", invalid="ignore"):
        phat = k / n
        z2 = z * z
        denom = 1 + z2 / n
        centre = (phat + z2 / (2 * n)) / denom
        half = z * np.sqrt(phat * (1 - phat) / n + z2 / (4 * n * n)) / denom
        # Exactly 0 with no success and 1 with no failure (rounding would leave 1e-17 or 1 - 1e-16).
        low = np.where(n > 0, np.where(k == 0, 0.0, np.clip(centre - half, 0.0, 1.0)), np.nan)
        high = np.where(n > 0, np.where(k == n, 1.0, np.clip(centre + half, 0.0, 1.0)), np.nan)
    if low.ndim == 0:
        return float(low), float(high)
    return low, high


_COUNT_COLUMNS = ("transactions", "labelled", "frauds")


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for column in _COUNT_COLUMNS:
        if column in frame:
            frame[column] = frame[column].fillna(0).astype("int64")
    for column in ("fraud_amount", "amount"):
        if column in frame:
            frame[column] = frame[column].fillna(0.0).astype("float64")
    return frame


_AMOUNT_COLUMNS = ("fraud_amount", "amount")


def _rated(frame: pd.DataFrame, keys: dict[str, np.ndarray] | None = None,
           at: np.ndarray | None = None) -> pd.DataFrame:
    """``frame`` with its counts typed (as :func:`_typed`) and ``fraud_rate`` (frauds / labelled,
    NaN without labels) with its Wilson bounds added, built as one new frame: column by column,
    each pandas operation costs ~0.1 ms and finishing an aggregate took several ms.

    With ``keys`` (the key columns of every row wanted, in order) and ``at`` (the row of each of
    ``frame``'s rows among them; -1 drops it), the label counts are placed there, zeros elsewhere:
    a reindex. ``frame`` then holds only the label counts besides the keys.
    """
    out: dict[str, object] = dict(keys) if keys is not None else {}
    size = len(frame) if keys is None else len(next(iter(keys.values())))
    kept = None if at is None else at >= 0
    for column in frame.columns:
        if keys is not None and column in keys:
            continue
        if column not in _COUNT_COLUMNS and column not in _AMOUNT_COLUMNS:
            if keys is not None:
                raise ValueError(f"column {column!r} cannot be placed by key")
            out[column] = frame[column]
            continue
        values = np.nan_to_num(frame[column].to_numpy(dtype="float64", na_value=np.nan), nan=0.0)
        if at is not None:
            placed = np.zeros(size)
            placed[at[kept]] = values[kept]
            values = placed
        out[column] = values.astype("int64") if column in _COUNT_COLUMNS else values
    frauds = np.asarray(out["frauds"], dtype=float)
    labelled = np.asarray(out["labelled"], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["fraud_rate"] = np.where(labelled > 0, frauds / labelled, np.nan)
    out["ci_low"], out["ci_high"] = wilson_interval(frauds, labelled)
    return pd.DataFrame(out, index=frame.index if keys is None else None)


# ---------------------------------------------------------------------------------------------
# Dataset context
# ---------------------------------------------------------------------------------------------


def _parse_utc(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text).replace(" ", "T", 1)).replace(tzinfo=None)
    except ValueError:
        return None


def dataset_zone(store: Store, dataset: str) -> LocalZone:
    """The dataset's local zone (its manifest's, else the settings'), with its offset if fixed."""
    info = datasets.read(store.home, dataset)
    tz = info.timezone or store.cfg.timezone
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise FraudLensError(
            f"The time zone {tz!r} of dataset '{dataset}' is not known; set FRAUDLENS_TIMEZONE "
            "to a zone such as America/Lima."
        ) from None
    return LocalZone(tz, fixed_offset(tz, _parse_utc(info.first), _parse_utc(info.last)))


def _run(store: Store, name: str, dataset: str, build) -> pd.DataFrame:
    """Build ``(sql, params)`` for the dataset's zone and run it on its analytics table (the
    Parquet view when the dataset has none); return a DataFrame."""
    zone = dataset_zone(store, dataset)
    return _plain_text(_query_analytics(store, name, dataset, zone, build))


def prepare(store: Store, dataset: str) -> str:
    """Build the dataset's analytics table now, with the derived columns its zone needs (what the
    first aggregate would otherwise wait for: ~13 s at 10M rows); returns the table aggregates read."""
    return store.analytics_table(dataset, derived_columns(dataset_zone(store, dataset)))


def _query_analytics(store: Store, name: str, dataset: str, zone: LocalZone, build, rows=False):
    """``build(table, zone)`` on the analytics table, told which derived columns it may read
    (those whose SQL is what ``zone`` needs: a table built for another zone has none)."""
    wanted = derived_columns(zone)

    def on(table: str) -> tuple[str, dict]:
        have = store.derived_columns(dataset, table)
        usable = frozenset(k for k, sql in have.items() if wanted.get(k) == sql)
        enums = tuple((c, values) for c in FILTER_COLUMNS.values()
                      if (values := store.enum_values(dataset, table, c)) is not None)
        # A rollup's calendar keys are the table's derived columns: usable when those are.
        rollups = tuple(r for r in store.rollups(dataset, table)
                        if usable.issuperset(k for k in r.keys if k in DERIVED_TYPES))
        by_amount = store.by_amount(dataset, table)
        bins = store.amount_bins(dataset, table) if "amount_bin" in usable else ()
        return build(table, replace(zone, derived=usable, enums=enums, rollups=rollups, amount_bins=bins,
                                    amount_rows=by_amount if by_amount != table else None))

    return store.query_analytics(name, dataset, on, rows=rows, derived=wanted)


def _plain_text(frame: pd.DataFrame) -> pd.DataFrame:
    """ENUM columns arrive as categoricals: make them text, typed as from the Parquet view
    (pandas infers ``str`` from the values, ``object`` when there are none)."""
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.CategoricalDtype):
            frame[column] = frame[column].to_numpy(dtype=object)
    return frame


# ---------------------------------------------------------------------------------------------
# Filter options
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FilterOptions:
    """What the filter widgets offer: distinct values, the local date span, the amount range."""

    rows: int
    channels: tuple[str, ...]
    types: tuple[str, ...]
    regions: tuple[str, ...]
    first_date: date | None
    last_date: date | None
    amount_min: float | None
    amount_max: float | None


def filter_options_sql(table: str, zone: LocalZone) -> tuple[str, dict]:
    p = _Params()
    lists = ", ".join(
        f"array_agg(DISTINCT {_col(c)} ORDER BY {_col(c)}) FILTER (WHERE {_col(c)} IS NOT NULL) AS {c}"
        for c in ("channel", "transaction_type", "merchant_location")
    )
    amount = _col("transaction_amount")
    if "local_date" in zone.derived:
        first, last = f"min({_col('local_date')})", f"max({_col('local_date')})"
    else:
        local = _local_ts(p, zone)
        first, last = f"CAST(min({local}) AS DATE)", f"CAST(max({local}) AS DATE)"
    sql = (f"SELECT count(*) AS rows, {lists}, {first} AS first_date, {last} AS last_date, "
           f"min({amount}) AS amount_min, max({amount}) AS amount_max FROM {table}")
    return sql, dict(p)


_OPTIONS: dict[tuple, FilterOptions] = {}
_OPTIONS_KEPT = 16
_OPTIONS_LOCK = threading.Lock()


def filter_options(store: Store, dataset: str) -> FilterOptions:
    """Distinct channels, types and regions, the local date span and the amount range.

    Kept per dataset version and part files (a version's rows never change): every page with
    filters asks for them first, and at 10M rows the scan takes ~0.4 s.
    """
    info = datasets.read(store.home, dataset)
    zone = dataset_zone(store, dataset)
    key = (str(store.home), dataset, info.version, info.files, zone.name)
    with _OPTIONS_LOCK:
        if key in _OPTIONS:
            return _OPTIONS[key]
    options = _scan_filter_options(store, dataset, zone)
    with _OPTIONS_LOCK:
        _OPTIONS[key] = options
        while len(_OPTIONS) > _OPTIONS_KEPT:
            _OPTIONS.pop(next(iter(_OPTIONS)))
    return options


def _scan_filter_options(store: Store, dataset: str, zone: LocalZone) -> FilterOptions:
    (rows, channels, types, regions, first, last, low, high), = _query_analytics(
        store, "filter_options", dataset, zone, filter_options_sql, rows=True)
    return FilterOptions(
        rows=int(rows), channels=tuple(channels or ()), types=tuple(types or ()),
        regions=tuple(regions or ()), first_date=first, last_date=last,
        amount_min=None if low is None else float(low), amount_max=None if high is None else float(high),
    )


# ---------------------------------------------------------------------------------------------
# KPIs
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PeriodFigures:
    """Totals of one period."""

    transactions: int = 0
    labelled: int = 0
    frauds: int = 0
    fraud_amount: float = 0.0
    amount: float = 0.0

    @property
    def fraud_rate(self) -> float:
        """Frauds / labelled transactions; NaN when nothing is labelled."""
        return self.frauds / self.labelled if self.labelled else float("nan")

    @property
    def labelled_share(self) -> float:
        """Labelled / all transactions; NaN without transactions."""
        return self.labelled / self.transactions if self.transactions else float("nan")

    @property
    def fraud_amount_share(self) -> float:
        """Fraud amount / all amount; NaN when the amount is 0."""
        return self.fraud_amount / self.amount if self.amount else float("nan")


KPI_NAMES = ("transactions", "fraud_rate", "fraud_amount", "labelled_share")


@dataclass(frozen=True)
class Kpis:
    """Headline figures of a period and of the period of equal length just before it.

    ``previous`` is None when the data hold no transaction in the previous period (so there is
    nothing to compare with); ``days`` is the period's length in days.
    """

    date_from: date | None
    date_until: date | None
    previous_from: date | None
    previous_until: date | None
    current: PeriodFigures
    previous: PeriodFigures | None

    @property
    def days(self) -> int:
        if self.date_from is None or self.date_until is None:
            return 0
        return (self.date_until - self.date_from).days + 1

    def delta(self, name: str) -> float | None:
        """Current minus previous for one of KPI_NAMES; None without a previous period or when
        either side is undefined (NaN)."""
        if name not in KPI_NAMES:
            raise FraudLensError(f"The 'name' parameter must be one of {list(KPI_NAMES)}. Got {name!r} instead.")
        if self.previous is None:
            return None
        now, before = getattr(self.current, name), getattr(self.previous, name)
        if isinstance(now, float) and math.isnan(now) or isinstance(before, float) and math.isnan(before):
            return None
        return now - before


def period_bounds(filters: Filters, options: FilterOptions) -> tuple[date | None, date | None]:
    """The filters' dates, open ends closed with the data's first and last local day."""
    return filters.date_from or options.first_date, filters.date_until or options.last_date


def kpis_sql(table: str, zone: LocalZone, filters: Filters, previous_from: date | None) -> tuple[str, dict]:
    """One scan over the previous and the current period; rows ``period = 'current'|'previous'``.

    ``filters`` must have both dates; the previous period runs from ``previous_from`` to the day
    before ``filters.date_from``.
    """
    p = _Params()
    table, zone = _rollup(p, table, zone, filters, ())
    if previous_from is None:
        period, scanned = "'current'", filters
    else:
        if zone.rolled_up:
            before = f"{_col('local_date')} < {p.bind('current_day', filters.date_from)}"
        else:
            start = local_day_start_utc(filters.date_from, zone.name)
            before = f"{_col('transaction_datetime')} < {p.bind('current_from', start)}"
        period = f"CASE WHEN {before} THEN 'previous' ELSE 'current' END"
        scanned = filters.replace(date_from=previous_from)
    sql = (f"SELECT {period} AS period, {_label_counts(zone)} FROM {table} "
           f"{_where_sql(_where(p, scanned, zone))} GROUP BY 1{_having_rows(zone)}")
    return sql, dict(p)


def kpis(store: Store, dataset: str, filters: Filters) -> Kpis:
    """Transactions, fraud rate, fraud amount and labelled share, against the previous period.

    The previous period has the same number of days and ends the day before ``date_from``.
    Open date bounds are the data's first and last local day.
    """
    if filters.date_from and filters.date_until:  # the pages always give both: no extra scan
        start, end = filters.date_from, filters.date_until
    else:
        start, end = period_bounds(filters, filter_options(store, dataset))
    if start is None or end is None:  # empty dataset
        return Kpis(None, None, None, None, PeriodFigures(), None)
    current = filters.replace(date_from=start, date_until=end)
    days = (end - start).days + 1
    try:
        prev = (start - timedelta(days=days), start - timedelta(days=1))
    except OverflowError:  # a period from the calendar's first days has none before it
        prev = (None, None)
    # As tuples: two rows do not need a DataFrame (building one cost as much as the query at 1M).
    found = _query_analytics(store, "kpis", dataset, dataset_zone(store, dataset),
                             lambda t, zone: kpis_sql(t, zone, current, prev[0]), rows=True)
    figures = {period: PeriodFigures(
        transactions=int(transactions), labelled=int(labelled), frauds=int(frauds),
        fraud_amount=float(fraud_amount), amount=float(amount))
        for period, transactions, labelled, frauds, fraud_amount, amount in found}
    return Kpis(start, end, prev[0], prev[1], figures.get("current", PeriodFigures()),
                figures.get("previous"))


# ---------------------------------------------------------------------------------------------
# Time series and calendar
# ---------------------------------------------------------------------------------------------


def daily_series_sql(table: str, zone: LocalZone, filters: Filters, grain: str) -> tuple[str, dict]:
    if grain not in GRAINS:
        raise FraudLensError(f"The 'grain' parameter must be one of {list(GRAINS)}. Got {grain!r} instead.")
    p = _Params()
    table, zone = _rollup(p, table, zone, filters, ("local_date",))
    period = _drill_expr(p, "local_date" if grain == "day" else "local_week", zone)
    sql = (f"SELECT {period} AS period, {_label_counts(zone)} FROM {table} "
           f"{_where_sql(_where(p, filters, zone))} GROUP BY 1{_having_rows(zone)} ORDER BY 1")
    return sql, dict(p)


def daily_series(store: Store, dataset: str, filters: Filters, grain: str = "day") -> pd.DataFrame:
    """Per local day (or week starting Monday): counts, frauds, fraud amount and fraud rate.

    Returns
    -------
    DataFrame, one row per period from the filters' first to last day (periods without a
    transaction included, with zeros): ``period`` (date; a week is named by its Monday),
    ``transactions``, ``labelled``, ``frauds``, ``fraud_amount``, ``amount``, ``fraud_rate``,
    ``ci_low``, ``ci_high``, ``days`` (how many of the period's days lie in the range: a first or
    last week with fewer than 7 is partial, and its totals are not comparable with full weeks).
    """
    frame = _run(store, f"daily_series_{grain}", dataset,
                 lambda t, zone: daily_series_sql(t, zone, filters, grain))
    span = None
    if grain == "week" and (filters.date_from is None or filters.date_until is None):
        span = _data_days(daily_series(store, dataset, filters, "day"))
    return _finish_series(frame, filters, grain, span)


def _data_days(daily: pd.DataFrame) -> tuple[date, date] | None:
    """First and last day with a transaction in a daily series (a week names only its Monday)."""
    days = daily.loc[daily["transactions"] > 0, "period"]
    return (days.min(), days.max()) if len(days) else None


def _finish_series(frame: pd.DataFrame, filters: Filters, grain: str,
                   span: tuple[date, date] | None) -> pd.DataFrame:
    """Periods from the filters' (or the data's) first to last day, empty ones as zeros."""
    frame["period"] = pd.to_datetime(frame["period"])
    start, end = filters.date_from, filters.date_until
    if start is None or end is None:
        if frame.empty:
            return _rated(frame.assign(period=frame["period"].dt.date)).assign(days=0)
        if grain == "week" and span is not None:
            start, end = start or span[0], end or span[1]
        start = start or frame["period"].min().date()
        end = end or frame["period"].max().date()
    first, last = start, end
    if grain == "week":
        start = start - timedelta(days=start.weekday())
        end = end - timedelta(days=end.weekday())
    full = pd.date_range(start, end, freq="D" if grain == "day" else "W-MON")
    frame = _rated(frame, {"period": full.date}, full.get_indexer(frame["period"]))
    frame["days"] = [_days_inside(p, 1 if grain == "day" else 7, first, last) for p in frame["period"]]
    return frame


def _days_inside(period: date, length: int, first: date, last: date) -> int:
    lo, hi = max(period, first), min(period + timedelta(days=length - 1), last)
    return max(0, (hi - lo).days + 1)


WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def hour_weekday_sql(table: str, zone: LocalZone, filters: Filters) -> tuple[str, dict]:
    p = _Params()
    table, zone = _rollup(p, table, zone, filters, ("local_weekday", "local_hour"))
    weekday, hour = _drill_expr(p, "local_weekday", zone), _drill_expr(p, "local_hour", zone)
    sql = (f"SELECT {weekday} AS weekday, {hour} AS hour, {_label_counts(zone)} "
           f"FROM {table} {_where_sql(_where(p, filters, zone))} GROUP BY 1, 2{_having_rows(zone)}")
    return sql, dict(p)


def hour_weekday_heatmap(store: Store, dataset: str, filters: Filters) -> pd.DataFrame:
    """Fraud rate and counts per local weekday (1 = Monday) and hour (0-23).

    Returns
    -------
    DataFrame of 168 rows (every cell, zeros where empty): ``weekday``, ``hour``,
    ``transactions``, ``labelled``, ``frauds``, ``fraud_amount``, ``amount``, ``fraud_rate``,
    ``ci_low``, ``ci_high``.
    """
    frame = _run(store, "hour_weekday", dataset, lambda t, zone: hour_weekday_sql(t, zone, filters))
    return _finish_heatmap(frame)


def _finish_heatmap(frame: pd.DataFrame) -> pd.DataFrame:
    """Every cell of the week, Monday 0:00 first; a cell seen twice is an error, not a sum."""
    weekday = frame["weekday"].to_numpy(dtype="int64")
    hour = frame["hour"].to_numpy(dtype="int64")
    at = (weekday - 1) * 24 + hour
    if len(np.unique(at)) != len(at):
        raise ValueError("the heatmap has a cell twice")
    grid = {"weekday": np.repeat(np.arange(1, 8), 24), "hour": np.tile(np.arange(24), 7)}
    return _rated(frame, grid, at)


# ---------------------------------------------------------------------------------------------
# Segments, regions, entities
# ---------------------------------------------------------------------------------------------


def segments_sql(table: str, zone: LocalZone, filters: Filters, by: str) -> tuple[str, dict]:
    column = check_identifier(by, SEGMENT_COLUMNS, "by")
    p = _Params()
    table, zone = _rollup(p, table, zone, filters, (by,))
    sql = (f"SELECT {column} AS segment, {_label_counts(zone)} FROM {table} "
           f"{_where_sql(_where(p, filters, zone))} GROUP BY 1{_having_rows(zone)} "
           "ORDER BY transactions DESC, segment")
    return sql, dict(p)


def segments(store: Store, dataset: str, filters: Filters, by: str) -> pd.DataFrame:
    """Counts, frauds and the fraud rate with its Wilson 95% interval per value of ``by``.

    Parameters
    ----------
    by : one of SEGMENT_COLUMNS

    Returns
    -------
    DataFrame, one row per value (``"(missing)"`` for rows without one), most transactions first:
    ``segment``, ``transactions``, ``labelled``, ``frauds``, ``fraud_amount``, ``amount``,
    ``fraud_rate``, ``ci_low``, ``ci_high``.
    """
    frame = _run(store, f"segments_{by}", dataset, lambda t, zone: segments_sql(t, zone, filters, by))
    return _finish_segments(frame)


def _finish_segments(frame: pd.DataFrame) -> pd.DataFrame:
    frame["segment"] = frame["segment"].astype(object).where(frame["segment"].notna(), MISSING)
    return _rated(frame)


def region_breakdown(store: Store, dataset: str, filters: Filters) -> pd.DataFrame:
    """:func:`segments` by ``merchant_location``, largest fraud amount first."""
    return _by_fraud_amount(segments(store, dataset, filters, "merchant_location"))


def _by_fraud_amount(frame: pd.DataFrame) -> pd.DataFrame:
    """Largest fraud amount first, to the micro-unit (see _RANKING), then most transactions."""
    rank = frame["fraud_amount"].round(6)
    order = np.lexsort((-frame["transactions"].to_numpy(), -rank.to_numpy()))  # stable: last key first
    return frame.iloc[order].reset_index(drop=True)


def _check_n(n: object) -> int:
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= 1000:
        raise FraudLensError(f"The 'n' parameter must be an integer in [1, 1000]. Got {n!r} instead.")
    return int(n)


# Ranked by fraud amount to the micro-unit: sums of the same amounts added in another order (another
# table, another thread) differ in their last bits, and equal totals must tie to the id.
_RANKING = "round(fraud_amount, 6)"


def _ranked_sql(p: _Params, frauds: str, zone: LocalZone, filters: Filters, column: str, n: int,
                entity: str) -> str:
    """The n values of ``column`` with the largest fraud amount, ranked on the fraud rows alone
    (under 1% of rows: a small group by instead of one over every account)."""
    clauses = [*_where(p, filters, zone), f"{column} IS NOT NULL", _col(LABEL)]
    return (f"SELECT {entity} AS entity, coalesce(sum({_col('transaction_amount')}), 0) AS fraud_amount "
            f"FROM {frauds} {_where_sql(clauses)} GROUP BY {column} "
            f"ORDER BY {_RANKING} DESC, {column} LIMIT {p.bind('n', _check_n(n))}")


def _counted_sql(p: _Params, table: str, zone: LocalZone, filters: Filters, column: str, winners: str) -> str:
    """Every matching row's counts for the winners; text out (pandas would turn an id ENUM into
    a Categorical of every id, ~0.1 s at 10M rows)."""
    clauses = [*_where(p, filters, zone), winners]
    return (f"SELECT CAST({column} AS VARCHAR) AS entity, {_label_counts(zone)} FROM {table} "
            f"{_where_sql(clauses)} GROUP BY {column} ORDER BY {_RANKING} DESC, entity")


def top_entities_sql(table: str, zone: LocalZone, filters: Filters, by: str, n: int,
                     frauds: str | None = None) -> tuple[str, dict]:
    """Rank (on ``frauds``, a table of ``table``'s fraud rows, default ``table``), then count all
    rows of the n winners only, in one query (ids stored as ENUM take two: :func:`top_codes_sql`)."""
    column = check_identifier(by, ENTITY_COLUMNS, "by")
    p = _Params()
    ranked = _ranked_sql(p, frauds or table, zone, filters, column, n, column)
    counted = _counted_sql(p, table, zone, filters, column, f"{column} IN (SELECT entity FROM ranked)")
    return f"WITH ranked AS ({ranked}) {counted}", dict(p)


def top_codes_sql(frauds: str, zone: LocalZone, filters: Filters, by: str, n: int) -> tuple[str, dict]:
    """The ENUM codes of the n winners (``by`` stored as ENUM)."""
    column = check_identifier(by, ENTITY_COLUMNS, "by")
    p = _Params()
    return _ranked_sql(p, frauds, zone, filters, column, n, f"enum_code({column})"), dict(p)


def top_counts_sql(table: str, zone: LocalZone, filters: Filters, by: str, codes: list[int],
                   coded: bool = False) -> tuple[str, dict]:
    """The winners' counts, found by ENUM code: a list of integer constants is a filter on the
    scan, ~4x faster than a semi-join against the ranking at 10M rows. ``coded``: ``table`` holds
    the code as a column of its own, sorted (:meth:`Store.entity_rows`)."""
    column = check_identifier(by, ENTITY_COLUMNS, "by")
    p = _Params()
    code = ENTITY_CODE if coded else f"enum_code({column})"
    winners = f"{code} IN ({', '.join(str(int(c)) for c in codes)})" if codes else "false"
    return _counted_sql(p, table, zone, filters, column, winners), dict(p)


def top_entities(store: Store, dataset: str, filters: Filters, by: str = "merchant_id",
                 n: int = 20) -> pd.DataFrame:
    """The ``n`` merchants or accounts with the largest fraud amount (those with any fraud).

    Returns
    -------
    DataFrame of at most ``n`` rows, largest fraud amount first: ``entity``, ``transactions``,
    ``labelled``, ``frauds``, ``fraud_amount``, ``amount``, ``fraud_rate``, ``ci_low``, ``ci_high``.
    """
    check_identifier(by, ENTITY_COLUMNS, "by")
    _check_n(n)

    def build(table: str, zone: LocalZone) -> tuple[str, dict]:
        frauds = store.fraud_rows(dataset, table)
        if by not in store.enum_columns(dataset, table):
            return top_entities_sql(table, zone, filters, by, n, frauds)
        codes = [code for code, _amount in store.query_rows(
            f"top_{by}_codes", *top_codes_sql(frauds, zone, filters, by, n))]
        rows = store.entity_rows(dataset, table, by)  # every row of every possible winner
        return top_counts_sql(rows or table, zone, filters, by, codes, coded=rows is not None)

    frame = _run(store, f"top_{by}", dataset, build)
    return _rated(frame)


# ---------------------------------------------------------------------------------------------
# Amounts
# ---------------------------------------------------------------------------------------------


def amount_distribution_sql(table: str, zone: LocalZone, filters: Filters) -> tuple[str, dict]:
    p = _Params()
    table, zone = _rollup(p, table, zone, filters, ("amount_bin",))
    label = _col(LABEL)
    sql = (f"SELECT {_drill_expr(p, 'amount_bin', zone)} AS bin, {_count(zone, f'NOT {label}')} AS legit, "
           f"{_count(zone, label)} AS fraud, {_count(zone, f'{label} IS NULL')} AS unknown "
           f"FROM {table} {_where_sql(_where(p, filters, zone))} GROUP BY 1{_having_rows(zone)} ORDER BY 1")
    return sql, dict(p)


def amount_bin_edges(bin_: int) -> tuple[float, float]:
    """The [low, high) amount range (PEN) of log bin ``bin_``."""
    return 10 ** (bin_ / AMOUNT_BINS_PER_DECADE), 10 ** ((bin_ + 1) / AMOUNT_BINS_PER_DECADE)


def amount_distribution(store: Store, dataset: str, filters: Filters) -> pd.DataFrame:
    """Legit, fraud and unlabelled counts in log-spaced amount bins (4 per decade).

    Returns
    -------
    DataFrame, one row per bin from the smallest to the largest occupied one: ``bin`` (int;
    amounts in [10**(bin/4), 10**((bin+1)/4)) PEN), ``low``, ``high``, ``legit``, ``fraud``,
    ``unknown``, and ``legit_share`` / ``fraud_share`` (each class's share in the bin).
    """
    frame = _run(store, "amount_distribution", dataset,
                 lambda t, zone: amount_distribution_sql(t, zone, filters))
    return _finish_amounts(frame)


def _finish_amounts(frame: pd.DataFrame) -> pd.DataFrame:
    """Every bin from the smallest to the largest occupied one, empty ones as zeros (built with
    numpy: the pandas reindex took ~8 ms of an Explore summary)."""
    occupied = frame["bin"].to_numpy(dtype="int64")
    bins = np.arange(occupied.min(), occupied.max() + 1, dtype="int64") if len(occupied) else occupied
    out: dict[str, np.ndarray] = {"bin": bins, "low": 10 ** (bins / AMOUNT_BINS_PER_DECADE),
                                  "high": 10 ** ((bins + 1) / AMOUNT_BINS_PER_DECADE)}
    for column in ("legit", "fraud", "unknown"):
        out[column] = np.zeros(len(bins), dtype="int64")
        out[column][occupied - (bins[0] if len(bins) else 0)] = \
            np.nan_to_num(frame[column].to_numpy(dtype="float64", na_value=np.nan)).astype("int64")
    for column in ("legit", "fraud"):
        total = out[column].sum()
        out[f"{column}_share"] = out[column] / total if total else np.full(len(bins), np.nan)
    return pd.DataFrame(out)


# ---------------------------------------------------------------------------------------------
# Everything Explore draws from the filters alone, in one scan
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Summary:
    """The count, heatmap, daily and weekly series, amount bins and segments of one set of
    filters, each equal to what its own function returns (:func:`count_matching`,
    :func:`hour_weekday_heatmap`, :func:`daily_series`, :func:`amount_distribution`,
    :func:`segments`, :func:`region_breakdown`)."""

    count: PeriodFigures
    heatmap: pd.DataFrame
    daily: pd.DataFrame
    weekly: pd.DataFrame
    amounts: pd.DataFrame
    segments: Mapping[str, pd.DataFrame]  # by the summary's ``by`` and by merchant_location

    def series(self, grain: str) -> pd.DataFrame:
        if grain not in GRAINS:
            raise FraudLensError(f"The 'grain' parameter must be one of {list(GRAINS)}. Got {grain!r} instead.")
        return self.daily if grain == "day" else self.weekly

    @property
    def regions(self) -> pd.DataFrame:
        """:func:`region_breakdown`: segments by region, largest fraud amount first."""
        return _by_fraud_amount(self.segments["merchant_location"].copy())


# The summary's first pass groups the filtered rows four ways at once ("parts"), each small
# whatever the data: local day x hour, the segment, the region, the amount bin. Its second pass
# rolls each chart's totals up from one part: name -> (part, keys).
_FINE_KEYS = ("period", "hour", "segment", "region", "bin")
_FINE_PARTS = {"calendar": ("period", "hour"), "segment": ("segment",), "region": ("region",),
               "bins": ("bin",)}
_SUMMARY_SETS = {"count": ("calendar", ()), "heatmap": ("calendar", ("weekday", "hour")),
                 "daily": ("calendar", ("period",)), "segment": ("segment", ("segment",)),
                 "region": ("region", ("region",)), "amounts": ("bins", ("bin",))}
_SUMMARY_KEYS = ("weekday", "hour", "period", "segment", "region", "bin", "part")
_LABEL_COUNTS = (*_COUNT_COLUMNS, "fraud_amount", "amount")  # what _label_counts() returns


def _grouping_id(keys: tuple[str, ...], names: tuple[str, ...]) -> int:
    """DuckDB's grouping_id of a set: a 1 bit for each of ``names`` not grouped, first highest."""
    n = len(names)
    return sum(1 << (n - 1 - i) for i, key in enumerate(names) if key not in keys)


def _fine_parts(by: str) -> dict[str, tuple[str, ...]]:
    """The first pass's parts; by region, segment and region are one expression and one part
    (DuckDB then counts both keys as grouped in it)."""
    if by != "merchant_location":
        return _FINE_PARTS
    return {**{k: v for k, v in _FINE_PARTS.items() if k != "segment"}, "region": ("segment", "region")}


def _fine_exprs(p: _Params, zone: LocalZone, column: str, keys: Iterable[str] = _FINE_KEYS) -> dict[str, str]:
    """The SQL of the fine ``keys`` (only those: computing another could bind an unused parameter)."""
    exprs = {"period": lambda: _drill_expr(p, "local_date", zone), "hour": lambda: _drill_expr(p, "local_hour", zone),
             "segment": lambda: column, "region": lambda: _col("merchant_location"),
             "bin": lambda: _drill_expr(p, "amount_bin", zone)}
    return {key: exprs[key]() for key in keys}


# The columns each fine key reads, to find a rollup holding them.
_FINE_COLUMNS = {"period": "local_date", "hour": "local_hour", "region": "merchant_location", "bin": "amount_bin"}


def _fine_sql(p: _Params, table: str, zone: LocalZone, filters: Filters, by: str) -> str:
    """The summary's first pass: one scan of the rows with a grouping set per part or, when
    rollups hold every part, one small query per part on the rollup holding it (with amount
    bounds, on its bins wholly inside them, plus one scan of each edge bin's rows)."""
    column = check_identifier(by, SEGMENT_COLUMNS, "by")
    parts = _fine_parts(by)
    needs = {name: [_FINE_COLUMNS.get(k, by) for k in group] for name, group in parts.items()}
    rollups = {name: _pick_rollup(zone, filters, needs[name]) for name in parts}
    if not all(rollups.values()):
        return _grouping_sets_sql(p, table, zone, _where(p, filters, zone), parts, column)
    # With amount bounds: the bins taken whole from the rollups, each cut bin's rows in one scan
    # (added, or taken away: see _bin_split).
    inside, edges, minus = _bin_split(zone, filters) if _bounded(filters) else (None, [], [])
    selects = []
    for name, group in parts.items():
        part_zone = _rolled(zone, rollups[name])
        exprs = _fine_exprs(p, part_zone, column, group)
        keys = ", ".join(f"{exprs.get(k, 'NULL')} AS {k}" for k in _FINE_KEYS)
        clauses = _where(p, filters, part_zone) + ([_whole_bins(inside)] if inside is not None else [])
        grouped = ", ".join(exprs[k] for k in group)
        selects.append(f"SELECT {keys}, {_grouping_id(group, _FINE_KEYS)} AS part, {_label_counts(part_zone)} "
                       f"FROM {rollups[name].table} {_where_sql(clauses)} GROUP BY {grouped}")
    selects += [_grouping_sets_sql(p, zone.amount_rows, zone, [*_where(p, filters, zone), *_edge_rows(p, *edge)],
                                   parts, column) for edge in edges]
    # The rows taken away lie outside the bounds: every filter but the bounds applies to them.
    unbounded = filters.replace(amount_min=None, amount_max=None)
    negated = ", ".join(f"-{c} AS {c}" for c in _LABEL_COUNTS)
    selects += [f"SELECT * REPLACE ({negated}) FROM (" + _grouping_sets_sql(
        p, zone.amount_rows, zone, [*_where(p, unbounded, zone), *_minus_rows(p, *cut)], parts, column) + ")"
        for cut in minus]
    return " UNION ALL ".join(selects)


def _grouping_sets_sql(p: _Params, table: str, zone: LocalZone, clauses: list[str],
                       parts: dict[str, tuple[str, ...]], column: str) -> str:
    """The rows of ``table`` matching ``clauses``, grouped by each part in one scan."""
    exprs = _fine_exprs(p, zone, column)
    # Grouped by the expressions, not their aliases: on the Parquet view an extra column of the
    # upload may carry an alias's name, and GROUP BY would take the column.
    keys = ", ".join(f"{exprs[k]} AS {k}" for k in _FINE_KEYS)
    sets = ", ".join("(" + ", ".join(exprs[k] for k in group) + ")" for group in parts.values())
    return (f"SELECT {keys}, grouping_id({', '.join(exprs[k] for k in _FINE_KEYS)}) AS part, "
            f"{_label_counts(zone)} FROM {table} {_where_sql(clauses)} GROUP BY GROUPING SETS ({sets})")


def summary_sql(table: str, zone: LocalZone, filters: Filters, by: str) -> tuple[str, dict]:
    """One scan grouping the filtered rows by local day and hour, by ``by``, by region and by amount
    bin (or those groups read from rollups); then each chart's totals rolled up from those groups."""
    p = _Params()
    fine = _fine_sql(p, table, zone, filters, by)
    sets = ", ".join("(" + ", ".join(("part", *keys)) + ")" for _part, keys in _SUMMARY_SETS.values())
    sums = ", ".join(f"greatest(sum({c}), 0) AS {c}" if c in _AMOUNT_COLUMNS else f"sum({c}) AS {c}"
                     for c in _LABEL_COUNTS)
    # Text out: making an ENUM a pandas Categorical cost ~10 ms of a 40 ms summary at 10M rows.
    sql = (f"WITH fine AS ({fine}) SELECT isodow(period) AS weekday, hour, period, CAST(segment AS VARCHAR) "
           "AS segment, CAST(region AS VARCHAR) AS region, bin, "
           f"part, grouping_id({', '.join(_SUMMARY_KEYS)}) AS grouping, {sums} FROM fine "
           f"GROUP BY GROUPING SETS ({sets}) HAVING sum(transactions) > 0")  # rows taken away: see _bin_split
    return sql, dict(p)


def summary(store: Store, dataset: str, filters: Filters, by: str = "channel") -> Summary:
    """What Explore draws from ``filters`` alone (all but the top lists and the table), in one
    query instead of seven. ``by`` is the segment column shown beside the regions."""
    frame = _run(store, "summary", dataset, lambda t, zone: summary_sql(t, zone, filters, by))
    fine_parts = _fine_parts(by)
    # Each chart's rows picked with numpy: boolean masks and .loc on the frame cost ~7 ms.
    columns = {c: frame[c].to_numpy() for c in frame.columns}
    set_of_row = columns["grouping"].astype("int64") * 1024 + columns["part"].astype("int64")
    parts = {}
    for name, (part, keys) in _SUMMARY_SETS.items():
        grouped = fine_parts.get(part, fine_parts["region"])
        rows = np.flatnonzero(set_of_row == _grouping_id(("part", *keys), _SUMMARY_KEYS) * 1024
                              + _grouping_id(grouped, _FINE_KEYS))
        parts[name] = pd.DataFrame({c: columns[c][rows] for c in (*keys, *_LABEL_COUNTS)})
    day = parts["daily"]
    daily = _finish_series(day.copy(), filters, "day", None)
    week = day.assign(period=[d - timedelta(days=d.weekday()) for d in day["period"]])
    week = week.groupby("period", as_index=False, sort=True)[list(_LABEL_COUNTS)].sum()
    count = _typed(parts["count"])
    bins = _typed(parts["amounts"]).sort_values("bin").reset_index(drop=True)
    amounts = pd.DataFrame({"bin": bins["bin"], "legit": bins["labelled"] - bins["frauds"],
                            "fraud": bins["frauds"], "unknown": bins["transactions"] - bins["labelled"]})
    segments = {"merchant_location": parts["region"].rename(columns={"region": "segment"}),
                by: parts["segment"]}
    return Summary(
        count=_figures(count.iloc[0]) if len(count) else PeriodFigures(),
        heatmap=_finish_heatmap(parts["heatmap"]),
        daily=daily, weekly=_finish_series(week, filters, "week", _data_days(daily)),
        amounts=_finish_amounts(amounts),
        segments={name: _finish_segments(_segment_order(frame)) for name, frame in segments.items()},
    )


def _segment_order(frame: pd.DataFrame) -> pd.DataFrame:
    """As segments_sql orders: most transactions first, then by value, missing last."""
    return frame.sort_values(["transactions", "segment"], ascending=[False, True], na_position="last",
                             kind="stable").reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Transactions behind an aggregate
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TransactionsPage:
    """One page of matching transactions; ``more`` says whether rows follow it."""

    rows: pd.DataFrame
    offset: int
    limit: int
    more: bool

    @property
    def first(self) -> int:
        """1-based number of the first row shown (0 when the page is empty)."""
        return self.offset + 1 if len(self.rows) else 0

    @property
    def last(self) -> int:
        return self.offset + len(self.rows)


def _matching(p: _Params, filters: Filters, extra: Mapping[str, object] | None, zone: LocalZone) -> str:
    return _where_sql([*_where(p, filters, zone), *_extra_where(p, extra, zone)])


def _check_count(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise FraudLensError(f"The '{name}' parameter must be an integer in [{low}, {high}]. Got {value!r} instead.")
    return int(value)


# Sort keys cheap to compare: a page first finds the key of its last row, then reads only the
# rows up to it (a Top-N over every column of every matching row cost ~0.6 s at 10M rows).
_CUT_SORTS = ("transaction_datetime", "transaction_amount", "account_balance")


def page_cut_sql(table: str, zone: LocalZone, filters: Filters, extra: Mapping[str, object] | None,
                 sort: str, descending: bool, position: int) -> tuple[str, dict]:
    """The sort key of the matching row at 0-based ``position`` in page order (no row past the end)."""
    order = check_identifier(sort, _CUT_SORTS, "sort")
    p = _Params()
    sql = (f"SELECT {order} AS cut FROM {table} {_matching(p, filters, extra, zone)} "
           f"ORDER BY {order} {'DESC' if descending else 'ASC'} NULLS LAST "
           f"LIMIT 1 OFFSET {p.bind('position', position)}")
    return sql, dict(p)


def _sorting(order: str, sort: str, descending: bool) -> str:
    direction = "DESC" if descending else "ASC"
    tie = "" if sort == "transaction_id" else f", {_col('transaction_id')} {direction}"
    return f"ORDER BY {order} {direction} NULLS LAST{tie}"


def page_sql(table: str, zone: LocalZone, filters: Filters, extra: Mapping[str, object] | None,
             sort: str, descending: bool, limit: int, offset: int, cut: object = None) -> tuple[str, dict]:
    """The PAGE_COLUMNS of ``limit + 1`` matching rows from ``offset``, in page order; ``cut``
    (the key of the last of them, from :func:`page_cut_sql`) lets the scan skip the rest."""
    order = check_identifier(sort, SORT_COLUMNS, "sort")
    limit = _check_count(limit, "limit", 1, MAX_LIMIT)
    offset = _check_count(offset, "offset", 0, 10**12)
    p = _Params()
    label = _col(LABEL)
    columns = []
    for name in PAGE_COLUMNS:
        if name == "local_time":
            columns.append(f"{_local_ts(p, zone)} AS local_time")
        elif name == "label":
            columns.append(f"CASE WHEN {label} THEN 'fraud' WHEN NOT {label} THEN 'legit' "
                           "ELSE 'unknown' END AS label")
        elif SCHEMA_TYPES.get(name) == "VARCHAR":
            # Text out: pandas would turn an id ENUM into a Categorical of every id.
            columns.append(f"CAST({_col(name)} AS VARCHAR) AS {_col(name)}")
        else:
            columns.append(_col(name))
    clauses = [*_where(p, filters, zone), *_extra_where(p, extra, zone)]
    if cut is not None:
        clauses.append(f"{order} {'>=' if descending else '<='} {p.bind('cut', cut)}")
    sql = (f"SELECT {', '.join(columns)} FROM {table} {_where_sql(clauses)} "
           f"{_sorting(order, sort, descending)} "
           f"LIMIT {p.bind('limit_plus_one', limit + 1)} OFFSET {p.bind('offset', offset)}")
    return sql, dict(p)


def transactions_page(store: Store, dataset: str, filters: Filters,
                      extra: Mapping[str, object] | None = None, sort: str = "transaction_datetime",
                      descending: bool = True, limit: int = 50, offset: int = 0) -> TransactionsPage:
    """A page of the transactions behind an aggregate, straight from DuckDB.

    Parameters
    ----------
    extra : dict, optional
        Drill-down equalities on DRILL_KEYS (``{"channel": "online", "local_hour": 3}``); a list
        value matches any of its values.
    sort : one of SORT_COLUMNS; ties are broken by ``transaction_id``.
    limit, offset : page size (at most MAX_LIMIT) and rows to skip.

    Returns
    -------
    TransactionsPage
        ``rows`` has the PAGE_COLUMNS (``local_time`` in the dataset's zone; ``label`` is
        fraud/legit/unknown); ``more`` is True when at least one row follows (``limit + 1`` rows
        are fetched to know, never counted).
    """
    check_identifier(sort, SORT_COLUMNS, "sort")
    limit = _check_count(limit, "limit", 1, MAX_LIMIT)
    offset = _check_count(offset, "offset", 0, 10**12)

    def build(table: str, zone: LocalZone) -> tuple[str, dict]:
        if sort == "transaction_amount":
            table = store.by_amount(dataset, table)
        cut = None
        if sort in _CUT_SORTS:
            found = store.query_rows("page_cut", *page_cut_sql(
                table, zone, filters, extra, sort, descending, offset + limit))
            cut = found[0][0] if found else None
        return page_sql(table, zone, filters, extra, sort, descending, limit, offset, cut)

    frame = _run(store, "transactions_page", dataset, build)
    more = len(frame) > limit
    return TransactionsPage(rows=frame.head(limit).reset_index(drop=True), offset=offset,
                            limit=limit, more=more)


def count_sql(table: str, zone: LocalZone, filters: Filters, extra: Mapping[str, object] | None) -> tuple[str, dict]:
    p = _Params()
    if not extra:
        table, zone = _rollup(p, table, zone, filters, ())
    sql = f"SELECT {_label_counts(zone)} FROM {table} {_matching(p, filters, extra, zone)}"
    return sql, dict(p)


def count_matching(store: Store, dataset: str, filters: Filters,
                   extra: Mapping[str, object] | None = None) -> PeriodFigures:
    """Totals of the rows matching ``filters`` and ``extra`` (for "N transactions match")."""
    frame = _run(store, "count_matching", dataset, lambda t, zone: count_sql(t, zone, filters, extra))
    return _figures(frame.iloc[0])


def _figures(row: pd.Series) -> PeriodFigures:
    return PeriodFigures(int(row["transactions"]), int(row["labelled"]), int(row["frauds"]),
                         float(row["fraud_amount"]), float(row["amount"]))


__all__ = [
    "AMOUNT_BINS_PER_DECADE", "DERIVED_TYPES", "DRILL_KEYS", "ENTITY_COLUMNS", "Filters", "FilterOptions", "GRAINS",
    "Kpis", "LABELS", "LocalZone", "MISSING", "PAGE_COLUMNS", "PeriodFigures", "SEGMENT_COLUMNS", "SORT_COLUMNS",
    "TransactionsPage", "WEEKDAYS", "amount_bin_edges", "amount_distribution", "check_identifier",
    "count_matching", "daily_series", "filter_options", "hour_weekday_heatmap", "kpis",
    "dataset_zone", "derived_columns", "fixed_offset", "local_day_start_utc", "normalise_extra", "period_bounds", "prepare", "region_breakdown", "segments", "Summary", "summary",
    "top_entities", "transactions_page", "wilson_interval",
]
