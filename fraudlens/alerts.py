"""The alert queue: scoring raises alerts, analysts dispose of them, dispositions become labels.

- :func:`raise_alerts` scores a dataset (a date range, a newly appended ingest batch, or all of
  it) with a model version at a threshold (by default the version's live operating point), and
  creates one alert per transaction scoring at or above it, with reason codes. A random
  *below-the-line* sample of the transactions under the threshold is queued as well, so the
  fraud the threshold misses can be estimated (:func:`estimate_missed`). Transactions that
  already have an alert are skipped.
- :func:`queue` pages through the alerts with filters; :func:`assign`, :func:`dispose` and
  :func:`bulk_dispose` change them. A disposition writes a label (confirmed fraud -> True,
  false positive -> False, needs information -> none) and an audit entry in the same
  transaction.
- Labels from dispositions override the dataset's ``fraudulent_activity`` at query time
  (:mod:`fraudlens.labels`); the Parquet files are never rewritten. What the threshold misses is
  estimated from the below-the-line sample (:mod:`fraudlens.missed`). Both modules' public
  functions are importable from here too, for the Alerts and Monitoring pages.

Reason codes are computed for the first ``explain_top`` alerts in queue order when they are
raised (one batched contribution call), and for the others when first opened
(:func:`alert_reasons`).
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from fraudlens import audit, datasets, explain, feature_store, locks, operating, ops, registry
from fraudlens import features as feats
from fraudlens.config import Settings, settings
from fraudlens.errors import FraudLensError
from fraudlens.labels import (  # noqa: F401 - re-exported for the Alerts page
    apply_effective_labels,
    effective_label,
    effective_labels,
    labels_overlay_sql,
    set_label,
)
from fraudlens.missed import MissedEstimate, estimate_missed, wilson_interval  # noqa: F401 - re-exported
from fraudlens.schema import check_dataset_name, quote_ident
from fraudlens.store import Store, get_store

logger = logging.getLogger(__name__)

DEFAULT_SAMPLE_RATE = 0.005
EXPLAIN_TOP = 200
MAX_ALERTS = 100_000
MAX_PAGE = 1_000
ORDERS = {
    "expected_loss": "expected_loss DESC, id",
    "score": "score DESC, id",
    "amount": "amount DESC, id",
    "newest": "transaction_datetime DESC, id DESC",
    "created_at": "id DESC",
}
RAISE_ORDERS = ("expected_loss", "score")
LABEL_OF = {"confirmed_fraud": 1, "false_positive": 0}
CLOSED = tuple(LABEL_OF)  # final dispositions; "needs_info" stays workable
ALERT_COLUMNS = ("id", "run_id", "dataset", "transaction_id", "transaction_datetime", "model", "version",
                 "score", "threshold", "amount", "expected_loss", "reasons", "status", "assignee",
                 "created_at", "updated_at", "source", "sample_rate")


@dataclass(frozen=True)
class RaiseResult:
    """What one :func:`raise_alerts` run did.

    ``scored`` counts the transactions of the scope without an earlier alert; ``above`` of them
    scored at or above ``threshold`` (each got an alert unless another writer raced us:
    ``alerts_created``), ``below`` under it, of which ``sampled`` were queued below the line.
    """

    run_id: int
    dataset: str
    model: str
    version: int
    threshold: float
    sample_rate: float
    scope: str
    scored: int
    above: int
    below: int
    alerts_created: int
    sampled: int
    skipped_existing: int
    explained: int
    seconds: float


@dataclass(frozen=True)
class Queue:
    """One page of the alert queue: ``rows`` (at most ``limit``), ``total`` matching alerts."""

    rows: pd.DataFrame
    total: int
    limit: int
    offset: int

    @property
    def truncated(self) -> bool:
        return self.offset + len(self.rows) < self.total


@dataclass(frozen=True)
class Alert:
    """One alert; ``dispositions`` has id, disposition, comment, user, at (oldest first)."""

    id: int
    dataset: str
    transaction_id: str
    transaction_datetime: str | None
    model: str
    version: int
    score: float
    threshold: float
    amount: float | None
    expected_loss: float | None
    reasons: list[str] | None
    status: str
    assignee: str | None
    created_at: str
    updated_at: str
    source: str
    sample_rate: float | None
    dispositions: pd.DataFrame


# ---------------------------------------------------------------------------------------------
# Checks


def _check_text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FraudLensError(f"The '{name}' parameter must be a non-empty string. Got {value!r} instead.")
    return value.strip()


def _check_rate(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= float(value) <= 1:
        raise FraudLensError(f"The '{name}' parameter must be a float in [0, 1]. Got {value!r} instead.")
    return float(value)


def _check_int(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or not low <= int(value) <= high:
        raise FraudLensError(f"The '{name}' parameter must be an int in [{low}, {high}]. Got {value!r} instead.")
    return int(value)


def _check_choice(value: object, name: str, choices: Sequence[str]) -> str:
    if value not in choices:
        raise FraudLensError(f"The '{name}' parameter must be one of {list(choices)}. Got {value!r} instead.")
    return str(value)


def _check_ids(ids: object) -> list[int]:
    if isinstance(ids, (int, np.integer)) and not isinstance(ids, bool):
        ids = [ids]
    if not isinstance(ids, (list, tuple, np.ndarray, pd.Series)) or len(ids) == 0:
        raise FraudLensError(f"Give one or more alert ids. Got {ids!r} instead.")
    out = []
    for value in ids:
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or int(value) < 1:
            raise FraudLensError(f"Alert ids must be integers >= 1. Got {value!r} instead.")
        out.append(int(value))
    return list(dict.fromkeys(out))


# ---------------------------------------------------------------------------------------------
# Raising alerts


def _threshold_of(home, name: str, version: int, threshold: float | None) -> float:
    if threshold is not None:
        return _check_rate(threshold, "threshold")
    live = operating.live_point(home, f"{name}@{version}")
    if live is None:
        raise FraudLensError(
            f"Model {name} v{version} has no live operating point. Set one on the Thresholds page "
            "or give a threshold (--threshold)."
        )
    return float(live.point.threshold)


def _scope_sql(store: Store, dataset: str, spec: feats.FeatureSpec, names: list[str],
               date_from: date | None, date_until: date | None,
               ingest_id: str | None, after: datetime | None = None) -> tuple[str, dict, str]:
    """Feature rows of the scope: ``(sql, params, description)``.

    Features are computed over the whole history (point-in-time windows need it); only the rows
    of the scope come out.
    """
    conds, params, scope = [], {}, []
    if date_from:
        conds.append("transaction_datetime >= $date_from")
        params["date_from"] = date_from
        scope.append(f"from {date_from}")
    if date_until:
        conds.append("transaction_datetime < $date_end")
        params["date_end"] = date_until + timedelta(days=1)
        scope.append(f"until {date_until}")
    if after is not None:
        conds.append("transaction_datetime > $after")
        params["after"] = after
        scope.append(f"after {after} UTC")
    if ingest_id is not None:
        info = datasets.read(store.home, dataset)
        parts = [str(p) for p, rel in zip(datasets.part_paths(store.home, info), info.files)
                 if f"-{ingest_id}-" in rel]
        if not parts:
            known = [i.get("id") for i in info.ingests]
            raise FraudLensError(f"Dataset '{dataset}' has no live batch from ingest {ingest_id!r}. "
                                 f"Its ingests: {known}.")
        conds.append("transaction_id IN (SELECT transaction_id FROM read_parquet($batch_parts))")
        params["batch_parts"] = parts
        scope.append(f"ingest {ingest_id}")
    params["features"] = str(feature_store.feature_file(store, dataset, spec))
    cols = ", ".join(["transaction_id", "transaction_datetime", "transaction_amount",
                      *(quote_ident(n) for n in names)])
    where = f" WHERE {' AND '.join(conds)}" if conds else ""
    return f"SELECT {cols} FROM read_parquet($features){where}", params, " ".join(scope) or "all"


class NothingNew(FraudLensError):
    """A run limited to what is new (``after``) found nothing to score."""


def last_scored(dataset: str, model_ref: str, cfg: Settings | None = None) -> datetime | None:
    """The latest transaction time (naive UTC) a run of the version scored on ``dataset``, or None."""
    cfg = cfg or settings()
    name, version = operating.resolve(cfg.home, model_ref)
    (latest,), = ops.rows(cfg.home, "SELECT max(last_ts) FROM alert_runs WHERE dataset = ? AND model = ? "
                          "AND version = ?", [check_dataset_name(dataset), name, int(version)])
    return None if latest is None else pd.Timestamp(latest).to_pydatetime()


def latest_ingest(dataset: str, cfg: Settings | None = None) -> str:
    """The id of the dataset's latest ingest (the newly appended batch)."""
    cfg = cfg or settings()
    info = datasets.read(cfg.home, dataset)
    if not info.ingests:
        raise FraudLensError(f"Dataset '{dataset}' records no ingest.")
    return str(info.ingests[-1]["id"])


def _existing_alerts(home, dataset: str) -> set[str]:
    return {r[0] for r in ops.rows(home, "SELECT transaction_id FROM alerts WHERE dataset = ?", [dataset])}


def _order_key(frame: pd.DataFrame, order: str) -> np.ndarray:
    return frame["expected_loss"].to_numpy(float) if order == "expected_loss" else frame["score"].to_numpy(float)


def _top(frame: pd.DataFrame, order: str, n: int) -> pd.DataFrame:
    if len(frame) <= n:
        return frame
    key = np.nan_to_num(_order_key(frame, order), nan=-np.inf)
    keep = np.argsort(-key, kind="stable")[:n]
    return frame.iloc[np.sort(keep)]


@dataclass
class _Scan:
    """What the scoring pass keeps: every alert row, the sample, and features of the top ones."""

    above: list[pd.DataFrame]
    sampled: list[pd.DataFrame]
    top: pd.DataFrame | None
    scored: int = 0
    below: int = 0
    skipped: int = 0
    first_ts: Any = None
    last_ts: Any = None


def _scan(store: Store, sql: str, params: dict, loaded: registry.LoadedModel, names: list[str],
          threshold: float, rate: float, rng: np.random.Generator, existing: set[str], order: str,
          explain_top: int, max_alerts: int) -> _Scan:
    from fraudlens.train import predict

    scan = _Scan([], [], None)
    n_above = 0
    for batch in store.query_batches("alert_features", sql, params):
        frame = batch.to_pandas()
        new = ~frame["transaction_id"].isin(existing).to_numpy()
        scan.skipped += int((~new).sum())
        frame = frame[new].reset_index(drop=True)
        if frame.empty:
            continue
        scores = predict(loaded.model, loaded.kind, frame[names]).astype(float)
        frame["score"] = scores
        frame["expected_loss"] = scores * frame["transaction_amount"].to_numpy(float)
        scan.scored += len(frame)
        scan.first_ts = _min(scan.first_ts, frame["transaction_datetime"].min())
        scan.last_ts = _max(scan.last_ts, frame["transaction_datetime"].max())
        is_above = scores >= threshold
        above = frame[is_above]
        n_above += len(above)
        if n_above > max_alerts:
            raise FraudLensError(
                f"Threshold {threshold:g} would raise more than {max_alerts:,} alerts. Raise the "
                "threshold or score a shorter date range."
            )
        keep = ["transaction_id", "transaction_datetime", "transaction_amount", "score", "expected_loss"]
        scan.above.append(above[keep])
        below = frame[~is_above]
        scan.below += len(below)
        picked = rng.random(len(below)) < rate
        scan.sampled.append(below.loc[picked, keep])
        if explain_top:
            pool = above if scan.top is None else pd.concat([scan.top, above], ignore_index=True)
            scan.top = _top(pool[[*keep, *names]], order, explain_top)
    return scan


def _min(a, b):
    return b if a is None else min(a, b)


def _max(a, b):
    return b if a is None else max(a, b)


def _reasons_for(loaded: registry.LoadedModel, names: list[str], top: pd.DataFrame) -> dict[str, list[str]]:
    """Reason codes of the rows of ``top`` (one batched contribution call)."""
    if top is None or top.empty:
        return {}
    X = top[names]
    contrib = explain.contributions(loaded.model, loaded.kind, X)
    described = {f["name"]: f.get("description", f["name"]) for f in loaded.features}
    values = X.to_numpy(dtype=float)
    out = {}
    for i, tx in enumerate(top["transaction_id"].tolist()):
        out[tx] = reasons_from(names, described, values[i], np.asarray(contrib.values[i], dtype=float))
    return out


def reasons_from(names: list[str], described: dict[str, str], values: np.ndarray,
                 contributions: np.ndarray, top: int = explain.TOP_REASONS) -> list[str]:
    """The sentences of the ``top`` largest positive contributions, largest first.

    The same rule as :func:`fraudlens.explain.explain_transaction`: features ordered by absolute
    contribution, the positive ones kept.
    """
    order = np.argsort(-np.abs(contributions), kind="stable")
    out = []
    for k in order:
        if contributions[k] <= 0:
            continue
        text = feats.reason_text(names[k], float(values[k]), described.get(names[k], names[k]))
        out.append(text[0].upper() + text[1:])
        if len(out) == top:
            break
    return out


def _iso(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NaT:
        return None
    return pd.Timestamp(value).isoformat()


def _alert_rows(frame: pd.DataFrame, run: dict, source: str, reasons: dict[str, list[str]], at: str) -> list[tuple]:
    rows = []
    for tx, ts, amount, score, loss in frame[["transaction_id", "transaction_datetime", "transaction_amount",
                                              "score", "expected_loss"]].itertuples(index=False):
        why = reasons.get(tx)
        rows.append((run["id"], run["dataset"], str(tx), _iso(ts), run["model"], run["version"], float(score),
                     run["threshold"], _num(amount), _num(loss), json.dumps(why) if why is not None else None,
                     at, at, source, run["sample_rate"] if source == "below_the_line" else None))
    return rows


def _num(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


_INSERT_ALERT = (
    "INSERT OR IGNORE INTO alerts (run_id, dataset, transaction_id, transaction_datetime, model, version, "
    "score, threshold, amount, expected_loss, reasons, created_at, updated_at, source, sample_rate) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def raise_alerts(
    dataset: str,
    model_ref: str,
    *,
    threshold: float | None = None,
    date_from: date | None = None,
    date_until: date | None = None,
    ingest_id: str | None = None,
    after: datetime | None = None,
    order: str = "expected_loss",
    sample_rate: float = DEFAULT_SAMPLE_RATE,
    explain_top: int = EXPLAIN_TOP,
    max_alerts: int = MAX_ALERTS,
    seed: int | None = None,
    user: str = "system",
    cfg: Settings | None = None,
) -> RaiseResult:
    """Score a scope of ``dataset`` and queue the alerts and the below-the-line sample.

    Parameters
    ----------
    dataset : str
    model_ref : str
        ``name`` (its champion, else its latest version) or ``name@version``.
    threshold : float in [0, 1], optional
        Alert when ``score >= threshold``; by default the version's live operating point.
    date_from, date_until : date, optional
        Inclusive bounds on the transaction date (as in ``score --from/--until``).
    ingest_id : str, optional
        Only the rows of this ingest (a newly appended batch; see :func:`latest_ingest`).
    after : datetime, optional
        Only the rows after this instant (naive UTC), e.g. :func:`last_scored`: what no run of the
        version scored yet. Refused when there is none.
    order : {"expected_loss", "score"}
        Queue order; the first ``explain_top`` alerts in it get reason codes at once.
    sample_rate : float in [0, 1]
        Share of the transactions under the threshold queued for review below the line.
    explain_top : int >= 0
        Alerts explained now; the others are explained when first opened.
    max_alerts : int
        Refuse a threshold that would raise more alerts than this.
    seed : int, optional
        Seed of the below-the-line sample (same seed, same sample).
    user : str
        Who raised them (recorded in the run and the audit log).

    Returns
    -------
    RaiseResult
    """
    started = time.perf_counter()
    cfg = cfg or settings()
    check_dataset_name(dataset)
    order = _check_choice(order, "order", RAISE_ORDERS)
    rate = _check_rate(sample_rate, "sample_rate")
    explain_top = _check_int(explain_top, "explain_top", 0, MAX_ALERTS)
    max_alerts = _check_int(max_alerts, "max_alerts", 1, 10_000_000)
    user = _check_text(user, "user")
    name, version = operating.resolve(cfg.home, model_ref)
    t = _threshold_of(cfg.home, name, version, threshold)
    loaded = registry.load_model(name, version, home=cfg.home)
    if "feature_spec" not in loaded.metadata:
        raise FraudLensError(f"Model {name} v{version} has no feature recipe; it cannot score a dataset.")
    spec = feats.FeatureSpec.from_dict(loaded.metadata["feature_spec"])
    names = list(loaded.metadata["features"])
    store = get_store(cfg)
    rng = np.random.default_rng(secrets.randbits(64) if seed is None else seed)
    # One run per dataset at a time: a run started beside another would score the transactions
    # the other is alerting on, and the two would count them twice in the missed-fraud estimate.
    with locks.held(cfg.home, "alerts", dataset):
        sql, params, scope = _scope_sql(store, dataset, spec, names, date_from, date_until, ingest_id, after)
        scan = _scan(store, sql, params, loaded, names, t, rate, rng, _existing_alerts(cfg.home, dataset),
                     order, explain_top, max_alerts)
        if after is not None and scan.scored == 0:
            raise NothingNew(f"Dataset '{dataset}' has no transaction without an alert after {after} UTC: "
                             f"nothing new to score with {name} v{version}.")
        reasons = _reasons_for(loaded, names, scan.top)
        above, sampled = _in_time_order(scan)
        run = {"dataset": dataset, "model": name, "version": int(version), "threshold": t, "sample_rate": rate}
        created, n_sampled, run_id = _store_run(cfg, run, scope, scan, above, sampled, reasons, user)
    result = RaiseResult(
        run_id=run_id, dataset=dataset, model=name, version=int(version), threshold=t, sample_rate=rate,
        scope=scope, scored=scan.scored, above=len(above), below=scan.below, alerts_created=created,
        sampled=n_sampled, skipped_existing=scan.skipped, explained=len(reasons),
        seconds=time.perf_counter() - started,
    )
    logger.info("raised %d alerts (+%d below the line) on %s with %s v%d at %.4f in %.1f s",
                created, n_sampled, dataset, name, version, t, result.seconds)
    return result


def _in_time_order(scan: _Scan) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The scan's alerts and sample by time, then transaction id: alert ids break ties in the
    queue, and so follow that order whatever the order of the feature file's rows of one timestamp."""
    above = pd.concat(scan.above, ignore_index=True) if scan.above else pd.DataFrame(
        columns=["transaction_id", "transaction_datetime", "transaction_amount", "score", "expected_loss"])
    sampled = pd.concat(scan.sampled, ignore_index=True) if scan.sampled else above.iloc[0:0]
    return tuple(f.sort_values(["transaction_datetime", "transaction_id"], kind="stable", ignore_index=True)
                 for f in (above, sampled))


def _store_run(cfg: Settings, run: dict, scope: str, scan: _Scan, above: pd.DataFrame, sampled: pd.DataFrame,
               reasons: dict[str, list[str]], user: str) -> tuple[int, int, int]:
    at = ops.now()
    with ops.transaction(cfg.home) as con:
        cur = con.execute(
            "INSERT INTO alert_runs (dataset, model, version, threshold, sample_rate, scope, scored, above, "
            "below, alerts_created, sampled, skipped_existing, first_ts, last_ts, user, created_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0, ?, ?, ?, ?, ?)",
            (run["dataset"], run["model"], run["version"], run["threshold"], run["sample_rate"], scope,
             scan.scored, len(above), scan.below, scan.skipped, _iso(scan.first_ts), _iso(scan.last_ts),
             user, at),
        )
        run = {**run, "id": cur.lastrowid}
        created = _insert(con, _alert_rows(above, run, "threshold", reasons, at))
        n_sampled = _insert(con, _alert_rows(sampled, run, "below_the_line", {}, at))
        con.execute("UPDATE alert_runs SET alerts_created = ?, sampled = ? WHERE id = ?",
                    (created, n_sampled, run["id"]))
        audit.append(con, user, audit.ALERTS_RAISED, {
            "run_id": run["id"], "dataset": run["dataset"], "model": run["model"], "version": run["version"],
            "threshold": run["threshold"], "scope": scope, "scored": scan.scored, "alerts": created,
            "below_the_line": n_sampled, "sample_rate": run["sample_rate"],
        })
    return created, n_sampled, int(run["id"])


def _insert(con: sqlite3.Connection, rows: list[tuple]) -> int:
    before = con.total_changes
    con.executemany(_INSERT_ALERT, rows)
    return con.total_changes - before


# ---------------------------------------------------------------------------------------------
# The queue


def queue_sql(*, dataset: str | None = None, status: str | Sequence[str] | None = None,
              assignee: str | None = None, unassigned: bool = False, source: str | None = None,
              model: str | None = None, order: str = "expected_loss", limit: int = 50,
              offset: int = 0) -> tuple[str, str, list[Any]]:
    """``(page_sql, count_sql, params)`` of a queue query; the page SQL takes ``limit, offset`` last."""
    order_sql = ORDERS[_check_choice(order, "order", tuple(ORDERS))]
    conds, params = [], []
    if dataset is not None:
        conds.append("dataset = ?")
        params.append(check_dataset_name(dataset))
    if status is not None:
        statuses = [status] if isinstance(status, str) else list(status)
        for s in statuses:
            _check_choice(s, "status", ops.ALERT_STATUSES)
        conds.append(f"status IN ({', '.join('?' * len(statuses))})")
        params += statuses
    if unassigned:
        conds.append("assignee IS NULL")
    elif assignee is not None:
        conds.append("assignee = ?")
        params.append(_check_text(assignee, "assignee"))
    if source is not None:
        conds.append("source = ?")
        params.append(_check_choice(source, "source", ops.ALERT_SOURCES))
    if model is not None:
        conds.append("model = ?")
        params.append(model)
    where = f"WHERE {' AND '.join(conds)}" if conds else ""
    page = f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts {where} ORDER BY {order_sql} LIMIT ? OFFSET ?"
    return page, f"SELECT count(*) FROM alerts {where}", params


def queue(*, dataset: str | None = None, status: str | Sequence[str] | None = "open",
          assignee: str | None = None, unassigned: bool = False, source: str | None = None,
          model: str | None = None, order: str = "expected_loss", limit: int = 50, offset: int = 0,
          cfg: Settings | None = None) -> Queue:
    """One page of alerts, ordered by ``order`` (highest expected loss first by default).

    Parameters
    ----------
    status : str or list of str, optional
        ``open`` by default; None for every status.
    assignee : str, optional
        Only this analyst's alerts; ``unassigned=True`` for alerts nobody has.
    source : {"threshold", "below_the_line"}, optional
    order : {"expected_loss", "score", "amount", "newest", "created_at"}
    limit : int in [1, 1000]
    offset : int >= 0

    Returns
    -------
    Queue
        ``rows`` has the alert columns, ``reasons`` as a list (None until explained).
    """
    cfg = cfg or settings()
    limit = _check_int(limit, "limit", 1, MAX_PAGE)
    offset = _check_int(offset, "offset", 0, 10**12)
    page_sql, count_sql, params = queue_sql(dataset=dataset, status=status, assignee=assignee,
                                            unassigned=unassigned, source=source, model=model, order=order,
                                            limit=limit, offset=offset)
    with ops.reading(cfg.home) as con:
        total = int(con.execute(count_sql, params).fetchone()[0])
        cur = con.execute(page_sql, [*params, limit, offset])
        rows = pd.DataFrame.from_records(cur.fetchall(), columns=list(ALERT_COLUMNS))
    rows["reasons"] = rows["reasons"].map(lambda r: json.loads(r) if isinstance(r, str) else None)
    return Queue(rows, total, limit, offset)


def get_alert(alert_id: int, cfg: Settings | None = None) -> Alert:
    """One alert and its dispositions; FraudLensError if there is no such alert."""
    cfg = cfg or settings()
    (alert_id,) = _check_ids(alert_id)
    with ops.reading(cfg.home) as con:
        row = con.execute(f"SELECT {', '.join(ALERT_COLUMNS)} FROM alerts WHERE id = ?", [alert_id]).fetchone()
        if row is None:
            raise FraudLensError(f"There is no alert {alert_id}.")
        cur = con.execute("SELECT id, disposition, comment, user, at FROM dispositions WHERE alert_id = ? "
                          "ORDER BY id", [alert_id])
        history = pd.DataFrame.from_records(cur.fetchall(), columns=["id", "disposition", "comment", "user", "at"])
    data = dict(zip(ALERT_COLUMNS, row))
    data["reasons"] = json.loads(data["reasons"]) if data["reasons"] else None
    data.pop("run_id")
    return Alert(**data, dispositions=history)


def alert_reasons(alert_id: int, cfg: Settings | None = None) -> list[str]:
    """The alert's reason codes, computed (and kept) the first time they are asked for."""
    cfg = cfg or settings()
    alert = get_alert(alert_id, cfg)
    if alert.reasons is not None:
        return alert.reasons
    found = explain.explain_transaction(alert.dataset, f"{alert.model}@{alert.version}", alert.transaction_id,
                                        cfg=cfg)
    with ops.transaction(cfg.home) as con:
        con.execute("UPDATE alerts SET reasons = ? WHERE id = ? AND reasons IS NULL",
                    (json.dumps(found.reasons), alert.id))
    return list(found.reasons)


def assign(alert_ids: int | Sequence[int], assignee: str | None, user: str, cfg: Settings | None = None) -> int:
    """Give alerts to ``assignee`` (None: unassign); returns the number of alerts changed."""
    cfg = cfg or settings()
    ids = _check_ids(alert_ids)
    user = _check_text(user, "user")
    who = None if assignee is None else _check_text(assignee, "assignee")
    with ops.transaction(cfg.home) as con:
        _require_alerts(con, ids)
        changed = 0
        for alert_id in ids:
            changed += con.execute("UPDATE alerts SET assignee = ?, updated_at = ? WHERE id = ?",
                                   (who, ops.now(), alert_id)).rowcount
            audit.append(con, user, audit.ALERT_ASSIGNED, {"alert_id": alert_id, "assignee": who})
    return changed


def _require_alerts(con: sqlite3.Connection, ids: list[int]) -> list[tuple]:
    found = []
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        found += con.execute(f"SELECT id, dataset, transaction_id, status FROM alerts WHERE id IN "
                             f"({', '.join('?' * len(chunk))})", chunk).fetchall()
    missing = sorted(set(ids) - {r[0] for r in found})
    if missing:
        raise FraudLensError(f"There is no alert {missing[:10]}; nothing was changed.")
    by_id = {r[0]: r for r in found}
    return [by_id[i] for i in ids]


def dispose(alert_id: int, disposition: str, comment: str, user: str, cfg: Settings | None = None, *,
            change: bool = False) -> Alert:
    """Record an analyst's disposition of one alert; returns the alert as it now is.

    ``confirmed_fraud`` labels the transaction fraud, ``false_positive`` legitimate;
    ``needs_info`` sets no label (and withdraws a label an earlier disposition set). The alert,
    the disposition, the label and the audit entry are written in one transaction. An alert
    already closed (confirmed fraud or false positive) changes only with ``change=True``.
    """
    cfg = cfg or settings()
    bulk_dispose([alert_id], disposition, comment, user, cfg=cfg, change=change)
    return get_alert(alert_id, cfg)


def bulk_dispose(alert_ids: int | Sequence[int], disposition: str, comment: str, user: str,
                 cfg: Settings | None = None, *, change: bool = False) -> int:
    """The same disposition for many alerts, all in one transaction; returns how many.

    Refuses (and changes nothing) if any alert is already closed, unless ``change=True``.
    """
    cfg = cfg or settings()
    ids = _check_ids(alert_ids)
    disposition = _check_choice(disposition, "disposition", ops.DISPOSITIONS)
    comment = _check_text(comment, "comment")
    user = _check_text(user, "user")
    with ops.transaction(cfg.home) as con:
        found = _require_alerts(con, ids)
        if not change:
            _refuse_closed(found)
        for alert_id, dataset, tx, _status in found:
            _dispose_one(con, alert_id, dataset, tx, disposition, comment, user)
    logger.info("%d alert(s) disposed as %s", len(ids), disposition)
    return len(ids)


def _refuse_closed(found: list[tuple]) -> None:
    closed = [(r[0], r[3]) for r in found if r[3] in CLOSED]
    if closed:
        listed = ", ".join(f"{i} ({status.replace('_', ' ')})" for i, status in closed[:10])
        raise FraudLensError(f"Alert(s) {listed} already have a final disposition; nothing was changed. "
                             "Change a disposition on purpose (the previous one stays in the history).")


def _dispose_one(con: sqlite3.Connection, alert_id: int, dataset: str, tx: str, disposition: str,
                 comment: str, user: str) -> None:
    at = ops.now()
    con.execute("INSERT INTO dispositions (alert_id, disposition, comment, user, at) VALUES (?, ?, ?, ?, ?)",
                (alert_id, disposition, comment, user, at))
    con.execute("UPDATE alerts SET status = ?, updated_at = ? WHERE id = ?", (disposition, at, alert_id))
    label = LABEL_OF.get(disposition)
    if label is not None or _latest_label(con, dataset, tx) is not None:
        con.execute("INSERT INTO labels (dataset, transaction_id, label, source, user, at) "
                    "VALUES (?, ?, ?, 'disposition', ?, ?)", (dataset, tx, label, user, at))
    audit.append(con, user, audit.ALERT_DISPOSED, {
        "alert_id": alert_id, "dataset": dataset, "transaction_id": tx, "disposition": disposition,
        "label": None if label is None else bool(label), "comment": comment,
    })


def _latest_label(con: sqlite3.Connection, dataset: str, tx: str) -> int | None:
    row = con.execute("SELECT label FROM labels WHERE dataset = ? AND transaction_id = ? ORDER BY id DESC LIMIT 1",
                      (dataset, tx)).fetchone()
    return None if row is None else row[0]


def runs(dataset: str | None = None, cfg: Settings | None = None) -> pd.DataFrame:
    """The alert-raising runs, newest first."""
    cfg = cfg or settings()
    if dataset is None:
        return ops.frame(cfg.home, "SELECT * FROM alert_runs ORDER BY id DESC")
    return ops.frame(cfg.home, "SELECT * FROM alert_runs WHERE dataset = ? ORDER BY id DESC",
                     [check_dataset_name(dataset)])

