"""Benchmark of the dashboard pages: the library calls Overview and Explore make, on the demo.

Builds the demo dataset exactly as the app's first start does (200,000 rows by default) in a work
folder, then times, per page, every analytics call the page makes plus building its figures:
once cold (new DuckDB connection, first query) and then warm (median of ``--repeat`` runs; the
Streamlit cache is not involved, so warm means "DuckDB and the OS have the files", the cost of
any new filter combination). Prints a table; never asserts.

    python bench/dashboard.py                  # 200k rows, writes bench/results/dashboard-200000.json
    python bench/dashboard.py --rows 1000000   # another size
    python bench/dashboard.py --smoke          # 20k rows in a temp dir, nothing written
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fraudlens import analytics, charts  # noqa: E402
from fraudlens.analytics import Filters  # noqa: E402
from fraudlens.config import DEMO_DATASET, Settings  # noqa: E402
from fraudlens.store import Store  # noqa: E402

RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "bench" / "work"


def overview_calls(store: Store, tz: str):
    """What pages/overview.py computes for its default view (last 30 days)."""
    options = analytics.filter_options(store, DEMO_DATASET)
    f = Filters(date_from=options.last_date - timedelta(days=29), date_until=options.last_date)
    analytics.kpis(store, DEMO_DATASET, f)
    series = analytics.daily_series(store, DEMO_DATASET, f, "day")
    charts.trend(series, "fraud_rate", "day", tz)
    charts.trend(series, "fraud_amount", "day", tz)
    for by in ("channel", "transaction_type"):
        charts.segment_bars(analytics.segments(store, DEMO_DATASET, f, by), by)
    analytics.transactions_page(store, DEMO_DATASET, f.replace(label="fraud"), sort="transaction_amount",
                                descending=True, limit=10)


def explore_calls(store: Store, tz: str, drill: dict | None = None):
    """What pages/explore.py computes for its default view, optionally with a drill-down."""
    options = analytics.filter_options(store, DEMO_DATASET)
    f = Filters(date_from=options.first_date, date_until=options.last_date)
    analytics.count_matching(store, DEMO_DATASET, f)
    charts.heatmap(analytics.hour_weekday_heatmap(store, DEMO_DATASET, f), tz)
    charts.trend(analytics.daily_series(store, DEMO_DATASET, f, "day"), "transactions", "day", tz)
    charts.amount_histogram(analytics.amount_distribution(store, DEMO_DATASET, f))
    charts.segment_bars(analytics.segments(store, DEMO_DATASET, f, "channel"), "channel")
    charts.region_bars(analytics.region_breakdown(store, DEMO_DATASET, f))
    for by in ("merchant_id", "account_id"):
        charts.top_entities_bars(analytics.top_entities(store, DEMO_DATASET, f, by, 15), by)
    analytics.count_matching(store, DEMO_DATASET, f, drill)
    analytics.transactions_page(store, DEMO_DATASET, f, drill, limit=50, offset=0)


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    rows = 20_000 if args.smoke else args.rows
    base = Path(tempfile.mkdtemp(prefix="fl-dash-")) if args.smoke else WORK / f"dashboard-{rows}"
    home = base / "home"
    cfg = Settings(home=home, memory_limit=os.environ.get("FRAUDLENS_MEMORY_LIMIT", "4GB"),
                   threads=int(os.environ.get("FRAUDLENS_THREADS", str(os.cpu_count() or 2))),
                   timezone="America/Lima")
    try:
        if not (home / DEMO_DATASET / "manifest.json").is_file():
            os.environ["FRAUDLENS_HOME"] = str(home)
            from fraudlens.ui.bootstrap import build_demo  # the app's own first start

            started = time.perf_counter()
            build_demo(home, rows)
            print(f"demo of {rows:,} rows built in {time.perf_counter() - started:.1f} s")
        results = {}
        pages = {
            "overview": overview_calls,
            "explore": explore_calls,
            "explore, drilled into Tue 03:00 + online": lambda s, tz: explore_calls(
                s, tz, {"local_weekday": 2, "local_hour": 3, "channel": "online"}),
        }
        for page, calls in pages.items():
            store = Store(cfg)
            try:
                cold = timed(lambda: calls(store, cfg.timezone))
                warm = [timed(lambda: calls(store, cfg.timezone)) for _ in range(args.repeat)]
            finally:
                store.close()
            results[page] = {"cold_s": round(cold, 3), "warm_median_s": round(statistics.median(warm), 3),
                             "warm_max_s": round(max(warm), 3)}
        print(f"{'page':45s} {'cold s':>8s} {'warm s':>8s} {'warm max':>9s}   ({rows:,} rows, "
              f"{cfg.threads} threads)")
        for page, r in results.items():
            print(f"{page:45s} {r['cold_s']:8.3f} {r['warm_median_s']:8.3f} {r['warm_max_s']:9.3f}")
        if not args.smoke:
            RESULTS.mkdir(parents=True, exist_ok=True)
            out = RESULTS / f"dashboard-{rows}.json"
            out.write_text(json.dumps({"rows": rows, "threads": cfg.threads, "machine": platform.platform(),
                                       "python": platform.python_version(), "pages": results}, indent=1))
            print(f"written {out.relative_to(ROOT)}")
    finally:
        if args.smoke:
            shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
