"""Benchmark of the data foundation: generator and ingest throughput and peak memory,
beside a pandas ``read_csv`` baseline measured in the same run.

Each step runs in its own process so its peak RSS is its own.

    python bench/foundation.py                 # 1M and 10M rows, writes bench/results/
    python bench/foundation.py --rows 1000000  # one size
    python bench/foundation.py --smoke         # 100k rows in a temp dir, nothing written
"""

from __future__ import annotations

import argparse
import json
import os
import platform
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

# Run inside a child: do the step, then print seconds and peak RSS as JSON.
CHILD = r"""
import json, resource, sys, time
step, args = sys.argv[1], json.loads(sys.argv[2])
started = time.perf_counter()
if step == "generate":
    from fraudlens.synth import generate
    generate(args["out"], args["rows"], seed=7)
elif step == "ingest":
    from fraudlens.ingest import ingest
    r = ingest([args["src"]], args["dataset"], mode="replace")
    assert r.loaded + r.rejected == r.rows_read == args["rows"], (r.loaded, r.rejected, r.rows_read)
elif step == "pandas_read_csv":
    import pandas as pd
    df = pd.read_csv(args["src"])
    assert len(df) == args["rows"]
seconds = time.perf_counter() - started
print(json.dumps({"seconds": seconds, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def run_step(step: str, args: dict, env: dict) -> dict:
    return steps.run_step(CHILD, step, args, env)


def machine() -> dict:
    import duckdb
    import pandas
    import pyarrow

    mem_kb = 0
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    return {
        "cores": os.cpu_count(),
        "ram_gib": round(mem_kb / 1024 / 1024, 1),
        "cpu": platform.processor() or platform.machine(),
        "python": platform.python_version(),
        "duckdb": duckdb.__version__,
        "pandas": pandas.__version__,
        "pyarrow": pyarrow.__version__,
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def bench_size(rows: int, work: Path, env: dict, with_pandas: bool) -> list[dict]:
    csv_path = work / f"tx_{rows}.csv"
    parquet_path = work / f"tx_{rows}.parquet"
    out = []
    for path in (parquet_path, csv_path):
        path.unlink(missing_ok=True)
        r = run_step("generate", {"out": str(path), "rows": rows}, env)
        out.append(_row(f"generate {path.suffix[1:]}", rows, r, path.stat().st_size))
    r = run_step("ingest", {"src": str(csv_path), "dataset": f"bench_csv_{rows}", "rows": rows}, env)
    out.append(_row("ingest csv (fraudlens, DuckDB)", rows, r))
    r = run_step("ingest", {"src": str(parquet_path), "dataset": f"bench_pq_{rows}", "rows": rows}, env)
    out.append(_row("ingest parquet (fraudlens, DuckDB)", rows, r))
    if with_pandas:
        r = run_step("pandas_read_csv", {"src": str(csv_path), "rows": rows}, env)
        out.append(_row("baseline: pandas.read_csv only", rows, r))
    return out


def _row(step: str, rows: int, r: dict, size: int | None = None) -> dict:
    return {
        "step": step,
        "rows": rows,
        "seconds": round(r["seconds"], 2),
        "rows_per_s": round(rows / r["seconds"]),
        "peak_rss_mb": round(r["peak_rss_mb"]),
        "file_mb": round(size / 1e6, 1) if size else None,
    }


def to_markdown(info: dict, rows: list[dict]) -> str:
    lines = [
        "# Foundation benchmark: generator and ingest",
        "",
        f"Machine: {info['cores']} cores, {info['ram_gib']} GiB RAM, {info['cpu']}; "
        f"Python {info['python']}, DuckDB {info['duckdb']}, pandas {info['pandas']}, "
        f"pyarrow {info['pyarrow']}; {info['date']}.",
        "",
        "Ingest reads every column as text, validates and converts it, checks duplicate ids, "
        "writes sorted zstd Parquet, rejects and the data-quality profile. The pandas baseline "
        "only parses the CSV into memory (no validation, nothing written).",
        "",
        "| step | rows | seconds | rows/s | peak RSS MB | file MB |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['step']} | {r['rows']:,} | {r['seconds']} | {r['rows_per_s']:,} | "
            f"{r['peak_rss_mb']:,} | {r['file_mb'] if r['file_mb'] is not None else ''} |"
        )
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, action="append", help="sizes (default 1M and 10M)")
    parser.add_argument("--smoke", action="store_true", help="100k rows in a temp dir")
    parser.add_argument("--no-pandas", action="store_true")
    args = parser.parse_args()
    sizes = [100_000] if args.smoke else (args.rows or [1_000_000, 10_000_000])
    work = Path(tempfile.mkdtemp(prefix="fraudlens-bench-")) if args.smoke else WORK
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "FRAUDLENS_HOME": str(work / "home"), "PYTHONPATH": str(ROOT)}
    info = machine()
    rows: list[dict] = []
    try:
        for n in sizes:
            started = time.perf_counter()
            rows += bench_size(n, work, env, with_pandas=not args.no_pandas)
            print(f"{n:,} rows done in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    finally:
        if args.smoke:
            shutil.rmtree(work, ignore_errors=True)
    report = to_markdown(info, rows)
    print(report)
    if not args.smoke:
        RESULTS.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(timezone.utc).strftime("%Y%m%d")
        (RESULTS / f"foundation-{stamp}.md").write_text(report, encoding="utf-8")
        (RESULTS / f"foundation-{stamp}.json").write_text(
            json.dumps({"machine": info, "results": rows}, indent=1), encoding="utf-8"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
