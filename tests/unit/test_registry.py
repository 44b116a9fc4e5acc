"""The model registry: round trips, version numbers, champions, tamper refusal, imports, atomic saves."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import pickle
import shutil
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from fraudlens import registry
from fraudlens.errors import ModelError

ROOT = Path(__file__).resolve().parents[2]
FEATURE_NAMES = ["num_amount", "num_hour", "num_tx_24h", "cat_channel_online"]
NAME_MESSAGE = "The model name must be a plain identifier"


# ---------------------------------------------------------------------------------------------
# Fixtures and helpers


@pytest.fixture
def reg(home, monkeypatch) -> Path:
    """A private data home with no registry key in the environment."""
    monkeypatch.delenv("FRAUDLENS_REGISTRY_KEY", raising=False)
    return Path(home.home)


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    X = rng.random((160, len(FEATURE_NAMES)))
    y = ((X[:, 0] + 0.3 * rng.random(160)) > 0.8).astype(int)
    return X, y


@pytest.fixture
def no_deserialising(monkeypatch):
    """Make every way of turning bytes into a model fail loudly, and record attempts."""
    calls = []

    def refuse(*args, **kwargs):
        calls.append(args)
        raise AssertionError("a model was deserialised")

    monkeypatch.setattr(joblib, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    monkeypatch.setattr(xgb.Booster, "load_model", refuse)
    return calls


def _booster(X, y, *, named: bool = True, objective: str = "binary:logistic", rounds: int = 5) -> xgb.Booster:
    matrix = xgb.DMatrix(X, label=y, feature_names=FEATURE_NAMES if named else None)
    return xgb.train({"objective": objective, "max_depth": 2, "seed": 0}, matrix, rounds)


def _forest(X, y) -> RandomForestClassifier:
    return RandomForestClassifier(n_estimators=5, max_depth=3, random_state=0).fit(X, y)


def _logistic(X, y):
    return make_pipeline(StandardScaler(), LogisticRegression()).fit(X, y)


def _features() -> list[dict]:
    return [{"name": n, "description": f"the {n}", "type": "numeric"} for n in FEATURE_NAMES]


def _metadata(**extra) -> dict:
    base = {
        "dataset": "demo",
        "windows": {"train_from": "2024-01-01", "train_until": "2024-02-29",
                    "test_from": "2024-03-08", "test_until": "2024-03-31"},
        "label_delay_days": 7,
        "rows_train": 160,
        "frauds_train": 30,
        "rows_test": 40,
        "features": FEATURE_NAMES,
        "parameters": {"max_depth": 2},
        "metrics": {"average_precision": 0.8125, "roc_auc": 0.9, "test_fraud_rate": 0.2},
        "seed": 0,
        "training_seconds": 0.12,
    }
    return {**base, **extra}


def _save(model, kind: str, name: str = "fraud_model", **kwargs) -> registry.ModelVersion:
    kwargs.setdefault("metadata", _metadata())
    kwargs.setdefault("features", _features())
    return registry.save_model(model, name=name, kind=kind, **kwargs)


def _folder(reg: Path, name: str, version: int) -> Path:
    return reg / "models" / name / f"v{version:04d}"


def _staging(reg: Path, name: str) -> list[Path]:
    return sorted((reg / "models" / name).glob(".staging-*"))


def _flip_byte(path: Path, at: int | None = None) -> None:
    raw = bytearray(path.read_bytes())
    at = len(raw) // 2 if at is None else at
    raw[at] ^= 0x01
    path.write_bytes(bytes(raw))


# ---------------------------------------------------------------------------------------------
# Round trips


def test_xgboost_booster_round_trip(reg, data):
    X, y = data
    booster = _booster(X, y)
    scores = pd.DataFrame({"score": [0.1, 0.9], "fraudulent_activity": [False, True]})
    saved = _save(booster, "xgboost", extra_files={"test_scores.parquet": scores})

    loaded = registry.load_model("fraud_model")

    assert (saved.name, saved.version, saved.kind) == ("fraud_model", 1, "xgboost")
    assert isinstance(loaded.model, xgb.Booster)
    matrix = xgb.DMatrix(X, feature_names=FEATURE_NAMES)
    np.testing.assert_array_equal(loaded.model.predict(matrix), booster.predict(matrix))
    assert loaded.feature_names == FEATURE_NAMES
    assert loaded.features == _features()
    assert sorted(p.name for p in _folder(reg, "fraud_model", 1).iterdir()) == [
        "MODEL_CARD.md", "features.json", "manifest.json", "metadata.json", "model.ubj", "test_scores.parquet",
    ]
    pd.testing.assert_frame_equal(registry.read_table("fraud_model", 1, "test_scores.parquet"), scores)
    pd.testing.assert_frame_equal(  # one column of a large test window, not all of it
        registry.read_table("fraud_model", 1, "test_scores.parquet", columns=["score"]), scores[["score"]]
    )


def test_xgbclassifier_is_saved_natively_and_loads_as_a_booster(reg, data):
    X, y = data
    clf = xgb.XGBClassifier(n_estimators=5, max_depth=2, random_state=0).fit(pd.DataFrame(X, columns=FEATURE_NAMES), y)
    _save(clf, "xgboost")

    loaded = registry.load_model("fraud_model", 1)

    assert (_folder(reg, "fraud_model", 1) / "model.ubj").is_file()
    got = loaded.model.predict(xgb.DMatrix(X, feature_names=FEATURE_NAMES))
    np.testing.assert_allclose(got, clf.predict_proba(pd.DataFrame(X, columns=FEATURE_NAMES))[:, 1], rtol=1e-6)


@pytest.mark.parametrize(("kind", "make"), [("random_forest", _forest), ("logistic", _logistic)])
def test_sklearn_round_trip(reg, data, kind, make):
    X, y = data
    model = make(X, y)
    _save(model, kind)

    loaded = registry.load_model("fraud_model")

    assert loaded.kind == kind and loaded.version == 1
    assert type(loaded.model) is type(model)
    np.testing.assert_array_equal(loaded.model.predict_proba(X), model.predict_proba(X))
    assert (_folder(reg, "fraud_model", 1) / "model.joblib").is_file()
    assert not (_folder(reg, "fraud_model", 1) / "model.ubj").exists()


def test_metadata_keeps_what_the_caller_passed_and_adds_the_registry_fields(reg, data):
    X, y = data
    meta = _metadata(metrics={"average_precision": np.float64(0.75), "brier": float("nan"), "n": np.int64(3)},
                     tuning=None, started=pd.Timestamp("2024-04-01 10:00"))
    _save(_forest(X, y), "random_forest", metadata=meta)

    stored = registry.read_metadata("fraud_model", 1)

    for key in ("dataset", "windows", "label_delay_days", "rows_train", "features", "parameters", "seed",
                "training_seconds", "tuning"):
        assert stored[key] == meta[key]
    assert stored["metrics"] == {"average_precision": 0.75, "brier": None, "n": 3}
    assert stored["started"] == "2024-04-01T10:00:00"
    assert (stored["name"], stored["version"], stored["kind"]) == ("fraud_model", 1, "random_forest")
    assert stored["model_file"] == "model.joblib" and stored["extra_files"] == []
    assert stored["created_at"].endswith("+00:00")
    assert {"python", "xgboost", "scikit-learn", "numpy", "pandas", "duckdb"} <= set(stored["library_versions"])
    assert stored["library_versions"]["xgboost"] == xgb.__version__
    assert "champion" not in stored
    on_disk = json.loads((_folder(reg, "fraud_model", 1) / "features.json").read_text())
    assert on_disk == _features()


# ---------------------------------------------------------------------------------------------
# Versions, listing, comparing


def test_versions_count_up_and_the_latest_is_loaded_by_default(reg, data):
    X, y = data
    models = [_forest(X, y), _logistic(X, y), _forest(X[:100], y[:100])]
    saved = [_save(m, k) for m, k in zip(models, ["random_forest", "logistic", "random_forest"])]

    assert [s.version for s in saved] == [1, 2, 3]
    assert sorted(p.name for p in (reg / "models" / "fraud_model").iterdir() if p.is_dir()) == [
        "v0001", "v0002", "v0003",
    ]
    assert registry.load_model("fraud_model").version == 3
    second = registry.load_model("fraud_model", 2)
    np.testing.assert_array_equal(second.model.predict_proba(X), models[1].predict_proba(X))
    with pytest.raises(ModelError, match="has no version 9. Its versions are 1, 2, 3"):
        registry.load_model("fraud_model", 9)
    with pytest.raises(ModelError, match="There is no model named 'other'"):
        registry.load_model("other")


def test_version_numbers_are_numbers_not_text(reg, data):
    X, y = data
    _save(_forest(X, y), "random_forest")
    (reg / "models" / "fraud_model" / "v9999").mkdir()  # a broken folder still takes its number

    saved = _save(_forest(X, y), "random_forest")

    assert saved.version == 10000
    assert _folder(reg, "fraud_model", 10000).name == "v10000"
    assert [v.version for v in registry.versions("fraud_model")] == [1, 10000]
    assert registry.load_model("fraud_model").version == 10000


def test_list_models_and_compare(reg, data):
    X, y = data
    _save(_forest(X, y), "random_forest", name="forest",
          metadata=_metadata(metrics={"average_precision": 0.5, "roc_auc": 0.7}))
    _save(_forest(X, y), "random_forest", name="forest",
          metadata=_metadata(metrics={"average_precision": 0.6, "precision_at_0_5": 0.4}))
    _save(_booster(X, y), "xgboost", name="boost", metadata=_metadata(dataset="bank_2024"))
    registry.set_champion("forest", 1, "ana", "steadier")

    listed = registry.list_models()

    assert [(v.name, v.version, v.kind) for v in listed] == [
        ("boost", 1, "xgboost"), ("forest", 1, "random_forest"), ("forest", 2, "random_forest"),
    ]
    assert [v.champion for v in listed] == [False, True, False]
    assert listed[0].dataset == "bank_2024" and listed[0].ref == "boost@1"
    assert listed[1].metrics == {"average_precision": 0.5, "roc_auc": 0.7}
    row = registry.summary(listed[2])
    assert row["average_precision"] == 0.6 and np.isnan(row["roc_auc"]) and row["champion"] is False

    frame = registry.compare("forest")

    assert list(frame["version"]) == [1, 2]
    assert list(frame["champion"]) == [True, False]
    assert list(frame["average_precision"]) == [0.5, 0.6]
    assert np.isnan(frame.loc[1, "roc_auc"]) and np.isnan(frame.loc[0, "precision_at_0_5"])
    assert list(frame["n_features"]) == [4, 4]
    assert registry.versions("nothing_here") == []


def test_concurrent_saves_get_distinct_versions(reg, data):
    X, y = data
    model = _logistic(X, y)
    errors: list[BaseException] = []

    def work():
        try:
            for _ in range(3):
                _save(model, "logistic", name="busy")
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert errors == []
    assert [v.version for v in registry.versions("busy")] == list(range(1, 13))
    assert _staging(reg, "busy") == []
    assert registry.load_model("busy", 7).version == 7


def test_a_save_waits_for_the_model_lock(reg, data):
    X, y = data
    model = _logistic(X, y)
    _save(model, "logistic", name="busy")
    fd = os.open(reg / "models" / "busy" / ".lock", os.O_RDWR)
    fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        worker = threading.Thread(target=_save, args=(model, "logistic"), kwargs={"name": "busy"})
        worker.start()
        worker.join(1.0)
        assert worker.is_alive()
        assert [v.version for v in registry.versions("busy")] == [1]
    finally:
        os.close(fd)
    worker.join(30)
    assert [v.version for v in registry.versions("busy")] == [1, 2]


# ---------------------------------------------------------------------------------------------
# Champion


def test_champion_is_loaded_by_default_and_changes_are_recorded(reg, data):
    X, y = data
    for _ in range(3):
        _save(_forest(X, y), "random_forest")

    chosen = registry.set_champion("fraud_model", 1, "ana", "best average precision in March")

    assert chosen.champion and chosen.version == 1
    assert registry.load_model("fraud_model").version == 1
    assert registry.champion("fraud_model") == 1
    record = json.loads((reg / "models" / "fraud_model" / "champion.json").read_text())
    assert record["version"] == 1 and record["user"] == "ana"
    assert record["comment"] == "best average precision in March" and record["at"].endswith("+00:00")

    registry.set_champion("fraud_model", 3, "luis", "retrained")

    assert registry.load_model("fraud_model").version == 3
    assert [v.champion for v in registry.versions("fraud_model")] == [False, False, True]
    changes = registry.history("fraud_model")
    assert [(c["version"], c["previous"], c["user"]) for c in changes] == [(1, None, "ana"), (3, 1, "luis")]
    lines = (reg / "models" / "fraud_model" / "history.jsonl").read_text().splitlines()
    assert len(lines) == 2


def test_set_champion_refuses_missing_versions_bad_users_and_tampered_models(reg, data):
    X, y = data
    _save(_forest(X, y), "random_forest")
    _save(_forest(X, y), "random_forest")

    with pytest.raises(ModelError, match="has no version 5"):
        registry.set_champion("fraud_model", 5, "ana", "x")
    with pytest.raises(ModelError, match="'user' parameter must be a non-empty string"):
        registry.set_champion("fraud_model", 1, "  ", "x")
    with pytest.raises(ModelError, match="'version' parameter must be an integer >= 1"):
        registry.set_champion("fraud_model", 0, "ana", "x")
    _flip_byte(_folder(reg, "fraud_model", 2) / "model.joblib")
    with pytest.raises(ModelError, match="integrity check"):
        registry.set_champion("fraud_model", 2, "ana", "x")

    assert registry.champion("fraud_model") is None
    assert registry.history("fraud_model") == []


def test_a_champion_that_no_longer_exists_is_an_error_not_a_silent_fallback(reg, data):
    X, y = data
    _save(_forest(X, y), "random_forest")
    _save(_forest(X, y), "random_forest")
    registry.set_champion("fraud_model", 2, "ana", "x")
    shutil.rmtree(_folder(reg, "fraud_model", 2))

    with pytest.raises(ModelError, match="champion of model 'fraud_model' is version 2, which does not exist"):
        registry.load_model("fraud_model")
    assert registry.load_model("fraud_model", 1).version == 1


# ---------------------------------------------------------------------------------------------
# Tamper refusal


@pytest.fixture
def saved_forest(reg, data) -> Path:
    X, y = data
    _save(_forest(X, y), "random_forest", name="fraud_rf",
          extra_files={"test_scores.parquet": pd.DataFrame({"score": [0.2, 0.7]})})
    return _folder(reg, "fraud_rf", 1)


def test_one_changed_byte_in_the_model_is_refused_before_joblib_runs(saved_forest, no_deserialising):
    _flip_byte(saved_forest / "model.joblib")

    with pytest.raises(ModelError) as info:
        registry.load_model("fraud_rf", 1)

    assert str(info.value) == (
        "Model fraud_rf v1 failed its integrity check: model.joblib does not match its recorded digest; "
        "refusing to load it."
    )
    assert no_deserialising == []


def test_one_changed_byte_in_an_xgboost_model_is_refused_before_xgboost_reads_it(reg, data, no_deserialising):
    X, y = data
    _save(_booster(X, y), "xgboost", name="fraud_xgb")
    _flip_byte(_folder(reg, "fraud_xgb", 1) / "model.ubj", at=40)

    with pytest.raises(ModelError, match="model.ubj does not match its recorded digest"):
        registry.load_model("fraud_xgb")
    assert no_deserialising == []


@pytest.mark.parametrize("file_name", ["metadata.json", "features.json", "MODEL_CARD.md", "test_scores.parquet"])
def test_an_edited_file_is_refused(saved_forest, no_deserialising, file_name):
    path = saved_forest / file_name
    if file_name == "metadata.json":
        meta = json.loads(path.read_text())
        meta["metrics"]["average_precision"] = 0.99
        path.write_text(json.dumps(meta, indent=1) + "\n")
    else:
        _flip_byte(path)

    with pytest.raises(ModelError, match=f"{file_name} does not match its recorded digest"):
        registry.load_model("fraud_rf")
    assert no_deserialising == []


def test_manifest_digests_changed_without_resigning_are_refused(saved_forest, no_deserialising):
    model = saved_forest / "model.joblib"
    _flip_byte(model)
    manifest_path = saved_forest / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["files"]["model.joblib"] = hashlib.sha256(model.read_bytes()).hexdigest()
    manifest_path.write_text(json.dumps(manifest, indent=1))

    with pytest.raises(ModelError, match="signature of manifest.json does not match"):
        registry.load_model("fraud_rf")
    assert no_deserialising == []


def test_an_extra_file_is_refused(saved_forest, no_deserialising):
    (saved_forest / "evil.joblib").write_bytes(b"not listed")

    with pytest.raises(ModelError, match="evil.joblib is not listed in its manifest"):
        registry.load_model("fraud_rf")
    assert no_deserialising == []


def test_an_extra_folder_is_refused(saved_forest, no_deserialising):
    (saved_forest / "sub").mkdir()

    with pytest.raises(ModelError, match="sub is not listed in its manifest"):
        registry.load_model("fraud_rf")


@pytest.mark.parametrize("file_name", ["features.json", "model.joblib", "manifest.json"])
def test_a_deleted_file_is_refused(saved_forest, no_deserialising, file_name):
    (saved_forest / file_name).unlink()

    with pytest.raises(ModelError, match=f"{file_name} is missing"):
        registry.load_model("fraud_rf")
    assert no_deserialising == []


def test_a_symlink_in_place_of_a_file_is_refused(saved_forest, tmp_path, no_deserialising):
    copy = tmp_path / "elsewhere.joblib"
    shutil.copy(saved_forest / "model.joblib", copy)
    (saved_forest / "model.joblib").unlink()
    (saved_forest / "model.joblib").symlink_to(copy)

    with pytest.raises(ModelError, match="model.joblib is a symbolic link"):
        registry.load_model("fraud_rf")
    assert no_deserialising == []


def test_a_version_folder_copied_to_another_number_is_refused(reg, saved_forest, no_deserialising):
    shutil.copytree(saved_forest, _folder(reg, "fraud_rf", 2))

    with pytest.raises(ModelError, match="manifest was written for fraud_rf v1"):
        registry.load_model("fraud_rf", 2)
    assert no_deserialising == []


def test_a_different_environment_key_is_refused(reg, data, monkeypatch, no_deserialising):
    X, y = data
    monkeypatch.setenv("FRAUDLENS_REGISTRY_KEY", "key-of-the-training-server-0123456789")
    _save(_forest(X, y), "random_forest")
    assert not (reg / ".registry_key").exists()
    monkeypatch.setenv("FRAUDLENS_REGISTRY_KEY", "another-key-entirely-9876543210abcdef")

    with pytest.raises(ModelError, match="registry key is not the one it was saved with"):
        registry.load_model("fraud_model")
    assert no_deserialising == []


def test_the_key_file_is_private_and_a_replaced_key_is_refused(reg, data, monkeypatch):
    X, y = data
    _save(_forest(X, y), "random_forest")
    key_file = reg / ".registry_key"

    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert len(bytes.fromhex(key_file.read_text().strip())) == 32
    assert registry.load_model("fraud_model").version == 1  # the same key is read back

    key_file.write_text(os.urandom(32).hex())
    monkeypatch.setattr(joblib, "load", lambda *a, **k: pytest.fail("joblib.load was called"))
    with pytest.raises(ModelError, match="signature of manifest.json does not match"):
        registry.load_model("fraud_model")

    key_file.unlink()
    with pytest.raises(ModelError, match="There is no registry key"):
        registry.load_model("fraud_model")
    assert not key_file.exists()  # loading never invents a key


# ---------------------------------------------------------------------------------------------
# Importing XGBoost models made elsewhere


@pytest.mark.parametrize("suffix", [".ubj", ".json"])
def test_import_xgboost_accepts_ubj_and_json(reg, data, tmp_path, suffix):
    X, y = data
    booster = _booster(X, y, named=False)
    path = tmp_path / f"outside{suffix}"
    booster.save_model(str(path))

    saved = registry.import_xgboost(path, name="imported", feature_names=FEATURE_NAMES,
                                    metadata={"dataset": "bank_2024", "note": "from the bank's team"})
    loaded = registry.load_model("imported")

    assert saved.kind == "external_xgboost" and loaded.kind == "external_xgboost"
    assert loaded.model.feature_names == FEATURE_NAMES
    np.testing.assert_array_equal(
        loaded.model.predict(xgb.DMatrix(X, feature_names=FEATURE_NAMES)), booster.predict(xgb.DMatrix(X))
    )
    meta = loaded.metadata
    assert meta["source_file"] == path.name and meta["note"] == "from the bank's team"
    assert meta["source_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert meta["objective"] == "binary:logistic" and meta["num_features"] == 4
    assert loaded.feature_names == FEATURE_NAMES
    assert (_folder(reg, "imported", 1) / "model.ubj").is_file()
    assert "Trained outside FraudLens" in registry.model_card("imported")


@pytest.mark.parametrize("suffix", [".pkl", ".joblib", ".pickle", ".bin", ""])
def test_import_xgboost_refuses_pickles_without_opening_them(reg, data, tmp_path, no_deserialising, suffix):
    X, y = data
    path = tmp_path / f"model{suffix}"
    with open(path, "wb") as fh:
        pickle.dump(_forest(X, y), fh)

    with pytest.raises(ModelError, match="must be an XGBoost model saved with Booster.save_model as .ubj or .json"):
        registry.import_xgboost(path, name="imported", feature_names=FEATURE_NAMES)
    assert no_deserialising == []
    assert registry.list_models() == []


@pytest.mark.parametrize(("file_name", "content"), [
    ("renamed.ubj", b"just some notes, not a model\n"),
    ("renamed.ubj", b"{not a model either}"),
    ("renamed.json", b'{"learner": "nope"}'),
    ("pickled.ubj", pickle.dumps({"a": 1})),
    ("empty.json", b""),
])
def test_import_xgboost_refuses_files_xgboost_cannot_read(reg, tmp_path, file_name, content):
    path = tmp_path / file_name
    path.write_bytes(content)

    with pytest.raises(ModelError, match=f"{file_name} is not an XGBoost model"):
        registry.import_xgboost(path, name="imported", feature_names=FEATURE_NAMES)
    assert registry.list_models() == []


def test_import_xgboost_refuses_a_wrong_feature_count(reg, data, tmp_path):
    X, y = data
    path = tmp_path / "outside.ubj"
    _booster(X, y, named=False).save_model(str(path))

    with pytest.raises(ModelError, match="must list 4 names, one per feature of outside.ubj. Got 3 instead"):
        registry.import_xgboost(path, name="imported", feature_names=FEATURE_NAMES[:3])
    assert registry.list_models() == []


def test_import_xgboost_refuses_features_in_another_order(reg, data, tmp_path):
    X, y = data
    path = tmp_path / "outside.json"
    _booster(X, y, named=True).save_model(str(path))

    with pytest.raises(ModelError, match="feature 1 is 'num_amount' in the model and 'num_hour'"):
        registry.import_xgboost(path, name="imported", feature_names=[FEATURE_NAMES[1], FEATURE_NAMES[0], *FEATURE_NAMES[2:]])


def test_import_xgboost_refuses_a_model_that_does_not_give_probabilities(reg, data, tmp_path):
    X, y = data
    path = tmp_path / "regression.ubj"
    _booster(X, y, objective="reg:squarederror").save_model(str(path))

    with pytest.raises(ModelError, match="objective must be one of .* Got 'reg:squarederror' instead"):
        registry.import_xgboost(path, name="imported", feature_names=FEATURE_NAMES)


def test_import_xgboost_refuses_a_missing_file_and_repeated_names(reg, data, tmp_path):
    X, y = data
    with pytest.raises(ModelError, match="does not exist"):
        registry.import_xgboost(tmp_path / "absent.ubj", name="imported", feature_names=FEATURE_NAMES)
    path = tmp_path / "outside.ubj"
    _booster(X, y, named=False).save_model(str(path))
    with pytest.raises(ModelError, match="must not repeat names"):
        registry.import_xgboost(path, name="imported", feature_names=["a", "b", "a", "c"])


# ---------------------------------------------------------------------------------------------
# Atomic saves


CHILD = r"""
import sys
import time
from pathlib import Path

from fraudlens import registry


class SlowToPickle:
    # Stands in for a big model whose serialisation takes a while.
    def predict_proba(self, X):
        return X

    def __reduce__(self):
        Path(sys.argv[2]).touch()
        time.sleep(120)
        return (SlowToPickle, ())


registry.save_model(SlowToPickle(), name="slow", kind="logistic", metadata={"dataset": "demo"},
                    features=[], home=sys.argv[1])
"""


def _wait_for(path: Path, child: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if child.poll() is not None:
            pytest.fail(f"the child exited early: {child.stderr.read().decode()}")
        if time.monotonic() > deadline:
            pytest.fail("the child never started pickling")
        time.sleep(0.05)


def test_a_save_killed_midway_leaves_no_version_and_the_next_save_cleans_up(reg, data, tmp_path, monkeypatch):
    X, y = data
    monkeypatch.setenv("FRAUDLENS_REGISTRY_KEY", "shared-key-for-parent-and-child-01")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    marker = tmp_path / "pickling-started"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(reg), str(marker)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(marker, child)
        in_progress = _staging(reg, "slow")
        assert len(in_progress) == 1 and (in_progress[0] / "model.joblib").exists()

        # A save while the child is still alive must not take its staging folder for dead.
        assert _save(_logistic(X, y), "logistic", name="slow").version == 1
        assert _staging(reg, "slow") == in_progress
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    assert child.returncode == -signal.SIGKILL

    assert _staging(reg, "slow") == in_progress  # the dead save left its folder behind...
    assert [v.version for v in registry.versions("slow")] == [1]  # ...and readers do not see it
    assert registry.load_model("slow").version == 1

    assert _save(_logistic(X, y), "logistic", name="slow").version == 2
    assert _staging(reg, "slow") == []
    assert [v.version for v in registry.versions("slow")] == [1, 2]


def test_a_save_killed_before_any_version_exists_leaves_nothing_loadable(reg, data, tmp_path, monkeypatch):
    X, y = data
    monkeypatch.setenv("FRAUDLENS_REGISTRY_KEY", "shared-key-for-parent-and-child-01")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    marker = tmp_path / "pickling-started"
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(reg), str(marker)], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait_for(marker, child)
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)

    assert len(_staging(reg, "slow")) == 1
    assert registry.list_models() == []
    with pytest.raises(ModelError, match="There is no model named 'slow'"):
        registry.load_model("slow")

    assert _save(_forest(X, y), "random_forest", name="slow").version == 1
    assert _staging(reg, "slow") == []


def test_a_failed_save_leaves_no_staging_folder(reg, data):
    X, y = data
    model = _logistic(X, y)
    model.callback = lambda: None  # a lambda cannot be pickled

    with pytest.raises(ModelError, match="cannot be saved with joblib"):
        _save(model, "logistic")

    assert _staging(reg, "fraud_model") == []
    assert registry.versions("fraud_model") == []


# ---------------------------------------------------------------------------------------------
# Bad input


BAD_NAMES = ["", "1model", "fraud-model", "fraud model", "../etc", "a" * 64, "modelo_ñ", "a@1", "_x", None, 3]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_are_refused_everywhere(reg, data, name):
    X, y = data
    expected = f"{NAME_MESSAGE} (a letter, then letters, digits or _; at most 63 characters). Got {name!r} instead."

    with pytest.raises(ModelError) as info:
        _save(_forest(X, y), "random_forest", name=name)
    assert str(info.value) == expected
    with pytest.raises(ModelError, match=NAME_MESSAGE):
        registry.load_model(name)
    with pytest.raises(ModelError, match=NAME_MESSAGE):
        registry.set_champion(name, 1, "ana", "x")
    assert not (reg / "models").exists() or list((reg / "models").iterdir()) == []


def test_the_longest_name_is_accepted(reg, data):
    X, y = data
    assert _save(_forest(X, y), "random_forest", name="a" * 63).name == "a" * 63


def test_bad_kinds_models_and_metadata_are_refused(reg, data):
    X, y = data
    with pytest.raises(ModelError, match="The 'kind' parameter must be one of"):
        _save(_forest(X, y), "svm")
    with pytest.raises(ModelError, match="must be an xgboost.Booster or a fitted XGBClassifier"):
        _save(_forest(X, y), "xgboost")
    with pytest.raises(ModelError, match="must have a predict_proba method"):
        _save(object(), "logistic")
    with pytest.raises(ModelError, match=r"'metadata' parameter must hold only JSON values .* at metadata\['x'\]"):
        _save(_forest(X, y), "random_forest", metadata={"x": {1, 2}})
    with pytest.raises(ModelError, match="'features' parameter must be a list of dicts"):
        _save(_forest(X, y), "random_forest", features=["num_amount"])
    with pytest.raises(ModelError, match="Extra file names must be plain file names"):
        _save(_forest(X, y), "random_forest", extra_files={"../escape.txt": b"x"})
    with pytest.raises(ModelError, match="Extra file names must be plain file names"):
        _save(_forest(X, y), "random_forest", extra_files={"manifest.json": b"{}"})
    assert registry.versions("fraud_model") == []
    assert _staging(reg, "fraud_model") == []


@pytest.mark.parametrize(("ref", "expected"), [
    ("fraud_xgb@3", ("fraud_xgb", 3)),
    ("fraud_xgb", ("fraud_xgb", None)),
    ("fraud_xgb@v12", ("fraud_xgb", 12)),
    ("fraud_xgb@0010", ("fraud_xgb", 10)),
])
def test_parse_ref(ref, expected):
    assert registry.parse_ref(ref) == expected


@pytest.mark.parametrize("ref", ["fraud_xgb@", "fraud_xgb@0", "fraud_xgb@-1", "fraud_xgb@3@4", "fraud_xgb@x"])
def test_parse_ref_refuses_bad_versions(ref):
    with pytest.raises(ModelError) as info:
        registry.parse_ref(ref)
    assert str(info.value) == (
        "The model reference must be NAME or NAME@VERSION with VERSION an integer >= 1 "
        f"(e.g. fraud_xgb@3). Got {ref!r} instead."
    )


@pytest.mark.parametrize("ref", ["@3", "1x@2", "a b"])
def test_parse_ref_refuses_bad_names(ref):
    with pytest.raises(ModelError, match=NAME_MESSAGE):
        registry.parse_ref(ref)


# ---------------------------------------------------------------------------------------------
# Model card


def test_model_card_for_the_demo_dataset(reg, data):
    X, y = data
    _save(_booster(X, y), "xgboost", name="fraud_xgb")

    card = registry.model_card("fraud_xgb")

    assert card.startswith("# Model card: fraud_xgb v1")
    for text in ("## Intended use", "Alert triage support for a banking supervisor", "not an automatic decision",
                 "## Data", "train 2024-01-01 to 2024-02-29; test 2024-03-08 to 2024-03-31",
                 "Train: 160 rows, 30 frauds, fraud rate 18.75%", "Test: 40 rows, fraud rate 20.00%",
                 "4 features.", "`num_amount`", "`cat_channel_online`", "the num_hour",
                 "| average_precision | 0.8125 |", "## Limits", "**Synthetic data.**",
                 "this model assumed 7 days", "**Drift.**", "must be set by an analyst",
                 "## Versions", f"| xgboost | {xgb.__version__} |"):
        assert text in card, text
    assert card == (_folder(reg, "fraud_xgb", 1) / "MODEL_CARD.md").read_text()


def test_model_card_for_real_data_has_no_synthetic_caveat_and_escapes_tables(reg, data):
    X, y = data
    features = [{"name": "num_a|b", "description": "line one\nline two | more"}]
    meta = _metadata(dataset="bank_2024", metrics={"test": {"roc_auc": 0.91}, "train": {"roc_auc": 0.97}})
    _save(_forest(X[:, :1], y), "random_forest", metadata=meta, features=features)

    card = registry.model_card("fraud_model", 1)

    assert "Synthetic data" not in card
    assert "1 features." in card and "`num_a\\|b`" in card
    assert "line one line two \\| more" in card
    assert "| metric | test | train |" in card and "| roc_auc | 0.9100 | 0.9700 |" in card
