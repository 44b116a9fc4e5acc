"""Global importance on a sample of the test window: additive contributions, the ranking, the
dependence data, XGBoost gain, and imported models refused with a reason."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from fraudlens import importance, registry
from fraudlens.config import settings
from fraudlens.errors import ModelError
from fraudlens.ingest import ingest
from fraudlens.synth import generate
from fraudlens.train import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("importance")
    cfg = dataclasses.replace(settings(), home=root / "home", memory_limit="1GB", threads=2)
    src = root / "tx.parquet"
    generate(src, 12_000, seed=9, days=60)
    ingest(src, "tx", cfg=cfg)
    logistic = train("tx", "logistic", name="lr", cfg=cfg, seed=1)
    xgb = train("tx", "xgboost", name="xgb", cfg=cfg, seed=1)
    return cfg, logistic, xgb


@pytest.mark.parametrize("ref", ["lr", "xgb"])
def test_contributions_add_up_to_the_scores_of_the_test_window(trained, ref):
    cfg, *_ = trained
    sample = importance.sample_contributions(ref, n=300, seed=1, cfg=cfg)
    assert len(sample.rows) == 300 == len(sample.values) == len(sample.contributions)
    assert sample.units == "log-odds" and sample.contributions.shape[1] == len(sample.features)
    output = sample.base + sample.contributions.sum(axis=1)
    np.testing.assert_allclose(1 / (1 + np.exp(-output)), sample.rows["score"], atol=1e-5)
    scored = registry.read_table(ref, None, "test_scores.parquet", cfg.home)
    assert sample.test_rows == len(scored)
    assert set(sample.rows["transaction_id"]) <= set(scored["transaction_id"])


def test_the_sample_is_reproducible_and_bounded(trained):
    cfg, *_ = trained
    a = importance.sample_contributions("lr", n=200, seed=3, cfg=cfg)
    b = importance.sample_contributions("lr", n=200, seed=3, cfg=cfg)
    assert a.rows["transaction_id"].tolist() == b.rows["transaction_id"].tolist()
    whole = importance.sample_contributions("lr", n=20_000, cfg=cfg)
    assert len(whole.rows) == whole.test_rows  # never more than the window
    with pytest.raises(ModelError, match="'n' parameter"):
        importance.sample_contributions("lr", n=0, cfg=cfg)


def test_the_ranking_is_mean_absolute_contribution_largest_first(trained):
    cfg, *_ = trained
    sample = importance.sample_contributions("xgb", n=300, cfg=cfg)
    ranking = importance.mean_abs_importance(sample)
    assert ranking["mean_abs_contribution"].is_monotonic_decreasing
    top = ranking.iloc[0]
    k = sample.features.index(top["feature"])
    assert top["mean_abs_contribution"] == pytest.approx(np.abs(sample.contributions[:, k]).mean())
    assert top["description"] == sample.descriptions[top["feature"]] != ""


def test_dependence_pairs_values_with_contributions(trained):
    cfg, *_ = trained
    sample = importance.sample_contributions("xgb", n=300, cfg=cfg)
    frame = importance.dependence(sample, "amount")
    np.testing.assert_array_equal(frame["value"], sample.values["amount"])
    np.testing.assert_array_equal(frame["contribution"], sample.contributions[:, sample.features.index("amount")])
    with pytest.raises(ModelError, match="'feature' parameter"):
        importance.dependence(sample, "nope")


def test_gain_only_for_xgboost(trained):
    cfg, *_ = trained
    gain = importance.xgboost_gain("xgb", cfg=cfg)
    assert gain["gain"].is_monotonic_decreasing and (gain["gain"] >= 0).all()
    assert len(gain) == len(registry.read_metadata("xgb", None, cfg.home)["features"])
    assert gain["gain"].iloc[0] > 0
    with pytest.raises(ModelError, match="not XGBoost"):
        importance.xgboost_gain("lr", cfg=cfg)


def test_an_imported_model_is_refused_with_a_reason(trained, tmp_path):
    import xgboost as xgb

    cfg, *_ = trained
    X = np.random.default_rng(0).random((60, 3))
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(X, label=X[:, 0] > 0.5), 3)
    path = tmp_path / "ext.ubj"
    booster.save_model(str(path))
    registry.import_xgboost(path, name="ext", feature_names=["a", "b", "c"], home=cfg.home)
    with pytest.raises(ModelError, match="was imported"):
        importance.sample_contributions("ext", cfg=cfg)
    assert importance.xgboost_gain("ext", cfg=cfg)["feature"].tolist()[0] in {"a", "b", "c"}
