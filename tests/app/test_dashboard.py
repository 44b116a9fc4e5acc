"""The dashboard pages under AppTest: every page under every role, roles and masking, and the
numbers on Overview and Explore against the library's for the same inputs.

Chart numbers are read from the Plotly spec the page sent (``json.loads(chart.proto.spec)``).
"""

from __future__ import annotations

import json
import math
import time
from datetime import timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from fraudlens import analytics, charts, datasets, export, operating
from fraudlens.analytics import Filters
from fraudlens.config import DEMO_DATASET
from fraudlens.store import get_store, hot_name
from fraudlens.ui import auth, cached, dashboard

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "app.py"
OWN_PAGES = ("pages/home.py", "pages/overview.py", "pages/explore.py", "pages/data.py")
ALLOWED = {
    "executive": {"pages/home.py", "pages/overview.py"},
    "supervisor": {"pages/home.py", "pages/overview.py", "pages/explore.py", "pages/data.py"},
    "analyst": set(OWN_PAGES),
    "admin": set(OWN_PAGES),
}
TITLES = {"pages/home.py": "FraudLens", "pages/overview.py": "Overview",
          "pages/explore.py": "Explore", "pages/data.py": "Data"}


def run_ok(at: AppTest) -> AppTest:
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def as_role(role: str) -> AppTest:
    """The app after first start, in local mode as ``role``."""
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.session_state["role"] = role
    return run_ok(at)


def open_page(at: AppTest, page: str) -> AppTest:
    at.switch_page(page)
    return run_ok(at)


def metrics(at: AppTest) -> dict[str, object]:
    return {m.label: m for m in at.metric}


def specs(at: AppTest) -> dict[str, dict]:
    """Plotly specs of the page by the first line of their title."""
    out = {}
    for chart in at.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        title = spec["layout"]["title"]["text"].split("<br>")[0]
        out[title] = spec
    return out


EXPLORE_VIEWS = ("When", "What and where", "Who")


def open_tab(at: AppTest, view: str) -> AppTest:
    at.session_state["explore_view"] = view
    return run_ok(at)


def explore_specs(at: AppTest) -> dict[str, dict]:
    """Plotly specs of every Explore tab, each opened in turn (the first one open again after)."""
    out = {}
    for view in EXPLORE_VIEWS[1:] + EXPLORE_VIEWS[:1]:
        out.update(specs(open_tab(at, view)))
    return out


def trace(spec: dict, name: str) -> dict:
    return next(t for t in spec["data"] if t.get("name") == name)


def store_and_last_day(home):
    store = get_store(home)
    return store, analytics.filter_options(store, DEMO_DATASET).last_date


def overview_filters(store) -> Filters:
    last = analytics.filter_options(store, DEMO_DATASET).last_date
    return Filters(date_from=last - timedelta(days=29), date_until=last)


def close(a, b) -> bool:
    return (a is None and (b is None or math.isnan(b))) or (a is not None and math.isclose(a, b, rel_tol=1e-9))


# ---------------------------------------------------------------------------- roles and pages


def test_every_page_each_role_may_open_opens_without_exception(app_home):
    at = as_role("analyst")
    for role in auth.ROLES:  # one app, one demo: the role picker changes between runs
        at.session_state["role"] = role
        run_ok(at)
        assert at.sidebar.selectbox(key="role").value == role
        assert {spec.path for spec in auth.pages_for(role)} >= ALLOWED[role]
        for page in OWN_PAGES:
            if page in ALLOWED[role]:
                open_page(at, page)
                assert TITLES[page] in [t.value for t in at.title], (role, page)
                assert not at.error, [e.value for e in at.error]
            else:
                # Not registered with st.navigation for this role: there is no way to it.
                with pytest.raises(ValueError, match="Could not find a navigation page"):
                    at.switch_page(page)
        open_page(at, "pages/home.py")


def test_the_local_role_is_kept_in_the_url_so_a_reload_keeps_it(app_home):
    at = as_role("supervisor")
    assert at.query_params["role"] == "supervisor"
    reloaded = AppTest.from_file(str(APP), default_timeout=120)  # a reload is a new session
    reloaded.query_params["role"] = "supervisor"
    run_ok(reloaded)
    assert reloaded.sidebar.selectbox(key="role").value == "supervisor"
    fresh = AppTest.from_file(str(APP), default_timeout=120)
    fresh.query_params["role"] = "root"  # not a role: the default, and the URL loses it
    run_ok(fresh)
    assert fresh.sidebar.selectbox(key="role").value == auth.DEFAULT_LOCAL_ROLE
    assert "role" not in fresh.query_params


def test_an_executive_running_a_page_file_directly_gets_home_instead(app_home):
    """A page file run on its own (a first request for its URL) still obeys the role."""
    run_ok(AppTest.from_file(str(APP), default_timeout=120))  # first start builds the demo
    for page in ("pages/explore.py", "pages/data.py"):
        at = AppTest.from_file(str(ROOT / page), default_timeout=60)
        at.session_state["role"] = "executive"
        run_ok(at)
        titles = [t.value for t in at.title]
        assert TITLES[page] not in titles and "FraudLens" in titles
        assert not at.get("plotly_chart") and not at.file_uploader


def test_role_map_and_sign_in_mode(app_home, tmp_path, monkeypatch):
    import importlib.util

    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",  # Authlib (st.login's dependency) may be absent
                        lambda name, *a: object() if name == "authlib" else real_find_spec(name, *a))
    roles = tmp_path / "roles.toml"
    roles.write_text('[roles]\n"Ana.Quispe@sbs.gob.pe" = "executive"\n"luis@sbs.gob.pe" = "supervisor"\n')
    monkeypatch.setenv(auth.ROLES_FILE_ENV, str(roles))
    assert auth.load_role_map(roles) == {"ana.quispe@sbs.gob.pe": "executive", "luis@sbs.gob.pe": "supervisor"}
    bad = tmp_path / "bad.toml"
    bad.write_text('[roles]\n"x@y.pe" = "root"\n')
    with pytest.raises(Exception, match="root"):
        auth.load_role_map(bad)

    secrets = {"auth": {"redirect_uri": "http://localhost:8501/oauth2callback", "cookie_secret": "x",
                        "client_id": "x", "client_secret": "x",
                        "server_metadata_url": "https://id.example/.well-known/openid-configuration"}}
    at = AppTest.from_file(str(APP), default_timeout=120)
    at.secrets = secrets
    at.user = {"is_logged_in": False}
    run_ok(at)
    assert at.button(key="auth_login")  # the sign-in screen, nothing else
    assert not at.metric

    at = AppTest.from_file(str(APP), default_timeout=120)
    at.secrets = secrets
    at.user = {"is_logged_in": True, "email": "ana.quispe@sbs.gob.pe", "name": "Ana"}
    run_ok(at)
    assert at.session_state[auth.ACTIVE_ROLE] == "executive"
    assert not [s for s in at.sidebar.selectbox if s.key == "role"]  # no local picker
    with pytest.raises(ValueError):
        at.switch_page("pages/explore.py")

    at = AppTest.from_file(str(APP), default_timeout=120)
    at.secrets = secrets
    at.user = {"is_logged_in": True, "email": "stranger@example.com"}
    run_ok(at)
    assert any("has no FraudLens role" in e.value for e in at.error)
    assert not at.metric

    monkeypatch.setattr(importlib.util, "find_spec", real_find_spec)
    if real_find_spec("authlib") is None:
        at = AppTest.from_file(str(APP), default_timeout=120)
        at.secrets = secrets
        run_ok(at)
        assert any("Authlib" in e.value for e in at.error) and not at.metric


def test_executives_see_masked_account_ids_others_do_not(app_home):
    at = open_page(as_role("executive"), "pages/overview.py")
    cases = next(f.value for f in at.dataframe if "account_id" in f.value.columns)
    store, _ = store_and_last_day(app_home)
    frauds = analytics.kpis(store, DEMO_DATASET, overview_filters(store)).current.frauds
    assert len(cases) == min(10, frauds) > 0
    assert all(v.startswith(export.MASK) and len(v) == len(export.MASK) + 4 for v in cases["account_id"])
    assert all(v.startswith(export.MASK) for v in cases["merchant_id"])  # counterparties too
    assert "ip_address" not in cases or all(
        v is None or str(v).startswith(export.MASK) for v in cases["ip_address"].dropna())

    at = open_page(as_role("supervisor"), "pages/overview.py")
    raw = next(f.value for f in at.dataframe if "account_id" in f.value.columns)
    assert not any(str(v).startswith(export.MASK) for v in raw["account_id"])
    # Same cases, same last four characters.
    assert [v[-4:] for v in cases["account_id"]] == [v[-4:] for v in raw["account_id"]]


def test_mask_personal_is_the_one_masking_function():
    import pandas as pd

    frame = pd.DataFrame({"account_id": ["A00001234", None, "abc"], "ip_address": ["190.2.3.45", "", None],
                          "merchant_id": ["M1", "M2", "M3"]})
    masked = export.mask_personal(frame)
    assert masked["account_id"].tolist()[0] == "••••1234" and masked["account_id"].tolist()[2] == "••••"
    assert masked["ip_address"].tolist()[:2] == ["••••3.45", ""]
    assert masked["merchant_id"].tolist() == ["M1", "M2", "M3"]
    assert frame["account_id"].tolist()[0] == "A00001234"  # input untouched
    assert auth.protect(frame, "executive")["account_id"].tolist()[0] == "••••1234"
    assert auth.protect(frame, "executive")["merchant_id"].tolist() == ["••••", "••••", "••••"]
    assert auth.protect(frame, "supervisor")["account_id"].tolist()[0] == "A00001234"


# ---------------------------------------------------------------------------- Overview


def test_overview_shows_the_library_figures(app_home):
    at = open_page(as_role("executive"), "pages/overview.py")
    store, _ = store_and_last_day(app_home)
    f = overview_filters(store)
    k = analytics.kpis(store, DEMO_DATASET, f)
    tiles = {t.label: t for t in dashboard.kpi_tiles(k)}
    shown = metrics(at)
    assert shown["Transactions"].value == f"{k.current.transactions:,}" == tiles["Transactions"].value
    assert shown["Fraud rate"].value == f"{k.current.fraud_rate:.2%}"
    assert shown["Fraud amount (PEN)"].value == dashboard.compact(k.current.fraud_amount)
    assert shown["Labelled share"].value == f"{k.current.labelled_share:.1%}"
    assert k.previous is not None
    assert shown["Transactions"].delta.startswith(f"{k.current.transactions - k.previous.transactions:+,}")
    assert shown["Fraud rate"].delta == f"{100 * k.delta('fraud_rate'):+.2f} pp"

    charts_ = specs(at)
    series = analytics.daily_series(store, DEMO_DATASET, f, "day")
    amount = trace(charts_["Fraud amount per day"], "fraud amount")
    assert amount["x"] == [d.isoformat() for d in series["period"]]
    assert amount["y"] == pytest.approx(series["fraud_amount"].tolist())
    rate = trace(charts_["Fraud rate per day"], "fraud rate")
    expected = series["fraud_rate"].where(series["labelled"] >= charts.MIN_LABELLED)
    assert all(close(a, b) for a, b in zip(rate["y"], expected))
    by_channel = analytics.segments(store, DEMO_DATASET, f, "channel").set_index("segment")
    bars = trace(charts_["Fraud rate by channel"], "fraud rate")
    assert sorted(bars["y"]) == sorted(by_channel.index)
    for segment, value in zip(bars["y"], bars["x"]):
        assert value == pytest.approx(by_channel.loc[segment, "fraud_rate"])
    assert "Fraud rate by transaction type" in charts_
    # First start sets a live operating point; its tiles show what it catches on the test window.
    live = operating.live_point(app_home.home, "demo_xgboost")
    assert shown["Alert precision"].value == f"{live.point.precision:.1%}"
    assert shown["Alerts per day"].value == f"{live.point.alerts_per_day:,.1f}"
    # When it was set, in the dataset's time zone as on the Alerts page.
    when = cached.local_time(live.saved_at[:19], "America/Lima")
    assert any(f"set by {live.user} on {when};" in c.value for c in at.caption), when
    assert {b.label for b in at.get("download_button")} >= {"KPIs (CSV)", "Daily series (CSV)"}


def test_a_filter_changes_the_overview_numbers(app_home):
    at = open_page(as_role("executive"), "pages/overview.py")
    before = metrics(at)["Transactions"].value
    at.multiselect(key="overview_channels").set_value(["online"])
    at.button(key="overview_apply").click()
    run_ok(at)
    store, _ = store_and_last_day(app_home)
    k = analytics.kpis(store, DEMO_DATASET, overview_filters(store).replace(channels=["online"]))
    assert metrics(at)["Transactions"].value == f"{k.current.transactions:,}" != before
    at.radio(key="overview_grain").set_value("week")
    run_ok(at)
    weekly = analytics.daily_series(store, DEMO_DATASET, overview_filters(store).replace(channels=["online"]), "week")
    assert trace(specs(at)["Fraud amount per week"], "fraud amount")["y"] == pytest.approx(
        weekly["fraud_amount"].tolist())


def test_the_live_operating_point_appears_once_an_analyst_saved_one(app_home):
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from fraudlens import operating, registry
    from fraudlens.thresholds import OperatingPoint

    at = open_page(as_role("executive"), "pages/overview.py")  # builds the demo
    model = LogisticRegression().fit(np.array([[0.0], [1.0], [0.2], [0.9]]), [0, 1, 0, 1])
    registry.save_model(model, name="fraud_lr", kind="logistic", metadata={"dataset": DEMO_DATASET},
                        features=[{"name": "x"}], home=app_home.home)
    point = OperatingPoint(threshold=0.62, alerts=120, tp=30, fp=90, fn=10, tn=4000, precision=0.25,
                           recall=0.75, f1=0.375, alerts_per_day=4.0, fraud_amount_caught=45678.9,
                           fraud_amount_missed=1000.0, expected_cost=2000.0, cost_review=10.0,
                           cost_missed="amount")
    operating.save(app_home.home, "fraud_lr", point, "ana", "first threshold")
    run_ok(at)
    shown = metrics(at)
    assert shown["Fraud amount caught (PEN)"].value == dashboard.compact(45678.9) == "45.7k"
    assert shown["Alerts per day"].value == "4.0"
    assert shown["Alert precision"].value == "25.0%"
    assert not any("No live operating point" in i.value for i in at.info)


# ---------------------------------------------------------------------------- Explore


def test_explore_charts_show_the_library_numbers(app_home):
    at = open_page(as_role("supervisor"), "pages/explore.py")
    store, _ = store_and_last_day(app_home)
    f = Filters()
    assert [t.label for t in at.tabs] == list(EXPLORE_VIEWS)
    # Only the open tab's charts are drawn.
    assert set(specs(at)) == {"Fraud rate by hour and weekday", "Transactions per day"}
    charts_ = explore_specs(at)
    assert set(charts_) >= {"Fraud rate by hour and weekday", "Transactions per day",
                            "Amounts of legitimate and fraudulent transactions", "Fraud rate by channel",
                            "Fraud amount by region", "Top merchants by fraud amount",
                            "Top accounts by fraud amount"}
    cells = trace(charts_["Fraud rate by hour and weekday"], "cells")
    heat = analytics.hour_weekday_heatmap(store, DEMO_DATASET, f)
    assert [c[:5] for c in cells["customdata"]] == heat[
        ["weekday", "hour", "transactions", "labelled", "frauds"]].astype(int).values.tolist()
    amounts = analytics.amount_distribution(store, DEMO_DATASET, f)
    assert trace(charts_["Amounts of legitimate and fraudulent transactions"], "fraud")["y"] == pytest.approx(
        amounts["fraud_share"].tolist())
    top = analytics.top_entities(store, DEMO_DATASET, f, "merchant_id", 15)
    bars = trace(charts_["Top merchants by fraud amount"], "fraud amount")
    assert bars["y"][::-1] == top["entity"].tolist()
    assert bars["x"][::-1] == pytest.approx(top["fraud_amount"].tolist())
    regions = analytics.region_breakdown(store, DEMO_DATASET, f)
    assert sum(trace(charts_["Fraud amount by region"], "fraud amount")["x"]) == pytest.approx(
        regions["fraud_amount"].sum())
    for spec in charts_.values():  # every chart says what its axes are
        layout = spec["layout"]
        assert layout["xaxis"]["title"]["text"]
        assert "http" not in json.dumps(spec["data"])


def test_explore_filters_apply_to_every_chart(app_home):
    at = open_page(as_role("analyst"), "pages/explore.py")
    at.multiselect(key="explore_channels").set_value(["atm", "pos"])
    at.radio(key="explore_label").set_value("fraud")
    at.button(key="explore_apply").click()
    run_ok(at)
    store, last = store_and_last_day(app_home)
    first = analytics.filter_options(store, DEMO_DATASET).first_date
    f = Filters(date_from=first, date_until=last, channels=["atm", "pos"], label="fraud")
    total = analytics.count_matching(store, DEMO_DATASET, f)
    assert any(f"**{total.transactions:,}** transactions" in c.value for c in at.caption)
    bars = trace(specs(open_tab(at, "What and where"))["Fraud rate by channel"], "fraud rate")
    assert sorted(bars["y"]) == ["atm", "pos"]
    at.selectbox(key="explore_segment").set_value("merchant_location")
    run_ok(open_tab(at, "When"))
    at.selectbox(key="explore_metric").set_value("fraud_amount")
    run_ok(at)
    charts_ = explore_specs(at)  # each tab's choice is kept while another tab is open
    assert "Fraud rate by region" in charts_ and "Fraud amount per day" in charts_
    series = analytics.daily_series(store, DEMO_DATASET, f, "day")
    assert trace(charts_["Fraud amount per day"], "fraud amount")["y"] == pytest.approx(
        series["fraud_amount"].tolist())


def test_a_selection_drills_into_its_transactions_page_by_page(app_home):
    at = open_page(as_role("supervisor"), "pages/explore.py")
    store, _ = store_and_last_day(app_home)
    extra = {"channel": ["online", "mobile"]}
    at.session_state["explore_drill"] = {"source": "explore_segments_0", "extra": extra,
                                         "label": "channel online, mobile"}
    open_tab(at, "What and where")  # where the chart that set it is
    total = analytics.count_matching(store, DEMO_DATASET, Filters(), extra)
    assert total.transactions > 100
    assert any(m.value.startswith(f"**Selected: channel online, mobile** — {total.transactions:,} transactions")
               for m in at.markdown)
    table = next(f.value for f in at.dataframe if "transaction_id" in f.value.columns)
    first = analytics.transactions_page(store, DEMO_DATASET, Filters(), extra, limit=50)
    assert table["transaction_id"].tolist() == first.rows["transaction_id"].tolist()
    assert set(table["channel"]) <= {"online", "mobile"}
    assert at.button(key="explore_prev").disabled and not at.button(key="explore_next").disabled

    at.button(key="explore_next").click()
    run_ok(at)
    second = analytics.transactions_page(store, DEMO_DATASET, Filters(), extra, limit=50, offset=50)
    table = next(f.value for f in at.dataframe if "transaction_id" in f.value.columns)
    assert table["transaction_id"].tolist() == second.rows["transaction_id"].tolist()
    assert any(c.value.startswith(f"Rows 51–100 of {total.transactions:,}") for c in at.caption)

    at.selectbox(key="explore_sort").set_value("transaction_amount")
    run_ok(at)
    table = next(f.value for f in at.dataframe if "transaction_id" in f.value.columns)
    assert table["transaction_amount"].is_monotonic_decreasing  # back to the first page, sorted
    assert any(c.value.startswith("Rows 1–50") for c in at.caption)

    at.button(key="explore_clear").click()
    run_ok(at)
    assert any(m.value.startswith("**All filtered transactions**") for m in at.markdown)


def test_a_selection_lasts_only_while_its_chart_is_on_screen(app_home):
    at = open_page(as_role("supervisor"), "pages/explore.py")
    at.session_state["explore_drill"] = {"source": "explore_top_merchant_id_0", "extra": {"merchant_id": ["M1"]},
                                         "label": "merchant M1"}
    open_tab(at, "Who")
    assert any(m.value.startswith("**Selected: merchant M1**") for m in at.markdown)
    open_tab(at, "What and where")
    assert any(m.value.startswith("**All filtered transactions**") for m in at.markdown)
    assert "explore_drill" not in at.session_state


def test_opening_an_explanation_is_offered_only_to_roles_with_the_explain_page(app_home):
    at = open_page(as_role("supervisor"), "pages/explore.py")
    assert "explore_explain" not in [b.key for b in at.button]
    at = open_page(as_role("analyst"), "pages/explore.py")
    chosen = at.selectbox(key="explore_transaction").value
    at.button(key="explore_explain").click()
    at.run()
    assert at.session_state["explain_transaction_id"] == chosen


def test_a_tiny_dataset_with_missing_columns_still_draws(app_home, tmp_path):
    """Three rows, no channel or account type, one unknown label: empty cells, '(missing)' segments."""
    from fraudlens import ingest

    source = tmp_path / "tiny.csv"
    source.write_text("TX_ID,Fecha,Cuenta,Monto,Ciudad,Fraude\n"
                      "A1,2025-02-01 10:00:00,C1,100.50,Lima,0\n"
                      "A2,2025-02-01 23:30:00,C2,=20,Cusco,1\n"
                      "A3,2025-02-03 03:00:00,C3,0,Lima,\n", encoding="utf-8")
    at = as_role("analyst")
    ingest.ingest([source], "tiny", cfg=app_home)
    run_ok(at)  # the sidebar now lists it
    at.sidebar.selectbox(key="active_dataset").set_value("tiny")
    run_ok(at)
    for page in ("pages/overview.py", "pages/explore.py"):
        open_page(at, page)
        assert not at.error, [e.value for e in at.error]
    charts_ = explore_specs(at)
    assert not at.error, [e.value for e in at.error]
    assert trace(charts_["Fraud rate by channel"], "fraud rate")["y"] == [analytics.MISSING]
    assert any("**2** transactions" in c.value for c in at.caption)  # the "=20" row was rejected


def test_overview_tables_download_as_parquet_and_each_download_is_audited(app_home):
    import io

    import pandas as pd

    from fraudlens import audit
    from fraudlens.ui import downloads

    at = open_page(as_role("executive"), "pages/overview.py")
    at.segmented_control(key="overview_format").set_value("parquet")
    run_ok(at)
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["KPIs (PARQUET)", "Daily series (PARQUET)", "Largest fraud cases (PARQUET)"]
    frame = pd.DataFrame({"note": ["=HYPERLINK(1)", "ok"], "amount": [1.5, 2.0]})
    assert pd.read_parquet(io.BytesIO(downloads.table_bytes(frame, "parquet"))).equals(frame)
    assert downloads.table_bytes(frame, "csv").decode("utf-8-sig").splitlines()[1].startswith("'=HYPERLINK")
    downloads.record(app_home.home, "Overview KPIs", "demo-kpis.parquet", 2, False)
    entry = audit.entries(limit=1, cfg=app_home)[0]
    assert (entry.action, entry.detail["file"], entry.detail["personal_data"]) == (audit.EXPORT, "demo-kpis.parquet",
                                                                                    False)


def test_the_active_dataset_is_prepared_in_the_background_after_first_start(app, app_home):
    """The first chart then finds the analytics table built (or being built), not yet started."""
    store = get_store(app_home)
    info = datasets.read(Path(app_home.home), DEMO_DATASET)
    table = hot_name(DEMO_DATASET, info.version)
    wanted = analytics.derived_columns(analytics.dataset_zone(store, DEMO_DATASET))
    deadline = time.monotonic() + 60
    while store.derived_columns(DEMO_DATASET, table) != wanted and time.monotonic() < deadline:
        time.sleep(0.1)  # nothing but the app's first run asked for it
    assert store.derived_columns(DEMO_DATASET, table) == wanted
    assert analytics.prepare(store, DEMO_DATASET) == table
