"""Alert thresholds: exact operating points in O(log n), optimisers, bands, and a decision log.

An analyst moves a threshold and must see, at once and exactly, what it means: alerts per day,
precision, recall, money caught and cost. :class:`ThresholdTable` sorts the test-window scores
once and keeps cumulative counts at every distinct score ("breakpoint"); any threshold then maps
to a breakpoint with one binary search, and an optimiser is a few vector operations over the
breakpoints.

States of the table: with ``m`` distinct scores ``u_1 > u_2 > ... > u_m``, a threshold ``t``
alerts every row with ``score >= t``, so it selects state ``c`` = number of distinct scores
``>= t`` (0 = no alert). The optimisers report, for the state they pick, the highest threshold
that reaches it: the score ``u_c`` itself, or 1.0 for "no alert" (reachable only when every score
is below 1). ``at(point.threshold)`` gives the same point back.

When no threshold meets an optimiser's target it returns None and emits a
:class:`TargetNotReachedWarning` whose message (and ``target`` / ``best`` attributes) say what the
best reachable value was. A warning rather than an attribute on the table, because one table is
shared by every session of the app and must not carry per-query state.

Chosen operating points are kept per model version in an append-only JSON Lines log
(:func:`save_operating_point`, :func:`load_operating_points`, :func:`live_operating_point`).
"""

from __future__ import annotations

import fcntl
import json
import logging
import math
import numbers
import os
import warnings
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from fraudlens import metrics
from fraudlens.files import fsync_path
from fraudlens.metrics import (
    _check_amounts,
    _check_int,
    _check_length,
    _check_no_missing,
    _check_nonneg_float,
    _check_unit_float,
    _check_y_scores,
    _downsample,
    _param_error,
    _prf_from_counts,
    _ranked_counts,
    _shown,
)

logger = logging.getLogger(__name__)

__all__ = [
    "TargetNotReachedWarning",
    "OperatingPointLogWarning",
    "OperatingPoint",
    "ThresholdTable",
    "BootstrapBands",
    "bootstrap_bands",
    "SavedOperatingPoint",
    "save_operating_point",
    "load_operating_points",
    "live_operating_point",
]

CostMissed = Literal["amount"] | float

_BLOCK = 1 << 16  # breakpoints per block when scanning costs: 512 KiB per temporary


class TargetNotReachedWarning(UserWarning):
    """No threshold meets an optimiser's target; the optimiser returned None.

    Attributes
    ----------
    target : float
        The target that was asked for.
    best : float
        The best value any threshold reaches (NaN if the quantity is undefined).
    """

    def __init__(self, message: str, target: float, best: float):
        super().__init__(message)
        self.target = target
        self.best = best


class OperatingPointLogWarning(UserWarning):
    """A line of the operating-point log was unreadable (for example cut short by a crash)."""


@dataclass(frozen=True)
class OperatingPoint:
    """What one alert threshold means on the test window (alert = ``score >= threshold``).

    Precision is NaN with no alert, recall NaN with no fraud, F1 = 2tp / (2tp + fp + fn) NaN with
    neither; ``alerts_per_day`` is NaN without days; money fields are NaN without amounts;
    ``expected_cost`` = ``cost_review`` * alerts + missed cost, where missed cost is the fraud
    amount missed (``cost_missed == "amount"``) or ``cost_missed`` * fn.
    """

    threshold: float
    alerts: int
    tp: int
    fp: int
    fn: int
    tn: int
    precision: float
    recall: float
    f1: float
    alerts_per_day: float
    fraud_amount_caught: float
    fraud_amount_missed: float
    expected_cost: float
    cost_review: float
    cost_missed: CostMissed


def _check_cost_missed(value: object) -> CostMissed:
    if value == "amount" and isinstance(value, str):
        return "amount"
    if isinstance(value, str):
        raise _param_error("cost_missed", "'amount' or a finite float >= 0", _shown(value))
    return _check_nonneg_float(value, "cost_missed")


def _nan_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    out = np.full(len(num), np.nan)
    np.divide(num, den, out=out, where=den != 0)
    return out


class ThresholdTable:
    """Every operating point of a scored test window, answered by binary search.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Bool or 0/1 labels of the test window.
    scores : array-like of shape (n,)
        Model scores in [0, 1].
    amounts : array-like of shape (n,), optional
        Transaction amounts (finite, >= 0); without them money fields are NaN.
    days : array-like of shape (n,), optional
        Day of each transaction; alerts per day = alerts / number of distinct days. Without them
        ``alerts_per_day`` is NaN and :meth:`within_capacity` is unavailable.
    cost_review : float, default 1.0
        Default cost of reviewing one alert, for ``expected_cost``.
    cost_missed : 'amount' or float, default 'amount'
        Default cost of a missed fraud: its amount, or a fixed value per fraud.

    Attributes
    ----------
    n_samples_, n_positives_, n_days_ : int
        Rows, frauds and distinct days (0 without days).
    fraud_amount_ : float
        Total fraud amount (NaN without amounts).
    thresholds_ : ndarray of shape (m,)
        Distinct scores, decreasing: the breakpoints.

    Notes
    -----
    Counts and the ratios built from them equal a full scan bit for bit. Money is a cumulative
    sum in score order, so it equals a direct sum up to float rounding (exactly when amounts
    are whole numbers). The table holds about nine float64 arrays of ``m + 1`` values (~70 MiB
    per million distinct scores).
    """

    def __init__(
        self,
        y_true: np.ndarray,
        scores: np.ndarray,
        amounts: np.ndarray | None = None,
        days: np.ndarray | None = None,
        *,
        cost_review: float = 1.0,
        cost_missed: CostMissed = "amount",
    ):
        y, s = _check_y_scores(y_true, scores)
        a = None if amounts is None else _check_amounts(amounts, len(y))
        self.cost_review = _check_nonneg_float(cost_review, "cost_review")
        self.cost_missed = _check_cost_missed(cost_missed)
        self.n_days_ = 0 if days is None else _count_days(days, len(y))
        self._has_days = days is not None
        rc = _ranked_counts(y, s, a)
        self._build(rc, len(y))
        if len(y) == 0 or rc.n_positives == 0:
            metrics._warn_undefined(
                f"The threshold table has {len(y)} rows and {rc.n_positives} fraud: recall is "
                "undefined and set to NaN at every threshold."
            )
        logger.debug("Threshold table: %d rows, %d breakpoints", len(y), len(self.thresholds_))

    def _build(self, rc: metrics.RankedCounts, n: int) -> None:
        # Arrays are indexed by state c (0 = no alert), hence the leading zero. Everything an
        # optimiser scans is computed here once, with the same formulas as a single point.
        self.n_samples_ = n
        self.n_positives_ = rc.n_positives
        # Stored increasing for the binary search; ``thresholds_`` is a decreasing view of it.
        self._ascending = np.ascontiguousarray(rc.thresholds[::-1])
        self.thresholds_ = self._ascending[::-1]
        self._tp = _with_leading(0, rc.tps)
        self._alerts = _with_leading(0, rc.tps + rc.fps)
        self._precision = np.empty(len(self._tp))
        self._precision[0] = np.nan
        np.divide(self._tp[1:], self._alerts[1:], out=self._precision[1:])
        self._recall = (
            self._tp / rc.n_positives if rc.n_positives else np.full(len(self._tp), np.nan)
        )
        # Alerts per day is nondecreasing in the state, so capacity is a binary search.
        self._rate = self._alerts / self.n_days_ if self.n_days_ else np.zeros(len(self._tp))
        if rc.fraud_amounts is None:
            self._caught = None
            self.fraud_amount_ = float("nan")
        else:
            self._caught = _with_leading(0.0, rc.fraud_amounts)
            self.fraud_amount_ = float(self._caught[-1])
        # "No alert" needs a threshold above every score, and thresholds stop at 1.
        self._no_alert_reachable = n == 0 or bool(rc.thresholds[0] < 1.0)

    # -- single thresholds ---------------------------------------------------------------------

    def _state(self, threshold: float) -> int:
        """Number of distinct scores >= threshold."""
        return len(self._ascending) - int(np.searchsorted(self._ascending, threshold, "left"))

    def at(
        self,
        threshold: float,
        *,
        cost_review: float | None = None,
        cost_missed: CostMissed | None = None,
    ) -> OperatingPoint:
        """The operating point of ``threshold`` in O(log n).

        Parameters
        ----------
        threshold : float in [0, 1]
        cost_review, cost_missed : optional
            Override the table's costs for ``expected_cost``.

        Returns
        -------
        OperatingPoint
            NaN fields as documented on :class:`OperatingPoint`; no warning is emitted for them
            (a slider passes through "no alert" all the time).
        """
        t = _check_unit_float(threshold, "threshold")
        review, missed = self._costs(cost_review, cost_missed)
        return self._point(self._state(t), t, review, missed)

    def _costs(
        self, cost_review: float | None, cost_missed: CostMissed | None
    ) -> tuple[float, CostMissed]:
        review = (
            self.cost_review
            if cost_review is None
            else _check_nonneg_float(cost_review, "cost_review")
        )
        missed = self.cost_missed if cost_missed is None else _check_cost_missed(cost_missed)
        return review, missed

    def _point(self, c: int, threshold: float, review: float, missed: CostMissed) -> OperatingPoint:
        tp, alerts = int(self._tp[c]), int(self._alerts[c])
        fp = alerts - tp
        fn = self.n_positives_ - tp
        caught = float("nan") if self._caught is None else float(self._caught[c])
        lost = self.fraud_amount_ - caught
        return OperatingPoint(
            threshold=threshold,
            alerts=alerts,
            tp=tp,
            fp=fp,
            fn=fn,
            tn=self.n_samples_ - alerts - fn,
            precision=tp / alerts if alerts else float("nan"),
            recall=tp / self.n_positives_ if self.n_positives_ else float("nan"),
            f1=2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else float("nan"),
            alerts_per_day=alerts / self.n_days_ if self.n_days_ else float("nan"),
            fraud_amount_caught=caught,
            fraud_amount_missed=lost,
            expected_cost=review * alerts + (lost if missed == "amount" else missed * fn),
            cost_review=review,
            cost_missed=missed,
        )

    def _point_of_state(
        self, c: int, review: float | None = None, missed: CostMissed | None = None
    ) -> OperatingPoint:
        review, missed = self._costs(review, missed)
        # The highest threshold reaching state c: the c-th highest score, or 1.0 for no alert.
        threshold = 1.0 if c == 0 else float(self._ascending[len(self._ascending) - c])
        return self._point(c, threshold, review, missed)

    def _state_thresholds(self, states: np.ndarray) -> np.ndarray:
        """The highest threshold reaching each state: 1.0 for "no alert", else the score."""
        m = len(self._ascending)
        if m == 0:
            return np.ones(len(states))
        # State c >= 1 is reached at the c-th highest score, i.e. ascending[m - c].
        return np.where(states == 0, 1.0, self._ascending[np.minimum(m - states, m - 1)])

    # -- optimisers ----------------------------------------------------------------------------

    def _not_reached(self, what: str, target: float, best: float) -> None:
        message = (
            f"No threshold gives {what} {target:g}; the best reachable is {best:.6g}. "
            "Returning None."
        )
        logger.info(message)
        warnings.warn(TargetNotReachedWarning(message, target, best), stacklevel=3)

    def _fewest_alerts_with_tp_of(self, c: int) -> int:
        """The smallest reachable state with as many frauds caught as state ``c``.

        ``tp`` is nondecreasing in the state, so this is a binary search; fewer alerts for the
        same frauds means fewer false positives, so the state found is at least as good on
        precision, cost and workload as ``c``.
        """
        first = int(np.searchsorted(self._tp, self._tp[c], "left"))
        return max(first, 0 if self._no_alert_reachable else 1)

    def max_recall_at_precision(self, precision: float) -> OperatingPoint | None:
        """Highest recall whose precision is at least ``precision``.

        Ties in recall go to the fewest alerts (highest precision, highest threshold).

        Parameters
        ----------
        precision : float in [0, 1]

        Returns
        -------
        OperatingPoint or None
            None, with a :class:`TargetNotReachedWarning`, when no threshold reaches the
            precision or there is no fraud.
        """
        p = _check_unit_float(precision, "precision")
        feasible = self._precision >= p  # NaN (no alert) is never feasible
        # Recall grows with the state: the best feasible state is the last one.
        last = len(feasible) - 1 - int(np.argmax(feasible[::-1]))
        if not self.n_positives_ or not feasible[last]:
            best = np.nanmax(self._precision) if len(self._precision) > 1 else np.nan
            self._not_reached("precision >=", p, float(best) if self.n_positives_ else np.nan)
            return None
        return self._point_of_state(max(self._fewest_alerts_with_tp_of(last), 1))

    def max_precision_at_recall(self, recall: float) -> OperatingPoint | None:
        """Highest precision whose recall is at least ``recall``.

        Ties in precision go to the higher recall, then to the fewest alerts.

        Parameters
        ----------
        recall : float in [0, 1]

        Returns
        -------
        OperatingPoint or None
            None, with a :class:`TargetNotReachedWarning`, when there is no fraud (recall is
            undefined); otherwise a threshold of 0 always reaches recall 1.
        """
        r = _check_unit_float(recall, "recall")
        if not self.n_positives_:
            self._not_reached("recall >=", r, float("nan"))
            return None
        # Recall grows with the state, so the feasible states are a suffix; state 0 has no
        # alert and no precision.
        first = max(int(np.searchsorted(self._recall, r, "left")), 1)
        suffix = self._precision[first:]
        # Among equal precisions, the later state catches more fraud (same precision, more tp).
        last_best = len(suffix) - 1 - int(np.argmax((suffix == suffix.max())[::-1]))
        return self._point_of_state(first + last_best)

    def within_capacity(self, alerts_per_day: float) -> OperatingPoint | None:
        """Highest recall with no more than ``alerts_per_day`` alerts per day on average.

        Ties in recall go to the fewest alerts. The average is over the distinct days of the
        window: a quiet day does not lend its spare capacity to a busy one in practice, so check
        the busiest days on the daily chart as well.

        Parameters
        ----------
        alerts_per_day : float >= 0

        Returns
        -------
        OperatingPoint or None
            None, with a :class:`TargetNotReachedWarning`, when even the highest threshold gives
            more alerts than that (many rows scored exactly 1).
        """
        cap = _check_nonneg_float(alerts_per_day, "alerts_per_day")
        if not self._has_days:
            raise _param_error("days", "given to ThresholdTable to plan by alerts per day", "None")
        last = int(np.searchsorted(self._rate, cap, "right")) - 1  # rate[0] == 0 <= cap
        if last == 0 and not self._no_alert_reachable:
            self._not_reached("alerts per day <=", cap, float(self._rate[1]))
            return None
        return self._point_of_state(self._fewest_alerts_with_tp_of(last))

    def min_cost(self, cost_review: float, cost_missed: CostMissed = "amount") -> OperatingPoint:
        """Lowest ``cost_review * alerts + missed cost``; ties go to the fewest alerts.

        Parameters
        ----------
        cost_review : float >= 0
            Cost of reviewing one alert.
        cost_missed : 'amount' or float >= 0
            Cost of a missed fraud: its amount (needs ``amounts``), or a fixed value per fraud.

        Returns
        -------
        OperatingPoint
            Always found: a threshold of 0 is always reachable.
        """
        review = _check_nonneg_float(cost_review, "cost_review")
        missed = _check_cost_missed(cost_missed)
        first = 0 if self._no_alert_reachable else 1
        return self._point_of_state(self._argmin_cost(review, missed, first), review, missed)

    def _argmin_cost(self, review: float, missed: CostMissed, first: int) -> int:
        """First state from ``first`` on with the lowest cost.

        Scanned in cache-sized blocks: the same arithmetic as one big vector expression, but
        its temporaries stay small, which is about twice as fast on 10M breakpoints and keeps
        memory flat when many sessions ask at once.
        """
        best_state, best_cost = first, np.inf
        for lo in range(first, len(self._tp), _BLOCK):
            cost = self._cost(review, missed, slice(lo, lo + _BLOCK))
            i = int(np.argmin(cost))
            if cost[i] < best_cost:  # strict: an earlier block keeps ties
                best_state, best_cost = lo + i, cost[i]
        return best_state

    def _cost(self, review: float, missed: CostMissed, states: slice | np.ndarray) -> np.ndarray:
        """Expected cost of ``states``, in the operation order of a single point."""
        if missed == "amount":
            if self._caught is None:
                raise _param_error(
                    "cost_missed", "a float when the table has no amounts", "'amount'"
                )
            lost = self.fraud_amount_ - self._caught[states]
        else:
            lost = missed * (self.n_positives_ - self._tp[states])
        return np.add(review * self._alerts[states], lost, out=lost)

    # -- for drawing ---------------------------------------------------------------------------

    def curve_frame(self, max_points: int = 500) -> pd.DataFrame:
        """The breakpoints as a frame for plotting, increasing threshold.

        Parameters
        ----------
        max_points : int >= 2
            Rows kept at most (evenly spaced over the breakpoints, first and last kept).

        Returns
        -------
        pandas.DataFrame of shape (<= max_points, 8)
            Columns threshold, precision, recall, f1, alerts, alerts_per_day,
            fraud_amount_caught, expected_cost (with the table's default costs; NaN when
            the cost of a miss is its amount and the table has no amounts).
        """
        max_points = _check_int(max_points, "max_points", 2)
        first = 0 if self._no_alert_reachable else 1
        last = len(self._tp) - 1
        # Lowest threshold (most alerts) first; the kept positions become states.
        states = last - _downsample(last - first + 1, max_points)
        tp, alerts = self._tp[states], self._alerts[states]
        fp_fn = alerts - tp + (self.n_positives_ - tp)
        if self.cost_missed == "amount" and self._caught is None:
            cost = np.full(len(states), np.nan)
        else:
            cost = self._cost(self.cost_review, self.cost_missed, states)
        return pd.DataFrame(
            {
                "threshold": self._state_thresholds(states),
                "precision": self._precision[states],
                "recall": self._recall[states],
                "f1": _nan_div(2 * tp, 2 * tp + fp_fn),
                "alerts": alerts,
                "alerts_per_day": alerts / self.n_days_ if self.n_days_ else np.nan,
                "fraud_amount_caught": np.nan if self._caught is None else self._caught[states],
                "expected_cost": cost,
            }
        )


def _with_leading(value: float, values: np.ndarray) -> np.ndarray:
    out = np.empty(len(values) + 1, dtype=np.result_type(values, type(value)))
    out[0] = value
    out[1:] = values
    return out


def _count_days(days: object, n: int) -> int:
    d = _check_no_missing(_check_length(days, "days", n), "days")
    return int(len(pd.unique(d)))


# ---------------------------------------------------------------------------------------------
# Bootstrap bands
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BootstrapBands:
    """Precision and recall at a threshold with percentile bootstrap intervals."""

    threshold: float
    precision: float
    precision_low: float
    precision_high: float
    recall: float
    recall_low: float
    recall_high: float
    n_boot: int
    alpha: float


def bootstrap_bands(
    y_true: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    n_boot: int = 200,
    random_state: int | np.random.Generator | None = 0,
    alpha: float = 0.05,
) -> BootstrapBands:
    """Precision and recall at ``threshold`` with (1 - alpha) percentile bootstrap intervals.

    Resampling n rows with replacement and counting tp, fp, fn, tn is the same as one
    multinomial draw of n over those four cells, so each replicate costs O(1), not O(n).

    Parameters
    ----------
    y_true : array-like of shape (n,)
    scores : array-like of shape (n,)
    threshold : float in [0, 1]
    n_boot : int >= 1
    random_state : int, numpy Generator or None, default 0
        Same value, same bands.
    alpha : float in (0, 1)

    Returns
    -------
    BootstrapBands
        Replicates where a ratio is 0/0 are left out of its interval; a ratio undefined on the
        data itself is NaN with an UndefinedMetricWarning, and so are its bounds.
    """
    t = _check_unit_float(threshold, "threshold")
    n_boot = _check_int(n_boot, "n_boot", 1)
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not 0 < alpha < 1:
        raise _param_error("alpha", "a float in (0, 1)", _shown(alpha))
    y, s = _check_y_scores(y_true, scores)
    c = metrics._confusion(y, s >= t)
    point = _prf_from_counts(c.tp, c.fp, c.fn)
    cells = np.array([c.tp, c.fp, c.fn, c.tn], dtype=np.int64)
    n = int(cells.sum())
    rng = np.random.default_rng(random_state)
    draws = rng.multinomial(n, cells / n, size=n_boot) if n else np.zeros((n_boot, 4), np.int64)
    tp, fp, fn = draws[:, 0], draws[:, 1], draws[:, 2]
    p_low, p_high = _percentile_band(_nan_div(tp, tp + fp), point.precision, alpha)
    r_low, r_high = _percentile_band(_nan_div(tp, tp + fn), point.recall, alpha)
    return BootstrapBands(
        threshold=t,
        precision=point.precision,
        precision_low=p_low,
        precision_high=p_high,
        recall=point.recall,
        recall_low=r_low,
        recall_high=r_high,
        n_boot=n_boot,
        alpha=float(alpha),
    )


def _percentile_band(values: np.ndarray, estimate: float, alpha: float) -> tuple[float, float]:
    finite = values[~np.isnan(values)]
    if math.isnan(estimate) or len(finite) == 0:
        return float("nan"), float("nan")
    low, high = np.percentile(finite, [100 * alpha / 2, 100 * (1 - alpha / 2)])
    return float(low), float(high)


# ---------------------------------------------------------------------------------------------
# The operating-point log
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SavedOperatingPoint:
    """One decision in the operating-point log: who chose which point for which model, and why."""

    model: str
    version: str
    user: str
    comment: str
    saved_at: str  # ISO 8601, UTC
    point: OperatingPoint


def _check_text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _param_error(name, "a non-empty string", _shown(value))
    return value.strip()


def _check_version(version: object) -> str:
    if isinstance(version, int) and not isinstance(version, bool):
        return str(version)
    return _check_text(version, "version")


def save_operating_point(
    log_path: str | os.PathLike,
    model: str,
    version: str | int,
    point: OperatingPoint,
    user: str,
    comment: str,
) -> SavedOperatingPoint:
    """Append one decision to the JSON Lines log at ``log_path`` and fsync it.

    The line is written with a single ``write`` on a descriptor opened with ``O_APPEND``, so
    concurrent savers never interleave, and earlier lines are never rewritten. If a crash left
    the file without a final newline, the new record starts on a fresh line.

    Parameters
    ----------
    log_path : path
        The log file; it and its folder are created if missing.
    model : str
        Model name.
    version : str or int
        Model version (stored as a string).
    point : OperatingPoint
        The chosen point; NaN fields are stored as JSON null.
    user : str
        Who chose it (non-empty).
    comment : str
        Why (non-empty).

    Returns
    -------
    SavedOperatingPoint
        The record as written.
    """
    if not isinstance(point, OperatingPoint):
        raise _param_error("point", "an OperatingPoint", type(point).__name__)
    saved = SavedOperatingPoint(
        model=_check_text(model, "model"),
        version=_check_version(version),
        user=_check_text(user, "user"),
        comment=_check_text(comment, "comment"),
        saved_at=datetime.now(UTC).isoformat(timespec="microseconds"),
        point=point,
    )
    _append_line(Path(log_path), _to_json(saved).encode("utf-8") + b"\n")
    logger.info(
        "Saved operating point for %s@%s: threshold %.6g",
        saved.model,
        saved.version,
        point.threshold,
    )
    return saved


def _to_json(saved: SavedOperatingPoint) -> str:
    record = asdict(saved)
    record["point"] = {k: _json_number(v) for k, v in record["point"].items()}
    return json.dumps(record, ensure_ascii=False, allow_nan=False, separators=(",", ":"))


def _json_number(value: object) -> object:
    """Plain int/float for JSON (numpy scalars included); NaN becomes null."""
    if isinstance(value, bool) or isinstance(value, str):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return None if math.isnan(value) else float(value)
    return value


def _append_line(path: Path, line: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        # The last-byte check and the write must not interleave with another writer's.
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            line = b"\n" + line
        written = os.write(fd, line)
        while written < len(line):  # regular files write everything at once; be safe anyway
            written += os.write(fd, line[written:])
        os.fsync(fd)
    finally:
        os.close(fd)
    if created:
        _fsync_dir(path.parent)


def _fsync_dir(folder: Path) -> None:
    # The new file's directory entry must reach the disk too, or a crash can lose the file.
    fsync_path(folder)


_POINT_FIELDS = [f.name for f in fields(OperatingPoint)]


def _from_json(line: bytes) -> SavedOperatingPoint:
    """A record from one log line; ValueError/KeyError/TypeError if it is not one."""
    record = json.loads(line.decode("utf-8"))
    raw = record["point"]
    if set(raw) != set(_POINT_FIELDS):
        raise KeyError("point fields")
    point = OperatingPoint(**{k: float("nan") if raw[k] is None else raw[k] for k in _POINT_FIELDS})
    return SavedOperatingPoint(
        model=str(record["model"]),
        version=str(record["version"]),
        user=str(record["user"]),
        comment=str(record["comment"]),
        saved_at=str(record["saved_at"]),
        point=point,
    )


def load_operating_points(
    log_path: str | os.PathLike, model: str | None = None
) -> list[SavedOperatingPoint]:
    """The decisions in the log, oldest first, optionally for one model.

    Unreadable lines (a last line cut short by a crash, or any line that is not a record) are
    skipped with an :class:`OperatingPointLogWarning` naming the line.

    Parameters
    ----------
    log_path : path
        The log; a missing file is an empty log.
    model : str, optional
        Keep only this model's records.

    Returns
    -------
    list of SavedOperatingPoint
        In file order, which is the order they were saved in.
    """
    path = Path(log_path)
    if not path.exists():
        return []
    lines = path.read_bytes().split(b"\n")
    out = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            saved = _from_json(line)
        except (ValueError, KeyError, TypeError):
            where = "last line" if number == len(lines) else f"line {number}"
            warnings.warn(
                f"Skipped the {where} of {path}: not a complete operating-point record "
                "(cut short by a crash while saving?).",
                OperatingPointLogWarning,
                stacklevel=2,
            )
            continue
        if model is None or saved.model == model:
            out.append(saved)
    return out


def live_operating_point(
    log_path: str | os.PathLike, model: str, version: str | int
) -> SavedOperatingPoint | None:
    """The latest saved decision for ``model`` at ``version``, or None if there is none.

    Parameters
    ----------
    log_path : path
    model : str
    version : str or int

    Returns
    -------
    SavedOperatingPoint or None
    """
    version = _check_version(version)
    records = [
        r
        for r in load_operating_points(log_path, _check_text(model, "model"))
        if r.version == version
    ]
    return records[-1] if records else None
