"""The model pages under AppTest (Models, Thresholds, Explain) on a 20,000-row demo.

Numbers on the pages are compared with the library's for the same model version: the threshold
panel with ``ThresholdTable.at`` at the slider's value, the waterfall with the explanation's
output, the leaderboard and curves with the registry and ``metrics.curves``.
"""

from __future__ import annotations

import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from appdemo import module_demo, ok, private_copy

from fraudlens import explain, governance, importance, metrics, operating, registry
from fraudlens.demo import DEMO_MODEL

APP = Path(__file__).resolve().parents[2] / "app.py"
DEMO_ROWS = 20_000
REF = f"{DEMO_MODEL}@1"
TZ = "America/Lima"


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory) -> Path:
    """One demo (dataset + champion model) for the module; each test works on a copy."""
    return module_demo(tmp_path_factory, "model_pages", DEMO_ROWS)


@pytest.fixture
def home(home, demo_home, monkeypatch) -> Path:
    return private_copy(demo_home, home, monkeypatch, DEMO_ROWS)


def open_page(page: str, **state) -> AppTest:
    at = ok(AppTest.from_file(str(APP), default_timeout=120).run())
    for key, value in state.items():
        at.session_state[key] = value
    return ok(at.switch_page(f"pages/{page}.py").run())


def metric(at: AppTest, label: str) -> str:
    found = [m.value for m in at.metric if m.label == label]
    assert found, f"no metric {label!r} in {[m.label for m in at.metric]}"
    return found[0]


def chart(at: AppTest, key_part: str) -> dict:
    """The plotly spec of the chart whose element id mentions ``key_part``."""
    for element in at.get("plotly_chart"):
        if key_part in element.proto.id:
            return json.loads(element.proto.spec)
    raise AssertionError(f"no chart {key_part!r}")


def button(at: AppTest, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r} in {[b.label for b in at.button]}"
    return found[0]


def pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1%}"


def money(value: float) -> str:
    return f"{value:,.0f}"


# ---------------------------------------------------------------------------------------------
# Every page opens


@pytest.mark.parametrize(("page", "title"), [("models", "Models"), ("thresholds", "Alert threshold"),
                                             ("explain", "Explain a score")])
def test_each_page_opens_with_its_key_elements(home, page, title):
    at = open_page(page)
    assert at.title[0].value == title
    if page == "models":
        assert at.dataframe[0].value["model"].tolist() == [DEMO_MODEL]
        for key in ("models_roc", "models_pr", "models_calibration"):
            assert chart(at, key)["layout"]["title"]["text"]
    elif page == "thresholds":
        # starts at the live threshold (first start sets one)
        assert at.slider(key="thresholds_threshold").value == operating.live_point(home, REF).point.threshold
        assert len(at.get("plotly_chart")) == 6
    else:
        assert at.text_input(key="explain_transaction_id").value in ("", None)
        assert "Type a transaction id" in at.info[0].value


def test_pages_say_what_to_do_without_a_model(home):
    shutil.rmtree(home / "models")
    for page, words in (("thresholds", "Train one on the Models page"), ("explain", "train a model"),
                        ("models", "No model yet")):
        at = open_page(page)
        assert any(words in i.value for i in at.info), (page, [i.value for i in at.info])


# ---------------------------------------------------------------------------------------------
# Thresholds


def panel_numbers(at: AppTest) -> dict:
    return {label: metric(at, label) for label in ("Alerts per day", "Precision", "Recall", "Fraud caught (PEN)",
                                                   "Fraud missed (PEN)", "Expected cost (PEN)", "Frauds caught")}


def library_numbers(home: Path, threshold: float, review: float = 5.0, missed="amount") -> dict:
    table = operating.threshold_inputs(home, REF, TZ).table
    p = table.at(threshold, cost_review=review, cost_missed=missed)
    return {
        "Alerts per day": f"{p.alerts_per_day:,.1f}", "Precision": pct(p.precision), "Recall": pct(p.recall),
        "Fraud caught (PEN)": money(p.fraud_amount_caught), "Fraud missed (PEN)": money(p.fraud_amount_missed),
        "Expected cost (PEN)": money(p.expected_cost), "Frauds caught": f"{p.tp:,} of {p.tp + p.fn:,}",
    }


def test_the_threshold_panel_shows_the_library_numbers_and_follows_the_slider(home):
    at = open_page("thresholds")
    threshold = at.slider(key="thresholds_threshold").value
    before = panel_numbers(at)
    assert before == library_numbers(home, threshold)
    p = operating.threshold_inputs(home, REF, TZ).table.at(threshold)
    marker = next(t for t in chart(at, "thresholds_pr")["data"] if t.get("name") == "current threshold")
    assert (_numbers(marker["x"])[0], _numbers(marker["y"])[0]) == pytest.approx((p.recall, p.precision))

    ok(at.slider(key="thresholds_threshold").set_value(0.05).run())
    after = panel_numbers(at)
    assert after == library_numbers(home, 0.05)
    assert after["Alerts per day"] != before["Alerts per day"] and after["Recall"] != before["Recall"]
    # The tile's delta says how far the alerts are from the team's capacity (50 a day by default).
    tile = next(m for m in at.metric if m.label == "Alerts per day")
    gap = operating.threshold_inputs(home, REF, TZ).table.at(0.05).alerts_per_day - 50
    assert tile.delta == f"{gap:+,.1f} vs capacity of 50"


def test_costs_change_the_expected_cost(home):
    at = open_page("thresholds")
    ok(at.radio(key="thresholds_missed_mode").set_value("fixed").run())
    at.number_input(key="thresholds_cost_missed").set_value(1000.0)
    ok(at.number_input(key="thresholds_cost_review").set_value(20.0).run())
    threshold = at.slider(key="thresholds_threshold").value
    assert metric(at, "Expected cost (PEN)") == library_numbers(home, threshold, 20.0, 1000.0)["Expected cost (PEN)"]


def test_an_optimiser_moves_the_slider_to_what_the_library_finds(home):
    at = open_page("thresholds")
    ok(at.number_input(key="thresholds_target_precision").set_value(60.0).run())
    ok(button(at, "Highest recall at this precision").click().run())
    table = operating.threshold_inputs(home, REF, TZ).table
    expected = operating.optimise(table, "precision", 0.6).point
    assert at.slider(key="thresholds_threshold").value == pytest.approx(expected.threshold)
    assert metric(at, "Recall") == pct(expected.recall)
    assert any("precision at least 60%" in s.value for s in at.success)
    ok(button(at, "Most frauds within the budget").click().run())
    expected = operating.optimise(table, "capacity", 50.0).point
    assert at.slider(key="thresholds_threshold").value == pytest.approx(expected.threshold)


def test_proposing_an_operating_point_needs_a_comment_and_a_second_person(home):
    log = operating.log_path(home, DEMO_MODEL)
    initial = log.read_text().splitlines()  # first start's operating point
    at = open_page("thresholds")
    ok(at.slider(key="thresholds_threshold").set_value(0.3).run())
    ok(button(at, "Propose operating point").click().run())
    assert any("Write a comment first" in e.value for e in at.error)
    assert governance.proposals().empty

    at.text_area(key="thresholds_comment").input("Fits the team's capacity")
    ok(button(at, "Propose operating point").click().run())
    [proposal] = governance.pending_for(DEMO_MODEL)
    assert (proposal.payload["threshold"], proposal.version, proposal.comment) == (0.3, 1, "Fits the team's capacity")
    assert proposal.proposed_by == "analyst (local mode)"
    assert proposal.payload["point"]["alerts"] == operating.threshold_inputs(home, REF, TZ).table.at(0.3).alerts
    assert log.read_text().splitlines() == initial  # nothing live until approved
    pending = [d for d in at.dataframe if "proposed by" in d.value.columns][0].value
    assert pending["comment"].tolist() == ["Fits the team's capacity"]

    with pytest.raises(governance.GovernanceError, match="cannot approve"):
        governance.approve(proposal.id, "analyst (local mode)", "analyst")
    governance.approve(proposal.id, "admin (local mode)", "admin", "Agreed")
    assert operating.live_point(home, REF).point.threshold == 0.3
    assert len(log.read_text().splitlines()) == len(initial) + 1
    # A new session starts the slider at the live threshold.
    assert open_page("thresholds").slider(key="thresholds_threshold").value == 0.3


# ---------------------------------------------------------------------------------------------
# Explain


def top_id(home: Path) -> str:
    scores = registry.read_table(DEMO_MODEL, 1, "test_scores.parquet", home)
    return str(scores.nlargest(1, "score")["transaction_id"].iloc[0])


def test_explain_a_transaction_sent_by_another_page(home):
    transaction_id = top_id(home)
    at = open_page("explain", explain_transaction_id=transaction_id)
    exp = explain.explain_transaction("demo", REF, transaction_id)
    assert at.subheader[0].value == f"Transaction {transaction_id}"
    assert metric(at, "Risk score") == f"{exp.score:.1%}"
    water = chart(at, "explain_waterfall")["data"][0]
    bars = _numbers(water["x"])
    total = sum(x for x, m in zip(bars, water["measure"], strict=True) if m != "total")
    assert total == pytest.approx(exp.output, abs=1e-6)
    assert bars[0] == pytest.approx(exp.base)
    assert water["measure"][-1] == "total"
    reasons = [m.value for m in at.markdown if m.value.startswith("1. ")]
    assert reasons and reasons[0].count("\n") + 1 == len(exp.reasons)
    first = exp.table[exp.table["contribution"] > 0].iloc[0]["description"]
    assert reasons[0].startswith(f"1. {first}: **")
    timeline = chart(at, "explain_timeline")["data"]
    this = next(t for t in timeline if t["name"] == "this transaction")
    amount = registry.read_table(DEMO_MODEL, 1, "test_scores.parquet", home).set_index(
        "transaction_id").loc[transaction_id, "transaction_amount"]
    assert list(_numbers(this["y"])) == [pytest.approx(amount)]


def test_explain_by_picking_from_the_highest_scored(home):
    at = open_page("explain")
    options = at.selectbox(key="explain_pick").options
    assert len(options) == 51 and options[0] in ("—", "")
    chosen_id = top_id(home)
    ok(at.selectbox(key="explain_pick").set_value(chosen_id).run())
    assert at.text_input(key="explain_transaction_id").value == chosen_id
    assert at.subheader[0].value == f"Transaction {chosen_id}"


def test_an_unknown_id_is_an_error_message_not_a_crash(home):
    at = open_page("explain", explain_transaction_id="NOPE-1")
    assert any("'NOPE-1' is not in dataset 'demo'" in e.value for e in at.error)


def test_the_global_view_runs_only_when_asked_and_shows_the_library_ranking(home):
    at = open_page("explain")
    assert not [c for c in at.get("plotly_chart") if "explain_importance" in c.proto.id]
    ok(at.toggle(key="explain_global").set_value(True).run())
    sample = importance.sample_contributions(REF, n=importance.SAMPLE_ROWS)
    ranking = importance.mean_abs_importance(sample).head(15)
    bars = chart(at, "explain_importance")["data"][0]
    assert list(bars["y"])[::-1] == ranking["feature"].tolist()
    assert _numbers(bars["x"])[::-1] == pytest.approx(ranking["mean_abs_contribution"].to_numpy())
    dep = chart(at, "explain_dependence")["data"]
    assert sum(len(_numbers(t["x"])) for t in dep if "x" in t and t.get("mode") == "markers") == len(sample.rows)


def _numbers(value) -> np.ndarray:
    """Plotly specs carry arrays either as lists or as base64 typed arrays."""
    if isinstance(value, dict) and "bdata" in value:
        import base64

        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    return np.asarray(value, dtype=float)


# ---------------------------------------------------------------------------------------------
# Models


def test_leaderboard_and_curves_equal_the_registry_and_metrics(home):
    at = open_page("models")
    board = at.dataframe[0].value
    summary = registry.summary(registry.list_models(home)[0])
    row = board.iloc[0]
    assert (row["AP"], row["ROC AUC"], row["Brier"]) == pytest.approx(
        (summary["average_precision"], summary["roc_auc"], summary["brier"]))
    assert bool(row["champion"]) and row["kind"] == "XGBoost"
    scores = registry.read_table(DEMO_MODEL, 1, "test_scores.parquet", home)
    curves = metrics.curves(scores["fraudulent_activity"].to_numpy(bool), scores["score"].to_numpy(float))
    roc = chart(at, "models_roc")["data"][1]
    assert _numbers(roc["x"]) == pytest.approx(curves.fpr)
    assert f"AUC {curves.roc_auc:.3f}" in roc["name"]


def test_training_runs_in_the_background_then_the_new_version_can_be_champion(home):
    at = open_page("models")
    at.selectbox(key="models_kind").set_value("logistic")
    ok(at.text_input(key="models_name").set_value("demo_lr").run())
    ok(at.button(key="models_train").click().run())
    deadline = time.monotonic() + 120
    seen_progress = False
    while not at.success and time.monotonic() < deadline:
        seen_progress |= bool(at.get("progress"))
        time.sleep(0.3)
        ok(at.run())
    assert seen_progress
    assert at.success and at.success[0].value.startswith("Trained demo_lr v1 (Logistic regression)")
    assert "demo_lr" in at.dataframe[0].value["model"].tolist()

    ok(at.selectbox(key="models_inspect").set_value("demo_lr@1").run())
    at.text_input(key="models_champion_comment").input("Simpler model, close enough")
    ok(button(at, "Propose v1 as champion of demo_lr").click().run())
    assert registry.champion("demo_lr", home) is None  # waits for a second person
    [proposal] = governance.pending_for("demo_lr")
    assert (proposal.kind, proposal.proposed_by) == ("champion", "analyst (local mode)")
    assert any("waiting for a second person" in i.value for i in at.info)

    governance.approve(proposal.id, "Rosa (admin, local mode)", "admin")
    assert registry.champion("demo_lr", home) == 1
    entry = registry.history("demo_lr", home)[-1]
    assert entry["user"] == "Rosa (admin, local mode)"
    assert "Simpler model, close enough" in entry["comment"]


def test_windows_out_of_order_are_refused_before_training(home):
    at = open_page("models")
    ok(at.toggle(key="models_custom_windows").set_value(True).run())
    at.date_input(key="models_train_until").set_value(at.date_input(key="models_test_until").value)
    ok(at.run())
    assert any("must be in order" in e.value for e in at.error)
    assert not [b for b in at.button if b.key == "models_train"]


def test_a_failed_training_job_shows_its_reason(home):
    from fraudlens.errors import ModelError
    from fraudlens.ui import models_cache

    def fail(progress):
        progress(0.1, "Computing point-in-time features")
        raise ModelError("No labelled rows in the test window 2025-03-20..2025-03-31.")

    jobs = models_cache.training_jobs()  # the process-wide registry the page polls
    job = jobs.submit("Training XGBoost 'x' on demo", fail)
    jobs.wait(job, 10)
    at = open_page("models", models_job=job)
    assert any(e.value == "Training XGBoost 'x' on demo failed: No labelled rows in the test window "
               "2025-03-20..2025-03-31." for e in at.error)


def test_import_an_xgboost_model_with_its_feature_list(home, tmp_path):
    import xgboost as xgb

    X = np.random.default_rng(0).random((80, 3))
    booster = xgb.train({"objective": "binary:logistic"}, xgb.DMatrix(X, label=X[:, 0] > 0.5), 4)
    path = tmp_path / "bank.ubj"
    booster.save_model(str(path))
    at = open_page("models")
    at.file_uploader(key="models_import_file").set_value(("bank.ubj", path.read_bytes(), "application/octet-stream"))
    at.file_uploader(key="models_import_features").set_value(("features.txt", b"a\nb\n", "text/plain"))
    ok(at.text_input(key="models_import_name").set_value("bank_xgb").run())
    ok(at.button(key="models_import").click().run())
    assert any("must list 3 names" in e.value for e in at.error)  # two names for three features
    assert [v.name for v in registry.list_models(home)] == [DEMO_MODEL]

    at.file_uploader(key="models_import_features").set_value(("features.txt", b"a\nb\nc\n", "text/plain"))
    ok(at.run())
    ok(at.button(key="models_import").click().run())
    assert any("Imported as bank_xgb@1 with 3 features" in s.value for s in at.success)
    ok(at.run())
    assert "XGBoost (imported)" in at.dataframe[0].value["kind"].tolist()
