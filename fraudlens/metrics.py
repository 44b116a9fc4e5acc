"""Evaluation metrics for fraud scores: pure numpy, no I/O.

Conventions, as in scikit-learn:

- ``y_true`` is a 1-d array of bool or 0/1 (1 = fraud); ``scores`` a 1-d array of floats in
  [0, 1], higher is riskier; an alert is ``score >= threshold``.
- A metric that is 0/0 on its input (no fraud, no alerts, no rows) returns NaN and emits an
  :class:`UndefinedMetricWarning`. It never raises for a degenerate slice, so a page can show
  "n/a" for a day without fraud.
- Bad parameters raise ``ValueError`` with one message shape:
  ``The 'threshold' parameter must be a float in [0, 1]. Got 1.5 instead.``
- Several numbers come back as frozen dataclasses.
"""

from __future__ import annotations

import logging
import numbers
import warnings
from collections.abc import Hashable, Iterable
from dataclasses import dataclass

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

__all__ = [
    "UndefinedMetricWarning",
    "Confusion",
    "PrecisionRecallF1",
    "RankedCounts",
    "AccountPrecisionAtK",
    "Calibration",
    "Curves",
    "ranked_counts",
    "confusion",
    "precision_recall_f1",
    "roc_auc",
    "average_precision",
    "precision_at_k",
    "account_precision_at_k_per_day",
    "money_recall",
    "recall_by_scenario",
    "brier_score_loss",
    "calibration",
    "curves",
]


class UndefinedMetricWarning(UserWarning):
    """A metric is 0/0 on its input (no fraud, no alerts or no rows) and was set to NaN."""


# ---------------------------------------------------------------------------------------------
# Parameter checks (shared with ``fraudlens.thresholds``)
# ---------------------------------------------------------------------------------------------


def _param_error(name: str, expected: str, got: object) -> ValueError:
    return ValueError(f"The '{name}' parameter must be {expected}. Got {got} instead.")


def _shown(value: object) -> str:
    """``repr`` of a parameter, numpy scalars shown as plain Python numbers."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def _check_unit_float(value: object, name: str) -> float:
    """``value`` as a float if it is a real number in [0, 1], else ValueError."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 <= float(value) <= 1.0
    ):
        raise _param_error(name, "a float in [0, 1]", _shown(value))
    return float(value)


def _check_nonneg_float(value: object, name: str) -> float:
    """``value`` as a float if it is a finite real number >= 0, else ValueError."""
    if (
        isinstance(value, bool)
        or not isinstance(value, numbers.Real)
        or not 0.0 <= float(value) < np.inf
    ):
        raise _param_error(name, "a finite float >= 0", _shown(value))
    return float(value)


def _check_int(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise _param_error(name, f"an int >= {minimum}", _shown(value))
    return int(value)


def _check_y(y_true: object, name: str = "y_true") -> np.ndarray:
    """``y_true`` as a 1-d bool array; accepts bool or numbers that are all 0 or 1."""
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise _param_error(name, "a 1-d array", f"an array of shape {y.shape}")
    if y.dtype == bool:
        return y
    if y.dtype.kind in "iuf":
        bad = (y != 0) & (y != 1)
        if not bad.any():
            return y.astype(bool)
        first = y[np.flatnonzero(bad)[0]]
    else:
        first = f"dtype {y.dtype}"
    raise _param_error(name, "a 1-d array of bool or 0/1 without missing values", first)


def _check_length(values: object, name: str, n: int, ref: str = "y_true") -> np.ndarray:
    a = np.asarray(values)
    if a.ndim != 1 or len(a) != n:
        raise _param_error(
            name, f"a 1-d array as long as '{ref}' ({n})", f"an array of shape {a.shape}"
        )
    return a


def _check_scores(scores: object, n: int, name: str = "scores") -> np.ndarray:
    """``scores`` as a float64 array of length ``n`` with every value in [0, 1]."""
    s = _check_length(scores, name, n)
    if s.dtype.kind not in "iuf" and s.dtype != bool:
        raise _param_error(name, "an array of floats in [0, 1]", f"dtype {s.dtype}")
    s = s.astype(np.float64, copy=False)
    # NaN fails both comparisons, so one pass over min/max catches NaN, inf and out-of-range.
    if n and not (s.min() >= 0.0 and s.max() <= 1.0):
        bad = ~((s >= 0.0) & (s <= 1.0))
        raise _param_error(name, "an array of floats in [0, 1]", s[np.flatnonzero(bad)[0]])
    return s


def _check_amounts(amounts: object, n: int, name: str = "amounts") -> np.ndarray:
    """``amounts`` as a float64 array of length ``n``, finite and >= 0."""
    a = _check_length(amounts, name, n)
    if a.dtype.kind not in "iuf":
        raise _param_error(name, "an array of finite floats >= 0", f"dtype {a.dtype}")
    a = a.astype(np.float64, copy=False)
    if n and not (a.min() >= 0.0 and a.max() < np.inf):
        bad = ~((a >= 0.0) & (a < np.inf))
        raise _param_error(name, "an array of finite floats >= 0", a[np.flatnonzero(bad)[0]])
    return a


def _check_no_missing(values: np.ndarray, name: str) -> np.ndarray:
    missing = pd.isna(values)
    if np.any(missing):
        where = int(np.flatnonzero(missing)[0])
        raise _param_error(name, "an array without missing values", f"a missing value at {where}")
    return values


def _check_y_scores(y_true: object, scores: object) -> tuple[np.ndarray, np.ndarray]:
    y = _check_y(y_true)
    return y, _check_scores(scores, len(y))


def _warn_undefined(message: str) -> None:
    warnings.warn(message, UndefinedMetricWarning, stacklevel=3)


def _ratio(num: float, den: float, what: str) -> float:
    """``num / den``, or NaN with a warning saying what was undefined when ``den`` is 0."""
    if den == 0:
        _warn_undefined(f"{what} is undefined (0/0) and set to NaN.")
        return float("nan")
    return float(num / den)


# ---------------------------------------------------------------------------------------------
# Counts at a threshold and across all thresholds
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Confusion:
    """Confusion counts at one threshold (alert = ``score >= threshold``)."""

    tp: int
    fp: int
    fn: int
    tn: int


@dataclass(frozen=True)
class PrecisionRecallF1:
    """Precision, recall and F1 at one threshold; NaN where 0/0."""

    precision: float
    recall: float
    f1: float


@dataclass(frozen=True, eq=False)
class RankedCounts:
    """Cumulative counts at every distinct score, highest score first.

    Attributes
    ----------
    thresholds : ndarray of shape (m,)
        The distinct scores, strictly decreasing.
    tps, fps : ndarray of shape (m,), int64
        Frauds and legitimate rows with ``score >= thresholds[i]``.
    fraud_amounts : ndarray of shape (m,) or None
        Fraud amount with ``score >= thresholds[i]``; None without amounts.
    n_positives, n_negatives : int
        Frauds and legitimate rows in total.
    """

    thresholds: np.ndarray
    tps: np.ndarray
    fps: np.ndarray
    fraud_amounts: np.ndarray | None
    n_positives: int
    n_negatives: int


def ranked_counts(
    y_true: np.ndarray, scores: np.ndarray, amounts: np.ndarray | None = None
) -> RankedCounts:
    """Cumulative fraud / legit counts (and fraud amount) above every distinct score.

    The common core of ROC, PR and threshold tables: one sort, then cumulative sums read at the
    last position of each run of equal scores, so tied scores form a single breakpoint.

    Parameters
    ----------
    y_true : array-like of shape (n,)
        Bool or 0/1 labels.
    scores : array-like of shape (n,)
        Floats in [0, 1].
    amounts : array-like of shape (n,), optional
        Transaction amounts, finite and >= 0.

    Returns
    -------
    RankedCounts
        With arrays of shape (m,), m = number of distinct scores.
    """
    y, s = _check_y_scores(y_true, scores)
    a = None if amounts is None else _check_amounts(amounts, len(y))
    return _ranked_counts(y, s, a)


def _ranked_counts(y: np.ndarray, s: np.ndarray, a: np.ndarray | None) -> RankedCounts:
    # One value sort (much faster than an argsort) finds the runs of equal scores; each fraud is
    # then placed in its run by binary search, and per-run counts are summed from the top.
    n = len(s)
    s_sorted = np.sort(s)
    new_run = np.empty(n, dtype=bool)
    new_run[:1] = True
    np.not_equal(s_sorted[1:], s_sorted[:-1], out=new_run[1:])
    starts = np.flatnonzero(new_run)
    distinct = s_sorted[starts]  # increasing
    run_of_fraud = np.searchsorted(distinct, s[y], "left")
    m = len(distinct)
    tps = np.cumsum(np.bincount(run_of_fraud, minlength=m)[::-1])
    fps = (n - starts)[::-1] - tps
    amounts = None
    if a is not None:
        amounts = np.cumsum(np.bincount(run_of_fraud, weights=a[y], minlength=m)[::-1])
    n_pos = len(run_of_fraud)
    return RankedCounts(
        thresholds=distinct[::-1],
        tps=tps,
        fps=fps,
        fraud_amounts=amounts,
        n_positives=n_pos,
        n_negatives=n - n_pos,
    )


def confusion(y_true: np.ndarray, scores: np.ndarray, threshold: float) -> Confusion:
    """Confusion counts with alert = ``score >= threshold``.

    Parameters
    ----------
    y_true : array-like of shape (n,)
    scores : array-like of shape (n,)
    threshold : float in [0, 1]

    Returns
    -------
    Confusion
        ``tp + fp + fn + tn == n``.
    """
    t = _check_unit_float(threshold, "threshold")
    y, s = _check_y_scores(y_true, scores)
    return _confusion(y, s >= t)


def _confusion(y: np.ndarray, alert: np.ndarray) -> Confusion:
    tp = int(np.count_nonzero(y & alert))
    n_alert = int(np.count_nonzero(alert))
    n_pos = int(np.count_nonzero(y))
    fp = n_alert - tp
    fn = n_pos - tp
    return Confusion(tp=tp, fp=fp, fn=fn, tn=len(y) - tp - fp - fn)


def _prf_from_counts(tp: int, fp: int, fn: int) -> PrecisionRecallF1:
    # F1 as 2tp / (2tp + fp + fn), scikit-learn's definition: it is 0 (not NaN) when only one of
    # precision or recall is undefined, and NaN only when there are no frauds and no alerts.
    return PrecisionRecallF1(
        precision=_ratio(tp, tp + fp, "Precision with no alerts"),
        recall=_ratio(tp, tp + fn, "Recall with no fraud"),
        f1=_ratio(2 * tp, 2 * tp + fp + fn, "F1 with no fraud and no alerts"),
    )


def precision_recall_f1(
    y_true: np.ndarray, scores: np.ndarray, threshold: float
) -> PrecisionRecallF1:
    """Precision, recall and F1 with alert = ``score >= threshold``.

    Precision is NaN without alerts, recall NaN without fraud, F1 = 2tp / (2tp + fp + fn) NaN
    without either (as scikit-learn's ``precision_recall_fscore_support`` with
    ``zero_division=np.nan``); each NaN comes with an :class:`UndefinedMetricWarning`.

    Parameters
    ----------
    y_true : array-like of shape (n,)
    scores : array-like of shape (n,)
    threshold : float in [0, 1]

    Returns
    -------
    PrecisionRecallF1
    """
    c = confusion(y_true, scores, threshold)
    return _prf_from_counts(c.tp, c.fp, c.fn)


# ---------------------------------------------------------------------------------------------
# Ranking metrics
# ---------------------------------------------------------------------------------------------


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (tied scores count one half), as ``sklearn.metrics.roc_auc_score``.

    Parameters
    ----------
    y_true : array-like of shape (n,)
    scores : array-like of shape (n,)

    Returns
    -------
    float
        NaN with a warning when there is no fraud or no legitimate row.
    """
    rc = ranked_counts(y_true, scores)
    if rc.n_positives == 0 or rc.n_negatives == 0:
        _warn_undefined(
            f"ROC AUC needs fraud and legitimate rows; got {rc.n_positives} fraud and "
            f"{rc.n_negatives} legitimate. Set to NaN."
        )
    return _roc_auc(rc)


def _roc_auc(rc: RankedCounts) -> float:
    if rc.n_positives == 0 or rc.n_negatives == 0:
        return float("nan")
    tpr = np.concatenate([[0], rc.tps]) / rc.n_positives
    fpr = np.concatenate([[0], rc.fps]) / rc.n_negatives
    return float(np.trapezoid(tpr, fpr))


def average_precision(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Average precision: sum over distinct thresholds of (R_i - R_{i-1}) * P_i.

    The step-wise definition of ``sklearn.metrics.average_precision_score`` (no interpolation).
    With fraud but no legitimate rows it is 1.0, as in scikit-learn.

    Parameters
    ----------
    y_true : array-like of shape (n,)
    scores : array-like of shape (n,)

    Returns
    -------
    float
        NaN with a warning when there is no fraud.
    """
    rc = ranked_counts(y_true, scores)
    if rc.n_positives == 0:
        _warn_undefined("Average precision is undefined with no fraud. Set to NaN.")
    return _average_precision(rc)


def _average_precision(rc: RankedCounts) -> float:
    if rc.n_positives == 0:
        return float("nan")
    precision = rc.tps / (rc.tps + rc.fps)
    recall = rc.tps / rc.n_positives
    return float(np.sum(np.diff(recall, prepend=0.0) * precision))


def precision_at_k(y_true: np.ndarray, scores: np.ndarray, k: int) -> float:
    """Share of fraud among the ``k`` highest-scored rows.

    Ties at the k-th place are broken by position (earlier row first). The denominator is always
    ``k``, as in Le Borgne et al.: with fewer than ``k`` rows the empty places count as misses.

    Parameters
    ----------
    y_true : array-like of shape (n,)
    scores : array-like of shape (n,)
    k : int >= 1

    Returns
    -------
    float
        NaN with a warning when there are no rows.
    """
    k = _check_int(k, "k", 1)
    y, s = _check_y_scores(y_true, scores)
    if len(y) == 0:
        _warn_undefined("Precision@k is undefined with no rows. Set to NaN.")
        return float("nan")
    top = np.argsort(-s, kind="stable")[:k]
    return float(np.count_nonzero(y[top]) / k)


@dataclass(frozen=True, eq=False)
class AccountPrecisionAtK:
    """Daily account ("card") precision@k.

    Attributes
    ----------
    per_day : pandas.Series of shape (n_days,)
        Precision@k of each day, indexed by day in increasing order.
    mean : float
        Mean over days (NaN without days).
    compromised_per_day : pandas.Series of shape (n_days,)
        Accounts with fraud that day among the day's candidates (after removals).
    detected : frozenset
        Accounts detected (in a day's top k, with fraud that day) over the period.
    """

    per_day: pd.Series
    mean: float
    compromised_per_day: pd.Series
    detected: frozenset


def account_precision_at_k_per_day(
    y_true: np.ndarray,
    scores: np.ndarray,
    days: np.ndarray,
    accounts: np.ndarray,
    k: int,
    known_compromised: Iterable[Hashable] | None = None,
) -> AccountPrecisionAtK:
    """Card precision@k per day (Le Borgne et al., *Reproducible Machine Learning for Credit
    Card Fraud Detection*, section 4.2).

    For each day in increasing order: each account's score is its highest score that day and it
    counts as fraudulent if any of its transactions that day is fraud; accounts already known as
    compromised are removed; the ``k`` highest-scored remaining accounts are investigated and
    precision = fraudulent accounts among them / ``k``. The fraudulent ones found become known as
    compromised for all later days (an investigated account is blocked, so it cannot be "found"
    again). Ties in an account's score are broken by account id.

    Parameters
    ----------
    y_true : array-like of shape (n,)
    scores : array-like of shape (n,)
    days : array-like of shape (n,)
        Day of each transaction (date, timestamp floored to the day, or day number); sortable.
    accounts : array-like of shape (n,)
        Account (card / customer) of each transaction.
    k : int >= 1
        Accounts an analyst team can investigate per day.
    known_compromised : iterable of account ids, optional
        Accounts already known as compromised before the first day, removed from every day.

    Returns
    -------
    AccountPrecisionAtK
        ``mean`` is NaN with a warning when there are no rows.
    """
    k = _check_int(k, "k", 1)
    y, s = _check_y_scores(y_true, scores)
    days = _check_no_missing(_check_length(days, "days", len(y)), "days")
    accounts = _check_no_missing(_check_length(accounts, "accounts", len(y)), "accounts")
    daily = _daily_account_table(y, s, days, accounts)
    known = set(known_compromised or ())
    found: set = set()
    per_day, compromised, index = [], [], []
    for day, group in daily.groupby("day", sort=True):
        candidates = group[~group["account"].isin(known)]
        top = candidates.head(k)
        hits = top.loc[top["fraud"], "account"]
        index.append(day)
        per_day.append(len(hits) / k)
        compromised.append(int(candidates["fraud"].sum()))
        known.update(hits)
        found.update(hits)
    idx = pd.Index(index, name="day")
    per_day_s = pd.Series(per_day, index=idx, name="precision_at_k", dtype=float)
    if per_day_s.empty:
        _warn_undefined("Account precision@k is undefined with no rows. Set to NaN.")
        mean = float("nan")
    else:
        mean = float(per_day_s.mean())
    return AccountPrecisionAtK(
        per_day=per_day_s,
        mean=mean,
        compromised_per_day=pd.Series(compromised, index=idx, name="compromised", dtype=int),
        detected=frozenset(found),
    )


def _daily_account_table(
    y: np.ndarray, s: np.ndarray, days: np.ndarray, accounts: np.ndarray
) -> pd.DataFrame:
    """One row per (day, account): max score, any fraud; riskiest first within a day."""
    frame = pd.DataFrame({"day": days, "account": accounts, "score": s, "fraud": y})
    daily = (
        frame.groupby(["day", "account"], sort=False, observed=True)
        .agg(score=("score", "max"), fraud=("fraud", "max"))
        .reset_index()
    )
    return daily.sort_values(
        ["day", "score", "account"], ascending=[True, False, True], kind="stable"
    ).reset_index(drop=True)


# ---------------------------------------------------------------------------------------------
# Money and scenarios
# ---------------------------------------------------------------------------------------------


def money_recall(
    y_true: np.ndarray, scores: np.ndarray, amounts: np.ndarray, threshold: float
) -> float:
    """Fraud amount caught / fraud amount, with alert = ``score >= threshold``.

    Parameters
    ----------
    y_true : array-like of shape (n,)
    scores : array-like of shape (n,)
    amounts : array-like of shape (n,)
        Finite, >= 0.
    threshold : float in [0, 1]

    Returns
    -------
    float
        NaN with a warning when the fraud amount is 0 (no fraud, or only zero amounts).
    """
    t = _check_unit_float(threshold, "threshold")
    y, s = _check_y_scores(y_true, scores)
    a = _check_amounts(amounts, len(y))
    fraud = np.where(y, a, 0.0)
    return _ratio(fraud[s >= t].sum(), fraud.sum(), "Money recall with no fraud amount")


def recall_by_scenario(
    y_true: np.ndarray, scores: np.ndarray, scenarios: np.ndarray, threshold: float
) -> dict[Hashable, float]:
    """Recall of each fraud scenario, with alert = ``score >= threshold``.

    Parameters
    ----------
    y_true : array-like of shape (n,)
    scores : array-like of shape (n,)
    scenarios : array-like of shape (n,)
        The ``fraud_scenario`` ground-truth column: a label on fraud rows, null on legitimate
        ones. Fraud rows without a scenario, and labels on legitimate rows, are left out.
    threshold : float in [0, 1]

    Returns
    -------
    dict
        Scenario -> recall, in sorted scenario order; a scenario with no fraud row is absent.
    """
    t = _check_unit_float(threshold, "threshold")
    y, s = _check_y_scores(y_true, scores)
    sc = _check_length(scenarios, "scenarios", len(y)).astype(object)
    keep = y & ~pd.isna(sc)
    codes, names = pd.factorize(sc[keep], sort=True)
    caught = np.bincount(codes, weights=s[keep] >= t, minlength=len(names))
    total = np.bincount(codes, minlength=len(names))
    return {name: float(c / n) for name, c, n in zip(names, caught, total, strict=True)}


# ---------------------------------------------------------------------------------------------
# Calibration
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Calibration:
    """Reliability curve over uniform bins of [0, 1], non-empty bins only.

    Attributes
    ----------
    bin_lower, bin_upper : ndarray of shape (b,)
        Edges of each non-empty bin (a score on an inner edge belongs to the lower bin).
    mean_predicted : ndarray of shape (b,)
        Mean score in the bin.
    observed_rate : ndarray of shape (b,)
        Fraud rate in the bin.
    count : ndarray of shape (b,), int64
        Rows in the bin.
    brier : float
        Brier score loss over all rows.
    """

    bin_lower: np.ndarray
    bin_upper: np.ndarray
    mean_predicted: np.ndarray
    observed_rate: np.ndarray
    count: np.ndarray
    brier: float


def brier_score_loss(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Mean squared difference between score and label (lower is better).

    Parameters
    ----------
    y_true : array-like of shape (n,)
    scores : array-like of shape (n,)

    Returns
    -------
    float
        NaN with a warning when there are no rows.
    """
    y, s = _check_y_scores(y_true, scores)
    if len(y) == 0:
        _warn_undefined("Brier score is undefined with no rows. Set to NaN.")
        return float("nan")
    return float(np.mean((s - y) ** 2))


def calibration(y_true: np.ndarray, scores: np.ndarray, n_bins: int = 10) -> Calibration:
    """Reliability curve and Brier score.

    Bins are those of ``sklearn.calibration.calibration_curve(strategy="uniform")``, so
    ``observed_rate`` and ``mean_predicted`` equal its ``prob_true`` and ``prob_pred``.

    Parameters
    ----------
    y_true : array-like of shape (n,)
    scores : array-like of shape (n,)
    n_bins : int >= 1

    Returns
    -------
    Calibration
        Empty arrays and NaN Brier score (with a warning) when there are no rows.
    """
    n_bins = _check_int(n_bins, "n_bins", 1)
    y, s = _check_y_scores(y_true, scores)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    bins = np.searchsorted(edges[1:-1], s)
    count = np.bincount(bins, minlength=n_bins)
    score_sum = np.bincount(bins, weights=s, minlength=n_bins)
    fraud_sum = np.bincount(bins, weights=y, minlength=n_bins)
    full = count > 0
    return Calibration(
        bin_lower=edges[:-1][full],
        bin_upper=edges[1:][full],
        mean_predicted=score_sum[full] / count[full],
        observed_rate=fraud_sum[full] / count[full],
        count=count[full].astype(np.int64),
        brier=brier_score_loss(y, s),
    )


# ---------------------------------------------------------------------------------------------
# Curves for drawing
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class Curves:
    """ROC and precision-recall points, downsampled for drawing.

    Attributes
    ----------
    fpr, tpr, roc_thresholds : ndarray of shape (r,)
        ROC points from (0, 0) (threshold ``inf``: no alert) to (1, 1), as
        ``sklearn.metrics.roc_curve(drop_intermediate=False)``.
    precision, recall, pr_thresholds : ndarray of shape (p,)
        One point per distinct score, highest threshold (lowest recall) first; no artificial
        (recall 0, precision 1) point.
    roc_auc, average_precision : float
        Computed on all points, before downsampling.
    """

    fpr: np.ndarray
    tpr: np.ndarray
    roc_thresholds: np.ndarray
    precision: np.ndarray
    recall: np.ndarray
    pr_thresholds: np.ndarray
    roc_auc: float
    average_precision: float


def _downsample(n: int, max_points: int) -> np.ndarray:
    """At most ``max_points`` evenly spaced indices into ``range(n)``, first and last kept."""
    if n <= max_points:
        return np.arange(n)
    return np.unique(np.linspace(0, n - 1, max_points).round().astype(np.int64))


def curves(y_true: np.ndarray, scores: np.ndarray, max_points: int = 500) -> Curves:
    """ROC and PR curve points, at most ``max_points`` each, exact endpoints kept.

    Parameters
    ----------
    y_true : array-like of shape (n,)
    scores : array-like of shape (n,)
    max_points : int >= 2

    Returns
    -------
    Curves
        Rates that are 0/0 (TPR and recall with no fraud, FPR with no legitimate row) are NaN,
        with a warning.
    """
    max_points = _check_int(max_points, "max_points", 2)
    y, s = _check_y_scores(y_true, scores)
    rc = _ranked_counts(y, s, None)
    tps = np.concatenate([[0], rc.tps])
    fps = np.concatenate([[0], rc.fps])
    roc_thr = np.concatenate([[np.inf], rc.thresholds])
    tpr = _rates(tps, rc.n_positives, "TPR (recall) with no fraud")
    fpr = _rates(fps, rc.n_negatives, "FPR with no legitimate rows")
    alerts = rc.tps + rc.fps
    precision = rc.tps / alerts  # alerts >= 1 at every distinct score
    recall = tpr[1:]
    r = _downsample(len(fpr), max_points)
    p = _downsample(len(precision), max_points)
    # The rates above have already warned if AUC or AP is undefined.
    return Curves(
        fpr=fpr[r],
        tpr=tpr[r],
        roc_thresholds=roc_thr[r],
        precision=precision[p],
        recall=recall[p],
        pr_thresholds=rc.thresholds[p],
        roc_auc=_roc_auc(rc),
        average_precision=_average_precision(rc),
    )


def _rates(counts: np.ndarray, total: int, what: str) -> np.ndarray:
    if total == 0:
        _warn_undefined(f"{what} is undefined (0/0) and set to NaN.")
        return np.full(len(counts), np.nan)
    return counts / total
