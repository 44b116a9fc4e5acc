"""The benchmark suite: its pandas equivalents give the library's answers, its checks catch a
wrong answer, and ``python -m fraudlens bench --json`` runs end to end. No timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from bench import pandas_baseline as pb
from bench import polars_baseline as plb
from bench import suite
from fraudlens import analytics, datasets
from fraudlens.analytics import Filters
from fraudlens.config import settings
from fraudlens.store import Store, hot_layout

ROWS = 20_000
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """A 20k-row set built, trained and scored by the suite's own build steps."""
    folder = tmp_path_factory.mktemp("bench-work")
    suite.prepare(folder, ROWS, suite.SEED)
    return folder


@pytest.fixture(scope="module")
def ctx(work) -> suite.Context:
    built = suite.prepare(work, ROWS, suite.SEED)  # everything is reused
    cfg = replace(settings(), home=work / "home", timezone=suite.TZ, memory_limit="1GB", threads=2)
    info = datasets.read(cfg.home, built.dataset)
    parts = datasets.part_paths(cfg.home, info)
    df, pdf = pb.load(parts, built.scores, suite.TZ), plb.load(parts, built.scores, suite.TZ)
    store = Store(cfg)
    try:
        options = analytics.filter_options(store, built.dataset)
    finally:
        store.close()
    return suite.Context(cfg, built.dataset, built.model, df, options, pdf)


def answers(m: suite.Measure, ctx: suite.Context, calls: int | None = None) -> list[tuple]:
    """(arg, library answer, pandas answer) for the measure's first ``calls`` args."""
    store = Store(ctx.cfg)
    try:
        return [(a, m.library(store, a), m.pandas(a)) for a in m.args[:calls or len(m.args)]]
    finally:
        store.close()


def test_build_is_reused(work):
    again = suite.prepare(work, ROWS, suite.SEED)
    assert set(again.record) == {"generate", "ingest", "ingest_csv", "analytics", "features", "train", "score",
                                 "monitor"}
    csv = again.record["ingest_csv"]
    assert (csv["rows"], csv["rejected"]) == (ROWS, 0) and csv["csv_mb"] > 0
    assert not (work / f"{again.dataset}.csv").exists()  # the CSV and its dataset are not kept
    assert not datasets.exists(again.home, f"{again.dataset}_csv")
    assert again.record["score"]["model"] == again.model
    # Where the time of the ingest and feature steps went, phase by phase.
    assert list(again.record["features"]["phases"]) == ["read", "windows", "write", "fsync"]
    for step in ("ingest", "ingest_csv"):
        phases = again.record[step]["phases"]
        assert {"Inspecting files", "read, convert and check", "Writing Parquet", "Profiling"} <= set(phases)
        assert all(p["seconds"] >= 0 for p in phases.values())
    assert again.scores.is_file()


def test_an_analytics_table_of_another_layout_is_measured_again(tmp_path):
    assert suite.step_still_valid("analytics", {"layout": hot_layout()}, {}, tmp_path)
    assert not suite.step_still_valid("analytics", {"layout": "an older one"}, {}, tmp_path)
    assert not suite.step_still_valid("analytics", {"measured_at": "2026-01-01"}, {}, tmp_path)


def test_dashboard_pandas_agrees_with_library(ctx):
    for m in suite.dashboard_measures(ctx):
        for arg, lib, pan in answers(m, ctx):
            assert m.compare(lib, pan) == [], (m.name, suite.describe(arg))


def test_dashboard_polars_agrees_with_pandas(ctx):
    measures = [m for m in suite.dashboard_measures(ctx) if m.polars is not None]
    assert len(measures) == 6  # every dashboard aggregation; the page measures are pandas only
    for m in measures:
        for arg in m.args:
            assert m.polars_compare(m.polars(arg), m.pandas(arg)) == [], (m.name, suite.describe(arg))


def test_polars_checks_catch_wrong_answers(ctx):
    last = ctx.options.last_date
    f = Filters(date_from=last - timedelta(days=29), date_until=last)
    wrong = plb.kpis(ctx.polars, f)
    wrong["current"]["labelled"] -= 1
    assert suite.compare_kpi_dicts(wrong, pb.kpis(ctx.df, f))
    assert suite.compare_kpi_dicts(plb.kpis(ctx.polars, f.replace(channels=("online",))), pb.kpis(ctx.df, f))
    daily = plb.daily_series(ctx.polars, f)
    daily.loc[3, "frauds"] += 1
    assert suite.compare_frames(daily, pb.daily_series(ctx.df, f), "period")
    page = plb.transactions_page(ctx.polars, f, "transaction_amount", True, 20)
    assert suite.compare_rows(page, pb.transactions_page(ctx.df, f, "transaction_amount", False, 20))


def test_kpis_and_heatmap_agree_on_plain_numbers(ctx):
    """The checks aside: the library's figures equal pandas' figures read off directly."""
    last = ctx.options.last_date
    f = Filters(date_from=last - timedelta(days=13), date_until=last, channels=("online",))
    store = Store(ctx.cfg)
    try:
        kpis = analytics.kpis(store, ctx.dataset, f)
        heat = analytics.hour_weekday_heatmap(store, ctx.dataset, f)
    finally:
        store.close()
    expected = pb.kpis(ctx.df, f)
    assert kpis.current.transactions == expected["current"]["transactions"] > 0
    assert kpis.current.frauds == expected["current"]["frauds"]
    assert kpis.previous.transactions == expected["previous"]["transactions"] > 0
    assert kpis.current.fraud_amount == pytest.approx(expected["current"]["fraud_amount"], rel=1e-9)
    local = ctx.df["local_time"]
    online = ctx.df[(ctx.df["channel"] == "online") & (local >= pd.Timestamp(f.date_from))
                    & (local < pd.Timestamp(last + timedelta(days=1)))]
    monday_9 = online[(online["local_time"].dt.day_of_week == 0) & (online["local_time"].dt.hour == 9)]
    cell = heat[(heat["weekday"] == 1) & (heat["hour"] == 9)].iloc[0]
    assert cell["transactions"] == len(monday_9)
    assert heat["transactions"].sum() == len(online) == kpis.current.transactions


def test_thresholds_explanation_queue_and_psi_agree(ctx):
    measures = [*suite.threshold_measures(ctx), suite.explain_measure(ctx), suite.alert_measure(ctx),
                suite.psi_measure(ctx)]
    for m in measures:
        pairs = answers(m, ctx, m.pandas_calls)
        assert pairs
        for arg, lib, pan in pairs:
            assert m.compare(lib, pan) == [], (m.name, arg)
    queue = next(m for m in measures if m.name.startswith("alert queue"))
    first = queue.library(None, "expected_loss")
    assert first.total > 0 and len(first.rows) == min(first.total, suite.QUEUE_ROWS)


def test_checks_catch_wrong_answers(ctx):
    """Each kind of check fails on a slightly wrong pandas answer."""
    last = ctx.options.last_date
    f = Filters(date_from=last - timedelta(days=29), date_until=last)
    store = Store(ctx.cfg)
    try:
        kpis = analytics.kpis(store, ctx.dataset, f)
        heat = analytics.hour_weekday_heatmap(store, ctx.dataset, f)
        top = analytics.top_entities(store, ctx.dataset, f, "merchant_id", 15)
        page = analytics.transactions_page(store, ctx.dataset, f, limit=20)
    finally:
        store.close()
    wrong_kpis = pb.kpis(ctx.df, f)
    wrong_kpis["previous"]["frauds"] += 1
    assert suite.compare_kpis(kpis, wrong_kpis)
    wrong_heat = pb.hour_weekday_heatmap(ctx.df, f)
    wrong_heat.loc[40, "fraud_amount"] += 0.01
    assert suite.compare_heatmap(heat, wrong_heat)
    assert suite.compare_heatmap(heat, pb.hour_weekday_heatmap(ctx.df, f.replace(date_from=last)))
    assert suite.compare_top(top, pb.top_entities(ctx.df, f, "merchant_id", 14))
    wrong_top = pb.top_entities(ctx.df, f, "merchant_id", 15)
    wrong_top.loc[2, "transactions"] += 1
    assert suite.compare_top(top, wrong_top)
    wrong_page = pb.transactions_page(ctx.df, f, "transaction_datetime", True, 20)
    assert suite.compare_page(page, wrong_page) == []
    assert suite.compare_page(page, wrong_page.iloc[[1, 0, *range(2, 20)]])
    assert suite.compare_psi(0.1, 0.1 + 2 * suite.PSI_TOLERANCE)


def test_pandas_local_time_is_lima(ctx):
    first = ctx.df.iloc[0]
    assert first["local_time"] == first["transaction_datetime"] - pd.Timedelta(hours=5)
    assert np.issubdtype(ctx.df["local_time"].dtype, np.datetime64)


def test_cli_bench_json(run_cli, work, tmp_path):
    out = tmp_path / "results"
    done = run_cli("bench", "--rows", ROWS, "--json", "--out", out, "--work", work, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert {"rows", "seed", "date", "machine", "versions", "dataset", "build", "queries", "agreement",
            "targets"} <= set(report)
    assert report["rows"] == ROWS
    assert {"cores", "ram_gib"} <= set(report["machine"])
    assert {"python", "duckdb", "pandas", "xgboost", "streamlit"} <= set(report["versions"])
    assert report["agreement"]["ok"] is True
    steps = {b["step"].split(" ")[0] for b in report["build"]}
    assert {"generate", "ingest", "features", "scoring", "baseline:"} <= steps
    assert sum(b["step"].startswith("baseline") for b in report["build"]) == 2  # pandas and polars
    assert all(b["reused"] for b in report["build"] if not b["step"].startswith("baseline"))
    for q in report["queries"]:
        assert {"name", "cold_ms", "warm_median_ms", "warm_p95_ms", "pandas_median_ms", "ratio", "agree",
                "target", "status"} <= set(q)
        assert q["agree"] is True, q["mismatches"] + q.get("polars_mismatches", [])
    polars = [q for q in report["queries"] if "polars_median_ms" in q]
    assert len(polars) == 6 and all(q["polars_agree"] and q["polars_median_ms"] > 0 for q in polars)
    assert json.loads((out / f"suite-{ROWS}.json").read_text())["rows"] == ROWS
    assert "| measure |" in (out / f"suite-{ROWS}.md").read_text()
    assert "| windows |" in (out / f"suite-{ROWS}.md").read_text()  # the feature step's phases


def test_cli_bench_refuses_too_few_rows(run_cli):
    done = run_cli("bench", "--rows", "50")
    assert done.returncode == 2
    assert "rows" in done.stderr and "Traceback" not in done.stderr


def test_cli_bench_names_a_missing_test_requirement():
    # A fresh process where polars cannot be imported, as on a machine with requirements.txt only.
    code = ("import sys; sys.modules['polars'] = None; from fraudlens.cli import main; "
            "raise SystemExit(main(['bench', '--rows', '20000']))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert "'polars'" in done.stderr and "requirements-dev.txt" in done.stderr
    assert "Traceback" not in done.stderr


def test_polars_agrees_with_pandas_on_missing_values(tmp_path):
    """Rows without a label, channel, region or merchant, tied amounts and times either side of
    Lima's midnight: the polars baseline answers as pandas' does."""
    rng = np.random.default_rng(3)
    n = 400
    frame = pd.DataFrame({
        "transaction_id": [f"T{i:04d}" for i in range(n)],
        "transaction_datetime": pd.Timestamp("2025-03-01 04:00") + pd.to_timedelta(rng.integers(0, 4 * 86400, n), "s"),
        "transaction_amount": rng.choice([10.0, 25.5, 99.99, 250.0], n),
        "channel": rng.choice(["pos", "online", None], n),
        "transaction_type": rng.choice(["purchase", "transfer"], n),
        "merchant_location": rng.choice(["Lima", "Cusco", None], n),
        "merchant_id": rng.choice(["M1", "M2", "M3", None], n),
        "account_id": rng.choice(["A1", "A2"], n),
        pb.LABEL: pd.array(rng.choice([True, False, None], n, p=[0.3, 0.5, 0.2]), dtype="boolean"),
    })
    path = tmp_path / "part.parquet"
    frame.to_parquet(path)
    df, pdf = pb.load([path], None, suite.TZ), plb.load([path], None, suite.TZ)
    first, last = pd.Timestamp("2025-03-01").date(), pd.Timestamp("2025-03-04").date()
    filters = [Filters(date_from=first, date_until=last), Filters(date_from=last, date_until=last),
               Filters(date_from=first, date_until=last, label="unknown"),
               Filters(date_from=first, date_until=last, channels=("online",), amount_min=25.5),
               Filters(date_from=last + timedelta(days=5), date_until=last + timedelta(days=6))]
    for f in filters:
        assert suite.compare_kpi_dicts(plb.kpis(pdf, f), pb.kpis(df, f)) == [], f
        assert suite.compare_heatmap(plb.hour_weekday_heatmap(pdf, f), pb.hour_weekday_heatmap(df, f)) == []
        assert suite.compare_frames(plb.daily_series(pdf, f), pb.daily_series(df, f), "period") == []
        for by in ("channel", "merchant_location"):
            assert suite.compare_segments(plb.segments(pdf, f, by), pb.segments(df, f, by)) == [], (f, by)
        top = plb.top_entities(pdf, f, "merchant_id", 2)
        assert suite.compare_top(top, pb.top_entities(df, f, "merchant_id", 2)) == [], f
        assert top["entity"].notna().all()
        for sort in ("transaction_amount", "transaction_datetime"):
            assert suite.compare_rows(plb.transactions_page(pdf, f, sort, True, 15),
                                      pb.transactions_page(df, f, sort, True, 15)) == [], (f, sort)
