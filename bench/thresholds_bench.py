"""Benchmark of the threshold table: build time, ``at()`` latency and optimiser latency, beside
full-scan numpy baselines measured in the same run. Prints figures; asserts nothing.

    python bench/thresholds_bench.py                        # 1M and 10M scores
    python bench/thresholds_bench.py --sizes 1000000        # one size
    python bench/thresholds_bench.py --smoke                # 100k scores, a few seconds
    python bench/thresholds_bench.py --json                 # one JSON document instead of a table

Scores are continuous float64, so nearly every score is its own breakpoint (the worst case for
the table's size); 1% fraud, log-normal amounts, 90 days.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fraudlens.thresholds import TargetNotReachedWarning, ThresholdTable  # noqa: E402


def machine() -> dict:
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            model = next(
                (line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), ""
            )
    except OSError:
        pass
    return {
        "cpu": model or platform.processor(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "load_average_1m": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
        "python": platform.python_version(),
        "numpy": np.__version__,
    }


def synthetic(n: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    y = rng.random(n) < 0.01
    s = np.clip(rng.beta(np.where(y, 5.0, 1.0), np.where(y, 2.0, 8.0)), 0.0, 1.0)
    amounts = np.round(rng.lognormal(5.0, 1.5, n), 2)
    days = rng.integers(0, 90, n)
    return y, s, amounts, days


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter_ns()
    fn()
    return (time.perf_counter_ns() - started) / 1e3  # microseconds


def median_us(fn: Callable[[object], object], args: list) -> dict:
    times = [timed(lambda a=a: fn(a)) for a in args]
    return {
        "median_us": statistics.median(times),
        "p99_us": float(np.percentile(times, 99)),
        "n": len(times),
    }


# -- baselines: what one would do without the table --------------------------------------------


def scan_at(y: np.ndarray, s: np.ndarray, a: np.ndarray, t: float) -> tuple:
    """One threshold by a full numpy pass over every row."""
    alert = s >= t
    caught = alert & y
    return np.count_nonzero(alert), np.count_nonzero(caught), a[caught].sum()


def scratch_max_recall_at_precision(y: np.ndarray, s: np.ndarray, p: float) -> float:
    """The optimiser from scratch: argsort, cumulative sums, pick (sklearn-style)."""
    order = np.argsort(-s, kind="stable")
    ys, ss = y[order], s[order]
    ends = np.r_[np.flatnonzero(np.diff(ss)), len(ss) - 1]
    tp = np.cumsum(ys)[ends]
    precision = tp / (ends + 1)
    ok = np.flatnonzero(precision >= p)
    return float(ss[ends[ok[-1]]]) if len(ok) else float("nan")


# -- one size --------------------------------------------------------------------------------


def bench_size(n: int, queries: int, scan_queries: int, opt_repeats: int, builds: int) -> dict:
    y, s, a, d = synthetic(n)
    rng = np.random.default_rng(1)
    build_times, table = [], None
    for _ in range(builds):
        table = None  # free the previous table before timing the next
        started = time.perf_counter()
        table = ThresholdTable(y, s, a, d, cost_review=25.0)
        build_times.append(time.perf_counter() - started)
    table_mb = sum(v.nbytes for v in vars(table).values() if isinstance(v, np.ndarray)) / 2**20

    thresholds = rng.random(queries).tolist()
    at = median_us(table.at, thresholds)
    scan = median_us(lambda t: scan_at(y, s, a, t), thresholds[:scan_queries])

    mean_rate = table.at(0.0).alerts_per_day
    targets = {
        "max_recall_at_precision": (
            table.max_recall_at_precision,
            rng.uniform(0.2, 0.6, opt_repeats),
        ),
        "max_precision_at_recall": (
            table.max_precision_at_recall,
            rng.uniform(0.3, 0.9, opt_repeats),
        ),
        "within_capacity": (
            table.within_capacity,
            rng.uniform(0.001, 0.05, opt_repeats) * mean_rate,
        ),
        "min_cost(amount)": (
            lambda c: table.min_cost(c, "amount"),
            rng.uniform(5, 50, opt_repeats),
        ),
        "min_cost(fixed)": (lambda c: table.min_cost(c, 500.0), rng.uniform(5, 50, opt_repeats)),
        "curve_frame(500)": (lambda _: table.curve_frame(500), range(opt_repeats)),
    }
    optimisers = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TargetNotReachedWarning)
        for name, (fn, args) in targets.items():
            optimisers[name] = median_us(fn, [float(x) for x in args])
    scratch_args = rng.uniform(0.2, 0.6, max(1, min(3, builds))).tolist()
    scratch = median_us(lambda p: scratch_max_recall_at_precision(y, s, p), scratch_args)

    return {
        "rows": n,
        "breakpoints": len(table.thresholds_),
        "table_mb": round(table_mb, 1),
        "build_s": statistics.median(build_times),
        "build_runs": builds,
        "at": at,
        "full_scan_at": scan,
        "optimisers": optimisers,
        "from_scratch_max_recall_at_precision": scratch,
    }


def ms(us: float) -> str:
    return f"{us / 1000:9.3f} ms"


def print_report(info: dict, results: list[dict]) -> None:
    print(
        f"machine: {info['cpu']} | cores {info['cores']} (usable {info['cores_usable']}) | "
        f"load {info['load_average_1m']} | Python {info['python']} | numpy {info['numpy']}"
    )
    for r in results:
        print(
            f"\n== {r['rows']:,} scores, {r['breakpoints']:,} breakpoints, "
            f"table arrays {r['table_mb']} MiB =="
        )
        print(f"{'build ThresholdTable':44s} {r['build_s']:9.3f} s   (median of {r['build_runs']})")
        at, scan = r["at"], r["full_scan_at"]
        print(
            f"{'at(threshold)':44s} {ms(at['median_us'])}   p99 {ms(at['p99_us'])}  "
            f"(median of {at['n']:,})"
        )
        print(
            f"{'  baseline: full numpy scan, one threshold':44s} {ms(scan['median_us'])}   "
            f"(median of {scan['n']:,}; {scan['median_us'] / at['median_us']:,.0f}x slower)"
        )
        for name, o in r["optimisers"].items():
            print(f"{name:44s} {ms(o['median_us'])}   p99 {ms(o['p99_us'])}  (median of {o['n']})")
        sc = r["from_scratch_max_recall_at_precision"]
        print(
            f"{'  baseline: argsort + cumsum + pick, per query':44s} {ms(sc['median_us'])}   "
            f"(median of {sc['n']})"
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--queries", type=int, default=10_000, help="at() queries per size")
    parser.add_argument(
        "--scan-queries",
        type=int,
        default=100,
        help="full-scan baseline queries per size (each is O(n))",
    )
    parser.add_argument("--opt-repeats", type=int, default=50, help="calls per optimiser")
    parser.add_argument("--builds", type=int, default=3, help="table builds per size")
    parser.add_argument("--smoke", action="store_true", help="100k scores, fewer repeats")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.smoke:
        args.sizes, args.queries, args.scan_queries, args.opt_repeats, args.builds = (
            [100_000],
            1_000,
            20,
            5,
            1,
        )
    info = machine()
    results = [
        bench_size(n, args.queries, args.scan_queries, args.opt_repeats, args.builds)
        for n in args.sizes
    ]
    if args.json:
        print(json.dumps({"machine": info, "results": results}, indent=1))
    else:
        print_report(info, results)


if __name__ == "__main__":
    main()
