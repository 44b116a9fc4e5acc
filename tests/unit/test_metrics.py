"""Metrics against slow, obviously correct references and against scikit-learn."""

from __future__ import annotations

import contextlib
import math
import re
import warnings
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    precision_recall_curve,
    precision_recall_fscore_support,
    roc_auc_score,
    roc_curve,
)
from sklearn.metrics import brier_score_loss as sk_brier

from fraudlens import metrics as m
from fraudlens.metrics import UndefinedMetricWarning

SEEDS = range(12)
THRESHOLDS = [0.0, 0.05, 0.3, 0.5, 0.7, 1.0]


def data(seed: int, n: int | None = None, ties: bool | None = None):
    """Small random labels and scores; every other seed has heavy ties (scores on a 0.1 grid)."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(5, 60)) if n is None else n
    ties = seed % 2 == 0 if ties is None else ties
    y = rng.random(n) < rng.uniform(0.1, 0.6)
    y[0], y[1] = True, False  # both classes present
    raw = np.clip(rng.normal(np.where(y, 0.6, 0.4), 0.25), 0, 1)
    s = np.round(raw, 1) if ties else raw
    return y, s


@contextlib.contextmanager
def no_warning():
    """Any UndefinedMetricWarning inside fails the test."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", UndefinedMetricWarning)
        yield


# --- slow references ------------------------------------------------------------------------


def ref_confusion(y, s, t):
    tp = sum(1 for yi, si in zip(y, s, strict=True) if yi and si >= t)
    fp = sum(1 for yi, si in zip(y, s, strict=True) if not yi and si >= t)
    fn = sum(1 for yi, si in zip(y, s, strict=True) if yi and si < t)
    tn = sum(1 for yi, si in zip(y, s, strict=True) if not yi and si < t)
    return tp, fp, fn, tn


def ref_roc_auc(y, s):
    pos = [si for yi, si in zip(y, s, strict=True) if yi]
    neg = [si for yi, si in zip(y, s, strict=True) if not yi]
    wins = sum(1.0 if p > q else 0.5 if p == q else 0.0 for p in pos for q in neg)
    return wins / (len(pos) * len(neg))


def ref_average_precision(y, s):
    n_pos = sum(y)
    ap, last_recall = 0.0, 0.0
    for t in sorted(set(s), reverse=True):
        tp, fp, _, _ = ref_confusion(y, s, t)
        recall = tp / n_pos
        ap += (recall - last_recall) * tp / (tp + fp)
        last_recall = recall
    return ap


def ref_precision_at_k(y, s, k):
    order = sorted(range(len(s)), key=lambda i: -s[i])  # stable: earlier row first on ties
    return sum(y[i] for i in order[:k]) / k


def ref_account_precision(y, s, days, accounts, k, known=()):
    """Transcription of Le Borgne et al.'s card_precision_top_k, with ties broken by account."""
    known = set(known)
    out = {}
    for day in sorted(set(days)):
        best = defaultdict(lambda: -1.0)
        fraud = defaultdict(bool)
        for yi, si, di, ai in zip(y, s, days, accounts, strict=True):
            if di == day and ai not in known:
                best[ai] = max(best[ai], si)
                fraud[ai] = fraud[ai] or bool(yi)
        ranked = sorted(best, key=lambda a: (-best[a], a))[:k]
        hits = [a for a in ranked if fraud[a]]
        out[day] = len(hits) / k
        known.update(hits)
    return out


def ref_money_recall(y, s, a, t):
    total = sum(ai for yi, ai in zip(y, a, strict=True) if yi)
    caught = sum(ai for yi, si, ai in zip(y, s, a, strict=True) if yi and si >= t)
    return caught / total


def ref_calibration(y, s, n_bins):
    inner = list(np.linspace(0, 1, n_bins + 1)[1:-1])  # the same floats as the library's edges
    bins = defaultdict(list)
    for yi, si in zip(y, s, strict=True):
        bins[sum(1 for e in inner if e < si)].append((yi, si))
    keys = sorted(bins)
    return (
        [sum(si for _, si in bins[b]) / len(bins[b]) for b in keys],
        [sum(yi for yi, _ in bins[b]) / len(bins[b]) for b in keys],
        [len(bins[b]) for b in keys],
    )


# --- against the references and scikit-learn --------------------------------------------------


@pytest.mark.parametrize("seed", SEEDS)
def test_confusion_and_prf_match_reference_and_sklearn(seed):
    y, s = data(seed)
    for t in [*THRESHOLDS, *np.unique(s)]:
        c = m.confusion(y, s, float(t))
        assert (c.tp, c.fp, c.fn, c.tn) == ref_confusion(y, s, t)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UndefinedMetricWarning)
            got = m.precision_recall_f1(y, s, float(t))
            sk = precision_recall_fscore_support(y, s >= t, average="binary", zero_division=np.nan)[
                :3
            ]
        np.testing.assert_allclose([got.precision, got.recall, got.f1], sk, rtol=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_roc_auc_matches_pairwise_reference_and_sklearn(seed):
    y, s = data(seed)
    with no_warning():
        got = m.roc_auc(y, s)
    assert got == pytest.approx(ref_roc_auc(y, s), abs=1e-12)
    assert got == pytest.approx(roc_auc_score(y, s), abs=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
def test_average_precision_matches_reference_and_sklearn(seed):
    y, s = data(seed)
    with no_warning():
        got = m.average_precision(y, s)
    assert got == pytest.approx(ref_average_precision(y, s), abs=1e-12)
    assert got == pytest.approx(average_precision_score(y, s), abs=1e-12)


def test_average_precision_is_one_without_legitimate_rows():
    assert m.average_precision([1, 1, 1], [0.2, 0.5, 0.5]) == 1.0


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [1, 3, 10, 100])
def test_precision_at_k_matches_reference(seed, k):
    y, s = data(seed)
    assert m.precision_at_k(y, s, k) == pytest.approx(ref_precision_at_k(y, s, k))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("k", [1, 2, 5])
def test_account_precision_at_k_matches_handbook_reference(seed, k):
    rng = np.random.default_rng(100 + seed)
    n = 150
    y = rng.random(n) < 0.15
    s = np.round(rng.random(n), 1)  # ties between accounts
    days = rng.integers(0, 6, n)
    accounts = np.array([f"acc {i:02d}" for i in rng.integers(0, 12, n)])
    known = {"acc 03"} if seed % 3 == 0 else None
    got = m.account_precision_at_k_per_day(y, s, days, accounts, k, known_compromised=known)
    ref = ref_account_precision(y, s, days, accounts, k, known or ())
    assert list(got.per_day.index) == sorted(ref)
    np.testing.assert_allclose(got.per_day.to_numpy(), [ref[d] for d in sorted(ref)])
    assert got.mean == pytest.approx(np.mean(list(ref.values())))


def test_account_precision_removes_accounts_detected_earlier():
    # Day 1: A (fraud) is detected. Day 2: A would top the list again but is already blocked,
    # so B (fraud) is investigated instead; C is never in the top 1.
    y = np.array([1, 0, 0, 1, 1, 0])
    s = np.array([0.9, 0.5, 0.1, 0.95, 0.6, 0.2])
    days = np.array([1, 1, 1, 2, 2, 2])
    acc = np.array(["A", "B", "C", "A", "B", "C"])
    got = m.account_precision_at_k_per_day(y, s, days, acc, k=1)
    assert got.per_day.to_dict() == {1: 1.0, 2: 1.0}
    assert got.detected == frozenset({"A", "B"})
    assert got.compromised_per_day.to_dict() == {1: 1, 2: 1}
    seeded = m.account_precision_at_k_per_day(y, s, days, acc, k=1, known_compromised=["A"])
    assert seeded.per_day.to_dict() == {1: 0.0, 2: 1.0}


@pytest.mark.parametrize("seed", SEEDS)
def test_money_recall_matches_reference(seed):
    y, s = data(seed)
    a = np.random.default_rng(seed).uniform(0, 5000, len(y))
    for t in THRESHOLDS:
        assert m.money_recall(y, s, a, t) == pytest.approx(ref_money_recall(y, s, a, t))


def test_recall_by_scenario_matches_reference():
    rng = np.random.default_rng(5)
    n = 400
    y = rng.random(n) < 0.3
    s = rng.random(n)
    names = np.array(["account takeover", "card [skimming]", "mule"], dtype=object)
    scen = np.where(y, names[rng.integers(0, 3, n)], None)
    scen[np.flatnonzero(y)[0]] = np.nan  # a fraud without a scenario is left out
    got = m.recall_by_scenario(y, s, scen, 0.5)
    assert list(got) == sorted(names)
    for name in names:
        rows = [i for i in range(n) if y[i] and scen[i] == name]
        assert got[name] == pytest.approx(sum(s[i] >= 0.5 for i in rows) / len(rows))


def test_recall_by_scenario_accepts_pandas_strings_with_missing():
    y = np.array([1, 1, 0, 1])
    scen = pd.array(["mule", "mule", pd.NA, "sim swap"], dtype="string")
    assert m.recall_by_scenario(y, [0.9, 0.1, 0.9, 0.6], scen, 0.5) == {
        "mule": 0.5,
        "sim swap": 1.0,
    }


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("n_bins", [1, 4, 10])
def test_calibration_matches_reference_and_sklearn(seed, n_bins):
    y, s = data(seed)
    cal = m.calibration(y, s, n_bins=n_bins)
    pred, obs, count = ref_calibration(y, s, n_bins)
    np.testing.assert_allclose(cal.mean_predicted, pred, rtol=1e-12)
    np.testing.assert_allclose(cal.observed_rate, obs, rtol=1e-12)
    assert list(cal.count) == count
    sk_true, sk_pred = calibration_curve(y, s, n_bins=n_bins, strategy="uniform")
    np.testing.assert_allclose(cal.observed_rate, sk_true, rtol=1e-12)
    np.testing.assert_allclose(cal.mean_predicted, sk_pred, rtol=1e-12)
    assert cal.brier == pytest.approx(sk_brier(y, s), rel=1e-12)
    assert cal.brier == pytest.approx(
        sum((si - yi) ** 2 for yi, si in zip(y, s, strict=True)) / len(y)
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_curves_match_sklearn_points(seed):
    y, s = data(seed)
    c = m.curves(y, s)
    fpr, tpr, thr = roc_curve(y, s, drop_intermediate=False)
    np.testing.assert_allclose(c.fpr, fpr)
    np.testing.assert_allclose(c.tpr, tpr)
    np.testing.assert_array_equal(c.roc_thresholds, thr)
    prec, rec, pthr = precision_recall_curve(y, s)
    # scikit-learn: increasing threshold, then an extra (precision 1, recall 0) point.
    np.testing.assert_allclose(c.precision, prec[:-1][::-1])
    np.testing.assert_allclose(c.recall, rec[:-1][::-1])
    np.testing.assert_array_equal(c.pr_thresholds, pthr[::-1])
    assert c.roc_auc == pytest.approx(roc_auc_score(y, s))
    assert c.average_precision == pytest.approx(average_precision_score(y, s))


def test_curves_are_downsampled_with_exact_endpoints():
    y, s = data(1, n=20_000, ties=False)
    full = m.curves(y, s, max_points=10**9)
    small = m.curves(y, s, max_points=500)
    for name in ["fpr", "tpr", "roc_thresholds", "precision", "recall", "pr_thresholds"]:
        a, b = getattr(full, name), getattr(small, name)
        assert len(a) > 10_000 and 2 <= len(b) <= 500
        assert b[0] == a[0] and b[-1] == a[-1]
    assert (small.fpr[0], small.tpr[0], small.fpr[-1], small.tpr[-1]) == (0, 0, 1, 1)
    assert np.all(np.diff(small.fpr) >= 0) and np.all(np.diff(small.recall) >= 0)
    assert small.roc_auc == full.roc_auc


def test_ranked_counts_collapse_ties():
    rc = m.ranked_counts([1, 0, 1, 0, 1], [0.5, 0.5, 0.9, 0.1, 0.5], amounts=[10, 20, 30, 40, 50])
    np.testing.assert_array_equal(rc.thresholds, [0.9, 0.5, 0.1])
    np.testing.assert_array_equal(rc.tps, [1, 3, 3])
    np.testing.assert_array_equal(rc.fps, [0, 1, 2])
    np.testing.assert_array_equal(rc.fraud_amounts, [30, 90, 90])
    assert (rc.n_positives, rc.n_negatives) == (3, 2)


# --- degenerate slices: NaN and a warning, never an exception ------------------------------


NO_FRAUD = (np.zeros(6, bool), np.linspace(0, 1, 6))
NO_LEGIT = (np.ones(6, bool), np.linspace(0, 1, 6))
EMPTY = (np.array([], bool), np.array([], float))


@pytest.mark.parametrize("y, s", [NO_FRAUD, NO_LEGIT, EMPTY], ids=["no fraud", "no legit", "empty"])
def test_roc_auc_is_nan_with_a_warning(y, s):
    with pytest.warns(UndefinedMetricWarning):
        assert math.isnan(m.roc_auc(y, s))


@pytest.mark.parametrize("y, s", [NO_FRAUD, EMPTY], ids=["no fraud", "empty"])
def test_ratios_needing_fraud_are_nan_with_a_warning(y, s):
    with pytest.warns(UndefinedMetricWarning):
        assert math.isnan(m.average_precision(y, s))
    with pytest.warns(UndefinedMetricWarning):
        assert math.isnan(m.precision_recall_f1(y, s, 0.5).recall)
    with pytest.warns(UndefinedMetricWarning):
        assert math.isnan(m.money_recall(y, s, np.ones(len(y)), 0.5))
    with pytest.warns(UndefinedMetricWarning):
        c = m.curves(y, s)
    assert math.isnan(c.roc_auc) and math.isnan(c.average_precision)
    assert np.isnan(c.tpr).all() and np.isnan(c.recall).all()


def test_precision_without_alerts_is_nan_and_f1_follows_sklearn():
    y, s = np.array([1, 0, 1]), np.array([0.1, 0.2, 0.3])
    with pytest.warns(UndefinedMetricWarning, match="Precision with no alerts"):
        got = m.precision_recall_f1(y, s, 0.9)
    assert math.isnan(got.precision) and got.recall == 0.0 and got.f1 == 0.0
    with pytest.warns(UndefinedMetricWarning):
        got = m.precision_recall_f1([0, 0], [0.1, 0.2], 0.99)
    assert math.isnan(got.precision) and math.isnan(got.recall) and math.isnan(got.f1)
    with pytest.warns(UndefinedMetricWarning, match="Recall with no fraud"):
        got = m.precision_recall_f1([0, 0], [0.1, 0.2], 0.15)
    assert got.precision == 0.0 and math.isnan(got.recall) and got.f1 == 0.0


def test_money_recall_with_only_zero_fraud_amounts_is_nan():
    with pytest.warns(UndefinedMetricWarning):
        assert math.isnan(m.money_recall([1, 0], [0.9, 0.1], [0.0, 10.0], 0.5))


def test_empty_inputs_give_nan_or_empty_results():
    y, s = EMPTY
    assert m.confusion(y, s, 0.5) == m.Confusion(0, 0, 0, 0)
    with pytest.warns(UndefinedMetricWarning):
        assert math.isnan(m.precision_at_k(y, s, 3))
    with pytest.warns(UndefinedMetricWarning):
        assert math.isnan(m.brier_score_loss(y, s))
    with pytest.warns(UndefinedMetricWarning):
        cal = m.calibration(y, s)
    assert len(cal.count) == 0 and math.isnan(cal.brier)
    with pytest.warns(UndefinedMetricWarning):
        r = m.account_precision_at_k_per_day(y, s, [], [], k=2)
    assert r.per_day.empty and math.isnan(r.mean)
    assert m.recall_by_scenario(y, s, np.array([], object), 0.5) == {}


def test_well_defined_inputs_do_not_warn():
    y, s = data(3)
    with no_warning():
        m.roc_auc(y, s)
        m.average_precision(y, s)
        m.precision_recall_f1(y, s, 0.0)
        m.curves(y, s)
        m.calibration(y, s)
        m.money_recall(y, s, np.ones(len(y)), 0.5)


# --- bad parameters: ValueError with scikit-learn's message shape -------------------------


def test_threshold_out_of_range_message():
    msg = "The 'threshold' parameter must be a float in [0, 1]. Got 1.5 instead."
    with pytest.raises(ValueError, match=re.escape(msg)):
        m.precision_recall_f1([0, 1], [0.2, 0.8], 1.5)


@pytest.mark.parametrize("threshold", [-0.1, float("nan"), float("inf"), "0.5", None, True])
def test_bad_thresholds_are_refused(threshold):
    with pytest.raises(ValueError, match=r"^The 'threshold' parameter must be a float in \[0, 1\]"):
        m.confusion([0, 1], [0.2, 0.8], threshold)


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_bad_k_is_refused(k):
    with pytest.raises(ValueError, match=r"^The 'k' parameter must be an int >= 1\. Got"):
        m.precision_at_k([0, 1], [0.2, 0.8], k)


def test_shapes_must_agree():
    msg = (
        "The 'scores' parameter must be a 1-d array as long as 'y_true' (2). "
        "Got an array of shape (3,) instead."
    )
    with pytest.raises(ValueError, match=re.escape(msg)):
        m.roc_auc([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match=r"^The 'amounts' parameter"):
        m.money_recall([0, 1], [0.1, 0.2], [1.0], 0.5)
    with pytest.raises(ValueError, match=r"^The 'days' parameter"):
        m.account_precision_at_k_per_day([0, 1], [0.1, 0.2], [1], ["a", "b"], 1)
    with pytest.raises(ValueError, match=r"^The 'y_true' parameter must be a 1-d array"):
        m.roc_auc([[0, 1]], [0.1, 0.2])


@pytest.mark.parametrize(
    "y, s, name",
    [
        ([0, 2], [0.1, 0.2], "y_true"),
        ([0.0, np.nan], [0.1, 0.2], "y_true"),
        (["no", "yes"], [0.1, 0.2], "y_true"),
        ([0, 1], [0.1, 1.2], "scores"),
        ([0, 1], [0.1, np.nan], "scores"),
        ([0, 1], [-0.1, 0.5], "scores"),
    ],
)
def test_bad_labels_and_scores_are_refused(y, s, name):
    with pytest.raises(ValueError, match=rf"^The '{name}' parameter must be .* Got .* instead\.$"):
        m.roc_auc(y, s)


def test_bad_amounts_and_missing_accounts_are_refused():
    with pytest.raises(
        ValueError,
        match=r"^The 'amounts' parameter must be an array of finite floats >= 0\. Got -1\.0",
    ):
        m.money_recall([0, 1], [0.1, 0.9], [5.0, -1.0], 0.5)
    with pytest.raises(
        ValueError, match=r"^The 'accounts' parameter must be an array without missing"
    ):
        m.account_precision_at_k_per_day([0, 1], [0.1, 0.9], [1, 1], ["a", None], 1)
    with pytest.raises(ValueError, match=r"^The 'n_bins' parameter must be an int >= 1\. Got 0"):
        m.calibration([0, 1], [0.1, 0.9], n_bins=0)
