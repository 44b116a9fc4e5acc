"""Benchmark of the ML core: point-in-time features, training, scoring and one explanation,
beside a pandas baseline for the velocity features, measured in the same run.

Each step runs in its own process so its peak RSS is its own.

    python bench/ml.py                  # 1M rows, writes bench/results/
    python bench/ml.py --rows 200000    # another size
    python bench/ml.py --smoke          # 50k rows in a temp dir, nothing written
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import steps  # bench/steps.py, beside this script

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "bench" / "work"

CHILD = r"""
import json, resource, sys, time
step, args = sys.argv[1], json.loads(sys.argv[2])
out = {}
started = time.perf_counter()
if step == "prepare":
    from fraudlens.synth import generate
    from fraudlens.ingest import ingest
    generate(args["src"], args["rows"], seed=7)
    ingest([args["src"]], args["dataset"], mode="replace")
elif step == "features":
    from fraudlens.store import get_store
    from fraudlens import features as F
    store = get_store()
    spec = F.make_spec(store, args["dataset"])
    frame = F.compute(store, args["dataset"], spec)
    out["features"] = len(F.feature_names(spec))
    out["rows"] = len(frame)
elif step == "pandas_velocity":
    # What an analyst would write instead: rolling windows per account on an in-memory frame.
    import pandas as pd
    import pyarrow.parquet as pq
    df = pq.read_table(args["src"], columns=["transaction_id", "transaction_datetime", "account_id",
                                             "transaction_amount"]).to_pandas()
    out["load_seconds"] = time.perf_counter() - started
    df = df.sort_values(["account_id", "transaction_datetime"]).set_index("transaction_datetime")
    g = df.groupby("account_id")["transaction_amount"]
    for w in ("1h", "24h", "7D", "30D"):
        r = g.rolling(w, closed="left")
        _ = r.count(), r.sum(), r.mean(), r.max()
    out["rows"] = len(df)
elif step == "train":
    from fraudlens.train import train
    r = train(args["dataset"], "xgboost", name="bench_xgb")
    out.update({"average_precision": r.metrics["average_precision"], "roc_auc": r.metrics["roc_auc"],
                "rows_train": r.rows_train})
elif step == "score":
    from fraudlens.scoring import score_dataset
    r = score_dataset(args["dataset"], "bench_xgb", args["out"])
    out["rows"] = r.rows
elif step == "explain":
    from fraudlens import registry
    from fraudlens.explain import explain_transaction
    scores = registry.read_table("bench_xgb", None, "test_scores.parquet")
    ids = scores.sort_values("score").transaction_id.tolist()[-6:]
    explain_transaction(args["dataset"], "bench_xgb", ids[0])  # warm: imports, view, model
    times = []
    for tid in ids[1:]:
        t = time.perf_counter()
        explain_transaction(args["dataset"], "bench_xgb", tid)
        times.append(time.perf_counter() - t)
    out["warm_median_ms"] = sorted(times)[len(times) // 2] * 1000
out["seconds"] = time.perf_counter() - started
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def run_step(step: str, args: dict, env: dict) -> dict:
    return steps.run_step(CHILD, step, args, env)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    rows = 50_000 if args.smoke else args.rows
    work = Path(tempfile.mkdtemp(prefix="fraudlens-mlbench-")) if args.smoke else WORK
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "FRAUDLENS_HOME": str(work / "mlhome"), "PYTHONPATH": str(ROOT)}
    src = work / f"ml_{rows}.parquet"
    common = {"src": str(src), "dataset": f"ml_{rows}", "rows": rows, "out": str(work / "scores.parquet")}
    results = []
    try:
        for step in ("prepare", "features", "pandas_velocity", "train", "score", "explain"):
            r = run_step(step, common, env)
            results.append({"step": step, "rows": rows, **{k: round(v, 3) if isinstance(v, float) else v
                                                            for k, v in r.items()}})
            print(f"{step}: {r}", file=sys.stderr)
    finally:
        if args.smoke:
            shutil.rmtree(work, ignore_errors=True)
    lines = [f"# ML core benchmark ({rows:,} rows)", "",
             f"{os.cpu_count()} cores; {datetime.now(timezone.utc).isoformat(timespec='seconds')}. "
             "features = every catalogue feature for every row in DuckDB; pandas_velocity = only the "
             "16 account window features with pandas rolling on an in-memory frame (load time included); "
             "train = features + XGBoost fit + evaluation + signed save; explain = one transaction with "
             "its point-in-time features, warm median of 5.", "",
             "| step | seconds | peak RSS MB | notes |", "|---|---:|---:|---|"]
    for r in results:
        notes = ", ".join(f"{k}={v}" for k, v in r.items() if k not in ("step", "seconds", "peak_rss_mb", "rows"))
        lines.append(f"| {r['step']} | {r['seconds']} | {round(r['peak_rss_mb'])} | {notes} |")
    report = "\n".join(lines) + "\n"
    print(report)
    if not args.smoke:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d")
        (RESULTS / f"ml-{rows}-{stamp}.md").write_text(report, encoding="utf-8")
        (RESULTS / f"ml-{rows}-{stamp}.json").write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
