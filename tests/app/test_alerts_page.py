"""The Alerts page under AppTest, on a 5,000-row demo whose champion has a live operating point.

What the page shows and does is checked against the library on the same data folder: the count
of raised alerts against ``alerts.queue``, dispositions against the alert, the effective label
and the audit log.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from appdemo import module_demo, ok, private_copy

from fraudlens import alerts, audit, operating
from fraudlens.demo import DEMO_MODEL
from fraudlens.ui import cached

APP = Path(__file__).resolve().parents[2] / "app.py"
DEMO_ROWS = 5_000
REF = f"{DEMO_MODEL}@1"
THRESHOLD = 0.5
TZ = "America/Lima"


@pytest.fixture(scope="module")
def demo_home(tmp_path_factory) -> Path:
    """One demo (dataset, champion, live threshold) for the module; each test works on a copy."""
    folder = module_demo(tmp_path_factory, "alerts_page", DEMO_ROWS)
    point = operating.threshold_inputs(folder, REF, "America/Lima").table.at(THRESHOLD)
    operating.save(folder, REF, point, "risk lead", "Agreed at the risk committee")
    return folder


@pytest.fixture
def home(home, demo_home, monkeypatch) -> Path:
    return private_copy(demo_home, home, monkeypatch, DEMO_ROWS)


@pytest.fixture
def raised(home) -> alerts.RaiseResult:
    """Alerts raised with the library, as the page would."""
    return alerts.raise_alerts("demo", DEMO_MODEL, seed=7, user="setup")


def open_page(role: str = "analyst", **state) -> AppTest:
    at = ok(AppTest.from_file(str(APP), default_timeout=120).run())
    at.session_state["role"] = role
    for key, value in state.items():
        at.session_state[key] = value
    return ok(at.switch_page("pages/alerts.py").run())


def metric(at: AppTest, label: str) -> str:
    found = [m.value for m in at.metric if m.label == label]
    assert found, f"no metric {label!r} in {[m.label for m in at.metric]}"
    return found[0]


def button(at: AppTest, label: str):
    found = [b for b in at.button if b.label == label]
    assert found, f"no button {label!r} in {[b.label for b in at.button]}"
    return found[0]


def status(at: AppTest) -> str:
    """The status badge of the open alert: ``Status: :red-badge[Confirmed fraud]`` -> its text."""
    found = [m.value for m in at.markdown if m.value.startswith("Status: :")]
    assert found, "no status badge"
    return found[0].split("[", 1)[1].rstrip("]")


def texts(elements) -> list[str]:
    return [e.value for e in elements]


def queue_table(at: AppTest):
    return next(d for d in at.dataframe if "alerts_table" in d.proto.id).value


def tick(at: AppTest, *rows: int) -> AppTest:
    """Tick table rows the way the browser reports it (a selection state on the table's key)."""
    at.session_state["alerts_table"] = {"selection": {"rows": list(rows), "columns": [], "cells": []}}
    return ok(at.run())


# ---------------------------------------------------------------------------------------------
# Who may open it, and what it says when there is nothing to do


@pytest.mark.parametrize("role", ["analyst", "admin"])
def test_the_page_opens_for_analysts_and_admins(home, role):
    at = open_page(role)
    assert at.title[0].value == "Alerts"
    assert metric(at, "Open alerts") == "0"
    assert metric(at, "Confirmed fraud (share of disposed)") == "n/a"
    assert button(at, "Raise alerts")
    assert any("demo_xgboost v1" in c.value and f"{THRESHOLD:.4f}" in c.value for c in at.caption)
    assert any("No alerts on 'demo' yet" in i for i in texts(at.info))
    assert at.number_input(key="alerts_open_id").value is None


@pytest.mark.parametrize("role", ["executive", "supervisor"])
def test_executives_and_supervisors_cannot_open_it(home, role):
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.session_state["role"] = role
    ok(at.run())
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("pages/alerts.py")  # not in the role's menu
    # Nor by running the page file itself (a first request for its URL): another page opens.
    at = AppTest.from_file(str(APP.parent / "pages" / "alerts.py"), default_timeout=120)
    at.session_state["role"] = role
    ok(at.run())
    assert at.title and "Alerts" not in [t.value for t in at.title]
    assert not [b for b in at.button if b.label == "Raise alerts"]


def test_without_a_live_operating_point_it_says_where_to_save_one(home):
    operating.log_path(home, DEMO_MODEL).unlink()
    at = open_page()
    assert any("no live operating point" in i and "Thresholds page" in i for i in texts(at.info))
    assert not [b for b in at.button if b.label == "Raise alerts"]


def test_without_a_champion_it_says_to_train_one(home):
    shutil.rmtree(home / "models")
    at = open_page()
    assert any("No champion model for 'demo'" in i and "Models page" in i for i in texts(at.info))


# ---------------------------------------------------------------------------------------------
# Raising alerts


def test_raising_alerts_from_the_page_matches_the_library(home):
    at = open_page()
    ok(button(at, "Raise alerts").click().run())
    total = alerts.queue(dataset="demo", status=None).total
    run = alerts.runs("demo").iloc[0]
    assert total == run["alerts_created"] + run["sampled"] > 0
    assert run["user"] == "analyst (local mode)" and run["threshold"] == THRESHOLD
    message = next(s for s in texts(at.success) if "alerts raised" in s)
    assert f"**{run['alerts_created']:,} alerts raised**" in message
    assert f"{run['sampled']:,} queued as the below-the-line sample" in message
    assert metric(at, "Open alerts") == f"{total:,}"
    # The queue is paged from the library: the first 50, highest expected loss first.
    page = alerts.queue(dataset="demo", limit=50)
    table = queue_table(at)
    assert table["id"].tolist() == page.rows["id"].tolist()
    assert table["score"].tolist() == pytest.approx(page.rows["score"].tolist())
    # A second run scores only what came after the first one's latest transaction: nothing here.
    newest = alerts.last_scored("demo", DEMO_MODEL)
    ok(at.run())
    assert any("Scores the transactions of 'demo' after " in c.value for c in at.caption)
    ok(button(at, "Raise alerts").click().run())
    assert len(alerts.runs("demo")) == 1
    local = cached.local_time(str(newest), TZ, seconds=True)
    assert any(i.startswith("Nothing new to score") and f"after {local} ({TZ})" in i for i in texts(at.info))
    # Scoring earlier transactions again skips what already has an alert (and samples again below the line).
    ok(at.checkbox(key="alerts_rescore").check().run())
    assert any("Scores every transaction of 'demo' without an alert" in c.value for c in at.caption)
    ok(button(at, "Raise alerts").click().run())
    again = alerts.runs("demo").iloc[0]
    assert again["alerts_created"] == 0 and again["skipped_existing"] == total and again["scope"] == "all"
    assert alerts.queue(dataset="demo", status=None).total == total + again["sampled"]
    assert any(f"**0 alerts raised**" in s and f"{total:,} skipped because they already had an alert" in s
               for s in texts(at.success))


def test_filters_and_paging_follow_the_library(home, raised):
    at = open_page()
    total = raised.alerts_created + raised.sampled
    assert total > 50, "the demo should fill more than one page"
    assert any(c.value.startswith(f"Alerts 1–50 of {total:,}") for c in at.caption)
    ok(button(at, "Next ▶").click().run())
    assert queue_table(at)["id"].tolist() == alerts.queue(dataset="demo", limit=50, offset=50).rows["id"].tolist()
    ok(at.selectbox(key="alerts_source").set_value("below_the_line").run())
    sample = alerts.queue(dataset="demo", source="below_the_line", limit=50)
    assert queue_table(at)["id"].tolist() == sample.rows["id"].tolist()  # back on the first page
    assert set(queue_table(at)["source"]) == {"below-the-line sample"}
    ok(at.selectbox(key="alerts_assignee").set_value("mine").run())
    assert any("No alert matches these filters" in i for i in texts(at.info))


# ---------------------------------------------------------------------------------------------
# Working one alert


def first_alert(raised) -> int:
    return int(alerts.queue(dataset="demo", limit=1).rows["id"].iloc[0])


def test_an_alert_opens_with_its_evidence(home, raised):
    alert_id = first_alert(raised)
    at = open_page(alerts_open_id=alert_id)
    alert = alerts.get_alert(alert_id)
    assert any(m.value == f"#### Alert #{alert_id} · transaction {alert.transaction_id}" for m in at.markdown)
    assert metric(at, "Risk score") == f"{alert.score:.1%}"
    assert status(at) == "Open"
    reasons = alerts.alert_reasons(alert_id)
    assert any(m.value == "\n".join(f"{i}. {r}" for i, r in enumerate(reasons, 1)) for m in at.markdown)
    charts = [c.proto.id for c in at.get("plotly_chart")]
    assert any("alerts_waterfall" in c for c in charts) and any("alerts_timeline" in c for c in charts)


def test_ticking_a_row_opens_that_alert(home, raised):
    at = open_page()
    tick(at, 2)
    assert at.number_input(key="alerts_open_id").value == int(queue_table(at)["id"].iloc[2])


def test_disposing_an_alert_writes_the_status_label_and_audit_entry(home, raised):
    alert_id = first_alert(raised)
    tx = alerts.get_alert(alert_id).transaction_id
    at = open_page(alerts_open_id=alert_id)
    at.radio(key="alerts_disposition").set_value("confirmed_fraud")
    at.text_area(key="alerts_comment").input("Customer denied the payment by phone")
    ok(button(at, "Save disposition").click().run())

    alert = alerts.get_alert(alert_id)
    assert alert.status == "confirmed_fraud"
    assert alerts.effective_label("demo", tx) is True
    entry = audit.entries(limit=1, action=audit.ALERT_DISPOSED)[0]
    assert entry.user == "analyst (local mode)"
    assert (entry.detail["alert_id"], entry.detail["disposition"], entry.detail["comment"]) == (
        alert_id, "confirmed_fraud", "Customer denied the payment by phone")
    assert any(f"Alert #{alert_id} is now **Confirmed fraud**" in s for s in texts(at.success))
    assert status(at) == "Confirmed fraud"
    assert metric(at, "Disposed") == "1" and metric(at, "Confirmed fraud (share of disposed)") == "100%"
    # Disposed: the history shows, and changing it needs an explicit choice.
    history = next(m.value for m in at.markdown if m.value.startswith("History"))
    assert history.count("\n- ") == 1 and "**Confirmed fraud** · analyst \\(local mode\\)" in history
    assert "Customer denied the payment by phone" in history
    assert not [b for b in at.button if b.label == "Save disposition"]
    ok(at.toggle(key="alerts_change").set_value(True).run())
    at.radio(key="alerts_disposition").set_value("false_positive")
    at.text_area(key="alerts_comment").input("Customer found the receipt")
    ok(button(at, "Save disposition").click().run())
    assert alerts.get_alert(alert_id).status == "false_positive"
    assert alerts.effective_label("demo", tx) is False


def test_a_disposition_without_a_comment_is_refused(home, raised):
    alert_id = first_alert(raised)
    before = audit.count()
    at = open_page(alerts_open_id=alert_id)
    at.radio(key="alerts_disposition").set_value("false_positive")
    ok(button(at, "Save disposition").click().run())
    assert any("Write a comment first" in e for e in texts(at.error))
    assert alerts.get_alert(alert_id).status == "open"
    assert audit.count() == before


# ---------------------------------------------------------------------------------------------
# Bulk actions


def test_bulk_dispose_of_two_selected_rows(home, raised):
    at = open_page()
    ids = queue_table(at)["id"].iloc[[0, 1]].tolist()
    tick(at, 0, 1)
    assert any(m.value.startswith("**2 selected**") for m in at.markdown)
    assert at.selectbox(key="alerts_bulk_disposition").value is None  # no default: a choice is needed
    at.text_input(key="alerts_bulk_comment").input("Known payroll batch")
    ok(button(at, "Dispose 2 selected").click().run())
    assert any("Choose a disposition first" in e for e in texts(at.error))
    assert {alerts.get_alert(i).status for i in ids} == {"open"}
    at.text_input(key="alerts_bulk_comment").input("")
    at.selectbox(key="alerts_bulk_disposition").set_value("false_positive")
    ok(button(at, "Dispose 2 selected").click().run())  # no comment yet
    assert any("Write a comment first" in e for e in texts(at.error))
    assert {alerts.get_alert(i).status for i in ids} == {"open"}

    at.text_input(key="alerts_bulk_comment").input("Known payroll batch")
    ok(button(at, "Dispose 2 selected").click().run())
    for alert_id in ids:
        alert = alerts.get_alert(alert_id)
        assert alert.status == "false_positive"
        assert alerts.effective_label("demo", alert.transaction_id) is False
    assert any("2 alert(s) set to False positive" in s for s in texts(at.success))
    assert metric(at, "Disposed") == "2"
    assert not set(ids) & set(queue_table(at)["id"])  # they left the open queue
    assert not [m for m in at.markdown if "selected**" in m.value]  # and the ticks were cleared

    # Closed alerts are not flipped in bulk: the library refuses, the page says why.
    ok(at.selectbox(key="alerts_status").set_value("disposed").run())
    assert sorted(queue_table(at)["id"]) == sorted(ids)
    tick(at, 0, 1)
    at.selectbox(key="alerts_bulk_disposition").set_value("confirmed_fraud")
    at.text_input(key="alerts_bulk_comment").input("Second thoughts")
    ok(button(at, "Dispose 2 selected").click().run())
    assert any("already have a final disposition" in e for e in texts(at.error))
    assert {alerts.get_alert(i).status for i in ids} == {"false_positive"}


def test_assign_selected_to_me_then_filter_mine(home, raised):
    at = open_page()
    ids = queue_table(at)["id"].iloc[[3, 4]].tolist()
    tick(at, 3, 4)
    ok(button(at, "Assign to me").click().run())
    assert {alerts.get_alert(i).assignee for i in ids} == {"analyst (local mode)"}
    ok(at.selectbox(key="alerts_assignee").set_value("mine").run())
    assert sorted(queue_table(at)["id"]) == sorted(ids)


def test_overview_and_explore_say_how_many_disposition_labels_they_leave_out(home, raised):
    ids = alerts.queue(dataset="demo", limit=3).rows["id"].astype(int).tolist()
    alerts.bulk_dispose(ids, "confirmed_fraud", "checked", "ana")
    for page in ("pages/overview.py", "pages/explore.py"):
        at = ok(AppTest.from_file(str(APP), default_timeout=120).run())
        ok(at.switch_page(page).run())
        assert any("3 label(s) set by alert dispositions" in c.value for c in at.caption), page
