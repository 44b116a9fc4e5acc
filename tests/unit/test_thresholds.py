"""The threshold table against a full scan, optimisers against brute force, bands, and the log."""

from __future__ import annotations

import ast
import json
import math
import re
import threading
import warnings
from dataclasses import asdict, fields, replace
from pathlib import Path

import numpy as np
import pytest

from fraudlens import thresholds as th
from fraudlens.metrics import UndefinedMetricWarning
from fraudlens.thresholds import (
    OperatingPoint,
    OperatingPointLogWarning,
    TargetNotReachedWarning,
    ThresholdTable,
    bootstrap_bands,
    live_operating_point,
    load_operating_points,
    save_operating_point,
)

COSTS = [(1.0, "amount"), (0.0, "amount"), (25.5, 300.0), (3.0, 0.0)]


# --- data -------------------------------------------------------------------------------------


def window(seed: int, n: int = 80, kind: str = "grid"):
    """Labels, scores, whole-number amounts (sums are exact in any order) and days."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < rng.uniform(0.05, 0.5)
    raw = np.clip(rng.normal(np.where(y, 0.65, 0.35), 0.25), 0, 1)
    s = {
        "grid": np.round(raw * 20) / 20,  # heavy ties, 0 and 1 included
        "continuous": raw,
        "equal": np.full(n, 0.5),
        "ones": np.full(n, 1.0),
        "zeros": np.zeros(n),
    }[kind]
    amounts = rng.integers(1, 10_000, n).astype(float)
    days = rng.integers(0, 7, n)
    return y, s, amounts, days


DATASETS = [
    *[("grid", seed) for seed in range(8)],
    *[("continuous", seed) for seed in range(4)],
    ("equal", 0),
    ("ones", 1),
    ("zeros", 2),
]


def table(y, s, a=None, d=None, **kw) -> ThresholdTable:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)  # tables without fraud warn
        return ThresholdTable(y, s, a, d, **kw)


# --- the slow reference: a full scan at one threshold -----------------------------------------


def full_scan(y, s, a, d, t, review=1.0, missed="amount") -> OperatingPoint:
    alert = s >= t
    tp = int(np.sum(y & alert))
    alerts = int(np.sum(alert))
    fp, fn = alerts - tp, int(np.sum(y & ~alert))
    n_days = len(set(d.tolist())) if d is not None else 0
    caught = float(np.sum(a[y & alert])) if a is not None else math.nan
    lost = float(np.sum(a[y & ~alert])) if a is not None else math.nan
    return OperatingPoint(
        threshold=float(t),
        alerts=alerts,
        tp=tp,
        fp=fp,
        fn=fn,
        tn=int(np.sum(~y & ~alert)),
        precision=tp / alerts if alerts else math.nan,
        recall=tp / (tp + fn) if tp + fn else math.nan,
        f1=2 * tp / (2 * tp + fp + fn) if 2 * tp + fp + fn else math.nan,
        alerts_per_day=alerts / n_days if n_days else math.nan,
        fraud_amount_caught=caught,
        fraud_amount_missed=lost,
        expected_cost=review * alerts + (lost if missed == "amount" else missed * fn),
        cost_review=review,
        cost_missed=missed,
    )


def same(a: OperatingPoint | None, b: OperatingPoint | None) -> bool:
    """Field-by-field equality where NaN equals NaN."""
    if a is None or b is None:
        return a is b
    for f in fields(OperatingPoint):
        x, z = getattr(a, f.name), getattr(b, f.name)
        if not (
            x == z
            or (isinstance(x, float) and isinstance(z, float) and math.isnan(x) and math.isnan(z))
        ):
            return False
    return True


def probe_thresholds(s) -> list[float]:
    u = np.unique(s)
    near = np.clip(np.concatenate([np.nextafter(u, 2), np.nextafter(u, -1)]), 0, 1)
    mids = (u[1:] + u[:-1]) / 2
    rnd = np.random.default_rng(0).random(20)
    return sorted({0.0, 1.0, *u.tolist(), *near.tolist(), *mids.tolist(), *rnd.tolist()})


# --- at() equals a full scan ------------------------------------------------------------------


@pytest.mark.parametrize("kind, seed", DATASETS)
def test_at_equals_full_scan_everywhere(kind, seed):
    y, s, a, d = window(seed, kind=kind)
    t_all = table(y, s, a, d)
    for t in probe_thresholds(s):
        for review, missed in COSTS:
            got = t_all.at(t, cost_review=review, cost_missed=missed)
            assert same(got, full_scan(y, s, a, d, t, review, missed)), (t, got)


@pytest.mark.parametrize("kind, seed", DATASETS)
def test_at_without_amounts_or_days_has_nan_money_and_rate(kind, seed):
    y, s, _, _ = window(seed, kind=kind)
    tab = table(y, s)
    for t in probe_thresholds(s):
        got = tab.at(t, cost_missed=50.0)
        assert same(got, full_scan(y, s, None, None, t, 1.0, 50.0))
        assert math.isnan(got.fraud_amount_caught) and math.isnan(got.alerts_per_day)
    assert math.isnan(tab.at(0.5).expected_cost)  # the default miss cost is the amount


def test_float_amounts_agree_with_a_direct_sum_to_rounding():
    rng = np.random.default_rng(7)
    n = 5000
    y = rng.random(n) < 0.1
    s = rng.random(n).round(3)
    a = rng.lognormal(5, 2, n)
    tab = table(y, s, a)
    for t in probe_thresholds(s)[::7]:
        got, ref = tab.at(t), full_scan(y, s, a, None, t)
        assert (got.tp, got.fp, got.precision, got.recall) == (
            ref.tp,
            ref.fp,
            ref.precision,
            ref.recall,
        )
        assert got.fraud_amount_caught == pytest.approx(
            ref.fraud_amount_caught, rel=1e-12, abs=1e-6
        )
        assert got.fraud_amount_missed == pytest.approx(
            ref.fraud_amount_missed, rel=1e-12, abs=1e-6
        )


def test_degenerate_tables_warn_once_and_answer_with_nan():
    with pytest.warns(UndefinedMetricWarning):
        tab = ThresholdTable(np.zeros(5, bool), np.linspace(0, 1, 5))
    p = tab.at(0.3)
    assert math.isnan(p.recall) and p.fp == 3 and p.precision == 0.0
    with pytest.warns(UndefinedMetricWarning):
        empty = ThresholdTable([], [], [], [])
    p = empty.at(0.5)
    assert (p.alerts, p.tp, p.tn) == (0, 0, 0) and math.isnan(p.precision)
    assert same(empty.min_cost(1.0), replace(empty.at(1.0), expected_cost=0.0))


# --- optimisers equal a brute-force search over every threshold --------------------------------


def candidates(y, s, a, d, review=1.0, missed="amount"):
    return [
        full_scan(y, s, a, d, t, review, missed) for t in sorted({0.0, 1.0, *np.unique(s).tolist()})
    ]


def brute(points, feasible, key):
    ok = [p for p in points if feasible(p)]
    return max(ok, key=key) if ok else None


def defined(x: float) -> bool:
    return not math.isnan(x)


def check(tab_result, ref, record):
    assert same(tab_result, ref), (tab_result, ref)
    if ref is None:
        assert any(issubclass(w.category, TargetNotReachedWarning) for w in record)
    else:
        assert not any(issubclass(w.category, TargetNotReachedWarning) for w in record)


def targets(values) -> list[float]:
    """Round targets plus values that occur exactly, to test the >= boundary."""
    exact = [v for v in values if defined(v)]
    return sorted({0.0, 0.1, 0.25, 0.5, 0.9, 1.0, *exact[:: max(1, len(exact) // 8)]})


@pytest.mark.parametrize("kind, seed", DATASETS)
def test_max_recall_at_precision_equals_brute_force(kind, seed):
    y, s, a, d = window(seed, kind=kind)
    tab = table(y, s, a, d)
    points = candidates(y, s, a, d)
    for p in targets([q.precision for q in points]):
        ref = brute(
            points,
            lambda q: defined(q.precision) and defined(q.recall) and q.precision >= p,
            lambda q: (q.recall, q.precision, q.threshold),
        )
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            got = tab.max_recall_at_precision(p)
        check(got, ref, record)


@pytest.mark.parametrize("kind, seed", DATASETS)
def test_max_precision_at_recall_equals_brute_force(kind, seed):
    y, s, a, d = window(seed, kind=kind)
    tab = table(y, s, a, d)
    points = candidates(y, s, a, d)
    for r in targets([q.recall for q in points]):
        ref = brute(
            points,
            lambda q: defined(q.recall) and q.alerts > 0 and q.recall >= r,
            lambda q: (q.precision, q.recall, q.threshold),
        )
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            got = tab.max_precision_at_recall(r)
        check(got, ref, record)


@pytest.mark.parametrize("kind, seed", DATASETS)
def test_within_capacity_equals_brute_force(kind, seed):
    y, s, a, d = window(seed, kind=kind)
    tab = table(y, s, a, d)
    points = candidates(y, s, a, d)
    rates = [q.alerts_per_day for q in points]
    for cap in sorted({0.0, 0.5, 1.0, 3.0, 1e9, *rates}):
        ref = brute(
            points,
            lambda q: q.alerts_per_day <= cap,
            lambda q: (q.tp, -q.alerts, q.threshold),
        )
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            got = tab.within_capacity(cap)
        check(got, ref, record)


@pytest.mark.parametrize("kind, seed", DATASETS)
@pytest.mark.parametrize("review, missed", [*COSTS, (1e6, "amount"), (0.0, 0.0)])
def test_min_cost_equals_brute_force(kind, seed, review, missed):
    y, s, a, d = window(seed, kind=kind)
    tab = table(y, s, a, d)
    points = candidates(y, s, a, d, review, missed)
    ref = brute(points, lambda q: True, lambda q: (-q.expected_cost, -q.alerts, q.threshold))
    assert same(tab.min_cost(review, missed), ref)


def test_no_alert_is_never_chosen_when_a_score_is_exactly_one():
    # Threshold 1.0 still alerts the two rows scored 1, so "no alert" is not an option; the
    # capacity of 2 alerts a day fits that state, which catches no fraud.
    y, s, d = np.array([0, 0, 1]), np.array([1.0, 1.0, 0.2]), np.array([5, 5, 5])
    tab = table(y, s, d=d)
    got = tab.within_capacity(2.0)
    assert (got.threshold, got.alerts, got.tp) == (1.0, 2, 0)
    assert same(got, full_scan(y, s, None, d, 1.0))
    cheap = tab.min_cost(
        100.0, 0.0
    )  # reviewing costs, missing is free: alert as little as possible
    assert (cheap.threshold, cheap.alerts) == (1.0, 2)


@pytest.mark.parametrize("block", [1, 3, 16])
@pytest.mark.parametrize("kind, seed", [("grid", 0), ("grid", 5), ("continuous", 1), ("ones", 1)])
def test_min_cost_is_the_same_when_scanned_in_small_blocks(monkeypatch, block, kind, seed):
    monkeypatch.setattr(th, "_BLOCK", block)
    y, s, a, d = window(seed, kind=kind)
    tab = table(y, s, a, d)
    for review, missed in COSTS:
        points = candidates(y, s, a, d, review, missed)
        ref = brute(points, lambda q: True, lambda q: (-q.expected_cost, -q.alerts, q.threshold))
        assert same(tab.min_cost(review, missed), ref)


def test_optimiser_points_round_trip_through_at():
    y, s, a, d = window(3)
    tab = table(y, s, a, d)
    for point in [
        tab.max_recall_at_precision(0.5),
        tab.max_precision_at_recall(0.5),
        tab.within_capacity(2.0),
        tab.min_cost(10.0),
    ]:
        again = tab.at(
            point.threshold, cost_review=point.cost_review, cost_missed=point.cost_missed
        )
        assert same(point, again)


def test_unreachable_targets_return_none_with_a_reason():
    y = np.array([1, 0, 0, 1, 0])
    s = np.array([0.9, 0.9, 0.8, 0.2, 0.1])
    tab = table(y, s, d=np.array([1, 1, 1, 2, 2]))
    with pytest.warns(
        TargetNotReachedWarning, match=r"precision >= 0\.9; the best reachable is 0\.5"
    ) as rec:
        assert tab.max_recall_at_precision(0.9) is None
    assert (rec[0].message.target, rec[0].message.best) == (0.9, 0.5)
    ones = table([1, 0, 0], [1.0, 1.0, 1.0], d=[1, 1, 1])
    with pytest.warns(TargetNotReachedWarning, match="alerts per day <= 2"):
        assert ones.within_capacity(2) is None
    no_fraud = table([0, 0], [0.1, 0.2])
    with pytest.warns(TargetNotReachedWarning):
        assert no_fraud.max_precision_at_recall(0.5) is None
    with pytest.warns(TargetNotReachedWarning):
        assert no_fraud.max_recall_at_precision(0.0) is None


def test_optimiser_parameters_are_checked():
    tab = table(*window(0)[:2])
    with pytest.raises(
        ValueError,
        match=re.escape("The 'threshold' parameter must be a float in [0, 1]. Got 1.5 instead."),
    ):
        tab.at(1.5)
    with pytest.raises(ValueError, match=r"^The 'precision' parameter must be a float in \[0, 1\]"):
        tab.max_recall_at_precision(90)
    with pytest.raises(ValueError, match=r"^The 'days' parameter must be given to ThresholdTable"):
        tab.within_capacity(10)
    with pytest.raises(
        ValueError,
        match=r"^The 'cost_missed' parameter must be a float when the table has no amounts",
    ):
        tab.min_cost(1.0, "amount")
    with pytest.raises(
        ValueError,
        match=re.escape(
            "The 'cost_missed' parameter must be 'amount' or a finite float >= 0. "
            "Got 'amounts' instead."
        ),
    ):
        tab.min_cost(1.0, "amounts")
    with pytest.raises(
        ValueError, match=r"^The 'cost_review' parameter must be a finite float >= 0\. Got -1"
    ):
        tab.min_cost(-1, 5.0)
    with pytest.raises(ValueError, match=r"^The 'alerts_per_day' parameter"):
        table(*window(0)).within_capacity(-1)


# --- curve_frame --------------------------------------------------------------------------------


def test_curve_frame_is_the_breakpoints_downsampled():
    y, s, a, d = window(4, n=3000, kind="continuous")
    tab = table(y, s, a, d)
    full = tab.curve_frame(max_points=10**9)
    small = tab.curve_frame(max_points=200)
    assert list(small.columns) == [
        "threshold",
        "precision",
        "recall",
        "f1",
        "alerts",
        "alerts_per_day",
        "fraud_amount_caught",
        "expected_cost",
    ]
    assert len(full) == len(np.unique(s)) + (s.max() < 1) and len(small) <= 200
    assert small.iloc[0].equals(full.iloc[0]) and small.iloc[-1].equals(full.iloc[-1])
    assert small["threshold"].iloc[0] == s.min() and small["threshold"].iloc[-1] == 1.0
    assert small["threshold"].is_monotonic_increasing
    for row in small.itertuples():
        p = tab.at(row.threshold)
        got = [
            row.precision,
            row.recall,
            row.f1,
            row.alerts,
            row.alerts_per_day,
            row.fraud_amount_caught,
            row.expected_cost,
        ]
        want = [
            p.precision,
            p.recall,
            p.f1,
            p.alerts,
            p.alerts_per_day,
            p.fraud_amount_caught,
            p.expected_cost,
        ]
        np.testing.assert_array_equal(got, want)


# --- bootstrap bands ----------------------------------------------------------------------------


def test_bootstrap_is_deterministic_and_seeded():
    y, s, _, _ = window(1, n=500, kind="continuous")
    assert bootstrap_bands(y, s, 0.5) == bootstrap_bands(y, s, 0.5)
    assert bootstrap_bands(y, s, 0.5, random_state=1) != bootstrap_bands(y, s, 0.5, random_state=2)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("t", [0.2, 0.5, 0.7])
def test_band_contains_the_point_estimate(seed, t):
    y, s, _, _ = window(seed, n=600, kind="continuous")
    b = bootstrap_bands(y, s, t, random_state=seed)
    ref = full_scan(y, s, None, None, t)
    assert (b.precision, b.recall) == (ref.precision, ref.recall)
    assert b.precision_low <= b.precision <= b.precision_high
    assert b.recall_low <= b.recall <= b.recall_high
    assert b.precision_low < b.precision_high


def test_bootstrap_matches_a_slow_row_resampling_bootstrap():
    y, s, _, _ = window(11, n=400, kind="continuous")
    rng = np.random.default_rng(0)
    prec, rec = [], []
    for _ in range(3000):
        i = rng.integers(0, len(y), len(y))
        yy, aa = y[i], s[i] >= 0.5
        tp = np.sum(yy & aa)
        prec.append(tp / np.sum(aa))
        rec.append(tp / np.sum(yy))
    b = bootstrap_bands(y, s, 0.5, n_boot=3000, random_state=0)
    assert b.precision_low == pytest.approx(np.percentile(prec, 2.5), abs=0.02)
    assert b.precision_high == pytest.approx(np.percentile(prec, 97.5), abs=0.02)
    assert b.recall_low == pytest.approx(np.percentile(rec, 2.5), abs=0.02)
    assert b.recall_high == pytest.approx(np.percentile(rec, 97.5), abs=0.02)


def test_bootstrap_degenerate_and_bad_parameters():
    with pytest.warns(UndefinedMetricWarning):
        b = bootstrap_bands([1, 0, 1], [0.1, 0.2, 0.3], 0.9)
    assert math.isnan(b.precision) and math.isnan(b.precision_low) and b.recall == 0.0
    with pytest.raises(
        ValueError, match=r"^The 'alpha' parameter must be a float in \(0, 1\)\. Got 1\.0 instead\."
    ):
        bootstrap_bands([1, 0], [0.1, 0.2], 0.5, alpha=1.0)
    with pytest.raises(ValueError, match=r"^The 'n_boot' parameter must be an int >= 1"):
        bootstrap_bands([1, 0], [0.1, 0.2], 0.5, n_boot=0)


# --- the operating-point log ---------------------------------------------------------------------


@pytest.fixture
def point() -> OperatingPoint:
    y, s, a, d = window(2)
    return table(y, s, a, d).at(0.55)


def test_log_round_trips_and_filters(tmp_path, point):
    log = tmp_path / "ops" / "operating_points.jsonl"
    nan_point = replace(point, precision=math.nan)
    save_operating_point(log, "xgb fraud", "1", point, "ana.quispe", "first cut")
    save_operating_point(log, "xgb fraud", 2, nan_point, "ana.quispe", "línea 2: más recall")
    save_operating_point(log, "logistic", "1", point, "luis", "baseline")
    last = save_operating_point(log, "xgb fraud", "2", point, "luis", "back to 0.55\nafter review")
    records = load_operating_points(log)
    assert [(r.model, r.version) for r in records] == [
        ("xgb fraud", "1"),
        ("xgb fraud", "2"),
        ("logistic", "1"),
        ("xgb fraud", "2"),
    ]
    assert same(records[0].point, point) and same(records[1].point, nan_point)
    assert records[1].comment == "línea 2: más recall" and records[-1] == last
    assert records[0].saved_at.endswith("+00:00")
    assert len(log.read_bytes().splitlines()) == 4
    assert [r.model for r in load_operating_points(log, model="logistic")] == ["logistic"]
    assert live_operating_point(log, "xgb fraud", 2) == last
    assert live_operating_point(log, "xgb fraud", "1").comment == "first cut"
    assert live_operating_point(log, "xgb fraud", "9") is None
    assert load_operating_points(tmp_path / "missing.jsonl") == []


def test_log_stores_numpy_numbers_as_plain_json(tmp_path, point):
    log = tmp_path / "ops.jsonl"
    numpy_point = replace(point, tp=np.int64(point.tp), precision=np.float32(0.25))
    save_operating_point(log, "m", "1", numpy_point, "ana", "from a notebook")
    (saved,) = load_operating_points(log)
    assert saved.point.tp == point.tp and saved.point.precision == 0.25


def test_log_survives_a_truncated_last_line(tmp_path, point):
    log = tmp_path / "ops.jsonl"
    save_operating_point(log, "m", "1", point, "ana", "one")
    save_operating_point(log, "m", "1", point, "ana", "two")
    whole = log.read_bytes()
    log.write_bytes(whole + whole.splitlines()[0][:57])  # a crash mid-write
    with pytest.warns(OperatingPointLogWarning, match="last line"):
        assert [r.comment for r in load_operating_points(log)] == ["one", "two"]
    with pytest.warns(OperatingPointLogWarning):
        assert live_operating_point(log, "m", "1").comment == "two"
    before = log.read_bytes()
    save_operating_point(log, "m", "1", point, "ana", "three")
    assert log.read_bytes().startswith(before)  # nothing rewritten
    with pytest.warns(OperatingPointLogWarning, match="line 3 "):
        assert [r.comment for r in load_operating_points(log)] == ["one", "two", "three"]


def test_log_writes_with_o_append_and_fsync(tmp_path, point, monkeypatch):
    seen = {"flags": [], "fsync": 0}
    real_open, real_fsync = th.os.open, th.os.fsync

    def spy_open(path, flags, *args):
        seen["flags"].append((Path(path).name, flags))
        return real_open(path, flags, *args)

    def spy_fsync(fd):
        seen["fsync"] += 1
        return real_fsync(fd)

    monkeypatch.setattr(th.os, "open", spy_open)
    monkeypatch.setattr(th.os, "fsync", spy_fsync)
    save_operating_point(tmp_path / "ops.jsonl", "m", "1", point, "ana", "why")
    flags = dict(seen["flags"])["ops.jsonl"]
    assert flags & th.os.O_APPEND and seen["fsync"] >= 1


def test_concurrent_savers_never_interleave(tmp_path, point):
    log = tmp_path / "ops.jsonl"

    def worker(i):
        for j in range(25):
            save_operating_point(log, "m", str(i), point, f"user {i}", f"comment {j} " + "x" * 300)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    with warnings.catch_warnings():
        warnings.simplefilter("error", OperatingPointLogWarning)
        records = load_operating_points(log)
    assert len(records) == 200
    assert all(json.loads(line) for line in log.read_bytes().splitlines())


@pytest.mark.parametrize(
    "field, value",
    [
        ("user", ""),
        ("user", "   "),
        ("user", None),
        ("comment", ""),
        ("comment", " \n"),
        ("model", ""),
    ],
)
def test_log_refuses_missing_who_or_why(tmp_path, point, field, value):
    args = {"model": "m", "version": "1", "user": "ana", "comment": "why"} | {field: value}
    with pytest.raises(
        ValueError,
        match=rf"^The '{field}' parameter must be a non-empty string\. Got .* instead\.$",
    ):
        save_operating_point(tmp_path / "ops.jsonl", point=point, **args)
    assert not (tmp_path / "ops.jsonl").exists()


def test_log_refuses_a_point_that_is_not_an_operating_point(tmp_path, point):
    with pytest.raises(
        ValueError, match=r"^The 'point' parameter must be an OperatingPoint\. Got dict"
    ):
        save_operating_point(tmp_path / "ops.jsonl", "m", "1", asdict(point), "ana", "why")


# --- layering -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "module, allowed", [("metrics", set()), ("thresholds", {"fraudlens.metrics", "fraudlens.files", "fraudlens"})]
)
def test_layers(module, allowed):
    source = (Path(th.__file__).parent / f"{module}.py").read_text(encoding="utf-8")
    imported = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            imported |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add(node.module)
    ours = {name for name in imported if name.split(".")[0] == "fraudlens"}
    assert ours <= allowed
    assert not imported & {"duckdb", "streamlit", "plotly", "sklearn"}
