"""DuckDB: the only module that opens it.

One in-memory connection per process and data directory, with a view per dataset over the
Parquet parts its manifest lists. Every query takes its own ``cursor()`` because a DuckDB
connection shared between threads mixes results up or fails with "connection is busy".

Aggregates run on an analytics table: a compressed DuckDB copy of the columns they read, built
on first use for the dataset's current version, kept in a file under ``<home>/.hot/`` and
attached read-only, so a restarted app (or a second process) opens it instead of building it
again. Reading it is several times faster than reading Parquet; low-variety text is ENUM.
Callers may add derived columns (name -> SQL over the view's columns) computed once at build,
so aggregates read a value instead of computing it for every row of every query. Beside the
table, rollups hold its row counts and amount sums per group of the keys the dashboard filters and
groups on, for aggregates that need no single row.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import queue
import re
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

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

# What the aggregates read; the analytics table holds those of them the dataset has.
ANALYTICS_COLUMNS = (
    "transaction_datetime", "transaction_amount", "fraudulent_activity", "channel",
    "transaction_type", "merchant_location", "account_type", "merchant_id", "account_id",
    "transaction_id",
    # The rest of a transactions page's columns, so a page never reads the Parquet parts (rows
    # sorted by amount lie in most row groups: reading them cost ~0.5 s at 10M rows).
    "ip_address", "account_balance", "account_age_days",
)
# Text with at most this many distinct values is stored as ENUM (2 bytes a value at most);
# ids with more stay VARCHAR, which the compressed catalog stores as a dictionary.
ENUM_MAX_VALUES = 65_535
# Account and merchant ids are ENUMs up to this many values (4 bytes a value): grouping by them
# then groups integers, not strings (top accounts at 10M rows: ~4x faster).
ID_ENUM_COLUMNS = ("account_id", "merchant_id")
ID_ENUM_MAX_VALUES = 4_000_000
HOT_DIR = ".hot"
# Bump when the analytics table's layout changes: files of another format are built again.
HOT_FORMAT = 5
# The table is built (and compressed) this many rows at a time: a table is held uncompressed
# until its checkpoint, and built whole at 10M rows that doubled the process's resident memory.
HOT_CHUNK_ROWS = 2_000_000
# Beside it, its labelled-fraud rows (under 1% of rows): rankings by fraud amount read those.
FRAUD_ROWS = "frauds"
# And every row again, largest amount first: a page sorted by amount then reads a few row groups
# (their min/max skip the rest) instead of every row (at 10M rows: 3 ms against 90-260 ms).
BY_AMOUNT = "by_amount"
ROLLUP_ROWS, ROLLUP_AMOUNT = "row_count", "amount_sum"
# Each amount bin's smallest and largest amount: amount bounds take the bins wholly inside them
# from a rollup, and only the other bins' rows from BY_AMOUNT.
AMOUNT_BINS = "amount_bins"


class Rollup(NamedTuple):
    """The rows counted, and their amounts summed, per group of ``keys``; ``table`` and
    ``groups`` belong to a built one."""

    keys: tuple[str, ...]
    table: str = ""
    groups: int = 0


# Built with the analytics table when it has every key (local calendar values come from the
# derived columns). At 10M rows they hold 0.2-2M groups and take a few seconds to build; an
# aggregate reads 5-50x fewer rows from them.
_BY_DAY = ("local_date", "channel", "transaction_type", "merchant_location", "fraudulent_activity")
ROLLUPS = {
    "rollup_hour": Rollup((*_BY_DAY, "local_hour", "local_weekday", "account_type")),
    "rollup_amount": Rollup((*_BY_DAY, "local_weekday", "amount_bin")),
    # Without the account type: 1.8M groups at 10M rows, not 3.3M.
    "rollup_hour_amount": Rollup((*_BY_DAY, "local_hour", "local_weekday", "amount_bin")),
}
# The rows of the merchants (accounts) with a labelled fraud, the only ones a ranking by fraud
# amount can name, with the columns filters read and the id's ENUM code as a plain integer,
# sorted by it: a list of codes then skips most row groups (the top 20's counts at 10M rows:
# ~7 ms, against ~80 ms from every row and 17-34 ms from rollups by id), whatever the filters.
ENTITY_ROWS = {"merchant_id": "rows_merchant_id", "account_id": "rows_account_id"}
ENTITY_CODE = "entity_code"
_ENTITY_ROW_COLUMNS = ("transaction_datetime", "transaction_amount", "fraudulent_activity", "channel",
                       "transaction_type", "merchant_location")


def connect(
    cfg: Settings, *, readable: list[Path] | None = None, memory_limit: str | None = None,
    threads: int | None = None, options: dict | None = None,
) -> duckdb.DuckDBPyConnection:
    """A new in-memory connection limited to ``cfg.home`` (and ``readable`` source files).

    ``options`` are further DuckDB settings, fixed for the connection's life.

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
            "threads": threads or cfg.threads,
            "temp_directory": str(tmp),
            "preserve_insertion_order": True,
            **(options or {}),
        },
    )
    # GLOBAL: a cursor() is a new session and would otherwise fall back to the machine's zone.
    con.execute("SET GLOBAL TimeZone = $tz", {"tz": cfg.timezone})
    con.execute("SET enable_progress_bar = false")
    # Parsing a large file's footer (hundreds of row groups) costs tens of ms a query; our files
    # never change in place (new versions get new names), so cached footers stay right.
    con.execute("SET GLOBAL parquet_metadata_cache = true")  # GLOBAL: cursors are sessions of their own
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


def hot_catalog(dataset: str, version: int) -> str:
    """The attached database holding the analytics table of one version of ``dataset``."""
    return quote_ident(f"hot_{check_dataset_name(dataset)}_v{int(version)}")


def _hot_base(dataset: str, version: int) -> str:
    return f"a_{check_dataset_name(dataset)}_v{int(version)}"


def hot_name(dataset: str, version: int, column: str | None = None) -> str:
    """The analytics table of one version of ``dataset`` (or the ENUM type of its ``column``)."""
    name = _hot_base(dataset, version) + (f"_{column}" if column else "")
    return f"{hot_catalog(dataset, version)}.main.{quote_ident(name)}"


def hot_layout() -> str:
    """What the analytics table's file holds and how, as text: a file built another way is built again."""
    return json.dumps([HOT_FORMAT, ANALYTICS_COLUMNS, ENUM_MAX_VALUES, ID_ENUM_MAX_VALUES, sorted(ROLLUPS.items()),
                       ENTITY_ROWS, _ENTITY_ROW_COLUMNS])


def hot_path(home: Path, info: datasets.DatasetInfo, derived: Mapping[str, str]) -> Path:
    """The file of ``info``'s analytics table with ``derived`` columns. The key covers the parts,
    since a dataset deleted and made again restarts its versions."""
    key = json.dumps([hot_layout(), list(info.files), sorted(derived.items())])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(home) / HOT_DIR / check_dataset_name(info.name) / f"v{int(info.version)}-{digest}.duckdb"


def remove_hot(home: Path, dataset: str) -> None:
    """Delete the analytics table files of ``dataset`` (processes that attached one keep it open)."""
    shutil.rmtree(Path(home) / HOT_DIR / check_dataset_name(dataset), ignore_errors=True)


@dataclass(frozen=True)
class _Hot:
    """Whether the analytics table of one dataset version is built (else: use the view)."""

    version: int
    built: bool
    # The version's part files: a dataset deleted and made again restarts its versions, so the
    # number alone does not say which rows the table holds.
    files: tuple[str, ...] = ()
    derived: tuple[tuple[str, str], ...] = ()  # (name, SQL) of the columns added at build
    enums: tuple[str, ...] = ()  # the columns stored as ENUM
    rollups: tuple[Rollup, ...] = ()
    amount_bins: tuple[tuple[int, float, float], ...] = ()
    entity_rows: tuple[str, ...] = ()  # the columns of ENTITY_ROWS built
    # column -> its ENUM values in code order, read when first asked for; dropped with the record,
    # so a dataset made again (its versions restart) never sees the old table's values
    enum_values: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False)


class Store:
    """Views over the datasets of one data directory, queried through per-call cursors."""

    def __init__(self, cfg: Settings | None = None):
        self.cfg = cfg or settings()
        self.home = Path(self.cfg.home)
        self._con = connect(self.cfg)
        self._versions: dict[str, int] = {}
        self._parts: dict[str, tuple[str, ...]] = {}  # a dataset deleted and made again restarts its versions
        self._hot: dict[str, _Hot] = {}
        self._lock = threading.Lock()  # guards _versions, _hot and view changes
        self._build_lock = threading.Lock()  # one analytics table built at a time

    def cursor(self) -> duckdb.DuckDBPyConnection:
        return self._con.cursor()

    def table(self, dataset: str) -> str:
        """The quoted view name of ``dataset``, refreshed if its manifest moved on."""
        for attempt in (1, 2, 3):
            info = datasets.read(self.home, dataset)
            with self._lock:
                if self._shows(dataset, info.version, tuple(info.files)):
                    break
                # Read again under the lock: a read taken before another thread moved the view
                # on would otherwise move it back to an older version.
                info = datasets.read(self.home, dataset)
                if self._shows(dataset, info.version, tuple(info.files)):
                    break
                try:
                    self._create_view(info)
                except duckdb.IOException as exc:
                    # A replace removed these parts after we read the manifest: read it again.
                    if attempt == 3:
                        raise QueryError(f"view {dataset}", None, exc) from exc
                    continue
                self._versions[dataset] = info.version
                self._parts[dataset] = tuple(info.files)
                self._drop_hot(dataset)
                break
        return view_name(dataset)

    def analytics_table(self, dataset: str, derived: Mapping[str, str] | None = None) -> str:
        """The dataset's analytics table, built now if its version has none yet.

        ``derived`` maps column names to SQL expressions over the view's columns (library SQL,
        never user input, no parameters); a table built now gets them as extra columns. A table
        already built keeps the columns it has: :meth:`derived_columns` says which.

        Falls back to the Parquet view when the table is turned off (``FRAUDLENS_HOT_ROWS=0``),
        the dataset has more rows than that setting, or building it ran out of memory.
        """
        clash = set(derived or {}) & set(ANALYTICS_COLUMNS)
        if clash:
            raise ValueError(f"derived columns {sorted(clash)} would replace stored ones")
        view = self.table(dataset)
        hot = self._current_hot(dataset)
        if hot is None:
            # Sessions asking meanwhile wait for this build rather than scan Parquet beside it: on
            # two cores those scans slow the build and are slow themselves (at 10M rows, Explore's
            # first visit after a restart took 12 s that way against 5 s waiting).
            with self._build_lock:
                hot = self._current_hot(dataset) or self._build_hot(dataset, view, dict(derived or {}))
        return hot_name(dataset, hot.version) if hot.built else view

    def derived_columns(self, dataset: str, table: str) -> dict[str, str]:
        """Name -> SQL of the derived columns ``table`` has (none for the view or an old table)."""
        hot = self._hot_of(dataset, table)
        return {} if hot is None else dict(hot.derived)

    def enum_columns(self, dataset: str, table: str) -> frozenset[str]:
        """The columns ``table`` stores as ENUM (none for the view or an old table)."""
        hot = self._hot_of(dataset, table)
        return frozenset() if hot is None else frozenset(hot.enums)

    def enum_values(self, dataset: str, table: str, column: str) -> tuple[str, ...] | None:
        """The values of ``column`` in ENUM code order when ``table`` stores it as ENUM, else None.

        A filter on several values of a column compares codes instead of text: DuckDB pushes one
        value into the scan, but evaluates a list of values row by row as text (a third slower).
        """
        hot = self._hot_of(dataset, table)
        if hot is None or column not in hot.enums:
            return None
        with self._lock:
            found = hot.enum_values.get(column)
        if found is None:
            rows = self.query_rows(f"values of {column}",
                                   f"SELECT unnest(enum_range(NULL::{hot_name(dataset, hot.version, column)}))")
            found = tuple(value for (value,) in rows)
            with self._lock:
                hot.enum_values[column] = found
        return found

    def rollups(self, dataset: str, table: str) -> tuple[Rollup, ...]:
        """The rollups of ``table`` (none for the view or an old table): see ROLLUPS."""
        hot = self._hot_of(dataset, table)
        return () if hot is None else hot.rollups

    def amount_bins(self, dataset: str, table: str) -> tuple[tuple[int, float, float], ...]:
        """(bin, smallest amount, largest amount) of each amount bin of ``table``, when it has
        rollups (see AMOUNT_BINS); else none."""
        hot = self._hot_of(dataset, table)
        return () if hot is None else hot.amount_bins

    def entity_rows(self, dataset: str, table: str, column: str) -> str | None:
        """The table of ``table``'s rows whose ``column`` has a labelled fraud, sorted by the
        column's code (see ENTITY_ROWS); None for the view, an old table or a column without one."""
        hot = self._hot_of(dataset, table)
        if hot is None or column not in hot.entity_rows:
            return None
        return hot_name(dataset, hot.version, ENTITY_ROWS[column])

    def fraud_rows(self, dataset: str, table: str) -> str:
        """The table of ``table``'s labelled-fraud rows when ``table`` is the dataset's analytics
        table, else ``table`` itself (a query then keeps its own label filter either way)."""
        return self._companion(dataset, table, FRAUD_ROWS)

    def by_amount(self, dataset: str, table: str) -> str:
        """``table``'s rows stored largest amount first when ``table`` is the dataset's analytics
        table, else ``table`` itself (same rows either way; only the speed of sorting by amount differs)."""
        return self._companion(dataset, table, BY_AMOUNT)

    def _companion(self, dataset: str, table: str, suffix: str) -> str:
        hot = self._hot_of(dataset, table)
        return table if hot is None else hot_name(dataset, hot.version, suffix)

    def query_analytics(self, name: str, dataset: str, build: Callable[[str], tuple[str, dict]],
                        rows: bool = False, derived: Mapping[str, str] | None = None):
        """Run ``build(table) -> (sql, params)`` on :meth:`analytics_table` (built with
        ``derived`` columns if it is built now): a DataFrame, or tuples if ``rows``."""
        run = self.query_rows if rows else self.query
        table = self.analytics_table(dataset, derived)
        try:
            return run(name, *build(table))
        except QueryError:
            if table == view_name(dataset) or self._is_current(dataset, table):
                raise
        # A new version dropped the table between naming it and running the query.
        return run(name, *build(self.analytics_table(dataset, derived)))

    def _hot_of(self, dataset: str, table: str) -> _Hot | None:
        """The record of ``table`` when it is the dataset's current analytics table, else None."""
        hot = self._current_hot(dataset)
        return hot if hot is not None and hot.built and hot_name(dataset, hot.version) == table else None

    def _current_hot(self, dataset: str) -> _Hot | None:
        with self._lock:
            hot = self._hot.get(dataset)
            return hot if hot and self._shows(dataset, hot.version, hot.files) else None

    def _shows(self, dataset: str, version: int, files: tuple[str, ...]) -> bool:
        """Whether the view shows this version and these parts (the caller holds ``_lock``)."""
        return version == self._versions.get(dataset) and files == self._parts.get(dataset)

    def _is_current(self, dataset: str, table: str) -> bool:
        return self._hot_of(dataset, table) is not None

    def _build_hot(self, dataset: str, view: str, derived: dict[str, str]) -> _Hot:
        info = datasets.read(self.home, dataset)
        parts = tuple(info.files)
        with self._lock:
            if not self._shows(dataset, info.version, parts):
                return _Hot(info.version, False, parts)  # moved on since table(): the view follows it
        if not 0 < info.rows <= self.cfg.hot_rows:
            logger.info("dataset %s (%d rows) is aggregated from Parquet (FRAUDLENS_HOT_ROWS=%d)",
                        dataset, info.rows, self.cfg.hot_rows)
            return self._keep(dataset, _Hot(info.version, False, parts))
        started = time.perf_counter()
        path = hot_path(self.home, info, derived)
        cur = self.cursor()
        try:
            enums = _attach_kept(cur, dataset, info.version, path)
            if enums is None:
                files = [str(f) for f in datasets.part_paths(self.home, info)]
                enums = self._create_hot(cur, dataset, info.version, view, path,
                                         sort=not _in_time_order(cur, files), derived=derived, rows=info.rows)
            rollups = _rollups_of(cur, dataset, info.version)
            bins = _amount_bins_of(cur, dataset, info.version, rollups)
            entity_rows = _entity_rows_of(cur, dataset, info.version)
        except (duckdb.OutOfMemoryException, duckdb.IOException, OSError) as exc:
            self._drop_objects(cur, dataset, info.version)
            if datasets.read(self.home, dataset).version != info.version:
                return _Hot(info.version, False, parts)  # a replace removed the parts being read
            logger.warning("could not build the analytics table of %s (%d rows), aggregating from "
                           "Parquet; lower FRAUDLENS_HOT_ROWS or raise FRAUDLENS_MEMORY_LIMIT: %s",
                           dataset, info.rows, exc)
            return self._keep(dataset, _Hot(info.version, False, parts))
        except duckdb.Error as exc:
            self._drop_objects(cur, dataset, info.version)
            raise QueryError(f"analytics table {dataset}", None, exc) from exc
        finally:
            cur.close()
        logger.info("analytics table for %s: %d rows ready in %.1f s", dataset, info.rows,
                    time.perf_counter() - started)
        return self._keep(dataset, _Hot(info.version, True, parts, tuple(sorted(derived.items())), tuple(enums),
                                        rollups, bins, entity_rows))

    def _create_hot(self, cur, dataset: str, version: int, view: str, path: Path, sort: bool,
                    derived: dict[str, str], rows: int) -> list[str]:
        """Build the table in a file of its own, then attach it read-only under ``path``."""
        path.parent.mkdir(parents=True, exist_ok=True)
        # A name of its own: another process may be building the same table right now.
        building = path.with_name(f"{path.stem}.{uuid.uuid4().hex[:8]}.tmp")
        catalog = hot_catalog(dataset, version)
        cur.execute(f"ATTACH {_literal(building)} AS {catalog}")
        try:
            enums = self._fill_hot(cur, dataset, version, view, sort, derived, rows)
            cur.execute(f"DETACH {catalog}")
            os.replace(building, path)
        finally:
            cur.execute(f"DETACH DATABASE IF EXISTS {catalog}")
            for leftover in (building, building.with_name(building.name + ".wal")):
                leftover.unlink(missing_ok=True)
        cur.execute(f"ATTACH {_literal(path)} AS {catalog} (READ_ONLY)")
        _remove_older(path, version)
        return enums

    def _fill_hot(self, cur, dataset: str, version: int, view: str, sort: bool,
                  derived: dict[str, str], rows: int) -> list[str]:
        types = {row[0]: row[1] for row in cur.execute(f"DESCRIBE {view}").fetchall()}
        columns = [c for c in ANALYTICS_COLUMNS if c in types]
        enums = _low_variety(cur, view, [c for c in columns if types[c] == "VARCHAR" and c != "transaction_id"])
        for column in enums:
            col = quote_ident(column)
            # Values in sorted order, so sorting the ENUM sorts the text.
            cur.execute(f"CREATE TYPE {hot_name(dataset, version, column)} AS ENUM "
                        f"(SELECT DISTINCT {col} FROM {view} WHERE {col} IS NOT NULL ORDER BY 1)")
        select = ", ".join(
            f"CAST({quote_ident(c)} AS {hot_name(dataset, version, c)}) AS {quote_ident(c)}"
            if c in enums else quote_ident(c) for c in columns)
        select += "".join(f", {sql} AS {quote_ident(name)}" for name, sql in sorted(derived.items()))
        # Time order keeps each row group to a short span, so date filters skip the others.
        # Parts already in time order are copied as they are: sorting adds ~0.3 GB to the
        # build's peak memory at 10M rows. Chunks are consecutive time ranges, so sorting each
        # sorts the whole.
        order = f" ORDER BY {quote_ident('transaction_datetime')}" if sort else ""
        table = hot_name(dataset, version)
        cur.execute(f"CREATE TABLE {table} AS SELECT {select} FROM {view} LIMIT 0")
        for where, params in _chunks(cur, view, rows, quote_ident("transaction_datetime")):
            cur.execute(f"INSERT INTO {table} SELECT {select} FROM {view}{where}{order}", params)
            cur.execute(f"CHECKPOINT {hot_catalog(dataset, version)}")
        cur.execute(f"CREATE TABLE {hot_name(dataset, version, FRAUD_ROWS)} AS "
                    f"SELECT * FROM {table} WHERE {quote_ident('fraudulent_activity')}")
        self._fill_by_amount(cur, dataset, version, rows)
        have = set(columns) | set(derived)
        if "amount_bin" in have:
            amount = quote_ident("transaction_amount")
            cur.execute(f"CREATE TABLE {hot_name(dataset, version, AMOUNT_BINS)} AS SELECT amount_bin, "
                        f"min({amount}) AS lowest, max({amount}) AS highest FROM {table} "
                        "WHERE amount_bin IS NOT NULL GROUP BY 1 ORDER BY 1")
        for name, rollup in ROLLUPS.items():
            if have.issuperset(rollup.keys):
                group = ", ".join(map(quote_ident, rollup.keys))
                cur.execute(f"CREATE TABLE {hot_name(dataset, version, name)} AS SELECT {group}, "
                            f"count(*) AS {ROLLUP_ROWS}, sum({quote_ident('transaction_amount')}) AS {ROLLUP_AMOUNT} "
                            f"FROM {table} GROUP BY {group} ORDER BY {group}")
        for column, name in ENTITY_ROWS.items():
            if column in enums and have.issuperset(_ENTITY_ROW_COLUMNS):
                col = quote_ident(column)
                kept = ", ".join(map(quote_ident, (*_ENTITY_ROW_COLUMNS, column)))
                cur.execute(f"CREATE TABLE {hot_name(dataset, version, name)} AS SELECT enum_code({col}) AS "
                            f"{ENTITY_CODE}, {kept} FROM {table} WHERE {col} IN (SELECT DISTINCT {col} FROM "
                            f"{hot_name(dataset, version, FRAUD_ROWS)}) ORDER BY {ENTITY_CODE}")
        return enums

    @staticmethod
    def _fill_by_amount(cur, dataset: str, version: int, rows: int) -> None:
        """The rows again, largest amount first, sorted a range of amounts at a time (sorted whole,
        10M rows took the build's peak from 0.8 to 1.9 GB). The ranges go largest first; the
        lowest one holds the rows without an amount, last."""
        table, copy = hot_name(dataset, version), hot_name(dataset, version, BY_AMOUNT)
        amount = quote_ident("transaction_amount")
        cur.execute(f"CREATE TABLE {copy} AS SELECT * FROM {table} LIMIT 0")
        for where, params in reversed(_chunks(cur, table, rows, amount)):
            cur.execute(f"INSERT INTO {copy} SELECT * FROM {table}{where} ORDER BY {amount} DESC NULLS LAST",
                        params)
            cur.execute(f"CHECKPOINT {hot_catalog(dataset, version)}")

    def _keep(self, dataset: str, hot: _Hot) -> _Hot:
        """Record ``hot`` unless the dataset moved on while it was built (then drop it)."""
        with self._lock:
            if self._shows(dataset, hot.version, hot.files):
                self._drop_hot(dataset)
                self._hot[dataset] = hot
                return hot
        if hot.built:
            cur = self.cursor()
            try:
                self._drop_objects(cur, dataset, hot.version)
            finally:
                cur.close()
        return _Hot(hot.version, False)

    def _drop_hot(self, dataset: str) -> None:
        """Forget, and drop, the dataset's analytics table (the caller holds ``_lock``)."""
        hot = self._hot.pop(dataset, None)
        if hot is None or not hot.built:
            return
        cur = self.cursor()
        try:
            self._drop_objects(cur, dataset, hot.version)
        finally:
            cur.close()
        logger.debug("dropped the analytics table of %s at version %d", dataset, hot.version)

    @staticmethod
    def _drop_objects(cur, dataset: str, version: int) -> None:
        cur.execute(f"DETACH DATABASE IF EXISTS {hot_catalog(dataset, version)}")

    def _refresh_views(self) -> None:
        for dataset in list(self._versions):
            try:
                self.table(dataset)
            except DatasetError:
                continue

    def _create_view(self, info: datasets.DatasetInfo) -> None:
        cur = self._con.cursor()
        try:
            cur.execute(f"CREATE OR REPLACE VIEW {view_name(info.name)} AS {parts_view_sql(self.home, info)}")
        finally:
            cur.close()
        logger.debug("view for %s at version %d over %d parts", info.name, info.version, len(info.files))

    @contextmanager
    def job(self, name: str, info: datasets.DatasetInfo, *, memory_limit: str, threads: int | None = None):
        """A connection of its own with the parts of ``info`` as the view ``source``.

        It has its own memory limit, past which DuckDB spills to disk, so a large job neither
        shares nor exhausts the memory the pages query with. Errors, and a file it writes that
        cannot be written, come out as QueryError.
        """
        con = connect(self.cfg, memory_limit=memory_limit, threads=threads)
        try:
            con.execute(f"CREATE VIEW source AS {parts_view_sql(self.home, info)}")
            yield con
        except (duckdb.Error, OSError) as exc:
            raise QueryError(name, None, exc) from exc
        finally:
            con.close()

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


STREAM_ROWS = 131_072  # rows per batch that stream_to_parquet hands from DuckDB to pyarrow


def stream_to_parquet(con: duckdb.DuckDBPyConnection, select: str, out: Path, row_group_rows: int,
                      dictionary: list[str], compression: str = "snappy", level: int | None = None) -> None:
    """Write the rows of ``select`` to ``out`` in their order, dictionary-encoding only the
    ``dictionary`` columns (few values in a row group).

    DuckDB computes the next batches on its threads while pyarrow encodes the last ones: at 10M
    rows, pyarrow spends half the CPU of DuckDB's own writer or less, most of the difference in
    trying dictionaries on columns of distinct values. At most three batches of about 128k rows
    are held outside DuckDB's memory limit. The query's errors come out as duckdb.Error, the
    file's as OSError; on either, the query is interrupted rather than run to its end.
    """
    import pyarrow.parquet as pq

    reader = con.sql(select).to_arrow_reader(row_group_rows * max(1, STREAM_ROWS // row_group_rows))
    batches: queue.Queue = queue.Queue(maxsize=1)
    stop = threading.Event()
    failed: list[BaseException] = []

    def produce():
        try:
            for batch in reader:
                if stop.is_set():
                    return
                batches.put(batch)
        except BaseException as exc:  # re-raised in the caller's thread
            failed.append(exc)
        finally:
            batches.put(None)

    thread = threading.Thread(target=produce, name="parquet-rows", daemon=True)
    thread.start()
    finished = False
    try:
        with pq.ParquetWriter(out, reader.schema, compression=compression, compression_level=level,
                              use_dictionary=dictionary) as writer:
            while (batch := batches.get()) is not None:
                writer.write_batch(batch, row_group_size=row_group_rows)
        finished = True
    finally:
        stop.set()
        if not finished:
            con.interrupt()
        while thread.is_alive():  # a producer blocked on a full queue must see the stop
            try:
                batches.get(timeout=0.1)
            except queue.Empty:
                pass
        thread.join()
        reader.close()
    if failed and isinstance(failed[0], Exception):
        # The query's errors reach the reader as Arrow's (OSError, ArrowInvalid): give them back their kind.
        raise duckdb.Error(str(failed[0])) from failed[0]
    if failed:
        raise failed[0]


def parts_view_sql(home: Path, info: datasets.DatasetInfo) -> str:
    """A SELECT over the Parquet parts of ``info``, for a view."""
    files = [str(p) for p in datasets.part_paths(home, info)]
    # A view's text cannot take bound parameters; the paths come from our own manifest.
    listing = ", ".join("'" + f.replace("'", "''") + "'" for f in files)
    return f"SELECT * FROM read_parquet([{listing}], union_by_name = true)"


def _literal(path: Path) -> str:
    """``path`` as an SQL string, for statements that take no bound parameter (COPY, ATTACH)."""
    return "'" + str(path).replace("'", "''") + "'"


def _attach_kept(cur, dataset: str, version: int, path: Path) -> list[str] | None:
    """Attach the table kept in ``path``: its ENUM columns, or None when there is none to use."""
    if not path.is_file():
        return None
    catalog = hot_catalog(dataset, version)
    try:
        cur.execute(f"ATTACH {_literal(path)} AS {catalog} (READ_ONLY)")
        types = {row[0] for row in cur.execute(
            "SELECT type_name FROM duckdb_types() WHERE database_name = $db",
            {"db": catalog.strip('"')}).fetchall()}
        columns = [row[0] for row in cur.execute(f"DESCRIBE {hot_name(dataset, version)}").fetchall()]
    except duckdb.Error as exc:
        logger.warning("analytics table file %s is unreadable, building it again: %s", path, exc)
        cur.execute(f"DETACH DATABASE IF EXISTS {catalog}")
        path.unlink(missing_ok=True)
        return None
    return [c for c in columns if f"{_hot_base(dataset, version)}_{c}" in types]


def _companions_of(cur, dataset: str, version: int) -> dict[str, int]:
    """Suffix -> rows of each table attached beside the analytics table of ``version``."""
    base = _hot_base(dataset, version) + "_"
    sizes = cur.execute("SELECT table_name, estimated_size FROM duckdb_tables() WHERE database_name = $db",
                        {"db": hot_catalog(dataset, version).strip('"')}).fetchall()
    return {name.removeprefix(base): int(size) for name, size in sizes if name.startswith(base)}


def _rollups_of(cur, dataset: str, version: int) -> tuple[Rollup, ...]:
    """The rollups the attached table of ``version`` has, fewest groups first."""
    sizes = _companions_of(cur, dataset, version)
    found = [rollup._replace(table=hot_name(dataset, version, name), groups=sizes[name])
             for name, rollup in ROLLUPS.items() if name in sizes]
    return tuple(sorted(found, key=lambda rollup: rollup.groups))


def _amount_bins_of(cur, dataset: str, version: int,
                    rollups: tuple[Rollup, ...]) -> tuple[tuple[int, float, float], ...]:
    """(bin, smallest, largest amount) of each bin, read from the table's AMOUNT_BINS."""
    if not rollups:
        return ()
    try:
        rows = cur.execute(f"SELECT amount_bin, lowest, highest FROM {hot_name(dataset, version, AMOUNT_BINS)} "
                           "ORDER BY 1").fetchall()
    except duckdb.CatalogException:
        return ()
    return tuple((int(b), float(low), float(high)) for b, low, high in rows)


def _entity_rows_of(cur, dataset: str, version: int) -> tuple[str, ...]:
    """The columns whose ENTITY_ROWS table the attached table of ``version`` has."""
    names = _companions_of(cur, dataset, version)
    return tuple(c for c, table in ENTITY_ROWS.items() if table in names)


def _remove_older(path: Path, version: int) -> None:
    """Drop the files of older versions, and of this one built another way (a process still
    reading one keeps it open); files other processes are building now stay."""
    for old in path.parent.iterdir():
        found = re.fullmatch(r"v(\d+)-\w+(\.\w+\.tmp(?:\.wal)?)?", old.name.removesuffix(".duckdb"))
        if old == path or not found:
            continue
        older, building = int(found.group(1)) < version, found.group(2) is not None
        if older or (int(found.group(1)) == version and not building):
            old.unlink(missing_ok=True)


def _chunks(cur, table: str, rows: int, col: str) -> list[tuple[str, dict]]:
    """WHERE clauses splitting ``table`` into ranges of the SQL ``col``, ascending, of about
    HOT_CHUNK_ROWS rows each (cut at approximate quantiles; every row falls in exactly one, and
    rows without a value in the first)."""
    count = -(-rows // HOT_CHUNK_ROWS)
    if count <= 1:
        return [("", {})]
    shares = [k / count for k in range(1, count)]
    found = cur.execute(f"SELECT approx_quantile({col}, CAST($shares AS FLOAT[])) FROM {table}",
                        {"shares": shares}).fetchone()[0]
    cuts = sorted({cut for cut in found or [] if cut is not None})
    if not cuts:
        return [("", {})]
    chunks = [(f" WHERE {col} < $hi OR {col} IS NULL", {"hi": cuts[0]})]
    chunks += [(f" WHERE {col} >= $lo AND {col} < $hi", {"lo": lo, "hi": hi}) for lo, hi in zip(cuts, cuts[1:])]
    chunks.append((f" WHERE {col} >= $lo", {"lo": cuts[-1]}))
    return chunks


def _in_time_order(cur, files: list[str]) -> bool:
    """Whether the parts, each written in time order by ingest, follow one another in time
    (from their row-group statistics; only speed, never an answer, depends on it)."""
    spans = dict((name, (low, high)) for name, low, high in cur.execute(
        "SELECT file_name, min(TRY_CAST(stats_min_value AS TIMESTAMP)), "
        "max(TRY_CAST(stats_max_value AS TIMESTAMP)) FROM parquet_metadata($files) "
        "WHERE path_in_schema = 'transaction_datetime' GROUP BY 1", {"files": files}).fetchall())
    ordered = [spans.get(f, (None, None)) for f in files]
    if any(low is None or high is None for low, high in ordered):
        return False
    return all(before[1] <= after[0] for before, after in zip(ordered, ordered[1:]))


def _low_variety(cur, view: str, text: list[str]) -> list[str]:
    """The ``text`` columns with at most ENUM_MAX_VALUES (ids: ID_ENUM_MAX_VALUES) distinct values
    (estimated)."""
    if not text:
        return []
    counts = cur.execute("SELECT " + ", ".join(
        f"approx_count_distinct({quote_ident(c)})" for c in text) + f" FROM {view}").fetchall()[0]
    return [c for c, n in zip(text, counts)
            if 0 < n <= (ID_ENUM_MAX_VALUES if c in ID_ENUM_COLUMNS else ENUM_MAX_VALUES)]


def get_store(cfg: Settings | None = None) -> Store:
    """The process-wide store for ``cfg.home`` (one connection per data directory)."""
    cfg = cfg or settings()
    key = Path(cfg.home).resolve()
    with _STORES_LOCK:
        store = _STORES.get(key)
        if store is None:
            store = _STORES[key] = Store(cfg)
        return store
