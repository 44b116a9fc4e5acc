"""Hyper-parameter search with time-ordered folds.

Successive halving (scikit-learn's HalvingRandomSearchCV) spends most of the budget on the
promising candidates, which matters on 2 cores; Hyperopt would add a dependency for little gain
at this budget, and an exhaustive GridSearchCV costs several times more fits. Folds are ordered in
time with a gap of ``label_delay_days`` between each fold's training rows and its validation
rows, as in the final evaluation.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

logger = logging.getLogger(__name__)

SPACES: dict[str, dict[str, list]] = {
    "xgboost": {
        "max_depth": [3, 4, 5, 6, 8],
        "learning_rate": [0.03, 0.05, 0.08, 0.12],
        "min_child_weight": [1, 2, 5, 10],
        "subsample": [0.7, 0.8, 1.0],
        "colsample_bytree": [0.6, 0.8, 1.0],
    },
    "random_forest": {
        "randomforestclassifier__min_samples_leaf": [1, 3, 5, 10],
        "randomforestclassifier__max_features": ["sqrt", 0.3, 0.5],
        "randomforestclassifier__max_depth": [None, 12, 20],
    },
    "logistic": {
        "logisticregression__C": [0.01, 0.1, 1.0, 10.0],
    },
}


def time_folds(ts: pd.Series, n_splits: int = 3, gap_days: int = 7) -> list[tuple[np.ndarray, np.ndarray]]:
    """Expanding-window folds over time: train on days before each block, minus a gap."""
    days = pd.to_datetime(ts).dt.floor("D").to_numpy()
    unique = np.unique(days)
    blocks = np.array_split(unique, n_splits + 1)
    folds = []
    for block in blocks[1:]:
        start = block[0]
        gap_start = start - np.timedelta64(gap_days, "D")
        train_idx = np.flatnonzero(days < gap_start)
        valid_idx = np.flatnonzero((days >= block[0]) & (days <= block[-1]))
        if len(train_idx) and len(valid_idx):
            folds.append((train_idx, valid_idx))
    return folds


def _strip_prefix(params: dict) -> dict:
    return {k.split("__", 1)[-1]: v for k, v in params.items()}


# Successive halving grows the number of trees, never the rows: subsampling rows would leave
# some folds of rare fraud without a single positive.
RESOURCES = {"xgboost": ("n_estimators", 25, 200),
             "random_forest": ("randomforestclassifier__n_estimators", 20, 120)}


def _search(kind: str, model, folds, seed: int):
    from sklearn.experimental import enable_halving_search_cv  # noqa: F401
    from sklearn.model_selection import GridSearchCV, HalvingRandomSearchCV

    if kind not in RESOURCES:  # one cheap parameter: a small grid is exhaustive and fast
        return GridSearchCV(model, SPACES[kind], cv=folds, scoring="average_precision", n_jobs=1, refit=False)
    resource, low, high = RESOURCES[kind]
    if kind == "random_forest":
        model.set_params(**{resource: high})
    return HalvingRandomSearchCV(
        model, SPACES[kind], n_candidates=12, factor=3, resource=resource, min_resources=low,
        max_resources=high, cv=folds, scoring="average_precision", random_state=seed, n_jobs=1,
        refit=False,
    )


def tune(kind: str, X: pd.DataFrame, y: np.ndarray, ts: pd.Series, label_delay_days: int, seed: int) -> dict:
    """Best parameters by average precision over time folds, plus the weighting comparison."""
    from fraudlens.train import make_model

    pos_weight = (len(y) - y.sum()) / max(1, y.sum())
    model = make_model(kind, pos_weight, seed)
    if kind == "xgboost":
        model.set_params(early_stopping_rounds=None, n_estimators=200)
    folds = [f for f in time_folds(ts, 3, label_delay_days) if y[f[1]].sum() and y[f[0]].sum()]
    if not folds:
        return {"best_params": {}, "note": "too few labelled frauds for time folds; defaults kept"}
    search = _search(kind, model, folds, seed)
    search.fit(X, y)
    best = _strip_prefix(search.best_params_)
    logger.info("tuning %s: best AP %.3f with %s", kind, search.best_score_, best)
    return {
        "method": type(search).__name__ + " over time-ordered folds with a label-delay gap",
        "space": SPACES[kind],
        "folds": len(folds),
        "best_params": best,
        "best_cv_average_precision": float(search.best_score_),
        "imbalance": compare_imbalance(kind, X, y, folds, seed, best),
    }


def compare_imbalance(kind: str, X: pd.DataFrame, y: np.ndarray, folds, seed: int, params: dict) -> dict:
    """Average precision of class weights vs undersampling the majority class, on the same folds."""
    from sklearn.metrics import average_precision_score

    from fraudlens.train import make_model

    rng = np.random.default_rng(seed)
    scores = {"class_weights": [], "undersampling_1_to_10": []}
    for train_idx, valid_idx in folds:
        yt = y[train_idx]
        pos_weight = (len(yt) - yt.sum()) / max(1, yt.sum())
        weighted = make_model(kind, pos_weight, seed, params)
        if kind == "xgboost":
            weighted.set_params(early_stopping_rounds=None)
        weighted.fit(X.iloc[train_idx], yt)
        scores["class_weights"].append(
            average_precision_score(y[valid_idx], weighted.predict_proba(X.iloc[valid_idx])[:, 1]))
        pos = train_idx[yt == 1]
        neg = train_idx[yt == 0]
        keep = np.sort(np.concatenate([pos, rng.choice(neg, min(len(neg), 10 * len(pos)), replace=False)]))
        under = make_model(kind, 1.0, seed, params)
        if kind == "xgboost":
            under.set_params(early_stopping_rounds=None, scale_pos_weight=1.0)
        else:
            under[-1].set_params(class_weight=None)
        under.fit(X.iloc[keep], y[keep])
        scores["undersampling_1_to_10"].append(
            average_precision_score(y[valid_idx], under.predict_proba(X.iloc[valid_idx])[:, 1]))
    return {k: float(np.mean(v)) for k, v in scores.items()}
