"""Deterministic synthetic bank transactions with fraud caused by behaviour.

The generator builds a small world (accounts with habits, merchants, ATMs, branches, employers),
then walks through time in fixed cells (a day, or a part of a day when days are large) and draws
ordinary transactions for each cell. Fraud is planned up front as events of six scenarios that
change behaviour (new devices, far regions, bursts, night cash-outs, money sent to mules, and a
subtle kind close to normal spending), and the planned rows are merged into their cells. Every row
keeps its scenario in ``fraud_scenario`` as ground truth; the label ``fraudulent_activity`` can be
made to arrive late, or never, as it does in a real bank.

Meaning of the location column: at a shop terminal, ATM or branch it is the region of the merchant,
ATM or branch; online and on the phone it is the region the device connects from.

Randomness comes from ``numpy.random.default_rng`` seeded with ``seed`` plus a fixed stream number
per purpose and per time cell, so the data depend on ``seed``, ``rows``, ``fraud_rate``, ``start``
and ``days`` (and the labels on ``late_labels``), never on ``chunk_rows``.
"""

from __future__ import annotations

import logging
import math
import numbers
import os
import time
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from fraudlens.errors import FraudLensError
from fraudlens.schema import CANONICAL, GROUND_TRUTH, LABEL

logger = logging.getLogger(__name__)

SCENARIOS = (
    "card_testing", "account_takeover", "compromised_merchant", "atm_cashout", "mule_transfer",
    "subtle",
)
# Share of fraud rows per scenario (same order as SCENARIOS).
SCENARIO_SHARES = (0.19, 0.17, 0.19, 0.15, 0.15, 0.15)

# The canonical columns, then the ground truth.
COLUMNS = (*CANONICAL, GROUND_TRUTH)
TIMEZONE = "America/Lima"

REGIONS = (
    "Lima", "Arequipa", "La Libertad", "Piura", "Cusco", "Lambayeque", "Junín", "Loreto", "Ica",
    "Puno", "Áncash", "Cajamarca", "San Martín", "Tacna", "Ucayali",
)
# Roughly the population share of each region (Lima about a third).
_REGION_WEIGHTS = np.array(
    [0.36, 0.055, 0.065, 0.06, 0.045, 0.042, 0.045, 0.03, 0.03, 0.04, 0.035, 0.045, 0.03,
     0.013, 0.018]
)
_REGION_WEIGHTS = _REGION_WEIGHTS / _REGION_WEIGHTS.sum()
# Latitude and longitude of each regional capital, for "far from home".
_REGION_COORDS = np.array([
    (-12.05, -77.04), (-16.40, -71.54), (-8.11, -79.03), (-5.19, -80.63), (-13.53, -71.97),
    (-6.77, -79.84), (-12.07, -75.21), (-3.75, -73.25), (-14.07, -75.73), (-15.84, -70.02),
    (-9.53, -77.53), (-7.16, -78.51), (-6.49, -76.37), (-18.01, -70.25), (-8.38, -74.55),
])
_FAR_KM = 450.0

CHANNELS = ("pos", "online", "atm", "mobile", "branch")
POS, ONLINE, ATM, MOBILE, BRANCH = range(5)
_CHANNEL_POPULARITY = np.array([0.36, 0.2, 0.16, 0.23, 0.05])

TYPES = ("purchase", "transfer", "withdrawal", "payment", "deposit")
PURCHASE, TRANSFER, WITHDRAWAL, PAYMENT, DEPOSIT = range(5)
# P(type | channel); rows follow CHANNELS, columns follow TYPES.
_TYPE_GIVEN_CHANNEL = np.array([
    [1.0, 0.0, 0.0, 0.0, 0.0],
    [0.62, 0.15, 0.0, 0.23, 0.0],
    [0.0, 0.0, 0.9, 0.0, 0.1],
    [0.25, 0.45, 0.0, 0.30, 0.0],
    [0.0, 0.15, 0.25, 0.15, 0.45],
])

ACCOUNT_TYPES = ("checking", "savings", "credit")
_ACCOUNT_TYPE_WEIGHTS = np.array([0.35, 0.45, 0.20])

# Merchant categories: name, median amount (PEN), lognormal sigma, kind, popularity in its kind.
_CATEGORIES = (
    ("supermarket", 85.0, 0.70, "pos", 0.20),
    ("restaurant", 48.0, 0.55, "pos", 0.24),
    ("fuel", 95.0, 0.40, "pos", 0.10),
    ("pharmacy", 38.0, 0.60, "pos", 0.12),
    ("clothing", 140.0, 0.65, "pos", 0.10),
    ("electronics", 520.0, 0.75, "pos", 0.05),
    ("entertainment", 55.0, 0.55, "pos", 0.08),
    ("hardware", 110.0, 0.70, "pos", 0.08),
    ("travel", 650.0, 0.70, "pos", 0.03),
    ("online_retail", 130.0, 0.80, "online", 0.55),
    ("online_electronics", 600.0, 0.70, "online", 0.15),
    ("airline", 700.0, 0.60, "online", 0.10),
    ("streaming", 35.0, 0.40, "online", 0.20),
    ("utilities", 120.0, 0.50, "biller", 0.6),
    ("telecom", 75.0, 0.35, "biller", 0.4),
)
_CAT_MEDIAN = np.array([c[1] for c in _CATEGORIES])
_CAT_SIGMA = np.array([c[2] for c in _CATEGORIES])
_CAT_INDEX = {c[0]: i for i, c in enumerate(_CATEGORIES)}

# Relative transaction volume by hour of day (few at night) and by weekday (Monday first).
_HOUR_WEIGHTS = np.array([
    0.35, 0.18, 0.10, 0.07, 0.08, 0.25, 0.8, 1.8, 3.2, 4.3, 5.0, 5.5, 6.3, 6.1, 5.4, 5.1, 5.3,
    5.8, 6.4, 6.6, 5.8, 4.4, 2.7, 1.2,
])
# Payroll is posted in the morning; branches open 9:00 to 18:00.
_PAYROLL_HOURS = np.where((np.arange(24) >= 8) & (np.arange(24) < 12), 1.0, 0.0)
_BRANCH_HOURS = _HOUR_WEIGHTS * ((np.arange(24) >= 9) & (np.arange(24) < 18))
_WEEKDAY_WEIGHTS = np.array([0.96, 0.94, 0.96, 1.0, 1.15, 1.12, 0.84])
_PAYDAY_WEIGHT = 1.45
_AFTER_PAYDAY_WEIGHT = 1.15

_DAY = 86_400
_UTC_OFFSET = 5 * 3600  # Peru keeps UTC-5 all year (no daylight saving time)
_CELL_ROWS = 150_000  # largest expected cell; bounds memory whatever chunk_rows is
_PARTS = (1, 2, 3, 4, 6, 8, 12, 24)
_ROWS_PER_ACCOUNT = 40
_SALARY_SHARE = 0.45  # at most this share of a payday's rows are salary deposits
_CASH_IN = 0.07  # share of rows that are income deposits for accounts without a salary
_LABEL_MATURITY_DAYS = 7
_REPORT_DELAY_DAYS = 10.0
_NEVER_REPORTED = 0.05
# Balances in cents are clipped to +-_LIMIT (far above any real one) so that shifting accounts
# apart by _OFF in _balances cannot overflow int64.
_LIMIT = np.int64(2) ** 38
_OFF = np.int64(2) ** 40

# Stream numbers for derived generators, so each purpose has its own sequence.
_WORLD_STREAM, _PLAN_STREAM, _CELL_STREAM = 1, 2, 3

# Row fields while generating: seconds since start, account, channel, type, party (merchant_id),
# region, IP number, amount in cents, scenario, balance rule (0 none, 1 drain a share of the
# balance, 2 capped by it), that share, step inside the event, and when the fraud is reported.
_FIELDS = (
    "t", "acct", "chan", "ttype", "party", "loc", "ip", "cents", "scen", "dep", "frac", "rank",
    "report",
)


@dataclass(frozen=True)
class GenerateResult:
    """What ``generate`` wrote."""

    path: Path
    rows: int
    frauds: int
    accounts: int
    merchants: int
    seconds: float
    scenario_counts: dict[str, int]


# ---------------------------------------------------------------------------------------------
# Argument checks


def _output_kind(out: str | Path) -> str:
    name = str(out).lower()
    for suffix, kind in ((".parquet", "parquet"), (".csv.gz", "csv.gz"), (".csv", "csv")):
        if name.endswith(suffix) and len(name) > len(suffix):
            return kind
    raise FraudLensError(
        f"The 'out' path must end in .parquet, .csv or .csv.gz. Got {str(out)!r} instead."
    )


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise FraudLensError(
            f"The {name!r} parameter must be an integer >= {minimum}. Got {value!r} instead."
        )
    return int(value)


def _check_args(rows, seed, fraud_rate, start, days, chunk_rows) -> tuple:
    rows = _check_int("rows", rows, 1)
    seed = _check_int("seed", seed, 0)
    days = _check_int("days", days, 1)
    chunk_rows = _check_int("chunk_rows", chunk_rows, 1)
    if (isinstance(fraud_rate, bool) or not isinstance(fraud_rate, numbers.Real)
            or not 0 <= float(fraud_rate) < 0.5):
        raise FraudLensError(
            f"The 'fraud_rate' parameter must be a float in [0, 0.5). Got {fraud_rate!r} instead."
        )
    if isinstance(start, datetime):
        start = start.date()
    if not isinstance(start, date):
        raise FraudLensError(
            f"The 'start' parameter must be a datetime.date. Got {start!r} instead."
        )
    return rows, seed, float(fraud_rate), start, days, chunk_rows


# ---------------------------------------------------------------------------------------------
# Small helpers


def _cdf(weights: np.ndarray) -> np.ndarray:
    """Cumulative distribution along the last axis, ending exactly at 1."""
    cdf = np.cumsum(weights, axis=-1)
    cdf = cdf / cdf[..., -1:]
    cdf[..., -1] = 1.0
    return cdf


def _draw(rng: np.random.Generator, cdf: np.ndarray, n: int) -> np.ndarray:
    """``n`` draws from one categorical distribution given by its cdf."""
    return np.minimum(np.searchsorted(cdf, rng.random(n), side="right"), len(cdf) - 1)


def _draw_rows(rng: np.random.Generator, cdfs: np.ndarray) -> np.ndarray:
    """One draw per row of ``cdfs`` (shape (n, k))."""
    return (rng.random(len(cdfs))[:, None] >= cdfs[:, :-1]).sum(axis=1)


def _repeat_index(sizes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Event number and position inside the event for each row of events of ``sizes``."""
    event = np.repeat(np.arange(len(sizes)), sizes)
    starts = np.cumsum(sizes) - sizes
    return event, np.arange(len(event)) - starts[event]


def _group_cumsum(values: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Cumulative sum restarted at each event."""
    total = np.cumsum(values)
    starts = np.cumsum(sizes) - sizes
    return total - np.repeat(total[starts] - values[starts], sizes)


def _cut(sizes: np.ndarray, target: int) -> np.ndarray:
    """The first event sizes that add up to exactly ``target`` rows (the last one shortened)."""
    if target <= 0:
        return np.zeros(0, dtype=np.int64)
    total = np.cumsum(sizes)
    k = int(np.searchsorted(total, target)) + 1
    out = sizes[:k].astype(np.int64)
    out[-1] -= int(total[k - 1]) - target
    return out


def _to_cents(amount: np.ndarray) -> np.ndarray:
    return np.maximum(np.rint(amount * 100), 0).astype(np.int64)


def _round_to(amount: np.ndarray, step: float) -> np.ndarray:
    return np.maximum(np.rint(amount / step), 1) * step


def _ids(prefix: str, numbers_: np.ndarray, width: int) -> pa.Array:
    text = pc.utf8_lpad(pc.cast(pa.array(numbers_, pa.int64()), pa.string()), width, "0")
    return pc.utf8_replace_slice(text, 0, 0, prefix)


def _ip_strings(rng: np.random.Generator, n: int, first_octets: tuple[int, ...]) -> pa.Array:
    octets = [
        rng.choice(np.array(first_octets), n),
        rng.integers(0, 256, n), rng.integers(0, 256, n), rng.integers(1, 255, n),
    ]
    parts = [pc.cast(pa.array(o.astype(np.int64)), pa.string()) for o in octets]
    return pc.binary_join_element_wise(*parts, ".")


def _far_cdf() -> np.ndarray:
    """For each home region, the cdf of a far region weighted by population."""
    lat = np.radians(_REGION_COORDS[:, 0])
    lon = np.radians(_REGION_COORDS[:, 1])
    dlat = lat[:, None] - lat[None, :]
    dlon = lon[:, None] - lon[None, :]
    h = np.sin(dlat / 2) ** 2 + np.cos(lat[:, None]) * np.cos(lat[None, :]) * np.sin(dlon / 2) ** 2
    km = 2 * 6371.0 * np.arcsin(np.sqrt(h))
    weights = np.where(km > _FAR_KM, _REGION_WEIGHTS[None, :], 0.0)
    return _cdf(weights)


_FAR_CDF = _far_cdf()
_REGION_CDF = _cdf(_REGION_WEIGHTS)


class _Picker:
    """Weighted draws of items (party numbers) restricted to a region."""

    def __init__(self, items: np.ndarray, regions: np.ndarray, weights: np.ndarray):
        order = np.lexsort((items, regions))
        self.items = items[order]
        cum = np.cumsum(weights[order])
        self.cum = cum
        ends = np.searchsorted(regions[order], np.arange(len(REGIONS)), side="right")
        begins = np.searchsorted(regions[order], np.arange(len(REGIONS)), side="left")
        self.first = begins
        self.last = ends - 1
        self.low = np.where(begins > 0, cum[np.maximum(begins - 1, 0)], 0.0)
        self.high = cum[np.maximum(ends - 1, 0)]

    def pick(self, rng: np.random.Generator, region: np.ndarray) -> np.ndarray:
        u = self.low[region] + rng.random(len(region)) * (self.high[region] - self.low[region])
        idx = np.searchsorted(self.cum, u, side="right")
        return self.items[np.clip(idx, self.first[region], self.last[region])]

    def pick_any(self, rng: np.random.Generator, n: int) -> np.ndarray:
        idx = np.searchsorted(self.cum, rng.random(n) * self.cum[-1], side="right")
        return self.items[np.minimum(idx, len(self.items) - 1)]


# ---------------------------------------------------------------------------------------------
# Calendar: day weights and time cells


@dataclass(frozen=True)
class _Calendar:
    start: date
    days: int
    day_weight: np.ndarray  # (days,)
    payday: np.ndarray  # (days,) -1 none, 0 the 15th, 1 the last day of the month
    parts: int

    @property
    def seconds(self) -> int:
        return self.days * _DAY

    def cell_window(self, cell: int) -> tuple[int, int]:
        length = _DAY // self.parts
        return cell * length, (cell + 1) * length

    def cell_hours(self, cell: int) -> np.ndarray:
        per = 24 // self.parts
        part = cell % self.parts
        return np.arange(part * per, (part + 1) * per)


def _calendar(start: date, days: int, rows: int) -> _Calendar:
    dates = [start + timedelta(days=i) for i in range(days)]
    weight = np.array([_WEEKDAY_WEIGHTS[d.weekday()] for d in dates])
    payday = np.full(days, -1, dtype=np.int64)
    for i, d in enumerate(dates):
        last = (d + timedelta(days=1)).day == 1
        if d.day == 15 or last:
            payday[i] = 0 if d.day == 15 else 1
            weight[i] *= _PAYDAY_WEIGHT
        elif d.day == 16 or d.day == 1:
            weight[i] *= _AFTER_PAYDAY_WEIGHT
    busiest = rows * weight.max() / weight.sum()
    parts = next((p for p in _PARTS if busiest / p <= _CELL_ROWS), _PARTS[-1])
    return _Calendar(start, days, weight, payday, parts)


def _cell_counts(cal: _Calendar, total: int) -> np.ndarray:
    """Ordinary rows per time cell, by day and hour weights, adding up to ``total`` exactly."""
    hours = np.array([_HOUR_WEIGHTS[cal.cell_hours(c)].sum() for c in range(cal.parts)])
    weight = (cal.day_weight[:, None] * hours[None, :]).ravel()
    share = weight / weight.sum() * total
    counts = np.floor(share).astype(np.int64)
    rest = total - int(counts.sum())
    if rest:
        order = np.argsort(-(share - counts), kind="stable")
        counts[order[:rest]] += 1
    return counts


def _event_starts(rng: np.random.Generator, cal: _Calendar, n: int, hour_weights: np.ndarray,
                  span: float = 0.0) -> np.ndarray:
    """Start seconds of ``n`` events, by day weight and ``hour_weights``, leaving ``span`` s."""
    day = _draw(rng, _cdf(cal.day_weight), n)
    hour = _draw(rng, _cdf(hour_weights), n)
    t = day * _DAY + hour * 3600 + rng.integers(0, 3600, n)
    return np.minimum(t, max(cal.seconds - 1 - int(span), 0))


def _cell_times(rng: np.random.Generator, cal: _Calendar, cell: int, n: int,
                weights: np.ndarray = _HOUR_WEIGHTS) -> np.ndarray:
    hours = cal.cell_hours(cell)
    hour = hours[_draw(rng, _cdf(weights[hours]), n)]
    return (cell // cal.parts) * _DAY + hour * 3600 + rng.integers(0, 3600, n)


def _part_of_account(cal: _Calendar, accounts: np.ndarray) -> np.ndarray:
    """The part of the day in which an account's salary is paid, spread like the day's rows."""
    parts = np.array([_PAYROLL_HOURS[cal.cell_hours(p)].sum() for p in range(cal.parts)])
    spread = (accounts * 0.6180339887498949) % 1.0
    return np.minimum(np.searchsorted(_cdf(parts), spread, side="right"), cal.parts - 1)


def _paid_share(cal: _Calendar, legit_rows: int, salaried: np.ndarray,
                payday: np.ndarray) -> np.ndarray:
    """Expected share of paydays on which a salaried account is paid (salary rows are capped)."""
    share = np.ones(len(salaried))
    for kind in (0, 1):
        days = np.flatnonzero(cal.payday == kind)
        eligible = int((salaried & (payday == kind)).sum())
        if len(days) and eligible:
            rows = legit_rows * cal.day_weight[days] / cal.day_weight.sum()
            share[payday == kind] = np.minimum(1.0, _SALARY_SHARE * rows / eligible).mean()
    return share


# ---------------------------------------------------------------------------------------------
# The world: parties and accounts


class _World:
    """Accounts, merchants, ATMs, branches, employers and IP addresses, as numpy arrays.

    Every counterparty (merchant, ATM, branch, employer, account, outside account) is a "party"
    numbered in one table, so ``merchant_id`` is a single take from ``party_ids``.
    """

    def __init__(self, rows: int, seed: int, legit_rows: int, cal: _Calendar):
        rng = np.random.default_rng([seed, _WORLD_STREAM])
        self.n_accounts = max(200, rows // _ROWS_PER_ACCOUNT)
        self._build_parties(rng)
        self._build_accounts(rng, legit_rows, cal)
        self._build_ips(rng, rows)

    def _build_parties(self, rng: np.random.Generator) -> None:
        n_acc = self.n_accounts
        counts = {
            "pos": max(150, n_acc // 12), "online": max(40, n_acc // 150),
            "biller": max(12, min(60, n_acc // 500)), "atm": max(30, n_acc // 60),
            "branch": max(15, n_acc // 400), "employer": max(20, n_acc // 150),
            "account": n_acc, "external": max(100, n_acc // 2),
        }
        offsets, total = {}, 0
        for kind, count in counts.items():
            offsets[kind] = total
            total += count
        self.counts, self.offsets = counts, offsets
        self.n_merchants = counts["pos"] + counts["online"] + counts["biller"]

        region = np.zeros(total, dtype=np.int64)
        category = np.full(total, -1, dtype=np.int64)
        popularity = np.ones(total)
        for kind in ("pos", "online", "biller"):
            sl = self.kind_slice(kind)
            cats = [i for i, c in enumerate(_CATEGORIES) if c[3] == kind]
            shares = np.array([_CATEGORIES[i][4] for i in cats])
            category[sl] = np.array(cats)[_draw(rng, _cdf(shares), counts[kind])]
            popularity[sl] = rng.lognormal(0.0, 0.8, counts[kind])
        # Every region has at least one shop, ATM and branch; online sellers are mostly in Lima.
        for kind in ("pos", "atm", "branch", "employer", "account", "external"):
            sl = self.kind_slice(kind)
            region[sl] = _draw(rng, _REGION_CDF, counts[kind])
            if kind in ("pos", "atm", "branch"):
                region[sl][: len(REGIONS)] = np.arange(len(REGIONS))
        for kind in ("online", "biller"):
            sl = self.kind_slice(kind)
            region[sl] = np.where(rng.random(counts[kind]) < 0.8, 0,
                                  _draw(rng, _REGION_CDF, counts[kind]))
        self.party_region, self.party_category = region, category

        def picker(kind: str, by_region: bool = True) -> _Picker:
            sl = self.kind_slice(kind)
            regions = region[sl] if by_region else np.zeros(counts[kind], dtype=np.int64)
            return _Picker(np.arange(sl.start, sl.stop), regions, popularity[sl])

        self.pos_picker = picker("pos")
        self.online_picker = picker("online", by_region=False)
        self.atm_picker = picker("atm")
        self.branch_picker = picker("branch")

        merchant_numbers = rng.choice(9_999_999, self.n_merchants, replace=False) + 1
        account_numbers = rng.choice(9_999_999, n_acc + counts["external"], replace=False) + 1
        self.party_ids = pa.concat_arrays([
            _ids("M", merchant_numbers, 7),
            _ids("ATM", np.arange(1, counts["atm"] + 1), 5),
            _ids("BR", np.arange(1, counts["branch"] + 1), 4),
            _ids("E", rng.choice(999_999, counts["employer"], replace=False) + 1, 6),
            _ids("A", account_numbers, 7),
        ])
        self.account_ids = self.party_ids.slice(offsets["account"], n_acc)

    def kind_slice(self, kind: str) -> slice:
        return slice(self.offsets[kind], self.offsets[kind] + self.counts[kind])

    def _build_accounts(self, rng: np.random.Generator, legit_rows: int, cal: _Calendar) -> None:
        n = self.n_accounts
        self.home = self.party_region[self.kind_slice("account")].copy()
        self.account_type = _draw(rng, _cdf(_ACCOUNT_TYPE_WEIGHTS), n)
        new = rng.random(n) < 0.08
        self.age0 = np.where(
            new, rng.integers(1, 91, n),
            np.clip(rng.lognormal(math.log(900), 0.9, n), 91, 12_000),
        ).astype(np.int64)
        self.spend = rng.lognormal(0.0, 0.55, n)
        self.activity = rng.gamma(1.6, 1 / 1.6, n)
        self.activity_cdf = _cdf(self.activity)
        self.channel_cdf = self._channel_habits(rng, n)

        # Income roughly matches spending (about 220 PEN of debit per row per unit of spend), so
        # balances drift but seldom run dry. Accounts without a salary get cash deposits instead.
        monthly_tx = self.activity / self.activity.mean() * legit_rows / n * 30.0 / cal.days
        channel_p = np.diff(self.channel_cdf, prepend=0.0, axis=1)
        deposit_p = channel_p @ _TYPE_GIVEN_CHANNEL[:, DEPOSIT]
        monthly_debit = monthly_tx * (1 - deposit_p) * 220.0 * self.spend
        income = monthly_debit * rng.lognormal(0.15, 0.15, n) + 300.0 * self.spend
        self.salaried = rng.random(n) < 0.6
        self.payday = rng.integers(0, 2, n)  # 0: the 15th, 1: the last day of the month
        self.salary_part = _part_of_account(cal, np.arange(n))
        paid = _paid_share(cal, legit_rows, self.salaried, self.payday)
        self.salary_cents = _to_cents(_round_to(income / np.maximum(paid, 0.5), 10))
        self.cash_in = np.where(self.salaried, 0.0, _CASH_IN)
        # A lognormal's mean is 1.28 times its median at sigma 0.7.
        self.deposit_median = np.where(
            self.salaried, 300.0 * self.spend,
            income / np.maximum(monthly_tx * (deposit_p + _CASH_IN), 0.05) / 1.28,
        )
        # Savings of one to two months of spending; credit cards show the available credit.
        opening = monthly_debit * np.where(
            self.account_type == 2, rng.uniform(1.5, 3.0, n), rng.lognormal(math.log(2.0), 0.5, n))
        self.balance0 = _to_cents(opening + rng.lognormal(math.log(300), 0.8, n))
        self.usual_pos = self.pos_picker.pick(rng, np.repeat(self.home, 5)).reshape(n, 5)
        self.usual_online = self.online_picker.pick_any(rng, 2 * n).reshape(n, 2)
        billers = self.offsets["biller"] + rng.integers(0, self.counts["biller"], (n, 2))
        self.usual_biller = billers
        self.usual_atm = self.atm_picker.pick(rng, self.home)
        self.home_branch = self.branch_picker.pick(rng, self.home)
        self.employer = self.offsets["employer"] + rng.integers(0, self.counts["employer"], n)
        inside = rng.random((n, 3)) < 0.7
        self.contacts = np.where(
            inside,
            self.offsets["account"] + rng.integers(0, n, (n, 3)),
            self.offsets["external"] + rng.integers(0, self.counts["external"], (n, 3)),
        )
        self.n_ips = rng.integers(1, 3, n)

    @staticmethod
    def _channel_habits(rng: np.random.Generator, n: int) -> np.ndarray:
        """Each account uses 1-3 channels most of the time, the others rarely."""
        keys = np.log(_CHANNEL_POPULARITY)[None, :] + rng.gumbel(size=(n, len(CHANNELS)))
        rank = np.argsort(np.argsort(-keys, axis=1), axis=1)
        usual = rank < _draw(rng, _cdf(np.array([0.25, 0.45, 0.30])), n)[:, None] + 1
        weights = np.where(usual, rng.uniform(0.5, 1.5, (n, len(CHANNELS))), 0.0)
        weights = weights / weights.sum(axis=1, keepdims=True) * 0.96 + 0.04 / len(CHANNELS)
        return _cdf(weights)

    def _build_ips(self, rng: np.random.Generator, rows: int) -> None:
        peru = (190, 181, 200, 179, 186, 161, 38, 201)
        self.n_other_ips = max(1000, self.n_accounts // 4)
        self.n_fraud_ips = max(200, rows // 2000)
        self.ip_strings = pa.concat_arrays([
            _ip_strings(rng, 2 * self.n_accounts, peru),
            _ip_strings(rng, self.n_other_ips, peru),
            _ip_strings(rng, self.n_fraud_ips, (45, 185, 103, 5, 91, 190, 181, 179)),
        ])
        self.other_ip0 = 2 * self.n_accounts
        self.fraud_ip0 = self.other_ip0 + self.n_other_ips

    # Draws shared by ordinary rows and fraud events.
    def usual_ip(self, rng: np.random.Generator, acct: np.ndarray) -> np.ndarray:
        return 2 * acct + (rng.random(len(acct)) * self.n_ips[acct]).astype(np.int64)

    def other_ip(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.other_ip0 + rng.integers(0, self.n_other_ips, n)

    def fraud_ip(self, rng: np.random.Generator, n: int) -> np.ndarray:
        return self.fraud_ip0 + rng.integers(0, self.n_fraud_ips, n)

    def purchase_cents(self, rng: np.random.Generator, party: np.ndarray, acct: np.ndarray,
                       boost: float = 0.0) -> np.ndarray:
        cat = np.maximum(self.party_category[party], 0)
        noise = _CAT_SIGMA[cat] * rng.standard_normal(len(party))
        amount = _CAT_MEDIAN[cat] * self.spend[acct] * np.exp(boost + noise)
        return _to_cents(np.maximum(amount, 1.0))


# ---------------------------------------------------------------------------------------------
# Fraud plan


_Block = dict[str, np.ndarray]


def _rows(n: int, **values: np.ndarray | int | float) -> _Block:
    """A block of ``n`` rows with defaults for the fields not given."""
    defaults = {"ip": -1, "scen": -1, "dep": 0, "frac": 0.0, "rank": 0, "report": 0}
    out = {}
    for field in _FIELDS:
        value = values.get(field, defaults.get(field))
        if value is None:
            raise ValueError(f"missing field {field}")
        dtype = np.float64 if field == "frac" else np.int64
        out[field] = np.broadcast_to(np.asarray(value, dtype=dtype), (n,)).copy()
    return out


def _concat(blocks: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    return {f: np.concatenate([b[f] for b in blocks]) for f in _FIELDS}


def _take(rows: dict[str, np.ndarray], index: np.ndarray) -> dict[str, np.ndarray]:
    return {f: v[index] for f, v in rows.items()}


class _Victims:
    """Hands out accounts in a shuffled order, so few accounts are hit twice."""

    def __init__(self, rng: np.random.Generator, n_accounts: int):
        self.order = rng.permutation(n_accounts)
        self.next = 0

    def take(self, n: int) -> np.ndarray:
        idx = (self.next + np.arange(n)) % len(self.order)
        self.next += n
        return self.order[idx]


def _card_testing(
    rng: np.random.Generator, world: _World, cal: _Calendar, victims: _Victims, target: int,
) -> tuple[_Block, np.ndarray]:
    """Bursts of tiny online charges at unfamiliar shops, sometimes then one large purchase."""
    burst = rng.integers(5, 16, target // 5 + 1)
    sizes = _cut(burst + (rng.random(len(burst)) < 0.4), target)
    k = len(sizes)
    burst = np.minimum(burst[:k], sizes)
    event, pos = _repeat_index(sizes)
    acct = victims.take(k)
    hours = 0.5 * _HOUR_WEIGHTS / _HOUR_WEIGHTS.sum() + 0.5 / 24
    t0 = _event_starts(rng, cal, k, hours, span=3 * 3600)
    gap = np.where(pos == 0, 0.0, rng.exponential(40.0, len(pos)) + 5.0)
    is_big = pos >= burst[event]
    gap = np.where(is_big, rng.uniform(120, 1800, len(pos)), gap)
    t = t0[event] + _group_cumsum(gap, sizes).astype(np.int64)
    # Testers favour a few weakly protected online shops.
    testers = world.online_picker.items[: max(3, world.counts["online"] // 8)]
    small_party = testers[rng.integers(0, len(testers), len(pos))]
    big_party = world.online_picker.pick_any(rng, len(pos))
    party = np.where(is_big, big_party, small_party)
    small = np.where(rng.random(len(pos)) < 0.4, rng.integers(1, 11, len(pos)),
                     np.round(rng.uniform(0.5, 10.0, len(pos)), 2))
    big = rng.lognormal(math.log(900), 0.5, len(pos))
    device = np.where(rng.random(k) < 0.7, _draw_rows(rng, _FAR_CDF[world.home[acct]]),
                      _draw(rng, _REGION_CDF, k))
    return _rows(
        len(pos), t=t, acct=acct[event], chan=ONLINE, ttype=PURCHASE, party=party,
        loc=device[event], ip=world.fraud_ip(rng, k)[event],
        cents=_to_cents(np.where(is_big, big, small)),
    ), sizes


def _account_takeover(
    rng: np.random.Generator, world: _World, cal: _Calendar, victims: _Victims, target: int,
) -> tuple[_Block, np.ndarray]:
    """A new device in a far region sends 1-3 transfers to new payees, draining the account."""
    sizes = _cut(_draw(rng, _cdf(np.array([0.4, 0.35, 0.25])), target + 1) + 1, target)
    k = len(sizes)
    event, pos = _repeat_index(sizes)
    acct = victims.take(k)
    hours = 0.5 * _HOUR_WEIGHTS / _HOUR_WEIGHTS.sum() + 0.5 / 24
    t0 = _event_starts(rng, cal, k, hours, span=3 * 3600)
    gap = np.where(pos == 0, 0.0, rng.uniform(120, 2400, len(pos)))
    t = t0[event] + _group_cumsum(gap, sizes).astype(np.int64)
    far = _draw_rows(rng, _FAR_CDF[world.home[acct]])
    chan = np.where(rng.random(k) < 0.6, MOBILE, ONLINE)
    party = world.offsets["external"] + rng.integers(0, world.counts["external"], len(pos))
    last = pos == sizes[event] - 1
    frac = np.where(last, rng.uniform(0.85, 0.97, len(pos)), rng.uniform(0.4, 0.65, len(pos)))
    fallback = _round_to(rng.lognormal(math.log(1500), 0.5, len(pos)), 10)
    return _rows(
        len(pos), t=t, acct=acct[event], chan=chan[event], ttype=TRANSFER, party=party,
        loc=far[event], ip=world.fraud_ip(rng, k)[event], cents=_to_cents(fallback),
        dep=1, frac=frac, rank=pos,
    ), sizes


def _compromised_merchant(
    rng: np.random.Generator, world: _World, cal: _Calendar, victims: _Victims, target: int,
) -> tuple[_Block, np.ndarray]:
    """A few shops charge many cards during a window; some cards are then misused online."""
    sizes = _cut(1 + (rng.random(target + 1) < 0.3), target)
    k = len(sizes)
    event, pos = _repeat_index(sizes)
    acct = victims.take(k)
    shops = world.pos_picker.items
    kinds = np.isin(world.party_category[shops],
                    [_CAT_INDEX[c] for c in ("restaurant", "fuel", "supermarket", "pharmacy",
                                             "entertainment")])
    candidates = shops[kinds] if kinds.any() else shops
    n_shops = min(len(candidates), max(1, round(k / 25)))
    chosen = candidates[rng.choice(len(candidates), n_shops, replace=False)]
    window_days = np.minimum(rng.integers(3, 9, n_shops), cal.days)
    window_start = (rng.random(n_shops) * (cal.days - window_days + 1)).astype(np.int64)
    shop = rng.integers(0, n_shops, k)
    day = window_start[shop] + (rng.random(k) * window_days[shop]).astype(np.int64)
    hour = _draw(rng, _cdf(_HOUR_WEIGHTS), k)
    t0 = day * _DAY + hour * 3600 + rng.integers(0, 3600, k)
    follow = pos == 1
    remaining = np.maximum(cal.seconds - 1 - t0[event], 0)
    delay = np.minimum(rng.uniform(3600, 4 * _DAY, len(pos)), remaining)
    t = t0[event] + np.where(follow, delay, 0).astype(np.int64)
    online = world.online_picker.pick_any(rng, len(pos))
    party = np.where(follow, online, chosen[shop][event])
    amount = np.where(follow, rng.lognormal(math.log(1100), 0.5, len(pos)),
                      rng.lognormal(math.log(260), 0.55, len(pos)))
    ip = np.where(follow, world.fraud_ip(rng, len(pos)), -1)
    far = _draw_rows(rng, _FAR_CDF[world.home[acct]])[event]
    return _rows(
        len(pos), t=t, acct=acct[event], chan=np.where(follow, ONLINE, POS), ttype=PURCHASE,
        party=party, loc=np.where(follow, far, world.party_region[party]), ip=ip,
        cents=_to_cents(amount),
    ), sizes


def _atm_cashout(
    rng: np.random.Generator, world: _World, cal: _Calendar, victims: _Victims, target: int,
) -> tuple[_Block, np.ndarray]:
    """Several round night-time withdrawals at ATMs in a region far from home."""
    sizes = _cut(rng.integers(2, 7, target // 2 + 1), target)
    k = len(sizes)
    event, pos = _repeat_index(sizes)
    acct = victims.take(k)
    hours = np.zeros(24)
    hours[:5] = (0.25, 0.25, 0.2, 0.2, 0.1)
    t0 = _event_starts(rng, cal, k, hours, span=3600)
    gap = np.where(pos == 0, 0.0, rng.uniform(60, 600, len(pos)))
    t = t0[event] + _group_cumsum(gap, sizes).astype(np.int64)
    far = _draw_rows(rng, _FAR_CDF[world.home[acct]])
    atms = world.atm_picker.pick(rng, np.repeat(far, 2)).reshape(k, 2)
    party = atms[event, pos % 2]
    steps = np.array([400, 500, 600, 700, 800, 1000, 1200, 1500])
    amount = steps[_draw(rng, _cdf(np.array([1, 3, 1, 1, 2, 3, 1, 1.0])), len(pos))]
    return _rows(
        len(pos), t=t, acct=acct[event], chan=ATM, ttype=WITHDRAWAL, party=party,
        loc=far[event], cents=_to_cents(amount.astype(float)), dep=2, rank=pos,
    ), sizes


def _mule_transfer(
    rng: np.random.Generator, world: _World, cal: _Calendar, victims: _Victims, target: int,
) -> tuple[_Block, np.ndarray]:
    """Many victims, deceived, send money from their own devices to a few mule accounts.

    Scammers talk victims into moving much of their savings "to a safe account".
    """
    sizes = _cut(1 + (rng.random(target + 1) < 0.2), target)
    k = len(sizes)
    event, pos = _repeat_index(sizes)
    acct = victims.take(k)
    n_mules = max(1, round(k / 12))
    mules = victims.take(n_mules)
    window_days = np.minimum(rng.integers(1, 4, n_mules), cal.days)
    window_start = (rng.random(n_mules) * (cal.days - window_days + 1)).astype(np.int64)
    mule = rng.integers(0, n_mules, k)
    day = window_start[mule] + (rng.random(k) * window_days[mule]).astype(np.int64)
    t0 = day * _DAY + _draw(rng, _cdf(_HOUR_WEIGHTS), k) * 3600 + rng.integers(0, 3600, k)
    t0 = np.minimum(t0, cal.seconds - 3601)
    t = t0[event] + np.where(pos == 1, rng.uniform(300, 3600, len(pos)), 0).astype(np.int64)
    own_device = rng.random(len(pos)) < 0.85
    ip = np.where(own_device, world.usual_ip(rng, acct[event]), world.other_ip(rng, len(pos)))
    fallback = _round_to(rng.lognormal(math.log(750), 0.6, len(pos)), 10)
    return _rows(
        len(pos), t=np.maximum(t, 0), acct=acct[event],
        chan=np.where(rng.random(k) < 0.65, MOBILE, ONLINE)[event], ttype=TRANSFER,
        party=world.offsets["account"] + mules[mule][event], loc=world.home[acct][event], ip=ip,
        cents=_to_cents(fallback), dep=1, frac=rng.uniform(0.3, 0.8, len(pos)), rank=pos,
    ), sizes


def _subtle(
    rng: np.random.Generator, world: _World, cal: _Calendar, victims: _Victims, target: int,
) -> tuple[_Block, np.ndarray]:
    """Card-not-present or cloned-card spending that looks almost normal."""
    sizes = _cut(1 + (rng.random(target + 1) < 0.25), target)
    k = len(sizes)
    event, pos = _repeat_index(sizes)
    acct = victims.take(k)[event]
    hours = _HOUR_WEIGHTS * np.where(np.arange(24) >= 19, 1.5, 1.0)
    t0 = _event_starts(rng, cal, k, hours, span=_DAY)
    gap = np.where(pos == 0, 0, rng.uniform(1800, 20 * 3600, len(pos))).astype(np.int64)
    t = np.minimum(t0[event] + gap, cal.seconds - 1)
    chan = _draw_rows(rng, world.channel_cdf[acct])
    chan = np.where((chan == ATM) | (chan == BRANCH), POS, chan)
    away = rng.random(len(pos)) < 0.2
    region = np.where(away, _draw(rng, _REGION_CDF, len(pos)), world.home[acct])
    party = np.where(chan == POS, world.pos_picker.pick(rng, region),
                     world.online_picker.pick_any(rng, len(pos)))
    ip = np.where(rng.random(len(pos)) < 0.55, world.usual_ip(rng, acct),
                  world.other_ip(rng, len(pos)))
    device = np.where(rng.random(len(pos)) < 0.9, world.home[acct], region)
    return _rows(
        len(pos), t=t, acct=acct, chan=chan, ttype=PURCHASE, party=party,
        loc=np.where(chan == POS, world.party_region[party], device),
        ip=np.where(chan == POS, -1, ip),
        cents=world.purchase_cents(rng, party, acct, boost=0.4),
    ), sizes


_BUILDERS = (
    _card_testing, _account_takeover, _compromised_merchant, _atm_cashout, _mule_transfer,
    _subtle,
)


def _scenario_targets(n_fraud: int) -> np.ndarray:
    share = np.array(SCENARIO_SHARES) / sum(SCENARIO_SHARES) * n_fraud
    counts = np.floor(share).astype(np.int64)
    order = np.argsort(-(share - counts), kind="stable")
    counts[order[: n_fraud - int(counts.sum())]] += 1
    return counts


def _plan_fraud(world: _World, cal: _Calendar, seed: int, n_fraud: int) -> dict[str, np.ndarray]:
    """All fraud rows, sorted by time, each with its scenario and its report time."""
    rng = np.random.default_rng([seed, _PLAN_STREAM])
    victims = _Victims(rng, world.n_accounts)
    blocks = []
    for code, (builder, target) in enumerate(zip(_BUILDERS, _scenario_targets(n_fraud))):
        if target == 0:
            continue
        sub = np.random.default_rng([seed, _PLAN_STREAM, code])
        rows, sizes = builder(sub, world, cal, victims, int(target))
        rows["t"] = np.clip(rows["t"], 0, cal.seconds - 1)
        rows["scen"][:] = code
        rows["report"] = _report_times(sub, rows["t"], sizes)
        blocks.append(rows)
    if not blocks:
        return _rows(0, t=0, acct=0, chan=0, ttype=0, party=0, loc=0, cents=0)
    plan = _concat(blocks)
    return _take(plan, np.argsort(plan["t"], kind="stable"))


def _report_times(rng: np.random.Generator, t: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """When each event is reported: its last row plus an exponential delay; -1 if never."""
    starts = np.cumsum(sizes) - sizes
    last = np.maximum.reduceat(t, starts)
    delay = rng.exponential(_REPORT_DELAY_DAYS * _DAY, len(sizes)).astype(np.int64)
    report = np.where(rng.random(len(sizes)) < _NEVER_REPORTED, -1, last + delay)
    return np.repeat(report, sizes)


# ---------------------------------------------------------------------------------------------
# Ordinary transactions of one time cell


def _salary_accounts(rng, world: _World, cal: _Calendar, cell: int, n: int) -> np.ndarray:
    """Salaried accounts paid in this cell; each account is paid in one part of the day."""
    day = cell // cal.parts
    if cal.payday[day] < 0 or n == 0:
        return np.zeros(0, dtype=np.int64)
    eligible = np.flatnonzero(world.salaried & (world.payday == cal.payday[day])
                              & (world.salary_part == cell % cal.parts))
    count = min(len(eligible), round(_SALARY_SHARE * n))
    return np.sort(rng.choice(eligible, count, replace=False))


def _legit(rng: np.random.Generator, world: _World, cal: _Calendar, cell: int,
           n: int) -> dict[str, np.ndarray]:
    """``n`` ordinary transactions in ``cell``, following each account's habits."""
    salary = _salary_accounts(rng, world, cal, cell, n)
    is_salary = np.arange(n) < len(salary)
    acct = np.concatenate([salary, _draw(rng, world.activity_cdf, n - len(salary))])
    cash_in = ~is_salary & (rng.random(n) < world.cash_in[acct])
    chan = _draw_rows(rng, world.channel_cdf[acct])
    chan = np.where(cash_in, np.where(rng.random(n) < 0.6, ATM, BRANCH), chan)
    open_hours = _BRANCH_HOURS[cal.cell_hours(cell)].sum() > 0
    if not open_hours:
        chan = np.where(chan == BRANCH, ATM, chan)
    chan = np.where(is_salary, BRANCH, chan)
    ttype = _draw_rows(rng, _cdf(_TYPE_GIVEN_CHANNEL)[chan])
    ttype = np.where(is_salary | cash_in, DEPOSIT, ttype)
    t = _legit_times(rng, cal, cell, chan, is_salary)
    # Now and then people travel, or connect from elsewhere.
    region = np.where(rng.random(n) < 0.94, world.home[acct], _draw(rng, _REGION_CDF, n))
    party = _legit_party(rng, world, acct, chan, ttype, region, is_salary)
    device = np.where(rng.random(n) < 0.97, world.home[acct], region)
    own_branch = np.where(_party_is(world, party, "branch"), party, world.home_branch[acct])
    loc = np.select(
        [is_salary, (chan == POS) | (chan == ATM), chan == BRANCH],
        [world.home[acct], world.party_region[party], world.party_region[own_branch]],
        default=device,
    )
    ip = np.where(rng.random(n) < 0.94, world.usual_ip(rng, acct), world.other_ip(rng, n))
    ip = np.where((chan == ONLINE) | (chan == MOBILE), ip, -1)
    cents = _legit_cents(rng, world, acct, chan, ttype, party)
    cents = np.where(is_salary, world.salary_cents[acct], cents)
    return _rows(n, t=t, acct=acct, chan=chan, ttype=ttype, party=party, loc=loc, ip=ip,
                 cents=cents)


def _party_is(world: _World, party: np.ndarray, kind: str) -> np.ndarray:
    return (party >= world.offsets[kind]) & (party < world.offsets[kind] + world.counts[kind])


def _legit_times(rng: np.random.Generator, cal: _Calendar, cell: int, chan: np.ndarray,
                 is_salary: np.ndarray) -> np.ndarray:
    """Times in the cell: branches keep business hours and payroll is posted in the morning."""
    t = _cell_times(rng, cal, cell, len(chan))
    branch = (chan == BRANCH) & ~is_salary
    if branch.any():
        t[branch] = _cell_times(rng, cal, cell, int(branch.sum()), _BRANCH_HOURS)
    if is_salary.any():
        t[is_salary] = _cell_times(rng, cal, cell, int(is_salary.sum()), _PAYROLL_HOURS)
    return t


def _legit_party(rng, world: _World, acct, chan, ttype, region, is_salary) -> np.ndarray:
    n = len(acct)
    usual = rng.random(n)
    shop = np.where(usual < 0.75, world.usual_pos[acct, rng.integers(0, 5, n)],
                    world.pos_picker.pick(rng, region))
    online = np.where(usual < 0.7, world.usual_online[acct, rng.integers(0, 2, n)],
                      world.online_picker.pick_any(rng, n))
    biller = np.where(usual < 0.9, world.usual_biller[acct, rng.integers(0, 2, n)],
                      world.offsets["biller"] + rng.integers(0, world.counts["biller"], n))
    stranger = np.where(rng.random(n) < 0.5,
                        world.offsets["account"] + rng.integers(0, world.n_accounts, n),
                        world.offsets["external"] + rng.integers(0, world.counts["external"], n))
    counterparty = np.where(usual < 0.8, world.contacts[acct, rng.integers(0, 3, n)], stranger)
    atm = np.where(usual < 0.7, world.usual_atm[acct], world.atm_picker.pick(rng, region))
    branch = np.where(usual < 0.85, world.home_branch[acct], world.branch_picker.pick(rng, region))
    return np.select(
        [is_salary, ttype == PAYMENT, ttype == TRANSFER, chan == ATM, chan == BRANCH, chan == POS],
        [world.employer[acct], biller, counterparty, atm, branch, shop],
        default=online,
    )


def _legit_cents(rng, world: _World, acct, chan, ttype, party) -> np.ndarray:
    n = len(acct)
    spend = world.spend[acct]
    noise = rng.standard_normal(n)
    shopping = world.purchase_cents(rng, party, acct) / 100.0
    transfer = 220.0 * spend * np.exp(0.9 * noise)
    transfer = np.where(rng.random(n) < 0.55, _round_to(transfer, 10), transfer)
    cash = 150.0 * spend * np.exp(0.6 * noise)
    cash = np.minimum(np.where(cash < 100, _round_to(cash, 10), _round_to(cash, 50)), 1500)
    counter = _round_to(600.0 * spend * np.exp(0.7 * noise), 10)
    deposit = _round_to(world.deposit_median[acct] * np.exp(0.7 * noise), 10)
    amount = np.select(
        [ttype == TRANSFER, ttype == DEPOSIT, (ttype == WITHDRAWAL) & (chan == ATM),
         ttype == WITHDRAWAL],
        [transfer, deposit, cash, counter],
        default=shopping,
    )
    return _to_cents(amount)


# ---------------------------------------------------------------------------------------------
# Balances


def _balances(acct: np.ndarray, delta: np.ndarray,
              opening: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Balance before and after each row, for rows grouped by account and in time order.

    ``opening`` is the balance of the row's account before its first row here. A balance never
    goes below zero: a debit larger than the balance empties it (the bank's overdraft absorbs the
    rest), which is the running-minimum (Skorokhod) reflection of the cumulative sum.
    """
    n = len(acct)
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.int64)
    first = np.ones(n, dtype=bool)
    first[1:] = acct[1:] != acct[:-1]
    group = np.cumsum(first) - 1
    starts = np.flatnonzero(first)
    total = np.cumsum(delta)
    raw = opening + total - (total - delta)[starts][group]
    raw = np.clip(raw, -_LIMIT, _LIMIT)
    # Shifting each account down by group * _OFF keeps its running minimum from reaching the next.
    low = np.minimum.accumulate(raw - group * _OFF) + group * _OFF
    after = raw - np.minimum(low, 0)
    before = np.empty_like(after)
    before[1:] = after[:-1]
    before[first] = opening[first]
    return before, after


def _settle(rows: dict[str, np.ndarray], state: np.ndarray) -> np.ndarray:
    """Set balance-dependent fraud amounts, return balances before each row, update ``state``.

    ``rows`` must be in time order. Drains take a share of the balance at that moment, and
    cash-outs are capped by it, so they are settled one step at a time for the accounts involved.
    """
    order = np.argsort(rows["acct"], kind="stable")
    acct = rows["acct"][order]
    cents = rows["cents"][order]
    dep = rows["dep"][order]
    sign = np.where(rows["ttype"][order] == DEPOSIT, 1, -1)
    opening = state[acct]
    before, after = _balances(acct, sign * cents, opening)
    if dep.any():
        touched = np.isin(acct, np.unique(acct[dep > 0]))
        sub = np.flatnonzero(touched)
        frac, rank = rows["frac"][order][sub], rows["rank"][order][sub]
        sub_cents = cents[sub].copy()
        for step in np.unique(rank[dep[sub] > 0]):
            sub_before, _ = _balances(acct[sub], sign[sub] * sub_cents, opening[sub])
            now = (dep[sub] > 0) & (rank == step)
            drain = np.floor(frac * sub_before / 1000) * 1000
            capped = np.minimum(sub_cents, np.floor(sub_before / 10_000) * 10_000)
            sub_cents = np.where(now & (dep[sub] == 1) & (sub_before >= 5000), drain, sub_cents)
            sub_cents = np.where(now & (dep[sub] == 2) & (sub_before >= 10_000), capped, sub_cents)
            sub_cents = sub_cents.astype(np.int64)
        cents[sub] = sub_cents
        before, after = _balances(acct, sign * cents, opening)
    last = np.ones(len(acct), dtype=bool)
    last[:-1] = acct[:-1] != acct[1:]
    state[acct[last]] = after[last]
    rows["cents"][order] = cents
    out = np.empty_like(before)
    out[order] = before
    return out


# ---------------------------------------------------------------------------------------------
# Arrow tables and writers


def _labels(rows: dict[str, np.ndarray], cal: _Calendar, late_labels: bool) -> pa.Array:
    fraud = rows["scen"] >= 0
    if not late_labels:
        return pa.array(fraud)
    mature = rows["t"] < cal.seconds - _LABEL_MATURITY_DAYS * _DAY
    reported = (rows["report"] >= 0) & (rows["report"] < cal.seconds)
    never = rows["report"] < 0
    known = np.where(fraud, reported | never, mature)
    return pa.array(fraud & reported, mask=~known)


def _table(world: _World, cal: _Calendar, rows: dict[str, np.ndarray], before: np.ndarray,
           first_id: int, late_labels: bool, csv: bool) -> pa.Table:
    n = len(rows["t"])
    epoch = int(datetime(cal.start.year, cal.start.month, cal.start.day,
                         tzinfo=timezone.utc).timestamp())
    if csv:
        local = pa.array(epoch + rows["t"], pa.timestamp("s"))
        when = pc.strftime(local, format="%Y-%m-%dT%H:%M:%S-05:00")
    else:
        instant = (epoch + _UTC_OFFSET + rows["t"]) * 1_000_000
        when = pa.array(instant, pa.timestamp("us", tz=TIMEZONE))
    acct = rows["acct"]
    ip = rows["ip"]
    scen = rows["scen"]
    return pa.table({
        "transaction_id": _ids("T", first_id + np.arange(1, n + 1), 12),
        "transaction_datetime": when,
        "account_id": world.account_ids.take(pa.array(acct)),
        "transaction_amount": pa.array(rows["cents"] / 100.0),
        "transaction_type": pa.array(TYPES).take(pa.array(rows["ttype"])),
        "channel": pa.array(CHANNELS).take(pa.array(rows["chan"])),
        "account_type": pa.array(ACCOUNT_TYPES).take(pa.array(world.account_type[acct])),
        "account_balance": pa.array(before / 100.0),
        "account_age_days": pa.array((world.age0[acct] + rows["t"] // _DAY).astype(np.int32)),
        "merchant_id": world.party_ids.take(pa.array(rows["party"])),
        "merchant_location": pa.array(REGIONS).take(pa.array(rows["loc"])),
        "ip_address": world.ip_strings.take(pa.array(np.maximum(ip, 0), mask=ip < 0)),
        LABEL: _labels(rows, cal, late_labels),
        GROUND_TRUTH: pa.array(SCENARIOS).take(pa.array(np.maximum(scen, 0), mask=scen < 0)),
    })


class _Writer:
    """Writes tables to a Parquet or CSV file as they come."""

    def __init__(self, path: Path, kind: str):
        self.kind = kind
        self.parquet: pq.ParquetWriter | None = None
        self.stream: pa.NativeFile | None = None
        if kind != "parquet":
            self.stream = (pa.CompressedOutputStream(str(path), "gzip") if kind == "csv.gz"
                           else pa.OSFile(str(path), "wb"))
            self.stream.write((",".join(COLUMNS) + "\n").encode())
        self.path = path
        self.options = pacsv.WriteOptions(include_header=False, quoting_style="none")

    def write(self, table: pa.Table) -> None:
        if self.kind == "parquet":
            if self.parquet is None:
                self.parquet = pq.ParquetWriter(str(self.path), table.schema, compression="zstd")
            self.parquet.write_table(table, row_group_size=max(table.num_rows, 1))
        else:
            pacsv.write_csv(table, self.stream, self.options)

    def close(self) -> None:
        if self.parquet is not None:
            self.parquet.close()
        if self.stream is not None:
            self.stream.close()


# ---------------------------------------------------------------------------------------------
# Entry point


def generate(
    out: str | Path,
    rows: int,
    *,
    seed: int = 42,
    fraud_rate: float = 0.008,
    start: date = date(2025, 1, 1),
    days: int = 90,
    late_labels: bool = False,
    chunk_rows: int = 250_000,
    progress: Callable[[float, str], None] | None = None,
) -> GenerateResult:
    """Write ``rows`` synthetic transactions, in time order, to ``out``.

    Parameters
    ----------
    out : str or Path
        Output file ending in ``.parquet``, ``.csv`` or ``.csv.gz``. Written to a temporary file
        beside it, then renamed, so a failed run leaves nothing half-written.
    rows : int
        Exact number of rows, >= 1.
    seed : int
        Same seed and arguments give the same data.
    fraud_rate : float in [0, 0.5)
        Share of fraud rows; the generator plants ``round(rows * fraud_rate)`` of them.
    start, days : date, int
        The period covered, ``[start, start + days)`` in Peru time (UTC-5).
    late_labels : bool
        If true, fraud labels arrive after a reporting delay (empty if not reported before the
        end), about 5% of frauds are never reported (label false), and ordinary rows of the
        last 7 days have no label yet. ``fraud_scenario`` always keeps the truth.
    chunk_rows : int
        Rows buffered before each write; bounds memory, does not change the data.
    progress : callable(fraction, message), optional
        Called after each write.

    Returns
    -------
    GenerateResult
    """
    started = time.perf_counter()
    kind = _output_kind(out)
    rows, seed, fraud_rate, start, days, chunk_rows = _check_args(
        rows, seed, fraud_rate, start, days, chunk_rows)
    path = Path(out)
    path.parent.mkdir(parents=True, exist_ok=True)

    n_fraud = int(round(rows * fraud_rate))
    cal = _calendar(start, days, rows)
    world = _World(rows, seed, rows - n_fraud, cal)
    plan = _plan_fraud(world, cal, seed, n_fraud)
    counts = _cell_counts(cal, rows - n_fraud)
    logger.debug("world and fraud plan ready in %.2f s", time.perf_counter() - started)

    # A unique name beside the target, created with the usual permissions; renamed when complete.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        _write_cells(tmp, kind, world, cal, plan, counts, seed, late_labels, chunk_rows, rows,
                     progress)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()

    scen = plan["scen"]
    scenario_counts = {name: int((scen == i).sum()) for i, name in enumerate(SCENARIOS)}
    seconds = time.perf_counter() - started
    logger.info("generated %d rows (%d fraud) for %d accounts into %s in %.1f s",
                rows, n_fraud, world.n_accounts, path.name, seconds)
    return GenerateResult(
        path=path, rows=rows, frauds=int(len(scen)), accounts=world.n_accounts,
        merchants=world.n_merchants, seconds=seconds, scenario_counts=scenario_counts,
    )


def _write_cells(tmp: Path, kind: str, world: _World, cal: _Calendar,
                 plan: dict[str, np.ndarray], counts: np.ndarray, seed: int, late_labels: bool,
                 chunk_rows: int, rows: int,
                 progress: Callable[[float, str], None] | None) -> None:
    state = world.balance0.copy()
    bounds = np.searchsorted(plan["t"], [cal.cell_window(c)[0] for c in range(len(counts))]
                             + [cal.seconds])
    writer = _Writer(tmp, kind)
    buffer: list[pa.Table] = []
    buffered = written = 0
    try:
        for cell, n_legit in enumerate(counts):
            last_cell = cell == len(counts) - 1
            if n_legit == 0 and bounds[cell] == bounds[cell + 1] and not last_cell:
                continue
            rng = np.random.default_rng([seed, _CELL_STREAM, cell])
            legit = _legit(rng, world, cal, cell, int(n_legit))
            fraud = _take(plan, np.arange(bounds[cell], bounds[cell + 1]))
            cell_rows = _concat([legit, fraud])
            cell_rows = _take(cell_rows, np.argsort(cell_rows["t"], kind="stable"))
            before = _settle(cell_rows, state)
            table = _table(world, cal, cell_rows, before, written + buffered, late_labels,
                           csv=kind != "parquet")
            buffer.append(table)
            buffered += table.num_rows
            if buffered >= chunk_rows or last_cell:
                writer.write(pa.concat_tables(buffer))
                written += buffered
                buffer, buffered = [], 0
                if progress is not None:
                    progress(written / rows, f"Generated {written:,} of {rows:,} rows")
    finally:
        writer.close()
