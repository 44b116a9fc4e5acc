"""The audit log: an append-only hash chain of who did what, and when.

Every entry stores the hash of the entry before it, and its own hash is
``sha256(prev_hash + canonical JSON of {seq, at, user, action, detail})``, so changing,
deleting or reordering any entry breaks the chain from that entry on, and :func:`verify` names
the first entry that does not fit. The first entry's previous hash is :data:`GENESIS`.

A chain alone cannot show that its last entries were cut off; the table's AUTOINCREMENT counter
(which only grows) and an optional head (seq, hash) kept elsewhere — in an evidence pack or an
exported log — close that gap. Someone who can rewrite the database file can also recompute
every hash after a change; a head kept outside the database is what proves that too.

Entries are written inside the caller's ops transaction (:func:`append`) when they describe a
change made in the same transaction, so the change and its entry commit together or not at all.
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import math
import re
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from fraudlens import ops
from fraudlens.config import Settings, settings
from fraudlens.errors import FraudLensError
from fraudlens.export import to_csv_bytes

logger = logging.getLogger(__name__)

GENESIS = "0" * 64
_ACTION_RE = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
MAX_DETAIL_BYTES = 64_000
COLUMNS = ["seq", "at", "user", "action", "detail", "prev_hash", "hash"]

# The actions FraudLens itself records (others may be added by name).
INGEST = "ingest"
TRAIN = "train"
PROPOSAL = "proposal.create"
APPROVAL = "proposal.approve"
REJECTION = "proposal.reject"
CHAMPION = "champion.change"
OPERATING_POINT = "operating_point.change"
EXPORT = "export"
UNMASK = "unmask"
ALERTS_RAISED = "alerts.raise"
ALERT_ASSIGNED = "alert.assign"
ALERT_DISPOSED = "alert.dispose"


@dataclass(frozen=True)
class Entry:
    """One audit entry as stored."""

    seq: int
    at: str
    user: str
    action: str
    detail: dict
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class Verification:
    """The result of :func:`verify`.

    ``ok`` is True when every entry fits the chain; otherwise ``first_bad_seq`` is the first
    entry that does not (for a deleted tail, the seq that is missing) and ``reason`` says why.
    """

    ok: bool
    entries: int
    first_bad_seq: int | None
    reason: str
    head_seq: int | None
    head_hash: str


def canonical(entry: dict[str, Any]) -> str:
    """The JSON text that is hashed: sorted keys, no spaces, UTF-8 kept, no NaN."""
    return json.dumps(entry, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False)


def entry_hash(prev_hash: str, seq: int, at: str, user: str, action: str, detail: dict) -> str:
    """``sha256(prev_hash + canonical JSON of the entry)`` as hex."""
    body = canonical({"seq": seq, "at": at, "user": user, "action": action, "detail": detail})
    return hashlib.sha256((prev_hash + body).encode("utf-8")).hexdigest()


def plain(value: Any) -> Any:
    """JSON-safe copy of ``value``: numpy scalars to Python, NaN to None, dates to text."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if hasattr(value, "item"):  # numpy scalar
        return plain(value.item())
    return str(value)


def _check(user: object, action: object, detail: object) -> tuple[str, str, dict]:
    if not isinstance(user, str) or not user.strip():
        raise FraudLensError(f"The 'user' parameter must be a non-empty string. Got {user!r} instead.")
    if not isinstance(action, str) or not _ACTION_RE.match(action):
        raise FraudLensError(
            "The 'action' parameter must be a lower-case dotted name such as 'alert.dispose'. "
            f"Got {action!r} instead."
        )
    if detail is None:
        detail = {}
    if not isinstance(detail, dict):
        raise FraudLensError(f"The 'detail' parameter must be a dict. Got {type(detail).__name__} instead.")
    safe = plain(detail)
    if len(canonical(safe).encode("utf-8")) > MAX_DETAIL_BYTES:
        raise FraudLensError(f"The audit detail must be at most {MAX_DETAIL_BYTES:,} bytes of JSON.")
    return user.strip(), action, safe


def append(con: sqlite3.Connection, user: str, action: str, detail: dict | None = None) -> Entry:
    """Append an entry inside the caller's open ops transaction (see ``ops.transaction``).

    The transaction holds the write lock, so the previous hash read here is still the last
    one when this entry commits.
    """
    user, action, detail = _check(user, action, detail)
    if not con.in_transaction:
        raise FraudLensError("audit.append needs an open ops transaction (use ops.transaction).")
    last = con.execute("SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1").fetchone()
    prev_hash = last[1] if last else GENESIS
    counter = con.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit'").fetchone()
    seq = (counter[0] if counter else 0) + 1
    at = ops.now()
    digest = entry_hash(prev_hash, seq, at, user, action, detail)
    con.execute(
        "INSERT INTO audit (seq, at, user, action, detail, prev_hash, hash) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (seq, at, user, action, canonical(detail), prev_hash, digest),
    )
    return Entry(seq, at, user, action, detail, prev_hash, digest)


def record(user: str, action: str, detail: dict | None = None, *, cfg: Settings | None = None) -> Entry:
    """Append one entry in its own transaction.

    Parameters
    ----------
    user : str
        Who did it (non-empty).
    action : str
        What, as a dotted name: ``ingest``, ``train``, ``proposal.create``, ``export``, ...
    detail : dict, optional
        What exactly (JSON-able; numpy values and NaN are converted). Never raw personal data.
    cfg : Settings, optional

    Returns
    -------
    Entry
    """
    cfg = cfg or settings()
    with ops.transaction(cfg.home) as con:
        entry = append(con, user, action, detail)
    logger.info("audit %d: %s by %s", entry.seq, action, entry.user)
    return entry


def _entry(row: tuple) -> Entry:
    seq, at, user, action, detail, prev_hash, digest = row
    try:
        parsed = json.loads(detail)
    except (TypeError, ValueError):
        parsed = {"unreadable": str(detail)}
    return Entry(int(seq), str(at), str(user), str(action), parsed, str(prev_hash), str(digest))


def entries(limit: int = 100, offset: int = 0, *, newest_first: bool = True, action: str | None = None,
            cfg: Settings | None = None) -> list[Entry]:
    """Entries of the log, newest first by default, optionally of one action (or prefix ``alert.``)."""
    cfg = cfg or settings()
    for name, value in (("limit", limit), ("offset", offset)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise FraudLensError(f"The '{name}' parameter must be an int >= 0. Got {value!r} instead.")
    where, params = "", []
    if action:
        where = "WHERE action = ? OR action LIKE ?"
        params = [action, action.rstrip(".") + ".%"]
    order = "DESC" if newest_first else "ASC"
    found = ops.rows(cfg.home, f"SELECT {', '.join(COLUMNS)} FROM audit {where} ORDER BY seq {order} "
                     "LIMIT ? OFFSET ?", [*params, limit, offset])
    return [_entry(r) for r in found]


def count(cfg: Settings | None = None) -> int:
    cfg = cfg or settings()
    return int(ops.rows(cfg.home, "SELECT count(*) FROM audit")[0][0])


def related(key: str, value: Any, cfg: Settings | None = None) -> list[Entry]:
    """Entries whose detail has ``key`` equal to ``value`` (e.g. ``proposal_id``), oldest first."""
    cfg = cfg or settings()
    found = ops.rows(cfg.home, f"SELECT {', '.join(COLUMNS)} FROM audit WHERE json_extract(detail, ?) = ? "
                     "ORDER BY seq", [f"$.{key}", value])
    return [_entry(r) for r in found]


def head(cfg: Settings | None = None) -> tuple[int | None, str]:
    """The last entry's (seq, hash): keep it outside the database to detect a cut-off tail."""
    cfg = cfg or settings()
    found = ops.rows(cfg.home, "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1")
    return (int(found[0][0]), str(found[0][1])) if found else (None, GENESIS)


def verify(expected_head: tuple[int, str] | None = None, cfg: Settings | None = None) -> Verification:
    """Walk the chain from the first entry and report the first one that does not fit.

    Checks, in order of seq: seq numbers run 1, 2, 3, ... without a gap; each entry's
    ``prev_hash`` is the previous entry's hash; each hash matches the entry's content; the
    counter of issued seqs equals the last seq (a deleted tail); and, if given, the last entry
    is ``expected_head`` = (seq, hash) or a later entry whose chain runs through it.

    Returns
    -------
    Verification
    """
    cfg = cfg or settings()
    with ops.reading(cfg.home) as con:
        cur = con.execute(f"SELECT {', '.join(COLUMNS)} FROM audit ORDER BY seq")
        counter = con.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit'").fetchone()
        n, prev, bad = 0, GENESIS, None
        seen: dict[int, str] = {}
        for row in cur:
            bad = _check_row(row, n + 1, prev)
            if bad is not None:
                break
            n += 1
            prev = row[6]
            if expected_head is not None and row[0] == expected_head[0]:
                seen[row[0]] = row[6]
    if bad is None:
        bad = _check_tail(n, counter[0] if counter else 0, expected_head, seen)
    head_seq = n or None
    if bad is not None:
        logger.info("audit chain broken at seq %s: %s", bad[0], bad[1])
        return Verification(False, n, bad[0], bad[1], head_seq, prev)
    return Verification(True, n, None, f"{n:,} entries, chain intact", head_seq, prev)


def _check_row(row: tuple, expected_seq: int, prev: str) -> tuple[int, str] | None:
    seq, at, user, action, detail, prev_hash, digest = row
    if seq != expected_seq:
        where = expected_seq if seq > expected_seq else seq
        return where, f"entry {expected_seq} is missing (the next entry is {seq})"
    if prev_hash != prev:
        return seq, "its previous hash is not the hash of the entry before it (deleted or reordered)"
    try:
        parsed = json.loads(detail)
        recomputed = entry_hash(prev_hash, seq, at, user, action, parsed)
    except (TypeError, ValueError):
        return seq, "its detail is not valid JSON (edited)"
    if recomputed != digest:
        return seq, "its content does not match its hash (edited)"
    return None


def _check_tail(n: int, issued: int, expected_head: tuple[int, str] | None,
                seen: dict[int, str]) -> tuple[int, str] | None:
    if issued > n:
        return n + 1, f"entries {n + 1}..{issued} were issued but are missing (deleted tail)"
    if expected_head is not None:
        seq, digest = expected_head
        if seq > n:
            return n + 1, f"the log ends at {n} but the kept head is entry {seq} (deleted tail)"
        if seen.get(seq) != digest:
            return seq, "entry differs from the kept head (rewritten)"
    return None


def frame(limit: int | None = None, cfg: Settings | None = None) -> pd.DataFrame:
    """The log as a DataFrame, oldest first (detail as JSON text), for tables and exports."""
    cfg = cfg or settings()
    sql = f"SELECT {', '.join(COLUMNS)} FROM audit ORDER BY seq"
    params: list[Any] = []
    if limit is not None:
        sql += " LIMIT ?"
        params.append(int(limit))
    return ops.frame(cfg.home, sql, params)


def export(fmt: str = "csv", cfg: Settings | None = None) -> bytes:
    """The whole log as CSV (formula-escaped) or JSON Lines, ending with its verification.

    Parameters
    ----------
    fmt : {"csv", "json"}

    Returns
    -------
    bytes
        CSV: the columns of :data:`COLUMNS`. JSON: one entry per line, then one line
        ``{"verification": {...}}`` with the head (seq, hash) to keep as an anchor.
    """
    if fmt not in ("csv", "json"):
        raise FraudLensError(f"The 'fmt' parameter must be 'csv' or 'json'. Got {fmt!r} instead.")
    cfg = cfg or settings()
    log = frame(cfg=cfg)
    if fmt == "csv":
        return to_csv_bytes(log)
    check = verify(cfg=cfg)
    out = io.StringIO()
    for row in log.itertuples(index=False):
        record = dict(zip(COLUMNS, row))
        record["seq"] = int(record["seq"])
        record["detail"] = json.loads(record["detail"])
        out.write(canonical(record) + "\n")
    out.write(canonical({"verification": {"ok": check.ok, "entries": check.entries,
                                           "first_bad_seq": check.first_bad_seq, "reason": check.reason,
                                           "head_seq": check.head_seq, "head_hash": check.head_hash}}) + "\n")
    return out.getvalue().encode("utf-8")


def write_export(out: str | Path, user: str, cfg: Settings | None = None) -> Path:
    """Write the log to ``out`` (.csv or .json) and record the export itself."""
    cfg = cfg or settings()
    out = Path(out)
    fmt = {".csv": "csv", ".json": "json", ".jsonl": "json"}.get(out.suffix.lower())
    if fmt is None:
        raise FraudLensError(f"The 'out' path must end in .csv or .json. Got '{out.name}' instead.")
    data = export(fmt, cfg)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_bytes(data)
    tmp.replace(out)
    record(user, EXPORT, {"what": "audit_log", "format": fmt, "file": out.name}, cfg=cfg)
    return out
