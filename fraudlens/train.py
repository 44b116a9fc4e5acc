"""Training on point-in-time features with a time-ordered split: train window, a gap equal to
the label delay, then the test window. Never a random split: fraud drifts, and a random split
would let the model see the future.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import numpy as np
import pandas as pd

from fraudlens import features as feats
from fraudlens.config import Settings, settings
from fraudlens.errors import ModelError
from fraudlens.schema import GROUND_TRUTH, check_dataset_name, quote_ident
from fraudlens.store import Store, get_store

logger = logging.getLogger(__name__)

KINDS = ("xgboost", "random_forest", "logistic")
Progress = Callable[[float, str], None]
TEST_SHARE = 0.2
VALIDATION_SHARE = 0.15
# Past this many legitimate rows in the train window, training keeps every fraud and a random
# share of the legitimate rows, weighted by the inverse of that share (bounded memory at 10M rows).
LEGIT_CAP = 2_000_000


@dataclass(frozen=True)
class Windows:
    train_from: date
    train_until: date
    test_from: date
    test_until: date

    def to_dict(self) -> dict:
        return {k: getattr(self, k).isoformat() for k in ("train_from", "train_until", "test_from", "test_until")}


@dataclass(frozen=True)
class TrainResult:
    name: str
    version: int
    kind: str
    metrics: dict
    windows: Windows
    rows_train: int
    rows_test: int
    seconds: float
    legit_share: float = 1.0  # share of the train window's legitimate rows trained on


def default_windows(first: date, last: date, label_delay_days: int, test_share: float = TEST_SHARE) -> Windows:
    """The last ``test_share`` of days for testing, after a gap of ``label_delay_days``."""
    days = (last - first).days + 1
    test_days = max(1, round(days * test_share))
    test_from = last - timedelta(days=test_days - 1)
    train_until = test_from - timedelta(days=label_delay_days + 1)
    if train_until <= first:
        raise ModelError(
            f"The dataset spans {days} days: too short for a test window of {test_days} days after "
            f"a {label_delay_days}-day label gap. Use a longer dataset or set the windows."
        )
    return Windows(first, train_until, test_from, last)


def _check_windows(w: Windows) -> None:
    if not (w.train_from <= w.train_until < w.test_from <= w.test_until):
        raise ModelError(
            "The windows must be ordered train_from <= train_until < test_from <= test_until. "
            f"Got {w.to_dict()} instead."
        )


def split(frame: pd.DataFrame, w: Windows) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Labelled rows of the train and test windows (bounds inclusive, by UTC date)."""
    day = frame["transaction_datetime"].dt.date
    labelled = frame["fraudulent_activity"].notna()
    train = frame[labelled & (day >= w.train_from) & (day <= w.train_until)]
    test = frame[labelled & (day >= w.test_from) & (day <= w.test_until)]
    return train, test


def make_model(kind: str, pos_weight: float, seed: int, params: dict | None = None):
    """An unfitted model; the same feature matrix serves all three kinds."""
    params = dict(params or {})
    if kind == "xgboost":
        import xgboost as xgb

        base = dict(n_estimators=300, learning_rate=0.1, max_depth=6, subsample=0.8,
                    colsample_bytree=0.8, min_child_weight=2, tree_method="hist", max_bin=128,
                    eval_metric="aucpr", early_stopping_rounds=30, n_jobs=2, random_state=seed,
                    scale_pos_weight=pos_weight)
        return xgb.XGBClassifier(**{**base, **params})
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline

    if kind == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        # Half-size bootstrap samples: four times faster on 2 cores for little loss in AP.
        base = dict(n_estimators=120, min_samples_leaf=10, max_features="sqrt", max_samples=0.5,
                    n_jobs=2, class_weight="balanced_subsample", random_state=seed)
        return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True),
                             RandomForestClassifier(**{**base, **params}))
    if kind == "logistic":
        from sklearn.linear_model import LogisticRegression
        from sklearn.preprocessing import StandardScaler

        base = dict(class_weight="balanced", max_iter=500, tol=1e-3, C=1.0, random_state=seed)
        return make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler(),
                             LogisticRegression(**{**base, **params}))
    raise ModelError(f"The 'model' parameter must be one of {KINDS}. Got {kind!r} instead.")


def _boosting_progress(report: Progress, rounds: int, start: float, end: float):
    """An XGBoost callback that reports each boosting round, so a progress bar keeps moving."""
    import xgboost as xgb

    class Rounds(xgb.callback.TrainingCallback):
        def after_iteration(self, model, epoch, evals_log) -> bool:
            report(start + (end - start) * min(1.0, (epoch + 1) / rounds), f"Boosting round {epoch + 1}")
            return False

    return Rounds()


def fit(kind: str, X: pd.DataFrame, y: np.ndarray, seed: int, params: dict | None = None,
        progress: Progress | None = None, weights: np.ndarray | None = None):
    """Fit ``kind`` on time-ordered ``X``; XGBoost stops early on the latest slice of it.

    ``weights`` are row weights (a sampled legitimate row stands for several), or None.
    """
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        raise ModelError("The training window needs both fraud and legitimate labelled rows.")
    w = np.ones(len(y)) if weights is None else np.asarray(weights, dtype=float)
    pos_weight = float(w[y == 0].sum() / w[y == 1].sum())
    model = make_model(kind, pos_weight, seed, params)
    if kind == "xgboost" and progress is not None:
        model.set_params(callbacks=[_boosting_progress(progress, model.get_params()["n_estimators"], 0.5, 0.8)])
    given = {} if weights is None else {"sample_weight": w}
    if kind == "xgboost":
        cut = int(len(y) * (1 - VALIDATION_SHARE))
        if y[cut:].sum() == 0 or y[:cut].sum() == 0:
            model.set_params(early_stopping_rounds=None)
            model.fit(X, y, verbose=False, **given)
        elif weights is None:
            model.fit(X.iloc[:cut], y[:cut], eval_set=[(X.iloc[cut:], y[cut:])], verbose=False)
        else:
            model.fit(X.iloc[:cut], y[:cut], sample_weight=w[:cut], eval_set=[(X.iloc[cut:], y[cut:])],
                      sample_weight_eval_set=[w[cut:]], verbose=False)
        return model
    if kind == "random_forest" and weights is not None:
        # "balanced_subsample" counts rows, not weights: balance the weights themselves instead.
        model[-1].set_params(class_weight=None)
        given["sample_weight"] = w * (w.sum() / (2 * np.where(y == 1, w[y == 1].sum(), w[y == 0].sum())))
    model.fit(X, y, **{f"{model.steps[-1][0]}__{k}": v for k, v in given.items()})
    return model


def predict(model, kind: str, X: pd.DataFrame) -> np.ndarray:
    """Probability of fraud for each row of ``X`` (shape (n,))."""
    if not hasattr(model, "predict_proba"):
        import xgboost as xgb

        return model.predict(xgb.DMatrix(X, feature_names=list(X.columns)))
    return model.predict_proba(X)[:, 1]


def evaluate_scores(test: pd.DataFrame, scores: np.ndarray, threshold: float = 0.5) -> dict:
    """The headline test metrics stored with a model version."""
    from fraudlens import metrics as m

    y = test["fraudulent_activity"].to_numpy(dtype=bool)
    amounts = test["transaction_amount"].to_numpy(dtype=float)
    out = {
        "roc_auc": m.roc_auc(y, scores),
        "average_precision": m.average_precision(y, scores),
        "brier": m.brier_score_loss(y, scores),
        "money_recall_at_0_5": m.money_recall(y, scores, amounts, threshold),
        "test_rows": int(len(y)),
        "test_frauds": int(y.sum()),
        "test_fraud_rate": float(y.mean()) if len(y) else float("nan"),
    }
    days = test["transaction_datetime"].dt.floor("D").to_numpy()
    card = m.account_precision_at_k_per_day(y, scores, days, test["account_id"].to_numpy(dtype=object), 100)
    out["card_precision_at_100_per_day"] = card.mean
    prf = m.precision_recall_f1(y, scores, threshold)
    out.update({"precision_at_0_5": prf.precision, "recall_at_0_5": prf.recall, "f1_at_0_5": prf.f1})
    if GROUND_TRUTH in test.columns:
        out["recall_by_scenario_at_0_5"] = m.recall_by_scenario(
            y, scores, test[GROUND_TRUTH].to_numpy(dtype=object), threshold)
    return {k: (float(v) if isinstance(v, (np.floating, float)) else v) for k, v in out.items()}


def _with_ground_truth(store: Store, dataset: str, frame: pd.DataFrame, spec: feats.FeatureSpec) -> pd.DataFrame:
    if GROUND_TRUTH not in spec.columns:
        return frame
    view = store.table(dataset)
    truth = store.query("ground_truth",
                        f"SELECT transaction_id, {quote_ident(GROUND_TRUTH)} FROM {view}")
    return frame.merge(truth, on="transaction_id", how="left")


@dataclass(frozen=True)
class WindowRows:
    train: pd.DataFrame  # time order; column ``sample_weight`` when legitimate rows were sampled
    test: pd.DataFrame
    train_window_rows: int  # labelled rows in the train window before sampling
    legit_share: float  # share of the train window's legitimate rows kept (1.0: all)
    case_labels: int


def _day_range(first: date, last: date) -> dict:
    # Stored times are naive UTC; windows are whole UTC days, bounds inclusive.
    return {"lo": datetime.combine(first, datetime.min.time()),
            "hi": datetime.combine(last + timedelta(days=1), datetime.min.time())}


def window_rows(store: Store, dataset: str, spec: feats.FeatureSpec, w: Windows, seed: int,
                cfg: Settings, legit_cap: int | None = None) -> WindowRows:
    """The labelled rows of the train and test windows, read from the feature file.

    Labels from alert dispositions override the dataset's (label-based features keep the
    dataset's own labels: their point-in-time windows are computed in SQL). When the train
    window holds more than ``legit_cap`` (default :data:`LEGIT_CAP`) legitimate rows, every fraud
    and every disposition-labelled row is kept and the other legitimate rows are sampled (by a
    hash of the id and the seed, so it is repeatable), each weighted by the inverse of the share
    kept. The test window is never sampled.
    """
    from fraudlens import feature_store, ops

    found = ops.effective_labels(cfg.home, dataset)
    path = str(feature_store.feature_file(store, dataset, spec))
    base = {"path": path, "ids": list(found["transaction_id"])}
    labelled = "(fraudulent_activity IS NOT NULL OR transaction_id IN (SELECT unnest($ids)))"
    span = "transaction_datetime >= $lo AND transaction_datetime < $hi"
    legit = store.query_rows(
        "train_window_counts",
        f"SELECT count(*), count(*) FILTER (WHERE fraudulent_activity = false AND transaction_id NOT IN "
        f"(SELECT unnest($ids))) FROM read_parquet($path) WHERE {labelled} AND {span}",
        {**base, **_day_range(w.train_from, w.train_until)})[0]
    cap = LEGIT_CAP if legit_cap is None else legit_cap
    if isinstance(cap, bool) or not isinstance(cap, int) or cap < 1_000:
        raise ModelError(f"The 'legit_cap' parameter must be an int >= 1000. Got {cap!r} instead.")
    share = min(1.0, cap / legit[1]) if legit[1] else 1.0
    truth = ""
    if GROUND_TRUTH in spec.columns:
        truth = (f" LEFT JOIN (SELECT transaction_id, {quote_ident(GROUND_TRUTH)} FROM {store.table(dataset)}) g "
                 "USING (transaction_id)")
    select = f"SELECT f.*{', g.' + quote_ident(GROUND_TRUTH) if truth else ''} FROM read_parquet($path) f{truth}"
    order = " ORDER BY transaction_datetime, transaction_id"
    certain = "(coalesce(fraudulent_activity, true) OR transaction_id IN (SELECT unnest($ids)))"
    if share < 1.0:
        keep = f" AND ({certain} OR hash(transaction_id, $seed) % 1000000 < {int(share * 1_000_000)})"
        weight = f", CASE WHEN {certain} THEN 1.0 ELSE {1 / share!r} END AS sample_weight"
        train_sql = f"SELECT *{weight} FROM ({select}) WHERE {labelled} AND {span}{keep}{order}"
        train_params = {**base, **_day_range(w.train_from, w.train_until), "seed": seed}
    else:
        train_sql = f"SELECT * FROM ({select}) WHERE {labelled} AND {span}{order}"
        train_params = {**base, **_day_range(w.train_from, w.train_until)}
    train_rows = store.query("train_window", train_sql, train_params)
    test_rows = store.query("test_window", f"SELECT * FROM ({select}) WHERE {labelled} AND {span}{order}",
                            {**base, **_day_range(w.test_from, w.test_until)})
    train_rows, covered_train = _case_labelled(train_rows, found)
    test_rows, covered_test = _case_labelled(test_rows, found)
    return WindowRows(train_rows, test_rows, int(legit[0]), share, covered_train + covered_test)


def _case_labelled(frame: pd.DataFrame, found: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """``frame`` with its target overridden by the disposition labels ``found``, and how many
    rows they cover."""
    from fraudlens import ops

    if found.empty:
        return frame, 0
    covered = int(frame["transaction_id"].astype(str).isin(found["transaction_id"]).sum())
    return ops.apply_labels(frame, found).reset_index(drop=True), covered


def _dataset_span(store: Store, dataset: str) -> tuple[date, date]:
    from fraudlens import datasets

    info = datasets.read(store.home, dataset)
    return (datetime.fromisoformat(info.first).date(), datetime.fromisoformat(info.last).date())


def train(
    dataset: str,
    kind: str = "xgboost",
    *,
    name: str | None = None,
    windows: Windows | None = None,
    label_delay_days: int = 7,
    tune: bool = False,
    seed: int = 42,
    progress: Progress | None = None,
    cfg: Settings | None = None,
) -> TrainResult:
    """Compute features, fit ``kind`` on the train window, evaluate on the test window, register."""
    from fraudlens import registry

    started = time.perf_counter()
    report = progress or (lambda _f, _m: None)
    check_dataset_name(dataset)
    if kind not in KINDS:
        raise ModelError(f"The 'model' parameter must be one of {KINDS}. Got {kind!r} instead.")
    cfg = cfg or settings()
    store = get_store(cfg)
    report(0.05, "Computing point-in-time features")
    spec = feats.make_spec(store, dataset, label_delay_days)
    windows = windows or default_windows(*_dataset_span(store, dataset), label_delay_days)
    _check_windows(windows)
    rows = window_rows(store, dataset, spec, windows, seed, cfg)
    train_rows, test_rows, case_labels = rows.train, rows.test, rows.case_labels
    if test_rows.empty:
        raise ModelError(f"No labelled rows in the test window {windows.test_from}..{windows.test_until}.")
    names = feats.feature_names(spec)
    X, y = train_rows[names], train_rows["fraudulent_activity"].to_numpy(dtype=int)
    weights = train_rows["sample_weight"].to_numpy(float) if "sample_weight" in train_rows else None
    params, tuning = {}, None
    if tune:
        from fraudlens import tuning as tuner

        report(0.3, "Tuning hyper-parameters (time-series folds)")
        tuning = tuner.tune(kind, X, y, train_rows["transaction_datetime"], label_delay_days, seed)
        params = tuning["best_params"]
        if weights is not None:  # folds and their scores are unweighted: say what they describe
            tuning["on_sample"] = ("tuned on the training sample (every fraud, "
                                   f"{rows.legit_share:.1%} of legitimate rows), unweighted")
    report(0.5, f"Training {kind} on {len(X):,} rows")
    fit_started = time.perf_counter()
    model = fit(kind, X, y, seed, params, progress=report, weights=weights)
    fit_seconds = time.perf_counter() - fit_started
    report(0.8, "Evaluating on the test window")
    saveable = _to_saveable(model, kind)
    scores = predict(saveable, kind, test_rows[names])
    metrics = evaluate_scores(test_rows, scores)
    metadata = {
        "dataset": dataset,
        "windows": windows.to_dict(),
        "label_delay_days": label_delay_days,
        "rows_train": int(len(X)),
        "rows_train_window": rows.train_window_rows,
        "legit_sample_share": rows.legit_share,
        "frauds_train": int(y.sum()),
        "rows_test": int(len(test_rows)),
        "case_labels": case_labels,
        "features": names,
        "feature_spec": spec.to_dict(),
        "parameters": _params_of(model, kind),
        "metrics": metrics,
        "seed": seed,
        "training_seconds": round(fit_seconds, 2),
        "total_seconds": round(time.perf_counter() - started, 2),
        "tuning": tuning,
    }
    report(0.9, "Saving to the registry")
    test_scores = _test_scores_frame(test_rows, scores)
    saved = registry.save_model(
        saveable, name=name or f"{dataset}_{kind}", kind=kind, metadata=metadata,
        features=[f.describe() for f in feats.catalogue(spec)], home=cfg.home,
        extra_files={"test_scores.parquet": test_scores},
    )
    report(1.0, "Done")
    logger.info("trained %s v%s on %s: AP %.3f", saved.name, saved.version, dataset,
                metrics["average_precision"])
    return TrainResult(saved.name, saved.version, kind, metrics, windows, len(X), len(test_rows),
                       time.perf_counter() - started, rows.legit_share)


def _test_scores_frame(test: pd.DataFrame, scores: np.ndarray) -> pd.DataFrame:
    cols = ["transaction_id", "transaction_datetime", "account_id", "transaction_amount", "fraudulent_activity"]
    out = test[cols].copy()
    if GROUND_TRUTH in test.columns:
        out[GROUND_TRUTH] = test[GROUND_TRUTH]
    out["score"] = scores.astype(float)
    return out.reset_index(drop=True)


def _to_saveable(model, kind: str):
    """XGBoost goes to the registry as its native Booster (.ubj), never as a pickle, cut at the
    early-stopping iteration so the saved model scores exactly as evaluated."""
    if kind != "xgboost":
        return model
    booster = model.get_booster()
    best = getattr(model, "best_iteration", None)
    return booster[: best + 1] if best is not None else booster


def _params_of(model, kind: str) -> dict:
    est = model if kind == "xgboost" else model[-1]
    params = {k: v for k, v in est.get_params().items() if isinstance(v, (int, float, str, bool, type(None)))}
    if kind == "xgboost" and getattr(model, "best_iteration", None) is not None:
        params["best_iteration"] = int(model.best_iteration)
    return params


def import_external(path, dataset: str, name: str, feature_names: list[str], *, label_delay_days: int = 7,
                    cfg: Settings | None = None):
    """Register an outside XGBoost model (.ubj/.json) that was trained on our feature names.

    The names must come from this dataset's feature catalogue, so scoring and explanations can
    rebuild the same point-in-time features; the model is evaluated on the default test window.
    """
    from fraudlens import registry

    cfg = cfg or settings()
    store = get_store(cfg)
    spec = feats.make_spec(store, dataset, label_delay_days)
    known = set(feats.feature_names(spec))
    unknown = [n for n in feature_names if n not in known]
    if unknown:
        raise ModelError(
            f"The model uses feature(s) {unknown[:5]} that FraudLens does not compute for dataset "
            f"'{dataset}'. Its features must be named as in the feature catalogue."
        )

    def evaluate(booster) -> tuple[dict, dict]:
        frame = _with_ground_truth(store, dataset, feats.compute(store, dataset, spec), spec)
        windows = default_windows(*_dataset_span(store, dataset), label_delay_days)
        _train_rows, test_rows = split(frame, windows)
        scores = predict(booster, "external_xgboost", test_rows[list(feature_names)])
        meta = {"dataset": dataset, "feature_spec": spec.to_dict(), "label_delay_days": label_delay_days,
                "windows": windows.to_dict(), "rows_test": int(len(test_rows)),
                "metrics": evaluate_scores(test_rows, scores)}
        return meta, {"test_scores.parquet": _test_scores_frame(test_rows, scores)}

    return registry.import_xgboost(path, name=name, feature_names=list(feature_names), home=cfg.home,
                                   evaluate=evaluate)
