"""DuckDB: the only module that opens it.

One in-memory connection per process and data directory, with a view per dataset over the
Parquet parts its manifest lists. Every query takes its own ``cursor()`` because a DuckDB
connection shared between threads mixes results up or fails with "connection is busy".
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import Any

import duckdb

from fraudlens import datasets
from fraudlens.config import Settings, settings
from fraudlens.errors import DatasetError, QueryError
from fraudlens.schema import check_dataset_name, quote_ident

logger = logging.getLogger(__name__)

# Callers catch this instead of importing duckdb themselves (only this module opens DuckDB).
DatabaseError = duckdb.Error

_STORES: dict[Path, "Store"] = {}
_STORES_LOCK = threading.Lock()


def connect(
    cfg: Settings, *, readable: list[Path] | None = None, memory_limit: str | None = None
) -> duckdb.DuckDBPyConnection:
    """A new in-memory connection limited to ``cfg.home`` (and ``readable`` source files).

    DuckDB's ``enable_external_access = false`` with ``allowed_directories`` keeps queries
    from reading or writing outside the data directory.
    """
    home = Path(cfg.home)
    home.mkdir(parents=True, exist_ok=True)
    tmp = home / ".tmp"
    tmp.mkdir(exist_ok=True)
    con = duckdb.connect(
        ":memory:",
        config={
            "memory_limit": memory_limit or cfg.memory_limit,
            "threads": cfg.threads,
            "temp_directory": str(tmp),
            "preserve_insertion_order": True,
        },
    )
    # GLOBAL: a cursor() is a new session and would otherwise fall back to the machine's zone.
    con.execute("SET GLOBAL TimeZone = $tz", {"tz": cfg.timezone})
    con.execute("SET enable_progress_bar = false")
    allowed_dirs = [str(home) + "/"]
    allowed_files = [str(Path(p).resolve()) for p in readable or []]
    con.execute("SET allowed_directories = $dirs", {"dirs": allowed_dirs})
    if allowed_files:
        con.execute("SET allowed_paths = $paths", {"paths": allowed_files})
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def view_name(dataset: str) -> str:
    return quote_ident(f"tx_{check_dataset_name(dataset)}")


class Store:
    """Views over the datasets of one data directory, queried through per-call cursors."""

    def __init__(self, cfg: Settings | None = None):
        self.cfg = cfg or settings()
        self.home = Path(self.cfg.home)
        self._con = connect(self.cfg)
        self._versions: dict[str, int] = {}
        self._lock = threading.Lock()

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self._con.cursor()

    def table(self, dataset: str) -> str:
        """The quoted view name of ``dataset``, refreshed if its manifest moved on."""
        for attempt in (1, 2, 3):
            info = datasets.read(self.home, dataset)
            with self._lock:
                if self._versions.get(dataset) == info.version:
                    break
                try:
                    self._create_view(info)
                except duckdb.IOException as exc:
                    # A replace removed these parts after we read the manifest: read it again.
                    if attempt == 3:
                        raise QueryError(f"view {dataset}", None, exc) from exc
                    continue
                self._versions[dataset] = info.version
                break
        return view_name(dataset)

    def _refresh_views(self) -> None:
        for dataset in list(self._versions):
            try:
                self.table(dataset)
            except DatasetError:
                continue

    def _create_view(self, info: datasets.DatasetInfo) -> None:
        files = [str(p) for p in datasets.part_paths(self.home, info)]
        cur = self._con.cursor()
        try:
            # A view's text cannot take bound parameters; the paths come from our own manifest.
            listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
            cur.execute(
                f"CREATE OR REPLACE VIEW {view_name(info.name)} AS "
                f"SELECT * FROM read_parquet([{listing}], union_by_name = true)"
            )
        finally:
            cur.close()
        logger.debug("view for %s at version %d over %d parts", info.name, info.version, len(files))

    def query(self, name: str, sql: str, params: dict[str, Any] | None = None):
        """Run ``sql`` with bound ``params`` and return a pandas DataFrame."""
        return self._run(name, sql, params, lambda rel: rel.df())

    def query_arrow(self, name: str, sql: str, params: dict[str, Any] | None = None):
        # Through a relation: Arrow from an execute() result costs an extra copy of the rows.
        return self._run(name, sql, params, lambda rel: rel.to_arrow_table(), relation=True)

    def query_rows(self, name: str, sql: str, params: dict[str, Any] | None = None) -> list[tuple]:
        return self._run(name, sql, params, lambda rel: rel.fetchall())

    def query_batches(self, name: str, sql: str, params: dict[str, Any] | None = None,
                      rows: int = 250_000):
        """Yield the result as pyarrow RecordBatches of at most ``rows`` rows (bounded memory)."""
        cur = self.cursor()
        try:
            reader = cur.sql(sql, params=params or {}).to_arrow_reader(rows)
            yield from reader
        except duckdb.Error as exc:
            raise QueryError(name, params, exc) from exc
        finally:
            cur.close()

    def _run(self, name, sql, params, fetch, relation: bool = False):
        started = time.perf_counter()
        for attempt in (1, 2):
            cur = self.cursor()
            try:
                source = cur.sql(sql, params=params or {}) if relation else cur.execute(sql, params or {})
                result = fetch(source)
                break
            except duckdb.IOException as exc:
                # A replace swapped the manifest and removed the parts this view was reading:
                # rebuild the views from the manifests and run the query once more.
                if attempt == 2:
                    raise QueryError(name, params, exc) from exc
                self._refresh_views()
            except duckdb.Error as exc:
                raise QueryError(name, params, exc) from exc
            finally:
                cur.close()
        logger.debug("query %s took %.1f ms", name, 1000 * (time.perf_counter() - started))
        return result

    def close(self) -> None:
        self._con.close()


def get_store(cfg: Settings | None = None) -> Store:
    """The process-wide store for ``cfg.home`` (one connection per data directory)."""
    cfg = cfg or settings()
    key = Path(cfg.home).resolve()
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:
            store = _STORES[key] = Store(cfg)
        return store
