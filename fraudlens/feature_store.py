"""Features of every row, computed once per dataset version and feature spec, kept as Parquet.

At 10M rows the features take minutes and gigabytes; scoring, monitoring, global importance
and single explanations read them from here instead of computing them again. DuckDB writes
the file straight to Parquet (never through pandas) on its own connection with its own memory
limit, spilling to disk past it, so memory stays bounded. The file is in time order with small
row groups: a date range, or one transaction's timestamp, reads only the row groups holding it.

Files live in ``<home>/.features/<dataset>/d<version>-<key>.parquet``. The key hashes the spec,
the feature SQL and the dataset's part files, so a change of code, or a dataset deleted and made
again, never reads an old file. Building one keeps the previous version's file (a reader may
still hold its path) and removes older ones.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import threading
import time
import uuid
from pathlib import Path

from fraudlens import datasets
from fraudlens.errors import QueryError
from fraudlens.features import FeatureSpec, features_sql
from fraudlens.store import Store

logger = logging.getLogger(__name__)

FEATURES_DIR = ".features"
ROW_GROUP_ROWS = 16_384  # one explanation reads one row group: at 10M rows 16k reads faster than 8k
DEFAULT_MEMORY = "2500MB"
STALE_BUILD_SECONDS = 6 * 3600  # a build's temporary file older than this was left by a killed process
_locks: dict[Path, threading.Lock] = {}
_locks_guard = threading.Lock()


def file_key(spec: FeatureSpec, info: datasets.DatasetInfo) -> str:
    text = json.dumps({"spec": spec.to_dict(), "sql": features_sql("source", spec), "files": list(info.files)},
                      sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


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

    Columns are those of :func:`fraudlens.features.features_sql`, in time order.
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


def remove(home: Path, dataset: str) -> None:
    shutil.rmtree(folder(home, dataset), ignore_errors=True)


def _lock_for(path: Path) -> threading.Lock:
    with _locks_guard:
        return _locks.setdefault(path, threading.Lock())


def _memory_limit() -> str:
    return os.environ.get("FRAUDLENS_FEATURE_MEMORY", DEFAULT_MEMORY)


def _build(store: Store, info: datasets.DatasetInfo, spec: FeatureSpec, path: Path) -> None:
    started = time.perf_counter()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}-{uuid.uuid4().hex[:8]}.tmp")
    try:
        store.write_parquet(f"features of {info.name}", info, lambda view: features_sql(view, spec), tmp,
                            memory_limit=_memory_limit(), row_group_rows=ROW_GROUP_ROWS)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())  # on disk before it gets its name: a crash leaves no torn file
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _remove_older(path, info.version)
    logger.info("features of %s v%d (%d rows) written in %.1f s", info.name, info.version, info.rows,
                time.perf_counter() - started)


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
