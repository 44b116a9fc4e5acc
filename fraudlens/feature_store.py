"""Features of every row, computed once per dataset version and feature spec, kept as Parquet.

At 10M rows the features take minutes in SQL alone; scoring, monitoring, global importance
and single explanations read them from here instead of computing them again. A build reads
the rows from DuckDB into Arrow, gives each id, place and address an integer code there, finds
the rows' order by time and id, computes the window columns in one pass each
(:mod:`fraudlens.windows`), has DuckDB evaluate the rest of the feature SQL over them and pyarrow
write the file (Snappy: the one writer thread is the step's bottleneck), never through pandas.
Each DuckDB step runs on a connection of its own with its own memory limit, spilling to disk
past it. The file is in time order with small row groups: a
date range, or one transaction's timestamp, reads only the row groups holding it. Rows of one
timestamp keep the dataset's order, unless its parts are out of time order (then they are by id).

Files live in ``<home>/.features/<dataset>/d<version>-<key>.parquet``. The key hashes the spec,
the feature SQL, the window code and the dataset's part files, so a change of code, or a dataset
deleted and made again, never reads an old file. Building one keeps the previous version's file (a reader may
still hold its path) and removes older ones.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from fraudlens import datasets, features
from fraudlens.errors import QueryError
from fraudlens.features import FeatureSpec, features_sql
from fraudlens.schema import quote_ident
from fraudlens.store import Store, stream_to_parquet
from fraudlens.timing import Phases

logger = logging.getLogger(__name__)

FEATURES_DIR = ".features"
ROW_GROUP_ROWS = 16_384  # one explanation reads one row group: at 10M rows 16k reads faster than 8k
# Memory limits of the two DuckDB steps. The read streams the rows out to Arrow. The write
# evaluates the rest of the SQL over rows already held in Arrow and hands them on in order, in
# batches; the limit is the one DuckDB's own writer needed at 10M rows, when it wrote the file.
READ_MEMORY = "1500MB"
WRITE_MEMORY = "1500MB"
STALE_BUILD_SECONDS = 6 * 3600  # a build's temporary file older than this was left by a killed process
_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


def file_key(spec: FeatureSpec, info: datasets.DatasetInfo) -> str:
    text = json.dumps({"spec": spec.to_dict(), "sql": features_sql("source", spec), "files": list(info.files),
                       "windows": _windows_code()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


@functools.cache
def _windows_code() -> str:
    return hashlib.sha256(Path(__file__).with_name("windows.py").read_bytes()).hexdigest()


def folder(home: Path, dataset: str) -> Path:
    return Path(home) / FEATURES_DIR / dataset


def path_for(home: Path, info: datasets.DatasetInfo, spec: FeatureSpec) -> Path:
    return folder(home, info.name) / f"d{info.version}-{file_key(spec, info)}.parquet"


def existing(store: Store, dataset: str, spec: FeatureSpec) -> Path | None:
    """The current file for ``dataset`` and ``spec`` if it is built, else None (never builds)."""
    path = path_for(store.home, datasets.read(store.home, dataset), spec)
    return path if path.is_file() else None


def feature_file(store: Store, dataset: str, spec: FeatureSpec) -> Path:
    """The Parquet file of every row's features for the dataset's current version, built if missing.

    Columns are those of :func:`fraudlens.features.features_sql`, in time order (see above for
    rows of one timestamp).
    """
    for attempt in (1, 2):
        info = datasets.read(store.home, dataset)
        path = path_for(store.home, info, spec)
        if path.is_file():
            return path
        with _lock_for(path):
            if path.is_file():
                return path
            try:
                _build(store, info, spec, path)
                return path
            except QueryError:
                # A replace removed the parts being read: build the new version instead.
                if attempt == 2 or datasets.read(store.home, dataset).version == info.version:
                    raise
    return path


def read_row(path: Path, ts: datetime, transaction_id: str) -> pd.DataFrame | None:
    """The row of ``transaction_id`` (at time ``ts``) from a feature file, or None if it is not there.

    The file is in time order, so the row-group statistics of its times, read once per file,
    point at the one or two row groups to read; a scan would visit every row group's footer.
    """
    try:
        meta, spans = _time_spans(str(path), path.stat().st_mtime_ns)
        reader = pq.ParquetFile(path, metadata=meta)
        at = pd.Timestamp(ts)
        for group, (low, high) in enumerate(spans):
            if low is None or low <= at <= high:
                table = reader.read_row_group(group)
                found = table.filter(pc.equal(table["transaction_id"], transaction_id))
                if found.num_rows:
                    return found.to_pandas()
    except FileNotFoundError:  # replaced by a newer version's file since
        return None
    return None


@functools.lru_cache(maxsize=16)
def _time_spans(path: str, mtime_ns: int) -> tuple[pq.FileMetaData, list[tuple]]:
    meta = pq.read_metadata(path)
    column = meta.schema.names.index("transaction_datetime")
    spans = []
    for group in range(meta.num_row_groups):
        stats = meta.row_group(group).column(column).statistics
        if stats is None or not stats.has_min_max:
            spans.append((None, None))
        else:
            spans.append((_naive(stats.min), _naive(stats.max)))
    return meta, spans


def _naive(value) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_convert(None) if stamp.tzinfo else stamp


def remove(home: Path, dataset: str) -> None:
    shutil.rmtree(folder(home, dataset), ignore_errors=True)


def _lock_for(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(path, threading.Lock())


def _memory_limit(default: str) -> str:
    return os.environ.get("FRAUDLENS_FEATURE_MEMORY", default)


def _build(store: Store, info: datasets.DatasetInfo, spec: FeatureSpec, path: Path) -> None:
    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}-{uuid.uuid4().hex[:8]}.tmp")
    phases = Phases()
    try:
        _write(store, info, spec, tmp, phases)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())  # on disk before it gets its name: a crash leaves no torn file
        os.replace(tmp, path)
        phases.lap("fsync")
    finally:
        tmp.unlink(missing_ok=True)
    _remove_older(path, info.version)
    logger.info("features of %s v%d (%d rows) written in %.1f s: %s", info.name, info.version, info.rows,
                time.perf_counter() - started, phases, extra={"phases": phases.as_dict()})


CODED = ("account_id", "merchant_id", "merchant_location", "ip_address", "channel")
ONLY_FOR_WINDOWS = ("merchant_id", "merchant_location", "ip_address")


def _write(store: Store, info: datasets.DatasetInfo, spec: FeatureSpec, out: Path, phases: Phases) -> None:
    """Windows in numba over the rows in time order, everything else in DuckDB from the same SQL."""
    name = f"features of {info.name}"
    found = [_rows(store, info, spec, name)]
    phases.lap("read")
    # Popped, so that _with_windows holds the only reference and can free columns.
    windowed = _with_windows(found.pop(), spec.label_delay_days)
    phases.lap("windows")
    with store.job(name, info, memory_limit=_memory_limit(WRITE_MEMORY), threads=2) as con:
        con.register("windowed", windowed)
        stream_to_parquet(con, features.final_sql(spec, _as_sql_columns(windowed)), out, ROW_GROUP_ROWS,
                          _few_valued(spec))
    phases.lap("write")


def _few_valued(spec: FeatureSpec) -> list[str]:
    """Feature columns with few values in a row group, which a dictionary makes small."""
    return [f.name for f in features.catalogue(spec)
            if f.kind in ("binary", "count") or f.name in ("hour", "weekday", "amount_log10_bin")]


def _as_sql_columns(windowed: pa.Table) -> str:
    """The window columns as the SQL's: counts and flags back to DOUBLE (so that their ratios
    are computed in DOUBLE), and the means from the sums."""
    small = [quote_ident(f.name) for f in windowed.schema if pa.types.is_float32(f.type)]
    doubles = ", ".join(f"CAST({c} AS DOUBLE) AS {c}" for c in small)
    means = ", ".join(f"acct_sum_{key} / nullif(acct_count_{key}, 0) AS acct_mean_{key}"
                      for key in features.ACCOUNT_WINDOWS)
    return f"(SELECT *, {means} FROM (SELECT * REPLACE ({doubles}) FROM windowed))"


def _rows(store: Store, info: datasets.DatasetInfo, spec: FeatureSpec, name: str) -> tuple[pa.Table, np.ndarray | None]:
    """The base rows in time order, with an integer code per distinct value of each window key
    as ``_code_<column>`` (the keys used only by the windows are dropped); and the order of the
    feature SQL (time, then transaction id) as positions in them, or None when it is theirs.

    Rows of one timestamp stay in the dataset's order: only parts out of time order make the
    rows move (a copy of the table; 10M rows: about 3 s).
    """
    with store.job(name, info, memory_limit=_memory_limit(READ_MEMORY)) as con:
        rows = con.sql(_rows_sql(con, spec)).to_arrow_table()
    coded = [c for c in CODED if c == "account_id" or c in spec.columns]
    with ThreadPoolExecutor(2) as pool:  # each encoding releases the GIL
        codes = list(pool.map(lambda c: _codes(rows[c]), coded))
    for col, found in zip(coded, codes):
        rows = rows.append_column(f"_code_{col}", pa.array(found))
    rows = rows.drop_columns([c for c in ONLY_FOR_WINDOWS if c in spec.columns])
    order = _time_order(rows)
    if order is not None and not _only_ties(rows["_ts"].to_numpy(), order):
        return rows.take(order), None
    return rows, order


def _rows_sql(con, spec: FeatureSpec) -> str:
    """The base rows as stored, the few-valued text columns as ENUMs (a byte a row).

    No ORDER BY and no joins, so that it streams on every thread; the rows arrive in the parts'
    order.
    """
    enums = []
    for k, col in enumerate(c for c in features.CATEGORICAL if c in spec.columns):
        q = quote_ident(col)
        con.execute(f"CREATE TYPE few{k} AS ENUM (SELECT DISTINCT {q} FROM source WHERE {q} IS NOT NULL)")
        enums.append(f"CAST({q} AS few{k}) AS {q}")
    cols = "*" + (f" REPLACE ({', '.join(enums)})" if enums else "")
    # A spec without the label column never uses labels (the SQL's constant 0), even where the
    # dataset has them.
    label = ("coalesce(CAST(fraudulent_activity AS TINYINT), -1)" if "fraudulent_activity" in spec.columns
             else "CAST(-1 AS TINYINT)")
    return f"SELECT {cols}, epoch_us(ts) AS _ts, {label} AS _label FROM ({features._base_sql('source', spec)})"


def _codes(column: pa.ChunkedArray) -> np.ndarray:
    """An int32 per distinct value, -1 for NULL: what the window passes group by."""
    if pa.types.is_dictionary(column.type):  # an ENUM: its chunks share one dictionary once unified
        indices = pa.chunked_array([chunk.indices for chunk in column.unify_dictionaries().chunks],
                                   type=column.type.index_type)
    else:
        indices = pc.dictionary_encode(column.combine_chunks()).indices
    return pc.fill_null(indices.cast(pa.int32()), -1).to_numpy()


def _time_order(rows: pa.Table) -> np.ndarray | None:
    """Positions of ``rows`` by time, then transaction id, as the feature SQL orders them; None
    when that is their order. Sorting rows that are nearly in order is cheap (10M rows: half a
    second)."""
    order = pc.sort_indices(rows, sort_keys=[("_ts", "ascending"), ("transaction_id", "ascending")]).to_numpy()
    return None if np.array_equal(order, np.arange(len(order))) else order


def _only_ties(ts: np.ndarray, order: np.ndarray) -> bool:
    """Whether ``order`` moves rows only among rows of one timestamp, that is whether ``ts`` is
    already sorted."""
    return bool(np.array_equal(ts[order], ts))


def _with_windows(found: tuple[pa.Table, np.ndarray | None], delay_days: int) -> pa.Table:
    """The rows of :func:`_rows` with the window columns added and the helper columns dropped;
    the windows see the rows in ``order``, the columns are put in the rows' own."""
    from fraudlens import windows  # numba: imported by the jobs that build, not by every page

    rows, order = found
    del found

    def column(name):
        values = rows[name].to_numpy()
        return values if order is None else values[order]

    ts = column("_ts")
    label = column("_label")
    codes = {c: column(f"_code_{c}") for c in CODED if f"_code_{c}" in rows.column_names}
    account = codes.pop("account_id")
    amount = column("amount")
    rows = rows.drop_columns([c for c in rows.column_names if c.startswith("_")])
    computed = windows.compute(ts, account, amount, label, codes, delay_days, features.ACCOUNT_WINDOWS,
                               features.MERCHANT_WINDOWS, at=order)
    del ts, label, codes, account, amount
    for name in list(computed):
        rows = rows.append_column(name, pa.array(computed.pop(name), from_pandas=True))  # NaN is NULL
    return rows


def _remove_older(path: Path, version: int) -> None:
    """Files of versions before the previous one, and builds left half-done hours ago."""
    pattern = re.compile(r"^d(\d+)-[0-9a-f]{12}\.parquet$")
    stale = time.time() - STALE_BUILD_SECONDS
    for other in path.parent.iterdir():
        found = pattern.match(other.name)
        if found and int(found.group(1)) < version - 1:
            other.unlink(missing_ok=True)
        elif other.name.endswith(".tmp") and other.stat().st_mtime < stale:
            other.unlink(missing_ok=True)
