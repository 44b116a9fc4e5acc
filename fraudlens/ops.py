"""The operational store: what people change (alerts, dispositions, labels, proposals, audit).

Transactions are immutable Parquet; decisions about them live in one SQLite database,
``<home>/ops.sqlite``, that the app and the command line can write at the same time:

- WAL journal with ``synchronous=FULL``: a committed transaction survives a crash or a killed
  process, readers never block the writer, and a killed writer loses only its open transaction;
- one connection per call (or thread), never shared; every write runs inside
  :func:`transaction`, which takes the write lock up front (``BEGIN IMMEDIATE``) so a
  read-then-write (the audit chain's previous hash) cannot interleave with another writer;
- the schema is migrated by the ``user_version`` pragma when a connection is opened.

DuckDB never opens this file. Queries that need both sides read the small tables here
(:func:`frame`, :func:`arrow`) and pass them to the store as bound list parameters.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from fraudlens.errors import FraudLensError

logger = logging.getLogger(__name__)

OPS_FILE = "ops.sqlite"
BUSY_TIMEOUT_MS = 15_000

ALERT_STATUSES = ("open", "confirmed_fraud", "false_positive", "needs_info")
DISPOSITIONS = ("confirmed_fraud", "false_positive", "needs_info")
ALERT_SOURCES = ("threshold", "below_the_line")
PROPOSAL_KINDS = ("operating_point", "champion")
PROPOSAL_STATUSES = ("pending", "approved", "rejected")


def _in(values: Sequence[str]) -> str:
    return "(" + ", ".join("'" + v + "'" for v in values) + ")"


# Each entry moves the schema from version i to i + 1; never edit one that has shipped.
MIGRATIONS: tuple[str, ...] = (
    f"""
    CREATE TABLE alert_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        dataset TEXT NOT NULL,
        model TEXT NOT NULL,
        version INTEGER NOT NULL,
        threshold REAL NOT NULL,
        sample_rate REAL NOT NULL,
        scope TEXT NOT NULL,
        scored INTEGER NOT NULL,
        above INTEGER NOT NULL,
        below INTEGER NOT NULL,
        alerts_created INTEGER NOT NULL,
        sampled INTEGER NOT NULL,
        skipped_existing INTEGER NOT NULL,
        first_ts TEXT,
        last_ts TEXT,
        user TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        run_id INTEGER REFERENCES alert_runs(id),
        dataset TEXT NOT NULL,
        transaction_id TEXT NOT NULL,
        transaction_datetime TEXT,
        model TEXT NOT NULL,
        version INTEGER NOT NULL,
        score REAL NOT NULL,
        threshold REAL NOT NULL,
        amount REAL,
        expected_loss REAL,
        reasons TEXT,
        status TEXT NOT NULL DEFAULT 'open' CHECK (status IN {_in(ALERT_STATUSES)}),
        assignee TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        source TEXT NOT NULL CHECK (source IN {_in(ALERT_SOURCES)}),
        sample_rate REAL,
        UNIQUE (dataset, transaction_id)
    );
    CREATE INDEX alerts_by_loss ON alerts (status, expected_loss DESC, id);
    CREATE INDEX alerts_by_score ON alerts (status, score DESC, id);
    CREATE INDEX alerts_by_run ON alerts (run_id);
    CREATE TABLE dispositions (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        alert_id INTEGER NOT NULL REFERENCES alerts(id),
        disposition TEXT NOT NULL CHECK (disposition IN {_in(DISPOSITIONS)}),
        comment TEXT NOT NULL,
        user TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX dispositions_by_alert ON dispositions (alert_id, id);
    CREATE TABLE labels (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        dataset TEXT NOT NULL,
        transaction_id TEXT NOT NULL,
        label INTEGER CHECK (label IN (0, 1)),
        source TEXT NOT NULL,
        user TEXT NOT NULL,
        at TEXT NOT NULL
    );
    CREATE INDEX labels_latest ON labels (dataset, transaction_id, id);
    CREATE TABLE proposals (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL CHECK (kind IN {_in(PROPOSAL_KINDS)}),
        model TEXT NOT NULL,
        version INTEGER NOT NULL,
        payload TEXT NOT NULL,
        comment TEXT NOT NULL,
        proposed_by TEXT NOT NULL,
        proposed_at TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN {_in(PROPOSAL_STATUSES)}),
        decided_by TEXT,
        decided_at TEXT,
        decision_comment TEXT
    );
    CREATE TABLE audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        at TEXT NOT NULL,
        user TEXT NOT NULL,
        action TEXT NOT NULL,
        detail TEXT NOT NULL,
        prev_hash TEXT NOT NULL,
        hash TEXT NOT NULL
    );
    """,
)
SCHEMA_VERSION = len(MIGRATIONS)


class OpsError(FraudLensError):
    """The operational store cannot be opened or written (locked too long, corrupt, too new)."""


def now() -> str:
    """The current UTC time as ISO 8601 with microseconds (sorts as text)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def path(home: str | Path) -> Path:
    """``<home>/ops.sqlite``."""
    return Path(home) / OPS_FILE


def connect(home: str | Path) -> sqlite3.Connection:
    """A new connection to ``<home>/ops.sqlite`` with the schema migrated; the caller closes it.

    Autocommit mode (``isolation_level=None``): reads see the latest commit, and writes happen
    only inside :func:`transaction`.
    """
    target = path(home)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = sqlite3.connect(target, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                              check_same_thread=True)
    except sqlite3.Error as exc:
        raise OpsError(f"The operational store {target} cannot be opened ({exc}).") from exc
    try:
        con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = FULL")
        con.execute("PRAGMA foreign_keys = ON")
        _migrate(con, target)
    except sqlite3.Error as exc:
        con.close()
        raise OpsError(f"The operational store {target} cannot be used ({exc}).") from exc
    except OpsError:
        con.close()
        raise
    return con


def _migrate(con: sqlite3.Connection, target: Path) -> None:
    current = con.execute("PRAGMA user_version").fetchone()[0]
    if current == SCHEMA_VERSION:
        return
    if current > SCHEMA_VERSION:
        raise OpsError(
            f"The operational store {target} has schema version {current}, newer than this "
            f"FraudLens ({SCHEMA_VERSION}). Upgrade FraudLens."
        )
    con.execute("BEGIN IMMEDIATE")
    try:
        # Another process may have migrated while we waited for the lock.
        current = con.execute("PRAGMA user_version").fetchone()[0]
        for number in range(current, SCHEMA_VERSION):
            for statement in _statements(MIGRATIONS[number]):
                con.execute(statement)
            con.execute(f"PRAGMA user_version = {number + 1}")
            logger.info("operational store migrated to schema version %d", number + 1)
        con.execute("COMMIT")
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise


def _statements(script: str) -> list[str]:
    """The statements of a migration (executescript would commit on its own)."""
    return [s.strip() for s in script.split(";") if s.strip()]


@contextmanager
def transaction(home: str | Path) -> Iterator[sqlite3.Connection]:
    """A connection inside ``BEGIN IMMEDIATE``: committed on success, rolled back on error.

    The write lock is taken at the start, so everything read inside sees no concurrent write.
    """
    con = connect(home)
    started = time.perf_counter()
    try:
        try:
            con.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise OpsError(
                f"The operational store is busy (another writer held it for more than "
                f"{BUSY_TIMEOUT_MS / 1000:.0f} s): {exc}. Try again."
            ) from exc
        try:
            yield con
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        logger.debug("ops transaction took %.1f ms", 1000 * (time.perf_counter() - started))
    finally:
        con.close()


@contextmanager
def reading(home: str | Path) -> Iterator[sqlite3.Connection]:
    """A connection for reads (autocommit; each statement sees the latest commit)."""
    con = connect(home)
    try:
        yield con
    finally:
        con.close()


def rows(home: str | Path, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[tuple]:
    """All rows of a read query with bound ``params``."""
    with reading(home) as con:
        return con.execute(sql, params).fetchall()


def frame(home: str | Path, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> pd.DataFrame:
    """A read query as a pandas DataFrame (columns named as in the query)."""
    with reading(home) as con:
        cur = con.execute(sql, params)
        names = [d[0] for d in cur.description]
        return pd.DataFrame.from_records(cur.fetchall(), columns=names)


def arrow(home: str | Path, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> pa.Table:
    """A read query as a pyarrow Table."""
    return pa.Table.from_pandas(frame(home, sql, params), preserve_index=False)


def integrity_check(home: str | Path) -> list[str]:
    """SQLite's ``PRAGMA integrity_check``: ``["ok"]`` when the file is sound."""
    return [r[0] for r in rows(home, "PRAGMA integrity_check")]


# ---------------------------------------------------------------------------------------------
# Labels set by people (dispositions, chargebacks): the latest per transaction wins

LABEL_COLUMN = "fraudulent_activity"
_LATEST_LABELS = (
    "SELECT transaction_id, label, source, user, at FROM labels l WHERE dataset = ? AND id = "
    "(SELECT max(id) FROM labels m WHERE m.dataset = l.dataset AND m.transaction_id = l.transaction_id)"
)


def effective_labels(home: str | Path, dataset: str) -> pd.DataFrame:
    """The labels this store sets for ``dataset``: the latest per transaction.

    Returns
    -------
    DataFrame with columns transaction_id (str), label (bool), source, user, at
        A withdrawn label (latest row NULL) is left out: the dataset's own label applies.
    """
    found = frame(home, _LATEST_LABELS, [dataset])
    found = found[found["label"].notna()].reset_index(drop=True)
    found["label"] = found["label"].astype(bool)
    found["transaction_id"] = found["transaction_id"].astype(str)
    return found


def apply_labels(rows: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``rows`` whose ``fraudulent_activity`` is overridden by ``labels``.

    Parameters
    ----------
    rows : DataFrame with transaction_id (and usually fraudulent_activity)
    labels : DataFrame from :func:`effective_labels`

    Returns
    -------
    DataFrame
        Same rows and columns; the label is the stored one where there is one, else the row's.
    """
    out = rows.copy()
    if labels.empty:
        return out
    override = out["transaction_id"].astype(str).map(dict(zip(labels["transaction_id"], labels["label"])))
    if LABEL_COLUMN in out.columns:
        current = out[LABEL_COLUMN].astype("boolean")
    else:
        current = pd.Series(pd.NA, index=out.index, dtype="boolean")
    out[LABEL_COLUMN] = override.astype("boolean").fillna(current)
    return out

