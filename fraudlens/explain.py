"""Per-transaction explanations: exact additive contributions from the base value to the score.

- XGBoost: the booster's own TreeSHAP (``pred_contribs``), in log-odds;
- random forest: ``shap.TreeExplainer``, in probability;
- logistic regression: coefficient x standardised value, in log-odds — exact linear SHAP,
  since the scaler centres the training data at zero.
In every case base value + contributions = the model's output in the stated units.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from fraudlens import features as feats
from fraudlens.config import Settings, settings
from fraudlens.errors import ModelError
from fraudlens.store import get_store

logger = logging.getLogger(__name__)
TOP_REASONS = 5


@dataclass(frozen=True)
class Contributions:
    base: float
    values: np.ndarray  # (n_rows, n_features)
    output: np.ndarray  # (n_rows,): base + values.sum(axis=1)
    units: str  # "log-odds" | "probability"


@dataclass(frozen=True)
class Explanation:
    transaction_id: str
    model: str
    version: int
    score: float
    base: float
    output: float
    units: str
    table: pd.DataFrame  # feature, description, value, contribution; by |contribution|
    reasons: list[str]

    def to_dict(self) -> dict:
        return {
            "transaction_id": self.transaction_id, "model": self.model, "version": self.version,
            "score": self.score, "base_value": self.base, "output": self.output, "units": self.units,
            "contributions": self.table.to_dict(orient="records"), "reasons": self.reasons,
        }


def contributions(model, kind: str, X: pd.DataFrame) -> Contributions:
    """Additive contributions of each feature for each row of ``X``."""
    if kind in ("xgboost", "external_xgboost"):
        import xgboost as xgb

        matrix = xgb.DMatrix(X, feature_names=list(X.columns))
        raw = model.predict(matrix, pred_contribs=True)
        return Contributions(float(raw[0, -1]), raw[:, :-1], raw.sum(axis=1), "log-odds")
    if kind == "random_forest":
        import shap

        prepared = model[:-1].transform(X)
        explainer = shap.TreeExplainer(model[-1])
        values = np.asarray(explainer.shap_values(prepared, check_additivity=False))
        values = values[..., 1] if values.ndim == 3 else values
        base = float(np.ravel(explainer.expected_value)[-1])
        return Contributions(base, values, base + values.sum(axis=1), "probability")
    if kind == "logistic":
        prepared = model[:-1].transform(X)
        lr = model[-1]
        values = prepared * lr.coef_[0]
        base = float(lr.intercept_[0])
        return Contributions(base, values, base + values.sum(axis=1), "log-odds")
    raise ModelError(f"Cannot explain a model of kind {kind!r}.")


def _reason(row: pd.Series) -> str:
    text = feats.reason_text(row["feature"], row["value"], row["description"])
    return text[0].upper() + text[1:]


def explain_transaction(dataset: str, model_ref: str, transaction_id: str,
                        cfg: Settings | None = None, loaded=None) -> Explanation:
    """Explain one transaction with its point-in-time features, reading only its own history.

    ``loaded`` is the model as ``registry.load_model`` returned it for ``model_ref`` (a caller
    explaining many transactions loads and verifies it once); by default it is loaded here.
    """
    from fraudlens import registry
    from fraudlens.train import predict

    cfg = cfg or settings()
    name, version = registry.parse_ref(model_ref)
    if loaded is None:
        loaded = registry.load_model(name, version, home=cfg.home)
    meta = loaded.metadata
    spec = feats.FeatureSpec.from_dict(meta["feature_spec"])
    names = meta["features"]
    row = feats.compute_for_transaction(get_store(cfg), dataset, spec, transaction_id)
    X = row[names]
    kind = meta.get("kind", "xgboost")
    contrib = contributions(loaded.model, kind, X)
    score = float(predict(loaded.model, kind, X)[0])
    described = {f["name"]: f["description"] for f in loaded.features}
    table = pd.DataFrame({
        "feature": names,
        "description": [described.get(n, n) for n in names],
        "value": X.iloc[0].to_numpy(dtype=float),
        "contribution": contrib.values[0],
    })
    table = table.reindex(table["contribution"].abs().sort_values(ascending=False).index).reset_index(drop=True)
    top = table[table["contribution"] > 0].head(TOP_REASONS)
    return Explanation(
        transaction_id=str(transaction_id), model=name, version=int(loaded.version), score=score,
        base=contrib.base, output=float(contrib.output[0]), units=contrib.units, table=table,
        reasons=[_reason(r) for _, r in top.iterrows()],
    )
