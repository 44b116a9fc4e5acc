"""The window features of every row in one pass per window, compiled with numba.

DuckDB evaluates each RANGE frame of :func:`fraudlens.features.features_sql` with a segment
tree and each ``PARTITION BY`` with a sort of its own: at 10M rows that is minutes. Here the rows
are sorted once by account (and once by merchant) and every frame is a pair of pointers that
only move forward, so each window costs one linear pass. The results are the same columns,
named as in the SQL's ``acc`` and ``merch`` parts, with the same frames and NULLs; the final
expressions are still evaluated by DuckDB from the same SQL.

Inputs are arrays in the feature SQL's order (``ORDER BY ts, transaction_id``); codes are
integers per distinct value with -1 for NULL; timestamps are microseconds.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor

import numba
import numpy as np

HOUR_US = 3_600_000_000
DAY_US = 24 * HOUR_US
# A window's sum and spread add whole blocks of this many rows from precomputed summaries:
# each row's window costs O(BLOCK + rows / BLOCK), however long it is.
BLOCK = 32


def compute(ts: np.ndarray, account: np.ndarray, amount: np.ndarray, label: np.ndarray,
            codes: dict[str, np.ndarray], delay_days: int, hours: dict[str, int], days: tuple[int, ...],
            threads: int = 2, at: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Every window column, in the input's order (or where ``at`` says): the ``acc`` columns of
    the feature SQL but the means, and the ``merch`` columns when ``codes`` has ``merchant_id``.

    ``codes`` holds the integer codes of ``merchant_id`` and of the columns whose change and
    novelty are features (merchant_location, ip_address, channel) that the dataset has; ``hours``
    the account windows' lengths by name (``features.ACCOUNT_WINDOWS``, which has "24h" and
    "30d"), ``days`` the merchant windows'. Flags come back as int8, counts as float32 (exact at
    these sizes), the rest as float64; NaN is NULL. The passes are independent and their kernels
    release the GIL, so they run on ``threads`` threads. ``at`` says where each input row's values
    go in the output (by default, the same place): every column is put in place in the one
    pass that also undoes the sort by account.
    """
    tasks = _account_tasks(ts, account, amount, label, codes, delay_days, hours, at)
    if "merchant_id" in codes:
        tasks.insert(0, lambda: merchant_windows(ts, codes["merchant_id"], label, delay_days, days, at))
    out: dict[str, np.ndarray] = {}
    with ThreadPoolExecutor(threads) as pool:
        for part in pool.map(lambda task: task(), tasks):
            out.update(part)
    return out


def _account_tasks(ts, account, amount, label, codes, delay_days, hours, at) -> list:
    """The account windows as independent passes, longest first, each returning its columns."""
    order = _stable_order(account, int(account.max(initial=-1)) + 1)  # by account, then time
    a_ts = ts[order]
    a_amt = amount[order]
    starts = _group_starts(account[order])
    dest = order if at is None else at[order]

    def put(values, dtype=np.float32):
        full = np.empty(len(order), dtype)
        _scatter_into(full, dest, values)
        return full

    def stats(key, length):
        count, total, biggest = _range_stats(a_ts, a_amt, starts, length * HOUR_US)
        return {f"acct_count_{key}": put(count), f"acct_sum_{key}": put(total, np.float64),
                f"acct_max_{key}": put(biggest, np.float64)}

    def spread():
        return {"acct_std_30d": put(_range_std(a_ts, a_amt, starts, hours["30d"] * HOUR_US), np.float64)}

    def merchants():
        merchant = codes["merchant_id"][order]
        n_codes = int(merchant.max(initial=-1)) + 1
        return {"acct_distinct_merchants_24h": put(_range_distinct(a_ts, merchant, starts, hours["24h"] * HOUR_US,
                                                                   n_codes)),
                "first_use_of_merchant": put(_first_use(merchant, starts, n_codes), np.int8)}

    def sequence():
        found = {"seconds_since_previous": put(_since_previous(a_ts, starts), np.float64),
                 "acct_known_fraud": put(_known_fraud(a_ts, label[order], starts, delay_days * DAY_US), np.int8)}
        for col in ("merchant_location", "ip_address", "channel"):
            if col in codes:
                values = codes[col][order]
                found[f"{col}_changed"] = put(_changed(values, starts), np.int8)
                found[f"{col}_new"] = put(_first_use(values, starts, int(values.max(initial=-1)) + 1), np.int8)
        return found

    tasks = [spread] + [functools.partial(stats, key, length) for key, length in reversed(hours.items())]
    return tasks + ([merchants] if "merchant_id" in codes else []) + [sequence]


def merchant_windows(ts: np.ndarray, merchant: np.ndarray, label: np.ndarray,
                     delay_days: int, days: tuple[int, ...], at: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """The ``merch`` columns (count and known frauds per window); NaN where the merchant is NULL.
    ``at`` as in :func:`compute`."""
    order = _stable_order(merchant, int(merchant.max(initial=-1)) + 1)
    order = order[np.count_nonzero(merchant < 0):]  # NULL merchants sort first and have no window
    m_ts = ts[order]
    fraud = (label[order] == 1).astype(np.int64)
    starts = _group_starts(merchant[order])
    dest = order if at is None else at[order]
    # Frames [t - (d + delay), t - delay] with both ends in; with no delay, up to 1 µs before t.
    upper = delay_days * DAY_US if delay_days else 1
    out = {}
    for d in days:
        count, frauds = _range_count_sum(m_ts, fraud, starts, (d + delay_days) * DAY_US, upper)
        out[f"merch_count_{d}d"] = _scatter(len(ts), dest, count)
        out[f"merch_frauds_{d}d"] = _scatter(len(ts), dest, np.where(count > 0, frauds, np.nan))
    return out


def _scatter(n: int, order: np.ndarray, values: np.ndarray) -> np.ndarray:
    full = np.full(n, np.nan, np.float32)
    _scatter_into(full, order, values)
    return full


@numba.njit(cache=True, nogil=True)
def _scatter_into(out, order, values):
    """``out[order] = values`` without holding the GIL."""
    for i in range(len(order)):
        out[order[i]] = values[i]


def _stable_order(codes: np.ndarray, n_codes: int) -> np.ndarray:
    """Row numbers sorted by code (-1 first), ties in input order: a counting sort."""
    return _counting_sort(codes.astype(np.int64), n_codes)


@numba.njit(cache=True, nogil=True)
def _counting_sort(codes, n_codes):
    slots = np.zeros(n_codes + 2, np.int64)
    for c in codes:
        slots[c + 2] += 1
    for k in range(1, n_codes + 2):
        slots[k] += slots[k - 1]
    order = np.empty(len(codes), np.int64)
    for i in range(len(codes)):
        c = codes[i] + 1
        order[slots[c]] = i
        slots[c] += 1
    return order


def _group_starts(sorted_codes: np.ndarray) -> np.ndarray:
    """Start of each run of equal codes, and the end as the last entry."""
    edges = np.flatnonzero(sorted_codes[1:] != sorted_codes[:-1]) + 1
    return np.concatenate(([0], edges, [len(sorted_codes)])).astype(np.int64)


@numba.njit(cache=True, nogil=True)
def _blocks(amt, size):
    """Sum, mean and sum of squared deviations of each run of ``size`` rows (Welford)."""
    k = (len(amt) + size - 1) // size
    total = np.zeros(k)
    mean = np.zeros(k)
    m2 = np.zeros(k)
    for b in range(k):
        n = 0
        for i in range(b * size, min((b + 1) * size, len(amt))):
            n += 1
            total[b] += amt[i]
            delta = amt[i] - mean[b]
            mean[b] += delta / n
            m2[b] += delta * (amt[i] - mean[b])
    return total, mean, m2


@numba.njit(cache=True, nogil=True)
def _window_sum(amt, block_sum, lo, hi, size):
    """Sum of rows [lo, hi), whole blocks taken from their sums: never a running total that
    drifts as large amounts leave the window."""
    total = 0.0
    i = lo
    while i < hi:
        if i % size == 0 and i + size <= hi:
            total += block_sum[i // size]
            i += size
        else:
            total += amt[i]
            i += 1
    return total


@numba.njit(cache=True, nogil=True)
def _window_m2(amt, block_mean, block_m2, lo, hi, size):
    """Sum of squared deviations of rows [lo, hi): Welford's update row by row, Chan's to add a
    whole block. Equal amounts give exactly 0, as DuckDB's stddev_samp does."""
    n = 0
    mean = 0.0
    m2 = 0.0
    i = lo
    while i < hi:
        if i % size == 0 and i + size <= hi:
            both = n + size
            delta = block_mean[i // size] - mean
            mean += delta * size / both
            m2 += block_m2[i // size] + delta * delta * n * size / both
            n = both
            i += size
        else:
            n += 1
            delta = amt[i] - mean
            mean += delta / n
            m2 += delta * (amt[i] - mean)
            i += 1
    return m2


@numba.njit(cache=True, nogil=True)
def _range_stats(ts, amt, starts, span):
    """Count, sum and max over [t - span, t) per row, rows of a group in time order."""
    n = len(ts)
    count = np.zeros(n, np.float64)
    total = np.full(n, np.nan)
    biggest = np.full(n, np.nan)
    block_sum = _blocks(amt, BLOCK)[0]
    deque = np.empty(n, np.int64)  # indices of a falling run of amounts: the window's max first
    for g in range(len(starts) - 1):
        s, e = starts[g], starts[g + 1]
        lo = s
        hi = s
        head = 0
        tail = 0
        for i in range(s, e):
            while hi < i and ts[hi] < ts[i]:
                while tail > head and amt[deque[tail - 1]] <= amt[hi]:
                    tail -= 1
                deque[tail] = hi
                tail += 1
                hi += 1
            while lo < hi and ts[lo] < ts[i] - span:
                lo += 1
            while tail > head and deque[head] < lo:
                head += 1
            count[i] = hi - lo
            if hi > lo:
                total[i] = _window_sum(amt, block_sum, lo, hi, BLOCK)
                biggest[i] = amt[deque[head]]
    return count, total, biggest


@numba.njit(cache=True, nogil=True)
def _range_std(ts, amt, starts, span):
    """Sample standard deviation over [t - span, t); NaN under two rows."""
    n = len(ts)
    out = np.full(n, np.nan)
    _total, block_mean, block_m2 = _blocks(amt, BLOCK)
    for g in range(len(starts) - 1):
        s, e = starts[g], starts[g + 1]
        lo = s
        hi = s
        for i in range(s, e):
            while hi < i and ts[hi] < ts[i]:
                hi += 1
            while lo < hi and ts[lo] < ts[i] - span:
                lo += 1
            if hi - lo >= 2:
                out[i] = np.sqrt(max(_window_m2(amt, block_mean, block_m2, lo, hi, BLOCK), 0.0) / (hi - lo - 1))
    return out


@numba.njit(cache=True, nogil=True)
def _since_previous(ts, starts):
    n = len(ts)
    out = np.full(n, np.nan)
    for g in range(len(starts) - 1):
        for i in range(starts[g] + 1, starts[g + 1]):
            out[i] = (ts[i] - ts[i - 1]) / 1e6
    return out


@numba.njit(cache=True, nogil=True)
def _range_distinct(ts, codes, starts, span, n_codes):
    """Distinct non-NULL codes over [t - span, t)."""
    n = len(ts)
    out = np.zeros(n, np.float64)
    seen = np.zeros(max(n_codes, 1), np.int64)
    for g in range(len(starts) - 1):
        s, e = starts[g], starts[g + 1]
        lo = s
        hi = s
        distinct = 0
        for i in range(s, e):
            while hi < i and ts[hi] < ts[i]:
                c = codes[hi]
                if c >= 0:
                    if seen[c] == 0:
                        distinct += 1
                    seen[c] += 1
                hi += 1
            while lo < hi and ts[lo] < ts[i] - span:
                c = codes[lo]
                if c >= 0:
                    seen[c] -= 1
                    if seen[c] == 0:
                        distinct -= 1
                lo += 1
            out[i] = distinct
        for j in range(lo, hi):  # leave the counts at zero for the next group
            c = codes[j]
            if c >= 0:
                seen[c] -= 1
    return out


@numba.njit(cache=True, nogil=True)
def _first_use(codes, starts, n_codes):
    """1 where no earlier row of the group has the same code (NULLs count as one value)."""
    n = len(codes)
    out = np.zeros(n, np.int8)
    last_group = np.full(n_codes + 1, -1, np.int64)  # the last slot is NULL's
    for g in range(len(starts) - 1):
        for i in range(starts[g], starts[g + 1]):
            c = codes[i] if codes[i] >= 0 else n_codes
            if last_group[c] != g:
                last_group[c] = g
                out[i] = 1
    return out


@numba.njit(cache=True, nogil=True)
def _changed(codes, starts):
    """1 where the code differs from the group's previous row (NULL is a value); 0 on the first."""
    n = len(codes)
    out = np.zeros(n, np.int8)
    for g in range(len(starts) - 1):
        for i in range(starts[g] + 1, starts[g + 1]):
            if codes[i] != codes[i - 1]:
                out[i] = 1
    return out


@numba.njit(cache=True, nogil=True)
def _known_fraud(ts, label, starts, delay):
    """1 where a row of the group at or before t - delay is labelled fraud."""
    n = len(ts)
    out = np.zeros(n, np.int8)
    for g in range(len(starts) - 1):
        s, e = starts[g], starts[g + 1]
        k = s
        known = False
        for i in range(s, e):
            while k < e and ts[k] <= ts[i] - delay:
                if label[k] == 1:
                    known = True
                k += 1
            if known:
                out[i] = 1
    return out


@numba.njit(cache=True, nogil=True)
def _range_count_sum(ts, values, starts, back, upper):
    """Count and sum over [t - back, t - upper] per row (both ends in)."""
    n = len(ts)
    count = np.zeros(n, np.int64)
    total = np.zeros(n, np.int64)
    for g in range(len(starts) - 1):
        s, e = starts[g], starts[g + 1]
        lo = s
        hi = s
        acc = 0
        for i in range(s, e):
            while hi < e and ts[hi] <= ts[i] - upper:
                acc += values[hi]
                hi += 1
            while lo < hi and ts[lo] < ts[i] - back:
                acc -= values[lo]
                lo += 1
            count[i] = hi - lo
            total[i] = acc
    return count, total
