"""Time-ordered folds with a label-delay gap, and a small real search."""

from __future__ import annotations

import numpy as np
import pandas as pd

from fraudlens.tuning import compare_imbalance, time_folds, tune


def test_folds_are_ordered_in_time_with_a_gap():
    ts = pd.Series(pd.date_range("2025-01-01", periods=90 * 24, freq="h"))
    folds = time_folds(ts, n_splits=3, gap_days=7)
    assert len(folds) == 3
    for train_idx, valid_idx in folds:
        last_train = ts.iloc[train_idx].max()
        first_valid = ts.iloc[valid_idx].min()
        assert first_valid - last_train > pd.Timedelta(days=7)
    sizes = [len(t) for t, _ in folds]
    assert sizes == sorted(sizes)  # expanding window


def _data(n=6000, seed=0):
    rng = np.random.default_rng(seed)
    X = pd.DataFrame({"a": rng.normal(size=n), "b": rng.normal(size=n), "c": rng.normal(size=n)})
    y = ((X["a"] + 0.5 * X["b"] + rng.normal(scale=0.5, size=n)) > 2.4).astype(int).to_numpy()
    ts = pd.Series(pd.date_range("2025-01-01", periods=n, freq="20min"))
    return X, y, ts


def test_tuning_finds_parameters_and_compares_imbalance_strategies():
    X, y, ts = _data()
    result = tune("logistic", X, y, ts, label_delay_days=2, seed=0)
    assert result["folds"] >= 2
    assert set(result["best_params"]) == {"C"}
    assert 0.3 < result["best_cv_average_precision"] <= 1
    assert set(result["imbalance"]) == {"class_weights", "undersampling_1_to_10"}


def test_xgboost_search_grows_trees_not_rows():
    X, y, ts = _data(4000, seed=1)
    result = tune("xgboost", X, y, ts, label_delay_days=1, seed=0)
    assert "HalvingRandomSearchCV" in result["method"]
    assert result["best_params"] and result["best_cv_average_precision"] > 0.3


def test_imbalance_comparison_is_deterministic():
    X, y, ts = _data(3000, seed=2)
    folds = time_folds(ts, 2, 1)
    a = compare_imbalance("logistic", X, y, folds, 3, {})
    b = compare_imbalance("logistic", X, y, folds, 3, {})
    assert a == b
