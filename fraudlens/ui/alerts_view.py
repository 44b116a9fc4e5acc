"""Library calls and small helpers of the Alerts page.

The queue, the counts and one alert are read fresh on every run, not cached: they change with
every disposition (by this analyst or another), and each is one indexed SQLite query with a
limit. Explanations, transactions and timelines come from :mod:`fraudlens.ui.models_cache`.
Everything here that does not touch the data folder is a pure function of its arguments.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from fraudlens import alerts, operating, ops, registry
from fraudlens.ui import auth, cached, models_cache

PAGE_SIZE = 50
STATUS_NAMES = {"open": "Open", "confirmed_fraud": "Confirmed fraud", "false_positive": "False positive",
                "needs_info": "Needs more information"}
STATUS_COLOURS = {"open": "blue", "confirmed_fraud": "red", "false_positive": "green", "needs_info": "orange"}
DISPOSITION_NAMES = {d: STATUS_NAMES[d] for d in ops.DISPOSITIONS}
# Filter choice -> the queue's ``status`` argument.
STATUS_FILTERS = {"open": "open", "workable": ["open", "needs_info"], "disposed": list(ops.DISPOSITIONS),
                  "confirmed_fraud": "confirmed_fraud", "false_positive": "false_positive",
                  "needs_info": "needs_info", "all": None}
STATUS_FILTER_NAMES = {"open": "Open", "workable": "Open or needs information", "disposed": "Disposed (any)",
                       "confirmed_fraud": "Confirmed fraud", "false_positive": "False positive",
                       "needs_info": "Needs more information", "all": "Every status"}
SOURCE_FILTERS = {"all": None, "threshold": "threshold", "below_the_line": "below_the_line"}
SOURCE_NAMES = {"all": "Every source", "threshold": "Above the threshold",
                "below_the_line": "Below-the-line sample"}
ASSIGNEE_NAMES = {"anyone": "Anyone", "unassigned": "Unassigned", "mine": "Mine"}
ORDER_NAMES = {"expected_loss": "Expected loss", "score": "Score", "amount": "Amount",
               "newest": "Newest transaction"}
TABLE_COLUMNS = ["id", "transaction", "when", "amount", "score", "expected loss", "source", "status",
                 "assignee", "reasons"]
EXPORT_COLUMNS = ["id", "dataset", "transaction_id", "transaction_datetime", "model", "version", "score",
                  "threshold", "amount", "expected_loss", "reasons", "status", "assignee", "source",
                  "sample_rate", "created_at", "updated_at"]


@dataclass(frozen=True)
class Filters:
    """The queue filters as the page's widgets hold them (keys of the ``*_NAMES`` maps)."""

    status: str = "open"
    source: str = "all"
    assignee: str = "anyone"
    order: str = "expected_loss"


@dataclass(frozen=True)
class Counts:
    """Alerts of one dataset by state; ``confirmed_share`` is NaN before any disposition."""

    open: int
    disposed: int
    confirmed: int

    @property
    def confirmed_share(self) -> float:
        return self.confirmed / self.disposed if self.disposed else math.nan


def cfg_for(home: Path):
    return cached.cfg_for(home)


# ---------------------------------------------------------------------------- raising

def champion_of(versions: Sequence[registry.ModelVersion], dataset: str | None) -> registry.ModelVersion | None:
    """The newest champion among the models trained on ``dataset``, or None."""
    found = [v for v in versions if v.champion and v.dataset == dataset]
    return max(found, key=lambda v: (v.created_at, v.version)) if found else None


def champion(home: Path, dataset: str | None) -> registry.ModelVersion | None:
    return champion_of(models_cache.versions(home), dataset)


def live_point(home: Path, ref: str):
    """The version's live operating point (the last saved), or None."""
    return operating.live_point(home, ref)


def last_run(home: Path, dataset: str) -> dict | None:
    """The latest alert-raising run on ``dataset``, or None."""
    found = alerts.runs(dataset, cfg=cfg_for(home))
    return None if found.empty else found.iloc[0].to_dict()


def run_text(run: dict, tz: str) -> str:
    return (f"Last run {cached.local_time(run['created_at'], tz)} by {run['user']}: {run['model']} "
            f"v{run['version']} at {run['threshold']:.4f} raised {run['alerts_created']:,} alerts and queued "
            f"{run['sampled']:,} below the line; {run['skipped_existing']:,} transactions already had one.")


def last_scored(home: Path, dataset: str, ref: str) -> datetime | None:
    """The latest transaction a run of ``ref`` scored on ``dataset`` (naive UTC), or None."""
    return alerts.last_scored(dataset, ref, cfg=cfg_for(home))


def scope_text(dataset: str, newest: datetime | None, tz: str) -> str:
    """Which transactions the next run scores."""
    if newest is None:
        return f"Scores every transaction of '{dataset}' without an alert"
    return (f"Scores the transactions of '{dataset}' after {cached.local_time(str(newest), tz, seconds=True)}, "
            "the latest one this model version's runs have scored,")


NothingNew = alerts.NothingNew


def nothing_new_text(dataset: str, after: datetime, tz: str) -> str:
    return (f"Nothing new to score: '{dataset}' has no transaction without an alert after "
            f"{cached.local_time(str(after), tz, seconds=True)} ({tz}). Tick 'Score earlier transactions again' "
            "to score earlier ones at the live threshold.")


RESCORE_HELP = ("Also the transactions earlier runs scored, e.g. after a threshold change. Those under the "
                "threshold are then counted once per run in the missed-fraud estimate on Monitoring.")


def raise_alerts(home: Path, dataset: str, ref: str, sample_rate: float,
                 after: datetime | None) -> alerts.RaiseResult:
    """Score ``dataset`` with ``ref`` at its live operating point (only its rows after ``after``
    when given), as the current user."""
    return alerts.raise_alerts(dataset, ref, sample_rate=sample_rate, after=after, user=auth.user(),
                               cfg=cfg_for(home))


def raise_text(r: alerts.RaiseResult) -> str:
    """What a run did, in one paragraph."""
    return (f"Scored {r.scored:,} transactions of '{r.dataset}' with {r.model} v{r.version} at threshold "
            f"{r.threshold:.4f} in {r.seconds:.1f} s: **{r.alerts_created:,} alerts raised**, "
            f"{r.sampled:,} queued as the below-the-line sample ({r.sample_rate:.2%} of the {r.below:,} under "
            f"the threshold), {r.skipped_existing:,} skipped because they already had an alert.")


# ---------------------------------------------------------------------------- the queue

def queue_args(filters: Filters, user: str) -> dict:
    """The keyword arguments of :func:`fraudlens.alerts.queue` for the page's filters."""
    return {
        "status": STATUS_FILTERS[filters.status],
        "source": SOURCE_FILTERS[filters.source],
        "assignee": user if filters.assignee == "mine" else None,
        "unassigned": filters.assignee == "unassigned",
        "order": filters.order,
    }


def queue_page(home: Path, dataset: str, filters: Filters, offset: int) -> alerts.Queue:
    """One page of the queue (``PAGE_SIZE`` alerts) of ``dataset`` with the page's filters."""
    return alerts.queue(dataset=dataset, limit=PAGE_SIZE, offset=offset, cfg=cfg_for(home),
                        **queue_args(filters, auth.user()))


def counts(home: Path, dataset: str) -> Counts:
    cfg = cfg_for(home)

    def total(status) -> int:
        return alerts.queue(dataset=dataset, status=status, limit=1, cfg=cfg).total

    return Counts(open=total("open"), disposed=total(list(ops.DISPOSITIONS)), confirmed=total("confirmed_fraud"))


def has_alerts(home: Path, dataset: str) -> bool:
    return alerts.queue(dataset=dataset, status=None, limit=1, cfg=cfg_for(home)).total > 0


def range_text(q: alerts.Queue) -> str:
    """``Alerts 51–74 of 74``."""
    return f"Alerts {q.offset + 1:,}–{q.offset + len(q.rows):,} of {q.total:,}"


def reasons_text(reasons: object) -> str:
    if not isinstance(reasons, list):
        return "(worked out when opened)"
    return "; ".join(reasons) if reasons else "(no feature raised the risk)"


def table(rows: pd.DataFrame, tz: str) -> pd.DataFrame:
    """The queue page as shown: local times, readable source and status, reasons as text."""
    return pd.DataFrame({
        "id": rows["id"].astype("int64"),
        "transaction": rows["transaction_id"].astype(str),
        "when": [cached.local_time(t, tz) for t in rows["transaction_datetime"]],
        "amount": rows["amount"].astype(float),
        "score": rows["score"].astype(float),
        "expected loss": rows["expected_loss"].astype(float),
        "source": rows["source"].map({"threshold": "above threshold", "below_the_line": "below-the-line sample"}),
        "status": rows["status"].map(STATUS_NAMES),
        "assignee": rows["assignee"],
        "reasons": rows["reasons"].map(reasons_text),
    }, columns=TABLE_COLUMNS)


def selected_ids(positions: Sequence[int], shown: Sequence[int]) -> list[int]:
    """Alert ids of the selected row positions of the table as it was shown."""
    return [int(shown[p]) for p in positions if 0 <= p < len(shown)]


def export_frame(rows: pd.DataFrame) -> pd.DataFrame:
    """The queue page for a download: the alert columns, reasons as text, masked for the role."""
    out = rows[EXPORT_COLUMNS].copy()
    out["reasons"] = out["reasons"].map(lambda r: " | ".join(r) if isinstance(r, list) else None)
    out = out.rename(columns={"transaction_datetime": "transaction_datetime_utc"})  # stored in UTC
    return auth.protect(out)


# ---------------------------------------------------------------------------- one alert

def get_alert(home: Path, alert_id: int) -> alerts.Alert:
    return alerts.get_alert(int(alert_id), cfg=cfg_for(home))


def alert_reasons(home: Path, alert_id: int) -> list[str]:
    """Reason codes (explained and stored the first time for alerts raised unexplained)."""
    return alerts.alert_reasons(int(alert_id), cfg=cfg_for(home))


def effective_label(home: Path, dataset: str, transaction_id: str) -> bool | None:
    return alerts.effective_label(dataset, transaction_id, cfg=cfg_for(home))


def alert_ref(alert: alerts.Alert) -> str:
    return f"{alert.model}@{alert.version}"


def source_text(alert: alerts.Alert) -> str:
    if alert.source == "below_the_line":
        rate = f" ({alert.sample_rate:.2%} of those under it)" if alert.sample_rate is not None else ""
        return f"below-the-line sample: scored under the threshold {alert.threshold:.4f}, drawn at random{rate}"
    return f"scored at or above the threshold {alert.threshold:.4f}"


def status_badge(status: str) -> str:
    """Markdown of a coloured status badge."""
    return f":{STATUS_COLOURS.get(status, 'gray')}-badge[{STATUS_NAMES.get(status, status)}]"


def md_escape(text: object) -> str:
    """``text`` shown literally in Markdown (comments and names are typed by people)."""
    out = str(text)
    for char in "\\`*_{}[]<>()#+-.!|~:$":
        out = out.replace(char, "\\" + char)
    return " ".join(out.split())


def disposition_line(row, tz: str) -> str:
    """``2025-03-20 10:15 · Confirmed fraud · ana (analyst): “comment”`` (Markdown)."""
    name = DISPOSITION_NAMES.get(row["disposition"], row["disposition"])
    return (f"{cached.local_time(row['at'], tz)} · **{name}** · {md_escape(row['user'])}: "
            f"“{md_escape(row['comment'])}”")


def history_lines(alert: alerts.Alert, tz: str) -> list[str]:
    """The alert's dispositions as Markdown lines, newest first."""
    return [disposition_line(row, tz) for _, row in alert.dispositions.iloc[::-1].iterrows()]


# ---------------------------------------------------------------------------- changes

def assign_to_me(home: Path, ids: Sequence[int]) -> int:
    me = auth.user()
    return alerts.assign(list(ids), me, me, cfg=cfg_for(home))


def dispose(home: Path, ids: Sequence[int], disposition: str, comment: str, *, change: bool = False) -> int:
    """The same disposition for ``ids`` (one transaction), as the current user; alerts already
    closed (confirmed fraud, false positive) are refused unless ``change``."""
    return alerts.bulk_dispose(list(ids), disposition, comment, auth.user(), cfg=cfg_for(home), change=change)


def is_closed(alert: alerts.Alert) -> bool:
    """Closed alerts change disposition only on purpose; open and needs-information ones are worked."""
    return alert.status in alerts.CLOSED


def label_text(disposition: str) -> str:
    label = alerts.LABEL_OF.get(disposition)
    if label is None:
        return "no label (a label set by an earlier disposition is withdrawn)"
    return "labelled fraud" if label else "labelled legitimate"
