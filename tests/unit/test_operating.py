"""Operating points: where the log lives, versions resolved, the threshold panel's numbers checked
against a direct count over the scored rows, optimisers, and the shared table left untouched."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from fraudlens import operating, registry
from fraudlens.errors import ModelError
from fraudlens.operating import Costs

TZ = "America/Lima"


def scored_frame(n: int = 600, seed: int = 3) -> pd.DataFrame:
    """Test-window scores over ten days: frauds score higher, amounts in whole soles."""
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.08
    score = np.clip(np.where(y, rng.beta(5, 2, n), rng.beta(1.2, 6, n)), 0, 1).round(3)
    start = pd.Timestamp("2025-03-01 05:00:00")  # midnight in Lima
    return pd.DataFrame({
        "transaction_id": [f"T{i:05d}" for i in range(n)],
        "transaction_datetime": start + pd.to_timedelta(rng.integers(0, 10 * 86400, n), unit="s"),
        "account_id": [f"A{i % 37}" for i in range(n)],
        "transaction_amount": rng.integers(1, 2000, n).astype(float),
        "fraudulent_activity": y,
        "score": score,
    })


def register(home: Path, name: str = "fraud_lr", frame: pd.DataFrame | None = None) -> registry.ModelVersion:
    X = np.random.default_rng(0).random((50, 2))
    model = LogisticRegression().fit(X, (X[:, 0] > 0.5).astype(int))
    extras = {} if frame is None else {"test_scores.parquet": frame}
    return registry.save_model(model, name=name, kind="logistic", metadata={"dataset": "tx"},
                               features=[{"name": "a"}, {"name": "b"}], home=home, extra_files=extras)


@pytest.fixture
def reg(home, monkeypatch) -> Path:
    monkeypatch.delenv("FRAUDLENS_REGISTRY_KEY", raising=False)
    return Path(home.home)


@pytest.fixture
def scored(reg) -> tuple[Path, pd.DataFrame]:
    frame = scored_frame()
    register(reg, frame=frame)
    return reg, frame


def point_of(threshold: float, frame: pd.DataFrame, review: float, missed) -> dict:
    """The slow, obvious reference: count the rows."""
    alert = frame["score"].to_numpy() >= threshold
    y = frame["fraudulent_activity"].to_numpy()
    amount = frame["transaction_amount"].to_numpy()
    tp, fp = int((alert & y).sum()), int((alert & ~y).sum())
    fn = int((~alert & y).sum())
    days = operating.local_days(frame["transaction_datetime"], TZ)
    missed_cost = amount[~alert & y].sum() if missed == "amount" else missed * fn
    return {
        "alerts": int(alert.sum()), "tp": tp, "fp": fp, "fn": fn,
        "precision": tp / (tp + fp) if tp + fp else math.nan, "recall": tp / (tp + fn),
        "alerts_per_day": alert.sum() / len(np.unique(days)),
        "fraud_amount_caught": amount[alert & y].sum(), "fraud_amount_missed": amount[~alert & y].sum(),
        "expected_cost": review * alert.sum() + missed_cost,
    }


# ---------------------------------------------------------------------------------------------
# The log and version resolution


def test_log_path_is_inside_the_models_folder(tmp_path):
    assert operating.log_path(tmp_path, "fraud_xgb") == tmp_path / "models" / "fraud_xgb" / "operating_points.jsonl"


@pytest.mark.parametrize("name", ["../etc", "a/b", "", "1abc", "x y"])
def test_log_path_refuses_names_that_are_not_identifiers(tmp_path, name):
    with pytest.raises(ModelError, match="plain identifier"):
        operating.log_path(tmp_path, name)


def test_a_bare_name_resolves_to_the_champion_else_the_latest(scored):
    home, frame = scored
    register(home, frame=frame)  # v2
    assert operating.resolve(home, "fraud_lr") == ("fraud_lr", 2)
    registry.set_champion("fraud_lr", 1, user="t", comment="back", home=home)
    assert operating.resolve(home, "fraud_lr") == ("fraud_lr", 1)
    assert operating.resolve(home, "fraud_lr@2") == ("fraud_lr", 2)
    with pytest.raises(ModelError, match="no model named 'other'"):
        operating.resolve(home, "other")


def test_saving_appends_and_the_live_point_is_the_latest_of_that_version(scored):
    home, _ = scored
    register(home, frame=scored_frame(seed=4))  # v2, the latest
    table = operating.threshold_inputs(home, "fraud_lr@1", TZ).table
    assert operating.live_point(home, "fraud_lr@1") is None
    operating.save(home, "fraud_lr@1", table.at(0.5), "ana (analyst)", "first")
    operating.save(home, "fraud_lr@2", table.at(0.7), "ana (analyst)", "other version")
    operating.save(home, "fraud_lr@1", table.at(0.6), "luis (analyst)", "second")
    lines = operating.log_path(home, "fraud_lr").read_text().splitlines()
    assert [json.loads(line)["comment"] for line in lines] == ["first", "other version", "second"]
    live = operating.live_point(home, "fraud_lr@1")
    assert (live.point.threshold, live.user, live.comment) == (0.6, "luis (analyst)", "second")
    assert operating.live_point(home, "fraud_lr").comment == "other version"  # bare name: latest, v2
    assert [p.comment for p in operating.saved_points(home, "fraud_lr")] == ["second", "other version", "first"]
    assert [p.comment for p in operating.saved_points(home, "fraud_lr", version=1)] == ["second", "first"]


@pytest.mark.parametrize("comment", ["", "   "])
def test_a_comment_is_required(scored, comment):
    home, _ = scored
    table = operating.threshold_inputs(home, "fraud_lr", TZ).table
    with pytest.raises(ModelError, match="needs a comment"):
        operating.save(home, "fraud_lr", table.at(0.5), "ana", comment)
    assert not operating.log_path(home, "fraud_lr").exists()


def test_a_crashed_last_line_is_skipped_not_fatal(scored):
    home, _ = scored
    table = operating.threshold_inputs(home, "fraud_lr", TZ).table
    operating.save(home, "fraud_lr", table.at(0.5), "ana", "kept")
    with operating.log_path(home, "fraud_lr").open("a") as fh:
        fh.write('{"model": "fraud_lr", "vers')
    assert [p.comment for p in operating.saved_points(home, "fraud_lr")] == ["kept"]


# ---------------------------------------------------------------------------------------------
# The threshold table and the panel


def test_an_imported_model_has_no_test_window(reg):
    register(reg, name="ext")
    with pytest.raises(ModelError, match="no test-window scores"):
        operating.threshold_inputs(reg, "ext", TZ)


def test_days_are_local_calendar_days():
    stamps = pd.Series(pd.to_datetime(["2025-03-02 04:59:00", "2025-03-02 05:00:00"]))  # UTC
    days = operating.local_days(stamps, TZ)
    assert [str(d) for d in days] == ["2025-03-01", "2025-03-02"]


def test_inputs_hold_the_window_as_counted(scored):
    home, frame = scored
    inputs = operating.threshold_inputs(home, "fraud_lr", TZ)
    assert inputs.ref == "fraud_lr@1"
    assert inputs.table.n_samples_ == len(frame)
    assert inputs.table.n_positives_ == int(frame["fraudulent_activity"].sum())
    assert inputs.days == 10
    assert (str(inputs.first_day), str(inputs.last_day)) == ("2025-03-01", "2025-03-10")


@pytest.mark.parametrize("threshold", [0.0, 0.05, 0.3, 0.5, 0.731, 0.9, 1.0])
@pytest.mark.parametrize("costs", [Costs(5.0, "amount"), Costs(2.5, 300.0)])
def test_the_panel_point_equals_a_direct_count(scored, threshold, costs):
    home, frame = scored
    inputs = operating.threshold_inputs(home, "fraud_lr", TZ)
    panel = operating.panel(inputs, threshold, costs)
    expected = point_of(threshold, frame, costs.review, costs.missed)
    got = panel.point
    for field, value in expected.items():
        if isinstance(value, float) and math.isnan(value):
            assert math.isnan(getattr(got, field)), field
        else:
            assert getattr(got, field) == pytest.approx(value, rel=1e-12), field
    assert panel.bands.threshold == threshold
    assert panel.bands.precision == pytest.approx(expected["precision"], nan_ok=True)
    assert panel.seconds >= 0


def test_the_panel_never_changes_the_shared_table(scored):
    home, _ = scored
    inputs = operating.threshold_inputs(home, "fraud_lr", TZ)
    before = (inputs.table.cost_review, inputs.table.cost_missed)
    operating.panel(inputs, 0.4, Costs(99.0, 1234.0))
    assert (inputs.table.cost_review, inputs.table.cost_missed) == before


def test_negative_costs_are_refused(scored):
    home, _ = scored
    inputs = operating.threshold_inputs(home, "fraud_lr", TZ)
    with pytest.raises(ValueError, match="cost_review"):
        operating.panel(inputs, 0.4, Costs(-1.0, "amount"))


def test_the_curve_covers_the_whole_range_and_matches_single_points(scored):
    home, frame = scored
    inputs = operating.threshold_inputs(home, "fraud_lr", TZ)
    costs = Costs(3.0, "amount")
    curve = operating.panel(inputs, 0.5, costs).curve
    assert curve["threshold"].is_monotonic_increasing and curve["threshold"].is_unique
    assert curve["threshold"].iloc[0] == 0.0 and curve["threshold"].iloc[-1] == 1.0
    # even the sparse top of the range has points every 0.005
    assert np.diff(curve["threshold"]).max() <= 0.005 + 1e-12
    for row in curve.sample(40, random_state=0).itertuples():
        ref = point_of(row.threshold, frame, 3.0, "amount")
        assert row.alerts == ref["alerts"]
        assert row.expected_cost == pytest.approx(ref["expected_cost"])
        assert row.recall == pytest.approx(ref["recall"])


def test_optimisers_meet_their_target_and_say_so(scored):
    home, frame = scored
    table = operating.threshold_inputs(home, "fraud_lr", TZ).table
    found = operating.optimise(table, "precision", 0.6)
    assert found.point.precision >= 0.6 and "precision at least 60%" in found.message
    found = operating.optimise(table, "recall", 0.9)
    assert found.point.recall >= 0.9
    found = operating.optimise(table, "capacity", 5.0)
    assert found.point.alerts_per_day <= 5.0
    found = operating.optimise(table, "cost", 0.0, Costs(1.0, "amount"))
    grid = [point_of(t, frame, 1.0, "amount")["expected_cost"] for t in np.linspace(0, 1, 101)]
    assert found.point.expected_cost <= min(grid) + 1e-9


def test_an_unreachable_target_gives_no_point_and_the_best_reachable(reg):
    frame = scored_frame()
    frame.loc[frame.index[:3], ["score", "fraudulent_activity"]] = [1.0, False]  # false alarms at the top
    register(reg, name="noisy", frame=frame)
    table = operating.threshold_inputs(reg, "noisy", TZ).table
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the library's warning becomes the message, never leaks
        found = operating.optimise(table, "precision", 1.0)
        busy = operating.optimise(table, "capacity", 0.1)  # the 3 rows at 1.0 always alert
    assert found.point is None and "best reachable" in found.message and "Returning None" not in found.message
    assert busy.point is None and "alerts per day" in busy.message


def test_an_unknown_goal_is_refused(scored):
    home, _ = scored
    table = operating.threshold_inputs(home, "fraud_lr", TZ).table
    with pytest.raises(ModelError, match="'goal' parameter"):
        operating.optimise(table, "speed", 1.0)
