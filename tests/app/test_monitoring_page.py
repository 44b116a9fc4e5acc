"""The Monitoring page under AppTest on a 20,000-row demo with a live threshold.

Numbers on the page are compared with the library's for the same inputs: the score PSI tile and
chart with ``monitor.weekly_psi``, the banner with ``monitor.drift_status``, the precision tile
and alert chart with ``monitor.weekly_alerts``, the recall tile with ``missed.estimate_missed``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from appdemo import module_demo, ok, private_copy

from fraudlens import alerts, missed, monitor, operating
from fraudlens.config import settings
from fraudlens.demo import DEMO_MODEL
from fraudlens.ui import auth

APP = Path(__file__).resolve().parents[2] / "app.py"
PAGE = "pages/monitoring.py"
DEMO_ROWS = 20_000
REF = f"{DEMO_MODEL}@1"
THRESHOLD = 0.3


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory) -> Path:
    """One demo (dataset, champion, live threshold, scores kept under .monitor) for the module."""
    folder = module_demo(tmp_path_factory, "monitoring_page", DEMO_ROWS)
    point = operating.threshold_inputs(folder, REF, "America/Lima").table.at(THRESHOLD)
    operating.save(folder, REF, point, "risk lead", "Agreed at the risk committee")
    monitor.dataset_scores("demo", REF, dataclasses.replace(settings(), home=folder))
    return folder


@pytest.fixture(scope="module")
def worked_home(demo_home, tmp_path_factory) -> Path:
    """The demo after a run of alerts (with a below-the-line sample) and some dispositions."""
    folder = tmp_path_factory.mktemp("monitoring_worked") / "home"
    shutil.copytree(demo_home, folder)
    cfg = dataclasses.replace(settings(), home=folder)
    alerts.raise_alerts("demo", REF, sample_rate=0.03, seed=1, explain_top=0, user="setup", cfg=cfg)
    rows = alerts.queue(dataset="demo", status=None, order="created_at", limit=1000, cfg=cfg).rows.sort_values("id")
    above = rows[rows["source"] == "threshold"]["id"].astype(int).tolist()
    sample = rows[rows["source"] == "below_the_line"]["id"].astype(int).tolist()
    alerts.bulk_dispose(above[:30], "confirmed_fraud", "checked", "ana", cfg=cfg)
    alerts.bulk_dispose(above[30:40], "false_positive", "checked", "ana", cfg=cfg)
    alerts.bulk_dispose(sample[:2], "confirmed_fraud", "checked", "ana", cfg=cfg)
    alerts.bulk_dispose(sample[2:60], "false_positive", "checked", "ana", cfg=cfg)
    return folder


def copy_home(source: Path, home, monkeypatch) -> Path:
    return private_copy(source, home, monkeypatch, DEMO_ROWS)


@pytest.fixture
def fresh(home, demo_home, monkeypatch) -> Path:
    return copy_home(demo_home, home, monkeypatch)


@pytest.fixture
def worked(home, worked_home, monkeypatch) -> Path:
    return copy_home(worked_home, home, monkeypatch)


def open_page(role: str = "analyst", **state) -> AppTest:
    at = ok(AppTest.from_file(str(APP), default_timeout=120).run())
    at.session_state["role"] = role
    for key, value in state.items():
        at.session_state[key] = value
    return ok(at.switch_page(PAGE).run())


def metric(at: AppTest, label: str) -> str:
    found = [m.value for m in at.metric if m.label == label]
    assert found, f"no metric {label!r} in {[m.label for m in at.metric]}"
    return found[0]


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.caption]


def charts(at: AppTest) -> dict[str, dict]:
    """Plotly specs of the page by the part of their key after ``monitoring_``."""
    found = {}
    for element in at.get("plotly_chart"):
        key = element.proto.id.rsplit("monitoring_", 1)[-1]
        found[key] = json.loads(element.proto.spec)
    return found


def line(spec: dict, name: str) -> list:
    for trace in spec["data"]:
        if trace.get("name") == name and trace.get("mode") == "lines":
            return trace["y"]
    raise AssertionError(f"no line {name!r}")


def pct(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.1%}"


def library_psi() -> pd.DataFrame:
    return monitor.weekly_psi("demo", REF, cfg=settings())


def latest_score(psi: pd.DataFrame) -> pd.Series:
    readable = psi[psi["complete"] & (psi["rows"] >= 100) & (psi["variable"] == "score")]
    return readable.sort_values("week").iloc[-1]


# ---------------------------------------------------------------------------------------------
# Every role, and what each sees


@pytest.mark.parametrize("role", auth.ROLES)
def test_the_page_opens_under_every_role(fresh, role):
    at = open_page(role)
    assert at.title[0].value == "Monitoring"
    assert [m.label for m in at.metric] == ["Score PSI", "Estimated recall", "Alert precision", "Not yet labelled"]
    assert at.selectbox(key="monitoring_model").value == REF
    banners = [*at.error, *at.warning, *at.success]
    assert len(banners) == 1 and "Week of" in banners[0].value


def test_the_banner_names_the_drifted_features_in_words_and_says_what_psi_is():
    from fraudlens.ui import monitor_view

    week = pd.Timestamp("2025-03-03")
    status = monitor.DriftStatus(week=week, band="act", worst_variable="acct_count_24h", worst_psi=0.31,
                                 acting=("acct_count_24h", "score"), watching=("hour",), message="unused")
    words = {"acct_count_24h": "Transactions of the account in the last 24 h.", "hour": "Hour of day"}
    kind, text = monitor_view.banner(status, words)
    assert kind == "error"
    assert text.startswith("Week of 2025-03-03: the population has shifted (PSI above 0.25) for Transactions of "
                           "the account in the last 24 h (`acct_count_24h`); the model's score (`score`). Review")
    assert "Largest: `acct_count_24h`, PSI 0.310." in text
    assert "Between 0.1 and 0.25, to watch: Hour of day (`hour`)." in text
    assert "PSI (population stability index) compares" in text
    assert "Largest: `acct_count_24h`, PSI 0.310." in monitor_view.banner(status)[1]
    watch = monitor.DriftStatus(week=week, band="watch", worst_variable="hour", worst_psi=0.12, acting=(),
                                watching=("hour",), message="unused")
    kind, text = monitor_view.banner(watch, words)
    assert kind == "warning"
    assert text.startswith("Week of 2025-03-03: PSI between 0.1 and 0.25 for Hour of day (`hour`). Watch it.")


def test_executives_see_the_summary_only(worked):
    at = open_page("executive")
    assert set(charts(at)) == {"alerts", "money"}
    assert "Drift" not in [h.value for h in at.subheader]
    assert [b.label for b in at.get("download_button")] == ["Alerts per week (CSV)"]


def test_analysts_see_every_chart(worked):
    at = open_page("analyst")
    assert set(charts(at)) == {"alerts", "money", "psi_score", "scores", "psi_features", "maturity", "ingests",
                               "nulls"}
    assert len(at.get("download_button")) == 6


# ---------------------------------------------------------------------------------------------
# Numbers equal the library's


def test_drift_numbers_are_the_library_numbers(fresh):
    at = open_page()
    psi = library_psi()
    status = monitor.drift_status(psi)
    latest = latest_score(psi)
    assert metric(at, "Score PSI") == f"{latest['psi']:.3f}"
    assert f"{latest['band']} · week of {latest['week']:%Y-%m-%d}" in captions(at)
    kind = {"act": at.error, "watch": at.warning, "stable": at.success}[status.band]
    assert kind[0].value.startswith(f"Week of {status.week:%Y-%m-%d}")
    assert all(f"(`{v}`)" in kind[0].value for v in (*status.acting, *status.watching))

    shown = charts(at)
    score = psi[psi["variable"] == "score"].sort_values("week")
    assert line(shown["psi_score"], "score") == pytest.approx(score["psi"].clip(lower=1e-3).tolist())
    features = [v for v in dict.fromkeys(psi["variable"]) if v != "score"]
    drawn = [t["name"] for t in shown["psi_features"]["data"] if t.get("mode") == "lines" and t.get("meta") != ["band"]]
    assert drawn == features and len(features) == monitor.TOP_FEATURES

    weekly = monitor.weekly_scores("demo", REF, cfg=settings())
    assert line(shown["scores"], "99th percentile") == pytest.approx(weekly["p99"].tolist())
    assert line(shown["scores"], f"alert threshold {THRESHOLD:.4g}") == [THRESHOLD, THRESHOLD]


def test_before_any_alert_it_says_where_to_raise_them(fresh):
    at = open_page()
    assert metric(at, "Estimated recall") == "not yet"
    assert any("dispose some sampled ones on the Alerts page" in c for c in captions(at))
    assert metric(at, "Alert precision") == "n/a"
    assert any("No alerts raised with model demo_xgboost" in i.value for i in at.info)
    maturity = monitor.label_maturity("demo", cfg=settings())
    recent = monitor.recent_weeks(maturity, 4)
    assert metric(at, "Not yet labelled") == pct(recent["unknown"].sum() / recent["rows"].sum())


def test_after_dispositions_the_tiles_match_the_library(worked):
    at = open_page()
    weekly = monitor.weekly_alerts("demo", DEMO_MODEL, cfg=settings())
    confirmed, resolved = int(weekly["confirmed"].sum()), int(weekly[["confirmed", "false_positive"]].sum().sum())
    assert (confirmed, resolved) == (30, 40)
    assert metric(at, "Alert precision") == pct(confirmed / resolved)

    estimate = missed.estimate_missed("demo", REF, cfg=settings())
    assert estimate.sample_resolved == 60 and not math.isnan(estimate.recall)
    assert metric(at, "Estimated recall") == pct(estimate.recall)
    assert any(f"95% interval {pct(estimate.recall_low)}–{pct(estimate.recall_high)}" in c for c in captions(at))

    shown = charts(at)
    bars = [t for t in shown["alerts"]["data"] if t.get("type") == "bar" and t.get("name") == "confirmed fraud"]
    assert sum(sum(t["y"]) for t in bars) == confirmed
    assert line(shown["alerts"], "precision (right axis)") == pytest.approx(
        [None if math.isnan(p) else p for p in weekly["precision"]], nan_ok=True)

    # Dispositions are labels: none of the weeks is less labelled than before.
    maturity = monitor.label_maturity("demo", cfg=settings())
    assert int(maturity["labelled_from_ops"].sum()) > 0


def test_a_second_run_over_the_same_period_is_flagged(worked):
    at = open_page()
    assert not any("scored the same period" in w.value for w in at.warning)
    again = alerts.raise_alerts("demo", REF, sample_rate=0.03, seed=2, explain_top=0, user="ana", cfg=settings())
    at = open_page()
    (shown,) = [w.value for w in at.warning if "scored the same period" in w.value]
    assert f"#{again.run_id - 1} and #{again.run_id}" in shown and "recall understated" in shown


def test_new_dispositions_show_on_the_next_run(worked):
    at = open_page()
    before = metric(at, "Alert precision")
    rows = alerts.queue(dataset="demo", status="open", source="threshold", limit=50, cfg=settings()).rows
    alerts.bulk_dispose(rows["id"].astype(int).tolist()[:20], "false_positive", "checked", "ana", cfg=settings())
    ok(at.run())
    weekly = monitor.weekly_alerts("demo", DEMO_MODEL, cfg=settings())
    expected = pct(weekly["confirmed"].sum() / (weekly["confirmed"].sum() + weekly["false_positive"].sum()))
    assert metric(at, "Alert precision") == expected != before


# ---------------------------------------------------------------------------------------------
# Empty states


def test_without_a_model_it_points_to_the_models_page(fresh):
    shutil.rmtree(fresh / "models")
    at = open_page()
    assert any("Train one on the Models page" in i.value for i in at.info)
    assert not at.metric


def test_without_a_dataset_it_says_so(home, monkeypatch):
    monkeypatch.setenv("FRAUDLENS_DEMO_ROWS", "0")
    at = open_page()
    assert any("No dataset yet" in i.value for i in at.info)
