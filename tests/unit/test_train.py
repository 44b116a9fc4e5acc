"""Training, scoring and explanations on small generated data: time-ordered splits, determinism,
all three model kinds, exact additivity of the explanations."""

from __future__ import annotations

import dataclasses
import shutil
from datetime import date

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from fraudlens import features as F
from fraudlens import labels, registry
from fraudlens.config import settings
from fraudlens.errors import ModelError
from fraudlens.explain import contributions, explain_transaction
from fraudlens.ingest import ingest
from fraudlens.scoring import score_dataset
from fraudlens.store import get_store
from fraudlens.synth import generate
from fraudlens.train import KINDS, Windows, default_windows, predict, split, train, window_rows


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 30k-row dataset and one model of each kind, shared by the tests of this module."""
    root = tmp_path_factory.mktemp("train")
    cfg = dataclasses.replace(settings(), home=root / "home", memory_limit="1GB", threads=2)
    src = root / "tx.parquet"
    generate(src, 30_000, seed=5, days=60)
    ingest(src, "tx", cfg=cfg)
    results = {kind: train("tx", kind, cfg=cfg, seed=1) for kind in KINDS}
    return cfg, results


def test_default_windows_leave_a_gap_of_the_label_delay():
    w = default_windows(date(2025, 1, 1), date(2025, 3, 31), 7)
    assert w.test_until == date(2025, 3, 31)
    assert (w.test_from - w.train_until).days == 8  # 7 full days between them
    assert w.train_from == date(2025, 1, 1)


def test_a_dataset_too_short_to_split_is_refused():
    with pytest.raises(ModelError, match="too short"):
        default_windows(date(2025, 1, 1), date(2025, 1, 5), 7)


def test_split_never_mixes_windows():
    frame = pd.DataFrame({
        "transaction_datetime": pd.date_range("2025-01-01", periods=100, freq="D"),
        "fraudulent_activity": [True, False, None, False] * 25,
    })
    w = Windows(date(2025, 1, 1), date(2025, 2, 28), date(2025, 3, 8), date(2025, 4, 10))
    tr, te = split(frame, w)
    assert tr["transaction_datetime"].max() <= pd.Timestamp("2025-02-28 23:59:59")
    assert te["transaction_datetime"].min() >= pd.Timestamp("2025-03-08")
    assert tr["fraudulent_activity"].notna().all() and te["fraudulent_activity"].notna().all()


def test_every_kind_trains_and_beats_chance_by_far(trained):
    _cfg, results = trained
    for kind, result in results.items():
        m = result.metrics
        assert m["test_frauds"] > 10, kind
        assert m["average_precision"] > 10 * m["test_fraud_rate"], (kind, m)
        assert m["roc_auc"] > 0.8, (kind, m)
        assert set(m["recall_by_scenario_at_0_5"]) >= {"card_testing", "subtle"}


def test_training_is_deterministic(trained):
    cfg, results = trained
    again = train("tx", "xgboost", cfg=cfg, seed=1, name="again")
    assert again.metrics["average_precision"] == pytest.approx(
        results["xgboost"].metrics["average_precision"], abs=1e-12)


def test_metadata_records_what_a_reviewer_needs(trained):
    cfg, results = trained
    r = results["xgboost"]
    meta = registry.read_metadata(r.name, r.version, home=cfg.home)
    for key in ("dataset", "windows", "rows_train", "features", "parameters", "metrics", "seed",
                "training_seconds", "feature_spec", "label_delay_days"):
        assert key in meta, key
    assert "fraud_scenario" not in meta["features"]
    assert "test_scores.parquet" in meta.get("extra_files", [])


def test_bad_windows_are_refused(trained):
    cfg, _ = trained
    bad = Windows(date(2025, 2, 1), date(2025, 1, 1), date(2025, 2, 10), date(2025, 2, 20))
    with pytest.raises(ModelError, match="ordered"):
        train("tx", "logistic", windows=bad, cfg=cfg)
    with pytest.raises(ModelError, match="'model' parameter"):
        train("tx", "svm", cfg=cfg)


def _matrix(cfg, kind_result):
    store = get_store(cfg)
    meta = registry.read_metadata(kind_result.name, kind_result.version, home=cfg.home)
    spec = F.FeatureSpec.from_dict(meta["feature_spec"])
    frame = F.compute(store, "tx", spec)
    return frame, frame[meta["features"]].iloc[-300:]


@pytest.mark.parametrize("kind", KINDS)
def test_explanations_add_up_to_the_model_output(trained, kind):
    cfg, results = trained
    loaded = registry.load_model(results[kind].name, results[kind].version, home=cfg.home)
    _frame, X = _matrix(cfg, results[kind])
    c = contributions(loaded.model, kind, X)
    if kind == "xgboost":
        import xgboost as xgb

        expected = loaded.model.predict(xgb.DMatrix(X, feature_names=list(X.columns)), output_margin=True)
    elif kind == "random_forest":
        expected = loaded.model.predict_proba(X)[:, 1]
    else:
        expected = loaded.model.decision_function(X)
    np.testing.assert_allclose(c.base + c.values.sum(axis=1), expected, rtol=1e-5, atol=1e-5)
    assert c.values.shape == X.shape


def test_explaining_a_fraud_gives_reasons_and_the_model_score(trained):
    cfg, results = trained
    r = results["xgboost"]
    scores = registry.read_table(r.name, r.version, "test_scores.parquet", home=cfg.home)
    top = scores.sort_values("score", ascending=False).iloc[0]
    exp = explain_transaction("tx", f"{r.name}@{r.version}", top["transaction_id"], cfg=cfg)
    assert exp.score == pytest.approx(top["score"], rel=1e-5)
    assert exp.reasons and all(isinstance(s, str) and len(s) > 10 for s in exp.reasons)
    assert exp.base + exp.table["contribution"].sum() == pytest.approx(exp.output, rel=1e-5)


def test_scoring_writes_ids_and_probabilities_matching_the_test_scores(trained, tmp_path):
    cfg, results = trained
    r = results["xgboost"]
    out = tmp_path / "scores.parquet"
    w = r.windows
    done = score_dataset("tx", f"{r.name}@{r.version}", out, date_from=w.test_from,
                         date_until=w.test_until, cfg=cfg)
    table = pq.read_table(out)
    assert table.schema.field("transaction_id").type == "string"
    got = table.to_pandas().set_index("transaction_id")["score"]
    assert done.rows == len(got) and got.between(0, 1).all()
    stored = registry.read_table(r.name, r.version, "test_scores.parquet", home=cfg.home)
    stored = stored.set_index("transaction_id")["score"]
    common = stored.index.intersection(got.index)
    assert len(common) == len(stored)
    np.testing.assert_allclose(got.loc[common], stored.loc[common], rtol=1e-6)


def test_two_sessions_scoring_into_one_file_both_finish(trained, tmp_path, monkeypatch):
    import threading

    from fraudlens import train as train_module

    cfg, results = trained
    r = results["xgboost"]
    out = tmp_path / "scores.parquet"
    done, errors = [], []
    # Each batch waits for the other session's, so both write their files at the same time.
    together, real_predict = threading.Barrier(2, timeout=10), train_module.predict

    def predict_together(*args, **kwargs):
        try:
            together.wait()
        except threading.BrokenBarrierError:
            pass
        return real_predict(*args, **kwargs)

    monkeypatch.setattr(train_module, "predict", predict_together)

    def score():
        try:
            done.append(score_dataset("tx", f"{r.name}@{r.version}", out, cfg=cfg).rows)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(exc))

    runs = [threading.Thread(target=score) for _ in range(2)]
    for run in runs:
        run.start()
    for run in runs:
        run.join(120)
    assert errors == [] and len(done) == 2 and done[0] == done[1]
    assert pq.read_metadata(out).num_rows == done[0]
    assert [p.name for p in tmp_path.iterdir()] == ["scores.parquet"]  # no temporary file left


def test_predict_matches_between_fresh_and_loaded_models(trained):
    cfg, results = trained
    r = results["logistic"]
    loaded = registry.load_model(r.name, r.version, home=cfg.home)
    _frame, X = _matrix(cfg, r)
    p = predict(loaded.model, "logistic", X)
    assert p.shape == (len(X),) and np.all((p >= 0) & (p <= 1))


def test_an_outside_xgboost_model_on_our_features_is_imported_and_evaluated(trained, tmp_path):
    import xgboost as xgb

    from fraudlens.train import import_external

    cfg, results = trained
    frame, _X = _matrix(cfg, results["xgboost"])
    names = ["amount", "acct_count_24h", "is_night", "first_use_of_merchant"]
    labelled = frame[frame["fraudulent_activity"].notna()]
    booster = xgb.train({"objective": "binary:logistic", "max_depth": 3},
                        xgb.DMatrix(labelled[names], label=labelled["fraudulent_activity"].astype(int),
                                    feature_names=names), num_boost_round=20)
    path = tmp_path / "outside.ubj"
    booster.save_model(path)
    saved = import_external(path, "tx", "outside", names, cfg=cfg)
    meta = registry.read_metadata("outside", saved.version, home=cfg.home)
    assert meta["kind"] == "external_xgboost" and meta["metrics"]["roc_auc"] > 0.6
    scores = registry.read_table("outside", saved.version, "test_scores.parquet", home=cfg.home)
    tid = scores.sort_values("score").iloc[-1]["transaction_id"]
    exp = explain_transaction("tx", f"outside@{saved.version}", tid, cfg=cfg)
    assert exp.score == pytest.approx(scores.set_index("transaction_id").loc[tid, "score"], rel=1e-5)
    with pytest.raises(ModelError, match="feature catalogue"):
        import_external(path, "tx", "outside2", ["amount", "not_a_feature", "is_night", "hour"], cfg=cfg)


def test_dispositions_override_the_training_target(trained, tmp_path):
    shared, results = trained
    cfg = dataclasses.replace(shared, home=tmp_path / "home")
    shutil.copytree(shared.home, cfg.home)
    before = registry.load_model(results["logistic"].name, results["logistic"].version, home=cfg.home).metadata
    rows = get_store(cfg).query_rows(
        "pick", f"SELECT transaction_id FROM {get_store(cfg).table('tx')} "
        f"WHERE NOT fraudulent_activity AND transaction_datetime < DATE '{results['logistic'].windows.train_until}' "
        "ORDER BY transaction_id LIMIT 3")
    for (tx,) in rows:
        labels.set_label("tx", tx, True, "analyst", source="alert", cfg=cfg)
    again = train("tx", "logistic", cfg=cfg, seed=1)
    after = registry.load_model(again.name, again.version, home=cfg.home).metadata
    assert (before["case_labels"], after["case_labels"]) == (0, 3)
    assert after["frauds_train"] == before["frauds_train"] + 3


def _window_inputs(trained):
    """(cfg, store, spec, windows) of the shared dataset, as the XGBoost model was trained on it."""
    cfg, results = trained
    store = get_store(cfg)
    return cfg, store, F.make_spec(store, "tx"), results["xgboost"].windows


def test_window_rows_without_sampling_equal_the_split_of_every_row(trained):
    cfg, store, spec, w = _window_inputs(trained)
    rows = window_rows(store, "tx", spec, w, 1, cfg)
    train_all, test_all = split(F.compute(store, "tx", spec), w)
    assert rows.legit_share == 1.0 and "sample_weight" not in rows.train
    assert rows.train_window_rows == len(train_all)
    pd.testing.assert_frame_equal(rows.train[train_all.columns], train_all.reset_index(drop=True))
    pd.testing.assert_frame_equal(rows.test[test_all.columns], test_all.reset_index(drop=True))


def test_a_large_train_window_keeps_every_fraud_and_a_weighted_share_of_the_rest(trained):
    cfg, store, spec, w = _window_inputs(trained)
    full = window_rows(store, "tx", spec, w, 1, cfg)
    legit = int((~full.train["fraudulent_activity"].astype(bool)).sum())
    sampled = window_rows(store, "tx", spec, w, 1, cfg, legit_cap=legit // 4)
    train_rows = sampled.train
    frauds = train_rows["fraudulent_activity"].astype(bool)
    assert frauds.sum() == full.train["fraudulent_activity"].astype(bool).sum()
    assert sampled.legit_share == pytest.approx(0.25, abs=0.01)
    assert (~frauds).sum() == pytest.approx(legit / 4, rel=0.1)
    assert (train_rows.loc[frauds, "sample_weight"] == 1.0).all()
    assert train_rows.loc[~frauds, "sample_weight"].sum() == pytest.approx(legit, rel=0.1)
    assert train_rows["transaction_datetime"].is_monotonic_increasing
    pd.testing.assert_frame_equal(sampled.test, full.test)  # the test window is never sampled
    again = window_rows(store, "tx", spec, w, 1, cfg, legit_cap=legit // 4)
    other = window_rows(store, "tx", spec, w, 2, cfg, legit_cap=legit // 4)
    assert again.train["transaction_id"].tolist() == train_rows["transaction_id"].tolist()
    assert other.train["transaction_id"].tolist() != train_rows["transaction_id"].tolist()


def test_training_on_a_sample_of_legitimate_rows_records_it_and_still_ranks_well(trained, monkeypatch):
    import fraudlens.train as train_module

    cfg, results = trained
    monkeypatch.setattr(train_module, "LEGIT_CAP", 4_000)
    result = train("tx", "xgboost", name="sampled", cfg=cfg, seed=1)
    meta = registry.read_metadata("sampled", result.version, cfg.home)
    assert 0 < meta["legit_sample_share"] < 1
    assert meta["rows_train"] < meta["rows_train_window"]
    assert result.metrics["roc_auc"] > 0.9
    assert result.metrics["average_precision"] > 0.5 * results["xgboost"].metrics["average_precision"]
    assert "of the legitimate rows of the train window" in registry.model_card("sampled", result.version, cfg.home)


def test_weighted_random_forest_balances_the_weights_not_the_row_counts(trained, monkeypatch):
    """With sampled legitimate rows (weight > 1), the forest's classes carry equal total weight."""
    import sklearn.pipeline

    from fraudlens.train import fit

    cfg, store, spec, w = _window_inputs(trained)
    rows = window_rows(store, "tx", spec, w, 1, cfg, legit_cap=4_000)
    y = rows.train["fraudulent_activity"].to_numpy(dtype=int)
    weights = rows.train["sample_weight"].to_numpy(float)
    assert (weights[y == 0] > 1).any()  # legitimate rows were sampled, so the test means something
    seen = {}
    real_fit = sklearn.pipeline.Pipeline.fit

    def spy(self, X, y_, **kw):
        seen.update(kw)
        return real_fit(self, X, y_, **kw)

    monkeypatch.setattr(sklearn.pipeline.Pipeline, "fit", spy)
    model = fit("random_forest", rows.train[F.feature_names(spec)], y, 1, weights=weights)
    given = seen["randomforestclassifier__sample_weight"]
    assert model[-1].class_weight is None
    assert given[y == 1].sum() == pytest.approx(given[y == 0].sum())
