"""Global view of a model: which features move its scores, on a sample of its test window.

Per-transaction contributions come from :func:`fraudlens.explain.contributions` (exact TreeSHAP
for tree models, coefficient x standardised value for logistic regression). Averaged in absolute
value over a sample they rank the features; plotted against the feature's value they show how a
feature pushes the score (a dependence plot). XGBoost's own "gain" is the other classic ranking.

The sample's features are the point-in-time features the model was trained with, computed for
the whole dataset (an account's history is needed for its windows), then cut to the sample.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fraudlens import explain, feature_store, registry
from fraudlens import features as feats
from fraudlens.config import Settings, settings
from fraudlens.errors import ModelError
from fraudlens.operating import TEST_SCORES, resolve
from fraudlens.store import get_store

logger = logging.getLogger(__name__)

SAMPLE_ROWS = 2000
MAX_SAMPLE_ROWS = 20_000


@dataclass(frozen=True, eq=False)
class SampleContributions:
    """Contributions of every feature for a sample of a version's test window.

    Attributes
    ----------
    rows : DataFrame of shape (n, 4)
        transaction_id, fraudulent_activity, transaction_amount, score.
    values : DataFrame of shape (n, k)
        The feature values (raw units), columns = ``features``.
    contributions : ndarray of shape (n, k)
        Additive contributions in ``units``; ``base + contributions.sum(1)`` is the model output.
    """

    name: str
    version: int
    kind: str
    units: str
    base: float
    features: list[str]
    descriptions: dict[str, str]
    rows: pd.DataFrame
    values: pd.DataFrame
    contributions: np.ndarray
    test_rows: int
    seconds: float


def sample_contributions(model_ref: str, n: int = SAMPLE_ROWS, seed: int = 0,
                         cfg: Settings | None = None) -> SampleContributions:
    """Contributions for a uniform random sample of up to ``n`` rows of the version's test window.

    Raises ModelError for a model without a test window or a feature spec (an imported model).
    """
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_SAMPLE_ROWS:
        raise ModelError(f"The 'n' parameter must be an int in [1, {MAX_SAMPLE_ROWS}]. Got {n!r} instead.")
    started = time.perf_counter()
    cfg = cfg or settings()
    name, version = resolve(cfg.home, model_ref)
    loaded = registry.load_model(name, version, home=cfg.home)
    meta = loaded.metadata
    if "feature_spec" not in meta or TEST_SCORES not in (meta.get("extra_files") or []):
        raise ModelError(
            f"Model {name} v{version} was imported: FraudLens has neither its test window nor the "
            "recipe of its features, so it cannot compute its global importance."
        )
    scored = registry.read_table(name, version, TEST_SCORES, cfg.home)
    sample = scored.sample(n=min(n, len(scored)), random_state=seed) if len(scored) else scored
    spec = feats.FeatureSpec.from_dict(meta["feature_spec"])
    names = list(meta["features"])
    store = get_store(cfg)
    picked = store.query(
        "importance_rows", "SELECT * FROM read_parquet($path) WHERE transaction_id IN (SELECT unnest($ids))",
        {"path": str(feature_store.feature_file(store, meta["dataset"], spec)),
         "ids": [str(i) for i in sample["transaction_id"]]})
    picked = sample[["transaction_id", "fraudulent_activity", "transaction_amount", "score"]].merge(
        picked[["transaction_id", *names]], on="transaction_id", how="inner").reset_index(drop=True)
    if picked.empty:
        raise ModelError(f"None of the test transactions of model {name} v{version} are in dataset "
                         f"'{meta['dataset']}' any more (was it replaced?).")
    X = picked[names]
    contrib = explain.contributions(loaded.model, loaded.kind, X)
    described = {f["name"]: f.get("description", f["name"]) for f in loaded.features}
    seconds = time.perf_counter() - started
    logger.info("contributions of %s v%d on %d test rows in %.1f s", name, version, len(X), seconds)
    return SampleContributions(
        name=name, version=version, kind=loaded.kind, units=contrib.units, base=contrib.base,
        features=names, descriptions={n_: described.get(n_, n_) for n_ in names},
        rows=picked[["transaction_id", "fraudulent_activity", "transaction_amount", "score"]],
        values=X.reset_index(drop=True), contributions=np.asarray(contrib.values, dtype=float),
        test_rows=int(len(scored)), seconds=seconds,
    )


def mean_abs_importance(sample: SampleContributions) -> pd.DataFrame:
    """feature, description, mean_abs_contribution (in ``sample.units``), largest first."""
    mean_abs = np.abs(sample.contributions).mean(axis=0) if len(sample.contributions) else \
        np.zeros(len(sample.features))
    frame = pd.DataFrame({
        "feature": sample.features,
        "description": [sample.descriptions[f] for f in sample.features],
        "mean_abs_contribution": mean_abs,
    })
    return frame.sort_values(["mean_abs_contribution", "feature"], ascending=[False, True],
                             ignore_index=True)


def dependence(sample: SampleContributions, feature: str) -> pd.DataFrame:
    """value, contribution, fraudulent_activity, score of ``feature`` for each sampled row."""
    if feature not in sample.features:
        raise ModelError(f"The 'feature' parameter must be one of the model's features. Got {feature!r} instead.")
    k = sample.features.index(feature)
    return pd.DataFrame({
        "value": sample.values[feature].to_numpy(dtype=float),
        "contribution": sample.contributions[:, k],
        "fraudulent_activity": sample.rows["fraudulent_activity"].to_numpy(),
        "score": sample.rows["score"].to_numpy(dtype=float),
    })


def xgboost_gain(model_ref: str, cfg: Settings | None = None) -> pd.DataFrame:
    """feature, description, gain (mean loss reduction of the splits on it), largest first.

    Features the trees never split on have gain 0. Raises ModelError for a model that is not
    XGBoost.
    """
    cfg = cfg or settings()
    name, version = resolve(cfg.home, model_ref)
    loaded = registry.load_model(name, version, home=cfg.home)
    if loaded.kind not in registry.XGBOOST_KINDS:
        raise ModelError(f"Model {name} v{version} is {loaded.kind}, not XGBoost: it has no gain.")
    booster = loaded.model
    names = list(booster.feature_names or loaded.feature_names)
    gain = booster.get_score(importance_type="gain")
    described = {f["name"]: f.get("description", f["name"]) for f in loaded.features}
    frame = pd.DataFrame({
        "feature": names,
        "description": [described.get(n, n) for n in names],
        "gain": [float(gain.get(n, 0.0)) for n in names],
    })
    return frame.sort_values(["gain", "feature"], ascending=[False, True], ignore_index=True)
