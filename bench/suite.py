"""The benchmark suite behind ``python -m fraudlens bench [--rows N] [--json] [--out DIR] [--work DIR]``.

On N generated transactions (1,000,000 by default; the issue asks about 10,000,000) it measures:

- the build steps, each in its own process so its peak RSS is its own (``bench/steps.py``):
  generator, ingest and feature-pipeline throughput, training the default XGBoost model (on the
  N set, or on a 1,000,000-row set when N is larger), scoring the N set, and loading the N set
  into pandas and into polars;
- what the pages compute, through the library calls the pages make: cold (the first call on a
  fresh Store) and warm (median and p95 of ``REPEATS`` calls after it, each with other filters so
  no cache can answer), beside the same answer computed with pandas on the DataFrame already in
  memory (``bench/pandas_baseline.py``), and for the dashboard aggregations with polars in
  memory (``bench/polars_baseline.py``). Every pair of answers is compared; a disagreement is
  listed in the report, marked in the JSON, and the command exits 1.

Each measure carries its target from the issue, marked met or missed.

Where things go:

- data: the generated files, a data directory (datasets, models, alerts) and the build
  measurements live in ``bench/work/suite/`` (git-ignored; ``--work DIR`` puts them elsewhere),
  named by rows and seed. The next run reuses them, and its report shows the reused build rows
  with the date they were measured; delete the folder to measure them again.
- results: ``suite-<rows>.md`` and ``suite-<rows>.json`` go to ``bench/results/`` from 1,000,000
  rows on; smaller (smoke) runs write them to a new temporary folder, named on stderr.
  ``--out DIR`` chooses the folder.
- stdout: the markdown report, or the JSON with ``--json``. Progress goes to stderr.

    python -m fraudlens bench --rows 100000        # the smoke run: ~20 s on 2 quiet cores, ~10 s reused
    python -m fraudlens bench --rows 10000000      # the issue's size
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import polars as pl

from bench import pandas_baseline as pb
from bench import polars_baseline as plb
from bench import steps
from fraudlens import alerts, analytics, datasets, monitor, operating, ops, registry
from fraudlens import metrics as fl_metrics
from fraudlens.analytics import FilterOptions, Filters
from fraudlens.config import Settings, settings
from fraudlens.errors import FraudLensError
from fraudlens.explain import explain_transaction
from fraudlens.store import Store, hot_layout
from fraudlens.thresholds import ThresholdTable

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "bench" / "work" / "suite"

DEFAULT_ROWS = 1_000_000
TRAIN_ROWS = 1_000_000  # larger sets are scored with a model trained on a set of this size
MIN_ROWS = 10_000  # fewer leave too few frauds in the test window to train on
SEED = 7
TZ = "America/Lima"
REPEATS = 20  # warm calls per measure, after the cold one: enough for a p95 that is not just the slowest
AT_CALLS = 2_000  # ThresholdTable.at calls (microseconds each)
PAGE_ROWS = 100
QUEUE_ROWS = 50
TOP_N = 15
ALERT_DAYS = 7  # alerts are raised over the last week, like a new batch
ALERT_SHARE = 0.01  # the threshold alerts on this share of that week
# Tolerances: sums of the same amounts in another order differ in the last bits only.
REL, ABS = 1e-9, 1e-6
# pandas' qcut interpolates its decile edges, the library takes observed values: a few rows
# land in the next bin, which moves the PSI by far less than this.
PSI_TOLERANCE = 0.005
GB4 = 4 * 1024  # in MB, as peak RSS is reported


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


# ---------------------------------------------------------------------------------------------
# Build steps, each in a child process


# DuckDB converting a CSV to Parquet with the types it detects, nothing else (2 threads).
ENGINE_FLOOR = r"""
import duckdb, json, os, sys, time
con = duckdb.connect(config={"threads": 2, "preserve_insertion_order": False})
con.execute("SET enable_progress_bar = false")
started, cpu = time.perf_counter(), os.times()
try:
    con.execute("COPY (SELECT * FROM read_csv($csv, header = true)) TO '" + sys.argv[2].replace("'", "''")
                + "' (FORMAT parquet, COMPRESSION zstd, COMPRESSION_LEVEL 1)", {"csv": sys.argv[1]})
    done = os.times()
finally:
    if os.path.exists(sys.argv[2]):
        os.unlink(sys.argv[2])
print(json.dumps({"seconds": time.perf_counter() - started,
                  "cpu_seconds": done.user + done.system - cpu.user - cpu.system}))
"""

CHILD = r"""
import json, logging, resource, sys, time
step, args = sys.argv[1], json.loads(sys.argv[2])
out = {}

def timed(call):
    started = time.perf_counter()
    result = call()
    out["seconds"] = time.perf_counter() - started
    return result

def ingest_phases():
    # A progress callback that times the ingest's phases, each from its message to the next.
    from fraudlens.timing import Phases
    clock, current = Phases(), ["start"]

    def report(_fraction, message):
        clock.lap(current[0])
        current[0] = "read, convert and check" if message.startswith("Reading ") else message
        if message == "Done":
            out["phases"] = {k: v for k, v in clock.as_dict().items() if k != "start"}
    return report

if step == "generate":
    from fraudlens.synth import generate
    out["rows"] = timed(lambda: generate(args["src"], args["rows"], seed=args["seed"])).rows
elif step == "ingest":
    from fraudlens.ingest import ingest
    r = timed(lambda: ingest([args["src"]], args["dataset"], mode="replace", progress=ingest_phases()))
    out["rows"], out["rejected"] = r.loaded, r.rejected
elif step == "ingest_csv":
    import subprocess
    from pathlib import Path
    from fraudlens import datasets
    from fraudlens.ingest import ingest
    from fraudlens.store import get_store
    csv = Path(args["csv"])
    # The same rows, as a bank's CSV export; written by another process, so that this one's peak
    # RSS is the ingest's own.
    subprocess.run([sys.executable, "-c", "import sys; from fraudlens.synth import generate; "
                    "generate(sys.argv[1], int(sys.argv[2]), seed=int(sys.argv[3]))",
                    str(csv), str(args["rows"]), str(args["seed"])], check=True)
    try:
        try:
            r = timed(lambda: ingest([str(csv)], args["csv_dataset"], mode="replace", progress=ingest_phases()))
            out["rows"], out["rejected"], out["csv_mb"] = r.loaded, r.rejected, csv.stat().st_size / 2**20
        finally:  # a second copy of the set is not needed again: keep the disk for the others
            if datasets.exists(get_store().home, args["csv_dataset"]):
                datasets.delete(get_store().home, args["csv_dataset"])
        # The engine alone on the same file, in a process of its own: what is left of the target
        # once nothing is checked, numbered, kept in order or profiled.
        floor = subprocess.run([sys.executable, "-c", args["floor_code"], str(csv),
                                str(csv.with_suffix(".floor.parquet"))], capture_output=True, text=True)
        if floor.returncode == 0:
            out["engine_floor"] = json.loads(floor.stdout.strip().splitlines()[-1])
        else:
            print("engine floor failed:", floor.stderr[-2000:], file=sys.stderr)
    finally:
        csv.unlink(missing_ok=True)
elif step == "features":
    import pyarrow.parquet as pq
    from fraudlens import feature_store, features
    from fraudlens.store import get_store
    store = get_store()
    spec = features.make_spec(store, args["dataset"])
    feature_store.remove(store.home, args["dataset"])

    class Phases(logging.Handler):
        def emit(self, record):
            out["phases"] = getattr(record, "phases", out.get("phases"))

    feature_store.logger.addHandler(Phases())
    feature_store.logger.setLevel(logging.INFO)
    path = timed(lambda: feature_store.feature_file(store, args["dataset"], spec))
    meta = pq.ParquetFile(path).metadata
    out["rows"], out["columns"] = meta.num_rows, meta.num_columns
elif step == "train":
    from fraudlens.train import train
    r = timed(lambda: train(args["dataset"], "xgboost", name=args["model_name"]))
    out.update(rows=args["rows"], model=f"{r.name}@{r.version}", rows_train=r.rows_train,
               average_precision=round(r.metrics["average_precision"], 4))
elif step == "train_all":
    from fraudlens.train import train
    r = timed(lambda: train(args["dataset"], "xgboost", name=args["model_name"] + "_all"))
    out.update(rows=args["rows"], model=f"{r.name}@{r.version}", rows_train=r.rows_train,
               legit_share=r.legit_share, average_precision=round(r.metrics["average_precision"], 4))
elif step == "monitor":
    from fraudlens import monitor
    from fraudlens.store import get_store
    # A first visit: neither the dataset's scores nor its PSI table are kept yet.
    monitor.remove(get_store().home, args["dataset"])
    timed(lambda: monitor.weekly_psi(args["dataset"], args["model"]))
    started = time.perf_counter()
    weeks = monitor.weekly_psi(args["dataset"], args["model"])
    out.update(rows=args["rows"], warm_seconds=time.perf_counter() - started, psi_rows=len(weeks))
elif step == "analytics":
    from fraudlens import analytics
    from fraudlens.store import Store, get_store, remove_hot
    store = get_store()
    # A first use of this dataset version: no analytics table kept yet.
    remove_hot(store.home, args["dataset"])
    timed(lambda: analytics.prepare(store, args["dataset"]))
    again = Store(store.cfg)  # what a restarted app does: attach the kept file
    started = time.perf_counter()
    analytics.prepare(again, args["dataset"])
    out.update(rows=args["rows"], warm_seconds=time.perf_counter() - started)
    again.close()
elif step == "score":
    from fraudlens.scoring import score_dataset
    out["rows"] = timed(lambda: score_dataset(args["dataset"], args["model"], args["scores"])).rows
elif step == "pandas_load":
    from bench import pandas_baseline
    out["rows"] = len(timed(lambda: pandas_baseline.load(args["parts"], args["scores"], args["tz"])))
elif step == "polars_load":
    from bench import polars_baseline
    out["rows"] = len(timed(lambda: polars_baseline.load(args["parts"], args["scores"], args["tz"])))
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


@dataclass(frozen=True)
class Built:
    """The N set ready to query: its dataset, the model that scored it, and the measurements."""

    dataset: str
    model: str  # name@version
    scores: Path
    record: dict  # step -> measurement, for the N set
    train_record: dict  # the same for the set the model was trained on
    train_rows: int
    home: Path  # the data directory the sets live in


def dataset_name(rows: int, seed: int) -> str:
    return f"bench_{rows}_s{seed}"


def child_env(home: Path) -> dict:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "FRAUDLENS_HOME": str(home), "FRAUDLENS_TIMEZONE": TZ, "PYTHONPATH": path}


def step_still_valid(step: str, entry: dict | None, args: dict, home: Path) -> bool:
    """Whether a step recorded by an earlier run left what this run needs."""
    if entry is None:
        return False
    if step == "generate":
        return Path(args["src"]).is_file()
    if step == "ingest":
        name = args["dataset"]
        return datasets.exists(home, name) and datasets.read(home, name).rows == args["rows"]
    if step in ("train", "train_all"):
        name, version = registry.parse_ref(entry["model"])
        try:
            registry.read_metadata(name, version, home)
        except FraudLensError:
            return False
        return True
    if step == "score":
        return Path(args["scores"]).is_file() and entry.get("model") == args["model"]
    if step == "monitor":
        return entry.get("model") == args["model"]
    if step == "analytics":  # a table of another layout would be built again by the app
        return entry.get("layout") == hot_layout()
    return True


def build_set(work: Path, rows: int, seed: int, wanted: list[str], model: str | None = None) -> dict:
    """Run the ``wanted`` steps for the (rows, seed) set, reusing what an earlier run left.

    Generating or ingesting again makes every later step run again; a new model makes the
    scores run again.
    """
    home = work / "home"
    name = dataset_name(rows, seed)
    path = work / f"build-{name}.json"
    record = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}
    args = {"rows": rows, "seed": seed, "src": str(work / f"{name}.parquet"), "dataset": name,
            "csv": str(work / f"{name}.csv"), "csv_dataset": f"{name}_csv", "floor_code": ENGINE_FLOOR,
            "model_name": name, "scores": str(work / f"{name}-scores.parquet")}
    upstream_ran = False
    for step in wanted:
        if step in ("score", "monitor"):
            args["model"] = model or record["train"]["model"]
        if not upstream_ran and step_still_valid(step, record.get(step), args, home):
            continue
        log(f"{step} {rows:,} rows")
        record[step] = {**steps.run_step(CHILD, step, args, child_env(home)), "measured_at": now_iso()}
        if step in ("score", "monitor"):
            record[step]["model"] = args["model"]
        if step == "analytics":
            record[step]["layout"] = hot_layout()
        path.write_text(json.dumps(record, indent=1), encoding="utf-8")
        upstream_ran = upstream_ran or step in ("generate", "ingest")
    return record


def prepare(work: Path, rows: int, seed: int) -> Built:
    """Generate, ingest, featurise, train and score, or reuse what a previous run built."""
    work.mkdir(parents=True, exist_ok=True)
    if rows > TRAIN_ROWS:
        train_record = build_set(work, TRAIN_ROWS, seed, ["generate", "ingest", "train"])
        record = build_set(work, rows, seed, ["generate", "ingest", "ingest_csv", "analytics", "features",
                                              "score", "monitor", "train_all"],
                           model=train_record["train"]["model"])
    else:
        record = train_record = build_set(work, rows, seed,
                                          ["generate", "ingest", "ingest_csv", "analytics", "features", "train",
                                           "score", "monitor"])
    name = dataset_name(rows, seed)
    return Built(dataset=name, model=record["score"]["model"], scores=work / f"{name}-scores.parquet",
                 record=record, train_record=train_record, train_rows=min(rows, TRAIN_ROWS), home=work / "home")


def baseline_load_steps(cfg: Settings, built: Built) -> tuple[dict, list[str]]:
    """Load the N set into pandas, then into polars, each in a child process (its time and peak
    RSS): ``{"pandas": ..., "polars": ...}``, and the set's parts."""
    info = datasets.read(cfg.home, built.dataset)
    parts = [str(p) for p in datasets.part_paths(cfg.home, info)]
    args = {"parts": parts, "scores": str(built.scores), "tz": info.timezone or TZ}
    loads = {}
    for engine in ("pandas", "polars"):
        log(f"{engine} load")
        loads[engine] = {**steps.run_step(CHILD, f"{engine}_load", args, child_env(cfg.home)),
                         "measured_at": now_iso()}
    return loads, parts


# ---------------------------------------------------------------------------------------------
# Measures: a library call, its pandas equivalent, and how to compare their answers


@dataclass(frozen=True)
class Target:
    text: str
    p95_ms: float | None = None
    min_ratio: float | None = None
    polars: bool = False  # the warm median must be no slower than polars'


@dataclass(frozen=True)
class Measure:
    """``library(store, arg)`` and ``pandas(arg)`` for each of ``args``; ``args[0]`` is the cold
    call (it also warms up), the others are timed warm. pandas runs on ``args[:pandas_calls]``, and
    so does ``polars(arg)`` when given, its answers checked against pandas' by ``polars_compare``."""

    name: str
    library: Callable[[Store, object], object]
    pandas: Callable[[object], object]
    compare: Callable[[object, object], list[str]]
    args: list
    target: Target | None = None
    pandas_calls: int | None = None
    note: str = ""
    polars: Callable[[object], object] | None = None
    polars_compare: Callable[[object, object], list[str]] | None = None


@dataclass(frozen=True)
class Context:
    cfg: Settings
    dataset: str
    model: str
    df: pd.DataFrame
    options: FilterOptions
    polars: pl.DataFrame | None = None  # the same rows in polars, for the dashboard aggregations


def close(a: object, b: object) -> bool:
    a, b = float(a), float(b)
    return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=REL, abs_tol=ABS)


def compare_figure_dicts(a: dict | None, b: dict | None) -> list[str]:
    """The same figures (or both None); ``b`` is pandas'."""
    if a is None or b is None:
        return [] if a is None and b is None else [f"{a} vs pandas {b}"]
    return [f"{k}: {a[k]!r} vs pandas {b[k]!r}" for k in pb.FIGURES if not close(a[k], b[k])]


def figures_of(lib: analytics.PeriodFigures | None) -> dict | None:
    return None if lib is None else {k: getattr(lib, k) for k in pb.FIGURES}


def compare_figures(lib: analytics.PeriodFigures | None, pan: dict | None) -> list[str]:
    return compare_figure_dicts(figures_of(lib), pan)


def compare_kpi_dicts(a: dict, pan: dict) -> list[str]:
    return [f"{part} {p}" for part in ("current", "previous") for p in compare_figure_dicts(a[part], pan[part])]


def compare_kpis(lib: analytics.Kpis, pan: dict) -> list[str]:
    return compare_kpi_dicts({"current": figures_of(lib.current), "previous": figures_of(lib.previous)}, pan)


def compare_frames(lib: pd.DataFrame, pan: pd.DataFrame, key: str | list[str],
                   columns: tuple[str, ...] = pb.FIGURES) -> list[str]:
    """The same keys, and per key the same values (NaN equals NaN)."""
    left = lib.set_index(key)[list(columns)]
    right = pan.set_index(key)[list(columns)]
    only_lib = [k for k in left.index if k not in right.index]
    only_pan = [k for k in right.index if k not in left.index]
    if only_lib or only_pan or len(left) != len(right):
        return [f"rows differ: only in FraudLens {only_lib[:3]}, only in pandas {only_pan[:3]}"]
    right = right.loc[left.index]
    problems = []
    for c in columns:
        same = np.isclose(left[c].to_numpy(float), right[c].to_numpy(float), rtol=REL, atol=ABS, equal_nan=True)
        if not same.all():
            k = left.index[~same][0]
            problems.append(f"{c} at {k}: FraudLens {left[c].to_numpy()[~same][0]} vs pandas "
                            f"{right[c].to_numpy()[~same][0]}")
    return problems


def compare_heatmap(lib: pd.DataFrame, pan: pd.DataFrame) -> list[str]:
    return compare_frames(lib, pan, ["weekday", "hour"])


def compare_daily(lib: pd.DataFrame, pan: pd.DataFrame) -> list[str]:
    return compare_frames(lib, pan.assign(period=pan["period"].dt.date), "period")


def compare_segments(lib: pd.DataFrame, pan: pd.DataFrame) -> list[str]:
    return compare_frames(lib, pan, "segment")


def compare_amounts(lib: pd.DataFrame, pan: pd.DataFrame) -> list[str]:
    return compare_frames(lib, pan, "bin", ("legit", "fraud", "unknown"))


def compare_top(lib: pd.DataFrame, pan: pd.DataFrame) -> list[str]:
    """The same fraud amounts rank by rank and the same figures per entity. An entity only one
    side lists must tie with the last one shown (exact ties may come in another order)."""
    if len(lib) != len(pan):
        return [f"{len(lib)} entities vs pandas {len(pan)}"]
    ranked = np.isclose(lib["fraud_amount"].to_numpy(float), pan["fraud_amount"].to_numpy(float),
                        rtol=REL, atol=ABS)
    if not ranked.all():
        i = int(np.argmin(ranked))
        return [f"fraud amount at rank {i + 1}: FraudLens {lib['fraud_amount'].iloc[i]} vs pandas "
                f"{pan['fraud_amount'].iloc[i]}"]
    both = set(lib["entity"]) & set(pan["entity"])
    problems = compare_frames(lib[lib["entity"].isin(both)], pan[pan["entity"].isin(both)], "entity")
    last = lib["fraud_amount"].iloc[-1] if len(lib) else 0.0
    amounts = {**dict(zip(pan["entity"], pan["fraud_amount"])), **dict(zip(lib["entity"], lib["fraud_amount"]))}
    problems += [f"{e} listed by one side only" for e in set(lib["entity"]) ^ set(pan["entity"])
                 if not close(amounts[e], last)]
    return problems


def compare_page(lib: analytics.TransactionsPage, pan: pd.DataFrame) -> list[str]:
    return compare_rows(lib.rows, pan)


def compare_rows(rows: pd.DataFrame, pan: pd.DataFrame) -> list[str]:
    """The same transactions in the same order, with the same local times, labels and amounts."""
    ids, expected = rows["transaction_id"].tolist(), pan["transaction_id"].tolist()
    if ids != expected:
        first = next((i for i, (a, b) in enumerate(zip(ids, expected)) if a != b), min(len(ids), len(expected)))
        return [f"transaction ids differ from row {first + 1} ({len(ids)} vs {len(expected)} rows)"]
    problems = []
    if not (pd.to_datetime(rows["local_time"]).astype("datetime64[us]").to_numpy()
            == pan["local_time"].astype("datetime64[us]").to_numpy()).all():
        problems.append("local times differ")
    if rows["label"].tolist() != pan["label"].tolist():
        problems.append("labels differ")
    if not np.allclose(rows["transaction_amount"].to_numpy(float), pan["transaction_amount"].to_numpy(float)):
        problems.append("amounts differ")
    return problems


POINT_FLOATS = ("precision", "recall", "fraud_amount_caught")


def compare_point(lib, pan: dict, floats: tuple[str, ...] = POINT_FLOATS) -> list[str]:
    problems = [f"{k}: FraudLens {getattr(lib, k)} vs pandas {pan[k]}" for k in ("alerts", "tp")
                if getattr(lib, k) != pan[k]]
    return problems + [f"{k}: FraudLens {getattr(lib, k)!r} vs pandas {pan[k]!r}"
                       for k in floats if not close(getattr(lib, k), pan[k])]


def compare_optimised(lib: operating.Optimised, pan: dict | None) -> list[str]:
    if lib.point is None or pan is None:
        return [] if lib.point is None and pan is None else [f"FraudLens {lib.message!r} vs pandas {pan}"]
    problems = compare_point(lib.point, pan, ("precision", "recall"))
    if lib.point.threshold != pan["threshold"]:
        problems.append(f"threshold: FraudLens {lib.point.threshold!r} vs pandas {pan['threshold']!r}")
    return problems


def compare_explanation(lib, pan: dict) -> list[str]:
    values = dict(zip(lib.table["feature"], lib.table["value"]))
    return [f"{k}: FraudLens {values.get(k)!r} vs pandas {v!r}" for k, v in pan.items()
            if k not in values or not close(values[k], v)]


def compare_queue(lib: alerts.Queue, pan: tuple[pd.DataFrame, int]) -> list[str]:
    rows, total = pan
    problems = [] if lib.total == total else [f"{lib.total} alerts vs pandas {total}"]
    if lib.rows["transaction_id"].tolist() != rows["transaction_id"].tolist():
        return problems + ["the first page lists other transactions"]
    for c in ("score", "expected_loss"):
        if not np.allclose(lib.rows[c].to_numpy(float), rows[c].to_numpy(float), rtol=REL, atol=ABS):
            problems.append(f"{c} differs")
    return problems


def compare_psi(lib: float, pan: float) -> list[str]:
    same = (math.isnan(lib) and math.isnan(pan)) or abs(lib - pan) <= PSI_TOLERANCE
    return [] if same else [f"PSI: FraudLens {lib:.5f} vs pandas {pan:.5f}"]


def compare_parts(checks: dict[str, Callable[[object, object], list[str]]]):
    """Compare a page's answers part by part."""
    def compare(lib: dict, pan: dict) -> list[str]:
        return [f"{name}: {p}" for name, check in checks.items() for p in check(lib[name], pan[name])]
    return compare


# ---------------------------------------------------------------------------------------------
# The filters the calls are made with: a different one each call


def overview_filters(o: FilterOptions, n: int) -> list[Filters]:
    """The Overview's default, the last 30 days, ending two days earlier each time, with a channel."""
    channels = [(), *[(c,) for c in o.channels]]
    out = []
    for i in range(n):
        until = max(o.last_date - timedelta(days=2 * i), o.first_date)
        out.append(Filters(date_from=max(o.first_date, until - timedelta(days=29)), date_until=until,
                           channels=channels[i % len(channels)]))
    return out


def explore_filters(o: FilterOptions, n: int) -> list[Filters]:
    """The Explore default, the whole period (starting i days later), with another filter each time."""
    extras = [{}, {"channels": o.channels[:1]}, {"types": o.types[:1]}, {"regions": o.regions[:2]},
              {"amount_min": 100.0}, {"channels": o.channels[1:3]}, {"label": "legit"},
              {"amount_max": 500.0}, {"types": o.types[1:3]}]
    return [Filters(date_from=min(o.first_date + timedelta(days=i), o.last_date), date_until=o.last_date,
                    **extras[i % len(extras)]) for i in range(n)]


def channel_filters(o: FilterOptions, n: int) -> list[Filters]:
    """The whole period (starting i days later) for one channel."""
    return [Filters(date_from=min(o.first_date + timedelta(days=i), o.last_date), date_until=o.last_date,
                    channels=(o.channels[i % len(o.channels)],)) for i in range(n)]


# ---------------------------------------------------------------------------------------------
# What the pages compute


def overview_data(store: Store, ds: str, f: Filters) -> dict:
    """The library calls pages/overview.py makes for one set of filters."""
    return {
        "kpis": analytics.kpis(store, ds, f),
        "daily": analytics.daily_series(store, ds, f, "day"),
        "by_channel": analytics.segments(store, ds, f, "channel"),
        "by_type": analytics.segments(store, ds, f, "transaction_type"),
        "largest": analytics.transactions_page(store, ds, f.replace(label="fraud"), sort="transaction_amount",
                                               descending=True, limit=10),
    }


def overview_pandas(df: pd.DataFrame, f: Filters) -> dict:
    return {
        "kpis": pb.kpis(df, f),
        "daily": pb.daily_series(df, f),
        "by_channel": pb.segments(df, f, "channel"),
        "by_type": pb.segments(df, f, "transaction_type"),
        "largest": pb.transactions_page(df, f.replace(label="fraud"), "transaction_amount", True, 10),
    }


OVERVIEW_CHECKS = {"kpis": compare_kpis, "daily": compare_daily, "by_channel": compare_segments,
                   "by_type": compare_segments, "largest": compare_page}


def explore_data(store: Store, ds: str, f: Filters) -> dict:
    """The library calls pages/explore.py makes for one set of filters, every tab's (no drill-down)."""
    found = analytics.summary(store, ds, f)
    return {
        "count": found.count,
        "heatmap": found.heatmap,
        "daily": found.series("day"),
        "amounts": found.amounts,
        "by_channel": found.segments["channel"],
        "regions": found.regions,
        "top_merchants": analytics.top_entities(store, ds, f, "merchant_id", TOP_N),
        "top_accounts": analytics.top_entities(store, ds, f, "account_id", TOP_N),
        "table": analytics.transactions_page(store, ds, f, limit=50),
    }


def explore_pandas(df: pd.DataFrame, f: Filters) -> dict:
    return {
        "count": pb.count_matching(df, f),
        "heatmap": pb.hour_weekday_heatmap(df, f),
        "daily": pb.daily_series(df, f),
        "amounts": pb.amount_distribution(df, f),
        "by_channel": pb.segments(df, f, "channel"),
        "regions": pb.region_breakdown(df, f),
        "top_merchants": pb.top_entities(df, f, "merchant_id", TOP_N),
        "top_accounts": pb.top_entities(df, f, "account_id", TOP_N),
        "table": pb.transactions_page(df, f, "transaction_datetime", True, 50),
    }


EXPLORE_CHECKS = {"count": compare_figures, "heatmap": compare_heatmap, "daily": compare_daily,
                  "amounts": compare_amounts, "by_channel": compare_segments, "regions": compare_segments,
                  "top_merchants": compare_top, "top_accounts": compare_top, "table": compare_page}
AGGREGATION = Target("p95 < 100 ms, ≥ 5× pandas, ≤ polars", p95_ms=100, min_ratio=5, polars=True)


def polars_parts(ctx: Context, call: Callable, compare: Callable) -> dict:
    """A measure's polars call and check, when the suite has the rows in polars."""
    if ctx.polars is None:
        return {}
    return {"polars": lambda a: call(ctx.polars, a), "polars_compare": compare}


def dashboard_measures(ctx: Context) -> list[Measure]:
    ds, df, n = ctx.dataset, ctx.df, REPEATS + 1
    over, explore = overview_filters(ctx.options, n), explore_filters(ctx.options, n)
    sorts = [(f, ("transaction_datetime", "transaction_amount")[i % 2]) for i, f in enumerate(explore)]
    return [
        Measure("KPIs with previous-period deltas", lambda s, f: analytics.kpis(s, ds, f),
                lambda f: pb.kpis(df, f), compare_kpis, over, AGGREGATION,
                **polars_parts(ctx, plb.kpis, compare_kpi_dicts)),
        Measure("hour × weekday heatmap", lambda s, f: analytics.hour_weekday_heatmap(s, ds, f),
                lambda f: pb.hour_weekday_heatmap(df, f), compare_heatmap, explore, AGGREGATION,
                **polars_parts(ctx, plb.hour_weekday_heatmap, compare_heatmap)),
        Measure("daily series", lambda s, f: analytics.daily_series(s, ds, f, "day"),
                lambda f: pb.daily_series(df, f), compare_daily, explore, AGGREGATION,
                **polars_parts(ctx, plb.daily_series, lambda a, b: compare_frames(a, b, "period"))),
        Measure("segments by channel", lambda s, f: analytics.segments(s, ds, f, "channel"),
                lambda f: pb.segments(df, f, "channel"), compare_segments, over, AGGREGATION,
                **polars_parts(ctx, lambda p, f: plb.segments(p, f, "channel"), compare_segments)),
        Measure(f"top {TOP_N} merchants, one channel",
                lambda s, f: analytics.top_entities(s, ds, f, "merchant_id", TOP_N),
                lambda f: pb.top_entities(df, f, "merchant_id", TOP_N), compare_top,
                channel_filters(ctx.options, n), AGGREGATION,
                **polars_parts(ctx, lambda p, f: plb.top_entities(p, f, "merchant_id", TOP_N), compare_top)),
        Measure(f"transactions page ({PAGE_ROWS} rows)",
                lambda s, a: analytics.transactions_page(s, ds, a[0], sort=a[1], limit=PAGE_ROWS),
                lambda a: pb.transactions_page(df, a[0], a[1], True, PAGE_ROWS), compare_page, sorts,
                AGGREGATION, note="sorted by time or by amount, newest/largest first",
                **polars_parts(ctx, lambda p, a: plb.transactions_page(p, a[0], a[1], True, PAGE_ROWS),
                               compare_rows)),
        Measure("Overview page, all its data", lambda s, f: overview_data(s, ds, f),
                lambda f: overview_pandas(df, f), compare_parts(OVERVIEW_CHECKS), over,
                Target("p95 < 250 ms", p95_ms=250), note="KPIs, daily series, 2 segment charts, largest frauds"),
        Measure("Explore page, all its data", lambda s, f: explore_data(s, ds, f),
                lambda f: explore_pandas(df, f), compare_parts(EXPLORE_CHECKS), explore,
                Target("p95 < 250 ms", p95_ms=250),
                note="every tab's: count, heatmap, daily series, amounts and segment charts (one grouped "
                     "query, analytics.summary), top merchants and accounts, table; the page computes the top "
                     "lists only while its Who tab is open"),
    ]


def threshold_measures(ctx: Context) -> list[Measure]:
    """``ThresholdTable.at`` and an optimiser, on a table over every labelled scored row."""
    columns = ["score", "is_fraud", "transaction_amount", "transaction_datetime"]
    scored = ctx.df.loc[ctx.df["is_labelled"], columns]
    started = time.perf_counter()
    table = ThresholdTable(scored["is_fraud"].to_numpy(), scored["score"].to_numpy(float),
                           scored["transaction_amount"].to_numpy(float),
                           operating.local_days(scored["transaction_datetime"], TZ))
    built = time.perf_counter() - started
    rng = np.random.default_rng(SEED)
    thresholds = rng.uniform(0.02, 0.98, AT_CALLS + 1).tolist()
    precisions = rng.uniform(0.3, 0.8, REPEATS + 1).round(3).tolist()
    return [
        Measure("threshold query (ThresholdTable.at)", lambda _s, t: table.at(t),
                lambda t: pb.threshold_point(scored, t), compare_point, thresholds,
                Target("p95 < 0.1 ms", p95_ms=0.1), pandas_calls=REPEATS + 1,
                note=f"{AT_CALLS:,} thresholds; table over {len(scored):,} scored rows "
                     f"({len(table.thresholds_):,} breakpoints) built in {built:.2f} s; pandas scans every row"),
        Measure("optimiser: highest recall at a precision",
                lambda _s, p: operating.optimise(table, "precision", p),
                lambda p: pb.max_recall_at_precision(scored, p), compare_optimised, precisions,
                Target("p95 < 50 ms", p95_ms=50), note="pandas: groupby score, cumulative sums, pick"),
    ]


def explained_ids(df: pd.DataFrame, n: int) -> list[str]:
    """High-scored transactions of the last week: the ones an analyst opens."""
    recent = df[df["transaction_datetime"] >= df["transaction_datetime"].max() - pd.Timedelta(days=7)]
    top = recent.nlargest(max(10 * n, 100), "score")["transaction_id"].to_numpy()
    return np.random.default_rng(SEED).choice(top, size=n, replace=False).tolist()


def explain_measure(ctx: Context) -> Measure:
    held: dict = {}

    def explain(tid: str):
        # As the app does: the first call verifies and loads the model, later ones reuse it.
        if "model" not in held:
            name, version = registry.parse_ref(ctx.model)
            held["model"] = registry.load_model(name, version, home=ctx.cfg.home)
        return explain_transaction(ctx.dataset, ctx.model, tid, cfg=ctx.cfg, loaded=held["model"])

    return Measure(
        "explanation of one transaction",
        lambda _s, tid: explain(tid),
        lambda tid: pb.account_features(ctx.df, tid), compare_explanation, explained_ids(ctx.df, REPEATS + 1),
        Target("p95 < 100 ms", p95_ms=100),
        note="point-in-time features + TreeSHAP; the cold call also verifies and loads the model from the "
             "registry (and imports XGBoost), warm calls reuse it as the app's cache does; pandas computes "
             "the 18 account-window, amount and hour features only")


def reset_alerts(home: Path) -> None:
    """Start from an empty queue: the bench's own data directory keeps no other alerts."""
    for suffix in ("", "-wal", "-shm"):
        (home / f"{ops.OPS_FILE}{suffix}").unlink(missing_ok=True)


def alert_measure(ctx: Context) -> Measure:
    """Raise alerts once over the last week (no below-the-line sample, so pandas can rebuild the
    queue from the scores), then time the queue's first page in each order."""
    df = ctx.df
    since = (df["transaction_datetime"].max() - pd.Timedelta(days=ALERT_DAYS - 1)).normalize()
    threshold = float(np.quantile(df.loc[df["transaction_datetime"] >= since, "score"], 1 - ALERT_SHARE))
    reset_alerts(ctx.cfg.home)
    log("raise alerts")
    started = time.perf_counter()
    raised = alerts.raise_alerts(ctx.dataset, ctx.model, threshold=threshold, date_from=since.date(),
                                 sample_rate=0.0, seed=SEED, cfg=ctx.cfg)
    took = time.perf_counter() - started
    orders = [("expected_loss", "score", "amount", "newest")[i % 4] for i in range(REPEATS + 1)]
    return Measure(
        f"alert queue, first page ({QUEUE_ROWS})",
        lambda _s, order: alerts.queue(dataset=ctx.dataset, order=order, limit=QUEUE_ROWS, cfg=ctx.cfg),
        lambda order: pb.alert_queue(df, since, threshold, order, QUEUE_ROWS), compare_queue, orders,
        note=f"raise_alerts over the last {ALERT_DAYS} days ({raised.scored:,} rows scored, "
             f"{raised.alerts_created:,} alerts at {threshold:.4f}) took {took:.1f} s; pages by each queue order")


def psi_measure(ctx: Context) -> Measure:
    """PSI of the score of one later week against the first half of the weeks."""
    week = ctx.df["local_time"].dt.to_period("W").dt.start_time
    weeks = sorted(week.unique())
    half = weeks[len(weeks) // 2]
    reference = ctx.df.loc[week < half, "score"]
    later = {w: ctx.df.loc[week == w, "score"] for w in weeks if w >= half}
    arrays = {w: s.to_numpy(float) for w, s in later.items()}
    expected = reference.to_numpy(float)
    picks = [list(later)[i % len(later)] for i in range(REPEATS + 1)]
    return Measure("PSI of the score, one week vs reference", lambda _s, w: monitor.psi(expected, arrays[w]),
                   lambda w: pb.psi(reference, later[w]), compare_psi, picks,
                   note=f"reference: {len(reference):,} scores of the first {len(weeks) // 2} weeks; "
                        f"agreement within {PSI_TOLERANCE} (pandas qcut interpolates its edges)")


# ---------------------------------------------------------------------------------------------
# Timing


def time_calls(fn: Callable[[object], object], args: list) -> tuple[list[float], list[object]]:
    """Milliseconds and answers of ``fn(arg)`` for each arg."""
    times, answers = [], []
    for arg in args:
        started = time.perf_counter_ns()
        answers.append(fn(arg))
        times.append((time.perf_counter_ns() - started) / 1e6)
    return times, answers


def describe(arg: object) -> str:
    if isinstance(arg, Filters):
        return arg.describe()
    if isinstance(arg, tuple):
        return "; ".join(describe(a) for a in arg)
    return repr(arg)


def p95(values: list[float]) -> float:
    return float(np.percentile(values, 95))


def run_measure(m: Measure, cfg: Settings) -> dict:
    """Time ``m`` cold and warm, then its pandas (and polars) equivalent, and compare every pair
    of answers."""
    log(m.name)
    store = Store(cfg)
    try:
        lib_times, lib_answers = time_calls(lambda a: m.library(store, a), m.args)
    finally:
        store.close()
    checked = m.args[: m.pandas_calls or len(m.args)]
    pan_times, pan_answers = time_calls(m.pandas, checked)
    mismatches = [f"{describe(a)}: {p}" for a, lib, pan in zip(checked, lib_answers, pan_answers)
                  for p in m.compare(lib, pan)]
    warm, pan_warm = lib_times[1:], pan_times[1:]
    median, pandas_median = statistics.median(warm), statistics.median(pan_warm)
    row = {
        "name": m.name, "calls": len(warm), "cold_ms": round(lib_times[0], 4),
        "warm_median_ms": round(median, 4), "warm_p95_ms": round(p95(warm), 4),
        "pandas_calls": len(pan_warm), "pandas_median_ms": round(pandas_median, 4),
        "ratio": round(pandas_median / median, 2), "agree": not mismatches, "compared": len(checked),
        "mismatches": mismatches[:10], "target": m.target.text if m.target else "", "note": m.note,
    }
    if m.polars is not None:
        row.update(polars_row(m, checked, pan_answers, median))
        row["agree"] = row["agree"] and row["polars_agree"]
    row["status"] = query_status(row, m.target)
    return row


def polars_row(m: Measure, checked: list, pan_answers: list, median: float) -> dict:
    """The polars timings of ``m`` and whether its answers agree with pandas'."""
    times_, answers = time_calls(m.polars, checked)
    mismatches = [f"polars, {describe(a)}: {p}" for a, po, pan in zip(checked, answers, pan_answers)
                  for p in m.polars_compare(po, pan)]
    polars_median = statistics.median(times_[1:])
    return {"polars_median_ms": round(polars_median, 4), "polars_ratio": round(polars_median / median, 2),
            "polars_agree": not mismatches, "polars_compared": len(checked), "polars_mismatches": mismatches[:10]}


def query_status(row: dict, target: Target | None) -> str:
    if target is None:
        return ""
    missed = []
    if target.p95_ms is not None and not row["warm_p95_ms"] < target.p95_ms:
        missed.append(f"p95 {ms(row['warm_p95_ms'])} ms")
    if target.min_ratio is not None and not row["ratio"] >= target.min_ratio:
        missed.append(f"{times(row['ratio'])} pandas")
    if target.polars and "polars_median_ms" in row and not row["warm_median_ms"] <= row["polars_median_ms"]:
        missed.append(f"slower than polars ({ms(row['polars_median_ms'])} ms)")
    return "met" if not missed else "missed: " + ", ".join(missed)


# ---------------------------------------------------------------------------------------------
# Build rows and their targets


def step_row(label: str, entry: dict, started_at: str, target: str = "", status: str = "") -> dict:
    seconds = entry["seconds"]
    return {"step": label, "rows": entry["rows"], "seconds": round(seconds, 2),
            "rows_per_s": round(entry["rows"] / seconds) if seconds else None,
            "peak_rss_mb": round(entry["peak_rss_mb"]), "target": target, "status": status,
            "measured_at": entry["measured_at"], "reused": entry["measured_at"] < started_at,
            **({"phases": entry["phases"]} if "phases" in entry else {})}


def throughput_status(entry: dict) -> str:
    rate, rss = entry["rows"] / entry["seconds"], entry["peak_rss_mb"]
    missed = [f"{rate / 1e6:.2f}M rows/s"] if rate < 1e6 else []
    missed += [f"{rss / 1024:.1f} GB"] if rss >= GB4 else []
    return "met" if not missed else "missed: " + ", ".join(missed)


def build_rows(built: Built, loads: dict, started_at: str) -> list[dict]:
    rec, train = built.record, built.train_record["train"]
    fast = "≥ 1M rows/s, peak RSS < 4 GB"
    if built.train_rows == TRAIN_ROWS:
        train_status = "met" if train["seconds"] <= 30 else f"missed: {train['seconds']:.0f} s"
    else:
        train_status = f"n/a ({built.train_rows:,} rows)"
    rows = [
        step_row("generate (fraudlens.synth)", rec["generate"], started_at),
        step_row(f"ingest CSV ({rec['ingest_csv']['csv_mb']:,.0f} MB, the generator's export of the same rows)",
                 rec["ingest_csv"], started_at, fast, throughput_status(rec["ingest_csv"])),
        step_row("ingest Parquet (the generator's file; the dataset every later step uses)", rec["ingest"],
                 started_at),
        step_row("features of every row (fraudlens.feature_store: windows in numba, the rest in DuckDB, "
                 "written to Parquet by pyarrow)", rec["features"], started_at, fast,
                 throughput_status(rec["features"])),
        step_row(f"features + training XGBoost ({train['model']})", train, started_at,
                 "≤ 30 s on 1M rows", train_status),
        step_row("scoring", rec["score"], started_at),
        step_row("baseline: pandas loads the set into memory", loads["pandas"], started_at),
        step_row("baseline: polars loads the set into memory (text of few values as Categorical)",
                 loads["polars"], started_at),
    ]
    if "engine_floor" in rec["ingest_csv"]:
        rows[1]["engine_floor"] = {k: round(v, 2) for k, v in rec["ingest_csv"]["engine_floor"].items()}
    trained = next(r for r in rows if r["step"].startswith("features + training"))
    trained["rows_train_window"] = train["rows_train"]
    trained["average_precision"] = train["average_precision"]
    if "analytics" in rec:
        row = step_row("analytics table, first use of a dataset version: the aggregated columns copied into "
                       "a compressed DuckDB file (kept on disk; warm = a restarted app attaching it)",
                       rec["analytics"], started_at)
        row["warm_seconds"] = round(rec["analytics"]["warm_seconds"], 2)
        row["warm_label"] = "Analytics table ready again after a restart (file attached)"
        rows.append(row)
    if "monitor" in rec:
        entry = rec["monitor"]
        row = step_row("Monitoring page data, first visit: every row scored once, then weekly PSI of the "
                       "score and the top 5 features (kept on disk; warm = any later visit, also after a "
                       "restart)", entry, started_at)
        row["warm_seconds"] = round(entry["warm_seconds"], 2)
        row["warm_label"] = "Monitoring page data again, scores kept"
        rows.append(row)
    if "train_all" in rec:
        rows.append(train_all_row(built, started_at))
    return rows


def train_all_row(built: Built, started_at: str) -> dict:
    """Training on every row of the N set, beside the TRAIN_ROWS model on the same test rows."""
    entry = built.record["train_all"]
    name, version = registry.parse_ref(entry["model"])
    test = registry.read_table(name, version, "test_scores.parquet", built.home)
    small = pd.read_parquet(built.scores).rename(columns={"score": "small_score"})
    both = test.merge(small, on="transaction_id", how="inner")
    y = both["fraudulent_activity"].astype(bool).to_numpy()
    ap_small = fl_metrics.average_precision(y, both["small_score"].to_numpy(float))
    rss = entry["peak_rss_mb"] / 1024
    status = "met" if rss < 12 else f"missed: {rss:.1f} GB"
    row = step_row(f"training XGBoost on all {entry['rows']:,} rows ({entry['model']})", entry, started_at,
                   "completes, peak RSS < 12 GB", status)
    row.update(rows_train=entry["rows_train"], legit_share=round(entry["legit_share"], 4),
               average_precision=entry["average_precision"],
               average_precision_of_the_smaller_model=round(float(ap_small), 4), test_rows=len(both))
    return row


# ---------------------------------------------------------------------------------------------
# Machine, versions, report


def machine() -> dict:
    mem_kb, cpu = 0, platform.machine()
    with open("/proc/meminfo", encoding="utf-8") as fh:
        mem_kb = next((int(line.split()[1]) for line in fh if line.startswith("MemTotal:")), 0)
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            cpu = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cores": os.cpu_count(), "cores_usable": len(os.sched_getaffinity(0)),
            "ram_gib": round(mem_kb / 1024 / 1024, 1), "cpu": cpu,
            "load_average_at_start": round(os.getloadavg()[0], 2)}


def versions() -> dict:
    def version(*names: str) -> str | None:
        for name in names:
            try:
                return metadata.version(name)
            except metadata.PackageNotFoundError:
                continue
        return None

    return {"python": platform.python_version(), "duckdb": version("duckdb"), "pandas": version("pandas"),
            "xgboost": version("xgboost", "xgboost-cpu"), "streamlit": version("streamlit"),
            "numpy": version("numpy"), "pyarrow": version("pyarrow")}


def ms(value: float) -> str:
    return f"{value:,.3f}" if value < 1 else f"{value:,.1f}"


def times(ratio: float) -> str:
    return f"{ratio:,.2f}×" if ratio < 1 else f"{ratio:,.1f}×"


def phase_lines(build: list[dict], cores: int) -> list[str]:
    """Where the time of each step measured in phases went, and how many cores each phase kept busy."""
    timed = [b for b in build if b.get("phases")]
    if not timed:
        return []
    lines = ["", "## Where the time of the ingest and feature steps goes", "",
             "Each phase's wall seconds, and the CPU seconds of the step's process on all its threads in it: "
             f"CPU over wall is how many of the {cores} cores the phase kept busy.", ""]
    for b in timed:
        total = sum(p["seconds"] for p in b["phases"].values())
        lines += [f"**{b['step']}**: {b['seconds']:,} s", "",
                  "| phase | seconds | share | CPU seconds | cores busy |", "|---|---:|---:|---:|---:|"]
        lines += [f"| {name} | {p['seconds']:.2f} | {p['seconds'] / total:.0%} | {p['cpu_seconds']:.2f} | "
                  f"{p['cpu_seconds'] / p['seconds'] if p['seconds'] else 0:.2f} |"
                  for name, p in b["phases"].items()]
        lines.append("")
    return lines[:-1]


def to_markdown(r: dict) -> str:
    m, v, d = r["machine"], r["versions"], r["dataset"]
    lines = [
        f"# FraudLens benchmark suite: {r['rows']:,} transactions",
        "",
        f"{m['cores']} cores ({m['cores_usable']} usable), {m['ram_gib']} GiB RAM, {m['cpu']}; load average "
        f"{m['load_average_at_start']} at the start. Python {v['python']}, DuckDB {v['duckdb']}, pandas "
        f"{v['pandas']}, XGBoost {v['xgboost']}, Streamlit {v['streamlit']}. {r['date']}; "
        f"{r['elapsed_seconds']:.0f} s in all.",
        "",
        f"Dataset `{d['name']}`: {d['rows']:,} rows, {d['frauds']:,} frauds, {d['first']} to {d['last']} (UTC), "
        f"seed {r['seed']}. Model `{d['model']}`, trained on {d['train_rows']:,} rows.",
        "",
        "## Build steps",
        "",
        "Each step runs in its own process, so its peak RSS is its own. Rows marked *reused* were "
        "measured by an earlier run on the same files (date shown); delete the work folder to measure again.",
        "",
        "| step | rows | seconds | rows/s | peak RSS MB | target | status |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for b in r["build"]:
        step = b["step"] + (f" (*reused*, {b['measured_at'][:10]})" if b["reused"] else "")
        lines.append(f"| {step} | {b['rows']:,} | {b['seconds']:,} | {b['rows_per_s']:,} | "
                     f"{b['peak_rss_mb']:,} | {b['target']} | {b['status']} |")
    for b in r["build"]:
        if "warm_seconds" in b:
            label = b.get("warm_label", "Monitoring page data again, scores kept")
            lines += ["", f"{label}: {b['warm_seconds']:,} s."]
        if "engine_floor" in b:
            floor = b["engine_floor"]
            lines += ["", f"Floor of the CSV ingest: DuckDB alone converting the same file to Parquet, with the "
                      f"types it detects and nothing checked, numbered, kept in order or profiled, took "
                      f"{floor['seconds']:,} s ({b['rows'] / floor['seconds'] / 1e6:.2f}M rows/s, "
                      f"{floor['cpu_seconds']:,} CPU-s)."]
        if "average_precision_of_the_smaller_model" in b:
            lines += ["", f"Training on all rows kept every fraud and {b['legit_share']:.1%} of the legitimate "
                      f"rows of its train window, weighted ({b['rows_train']:,} rows). Average precision on its "
                      f"test window ({b['test_rows']:,} rows): {b['average_precision']:.4f}, against "
                      f"{b['average_precision_of_the_smaller_model']:.4f} for the model trained on "
                      f"{d['train_rows']:,} rows scoring the same rows."]
    lines += phase_lines(r["build"], r["machine"]["cores_usable"])
    lines += [
        "",
        "## What the pages compute",
        "",
        f"FraudLens: the library calls the pages make. Cold is the first call on a fresh Store (a new DuckDB "
        f"connection); warm is the median and p95 of {REPEATS} calls after it, each with different filters "
        f"(dates, channels, types, regions, amounts, labels) so no cache answers. pandas: the same answer from "
        f"the DataFrame already in memory (loaded once, with local time, fraud flag, fraud amount and score "
        f"precomputed), median of its warm calls. polars: the dashboard aggregations on the same rows in "
        f"a polars DataFrame in memory (lazy queries, text of few values as Categorical, results handed "
        f"over as pandas), median of its warm calls; its answers are checked against pandas'. Every pair "
        f"of answers is compared.",
        "",
        "| measure | cold ms | warm median ms | warm p95 ms | pandas median ms | pandas / FraudLens | "
        "polars median ms | polars / FraudLens | agrees | target | status |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---|",
    ]
    for q in r["queries"]:
        agrees = "yes" if q["agree"] else "**NO**"
        polars = (f"{ms(q['polars_median_ms'])} | {times(q['polars_ratio'])}" if "polars_median_ms" in q
                  else " | ")
        lines.append(f"| {q['name']} | {ms(q['cold_ms'])} | {ms(q['warm_median_ms'])} | "
                     f"{ms(q['warm_p95_ms'])} | {ms(q['pandas_median_ms'])} | {times(q['ratio'])} | {polars} | "
                     f"{agrees} | {q['target']} | {q['status']} |")
    a, t = r["agreement"], r["targets"]
    lines += ["", (f"**Agreement: all {len(r['queries'])} measures agree with pandas, and polars with pandas "
                   f"({a['compared']} answers compared).**" if a["ok"] else
                   f"**MISMATCH: the answers differ on {', '.join(a['failed'])}.**")]
    for q in r["queries"]:
        lines += [f"- {q['name']}: {p}" for p in q["mismatches"] + q.get("polars_mismatches", [])]
    lines += ["", f"Targets: {t['met']} met, {t['missed']} missed, {t['not_applicable']} not applicable.",
              "", "## Notes", ""]
    lines += [f"- {q['name']}: {q['note']}." for q in r["queries"] if q["note"]]
    return "\n".join(lines) + "\n"


def summary(build: list[dict], queries: list[dict]) -> tuple[dict, dict]:
    statuses = [row["status"] for row in (*build, *queries) if row["status"]]
    targets = {"met": sum(s == "met" for s in statuses), "missed": sum(s.startswith("missed") for s in statuses),
               "not_applicable": sum(s.startswith("n/a") for s in statuses)}
    failed = [q["name"] for q in queries if not q["agree"]]
    compared = sum(q["compared"] + q.get("polars_compared", 0) for q in queries)
    agreement = {"ok": not failed, "failed": failed, "compared": compared}
    return agreement, targets


def results_dir(rows: int, out: str | Path | None) -> Path:
    if out is not None:
        return Path(out)
    return RESULTS if rows >= TRAIN_ROWS else Path(tempfile.mkdtemp(prefix="fraudlens-bench-"))


# ---------------------------------------------------------------------------------------------
# The run


def measure_all(ctx: Context) -> list[dict]:
    # Built group by group, so raising the alerts happens just before the queue is timed.
    groups = (dashboard_measures, threshold_measures, lambda c: [explain_measure(c)],
              lambda c: [alert_measure(c)], lambda c: [psi_measure(c)])
    return [run_measure(m, ctx.cfg) for group in groups for m in group(ctx)]


def run(rows: int = DEFAULT_ROWS, as_json: bool = False, out: str | Path | None = None,
        work: str | Path | None = None, seed: int = SEED) -> int:
    """Run the suite on ``rows`` transactions; print the report; 1 if any two answers disagree."""
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < MIN_ROWS:
        raise FraudLensError(f"The 'rows' parameter must be an integer >= {MIN_ROWS:,}. Got {rows!r} instead.")
    started, started_at = time.perf_counter(), now_iso()
    work = Path(work) if work is not None else WORK
    info_machine = machine()
    built = prepare(work, rows, seed)
    cfg = replace(settings(), home=work / "home", timezone=TZ)
    loads, parts = baseline_load_steps(cfg, built)
    log("load into this process for the comparisons")
    df, pdf = pb.load(parts, built.scores, TZ), plb.load(parts, built.scores, TZ)
    store = Store(cfg)
    try:
        options = analytics.filter_options(store, built.dataset)
    finally:
        store.close()
    queries = measure_all(Context(cfg, built.dataset, built.model, df, options, pdf))
    build = build_rows(built, loads, started_at)
    agreement, targets = summary(build, queries)
    info = datasets.read(cfg.home, built.dataset)
    report = {
        "suite": "python -m fraudlens bench", "rows": rows, "seed": seed, "date": started_at,
        "elapsed_seconds": round(time.perf_counter() - started, 1), "machine": info_machine,
        "versions": versions(),
        "dataset": {"name": built.dataset, "rows": info.rows, "frauds": info.frauds, "first": info.first,
                    "last": info.last, "model": built.model, "train_rows": built.train_rows},
        "build": build, "queries": queries, "agreement": agreement, "targets": targets,
    }
    write_report(report, results_dir(rows, out), as_json)
    if not agreement["ok"]:
        log(f"MISMATCH: the answers differ on {', '.join(agreement['failed'])}")
        return 1
    return 0


def write_report(report: dict, folder: Path, as_json: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    text = to_markdown(report)
    stem = folder / f"suite-{report['rows']}"
    Path(f"{stem}.md").write_text(text, encoding="utf-8")
    Path(f"{stem}.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    log(f"written {stem}.md and .json")
    print(json.dumps(report, indent=1) if as_json else text)
