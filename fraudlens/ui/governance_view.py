"""Thin wrappers and small text helpers of the Approvals and Audit pages.

Proposals and audit entries are read from the operational store (SQLite) on every run, without
a cache: the queries are small and indexed, and a decision made in another tab must show at
once. The one heavy thing, an evidence pack, is cached by proposal id. Decisions act as the
user of this run (:func:`auth.user`, :func:`auth.role`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import streamlit as st

from fraudlens import audit, evidence, governance, registry
from fraudlens.config import Settings
from fraudlens.ui import auth, cached, models_cache

TTL = 600
PAGE_SIZE = 50
KIND_LABELS = {"operating_point": "Operating point", "champion": "Champion"}
STATUS_FILTERS = {"approved and rejected": None, "approved": "approved", "rejected": "rejected"}
# Action filter of the Audit page: label -> action name or dotted prefix for audit.entries.
ACTION_FILTERS = {
    "All actions": None,
    "Ingests": audit.INGEST,
    "Trainings": audit.TRAIN,
    "Proposals, approvals and rejections": "proposal",
    "Operating point changes": audit.OPERATING_POINT,
    "Champion changes": audit.CHAMPION,
    "Exports and downloads": audit.EXPORT,
    "Unmasking of personal data": audit.UNMASK,
    "Alerts raised": audit.ALERTS_RAISED,
    "Alert assignments and dispositions": "alert",
}
# The rows of the current-vs-proposed table: payload field, label, format.
POINT_ROWS = (("threshold", "Threshold", "thr"), ("precision", "Precision", "pct"), ("recall", "Recall", "pct"),
              ("alerts_per_day", "Alerts per day", "num"), ("fraud_amount_caught", "Fraud caught (PEN)", "pen"))
CHANGE_COLUMNS = ["change", "precision", "recall", "alerts per day"]
PROPOSAL_COLUMNS = ["id", "kind", "model", *CHANGE_COLUMNS, "comment", "proposed by", "proposed"]
DECIDED_COLUMNS = ["id", "status", "kind", "model", *CHANGE_COLUMNS, "comment", "proposed by", "proposed",
                   "decided by", "decided", "decision comment"]


def cfg_for(home: str | Path) -> Settings:
    return cached.cfg_for(home)


# ---------------------------------------------------------------------------- text

def fmt(value: float | None, kind: str) -> str:
    """A number as the pages show it; ``n/a`` for None or NaN."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return {"thr": f"{value:.4f}", "pct": f"{value:.1%}", "num": f"{value:,.1f}",
            "pen": f"{value:,.0f}"}[kind]


def version_label(model: str, version: int | None) -> str:
    return f"{model} v{version}" if version is not None else "none"


def change_columns(kind: str, payload: dict, version: int) -> dict[str, str]:
    """What a proposal changes, as ``old → new`` texts: the threshold (or champion), then precision,
    recall and alerts per day at it (blank for a champion)."""
    if kind == "champion":
        previous = payload.get("previous_champion")
        before = f"v{previous}" if previous is not None else "none"
        return {"change": f"champion {before} → v{version}", "precision": "", "recall": "", "alerts per day": ""}
    new, old = payload.get("point") or {}, payload.get("previous_point")
    out = {}
    for (field, _, style), column in zip(POINT_ROWS[:4], CHANGE_COLUMNS):
        before = fmt(old.get(field), style) if old else "none"
        out[column] = f"{before} → {fmt(new.get(field), style)}"
    out["change"] = f"threshold {out['change']}"
    return out


def point_table(payload: dict) -> pd.DataFrame:
    """Current (live when proposed) vs proposed point: one row a measure, formatted as text."""
    new, old = payload.get("point") or {}, payload.get("previous_point") or {}
    rows = []
    for field, label, style in POINT_ROWS:
        a, b = old.get(field), new.get(field)
        change = "n/a" if a is None or b is None else _signed(b - a, style)
        rows.append({"measure": label, "current": fmt(a, style), "proposed": fmt(b, style), "change": change})
    return pd.DataFrame(rows).set_index("measure")


def _signed(value: float, style: str) -> str:
    if style == "pct":
        return f"{100 * value:+.1f} pp"
    return {"thr": f"{value:+.4f}", "num": f"{value:+,.1f}", "pen": f"{value:+,.0f}"}[style]


def champion_table(home: Path, model: str, version: int, previous: int | None) -> pd.DataFrame:
    """Current champion vs proposed version: kind, test-window AP and ROC AUC, when trained."""
    board = models_cache.leaderboard(home)
    board = board[board["model"] == model].set_index("version")
    rows = {"Version": lambda v: f"v{v}", "Kind": lambda v: board.at[v, "kind"],
            "Average precision": lambda v: fmt(board.at[v, "AP"], "thr"),
            "ROC AUC": lambda v: fmt(board.at[v, "ROC AUC"], "thr"),
            "Trained": lambda v: board.at[v, "created"]}
    out = {}
    for column, v in (("current", previous), ("proposed", version)):
        known = v is not None and v in board.index
        out[column] = [get(v) if known else ("none" if v is None else f"v{v} (gone)") for get in rows.values()]
    return pd.DataFrame(out, index=pd.Index(list(rows), name="measure"))


def proposals_table(frame: pd.DataFrame, decided: bool = False) -> pd.DataFrame:
    """Proposals (as ``governance.proposals`` returns them) ready to draw, times in local time."""
    tz = cached.timezone_name()
    rows = []
    for r in frame.itertuples(index=False):
        row = {"id": int(r.id), "status": r.status, "kind": KIND_LABELS.get(r.kind, r.kind),
               "model": version_label(r.model, int(r.version)), **change_columns(r.kind, r.payload, int(r.version)),
               "comment": r.comment, "proposed by": r.proposed_by,
               "proposed": cached.local_time(r.proposed_at, tz)}
        if decided:
            row.update({"decided by": r.decided_by, "decided": cached.local_time(r.decided_at, tz),
                        "decision comment": r.decision_comment or ""})
        rows.append(row)
    return pd.DataFrame(rows, columns=DECIDED_COLUMNS if decided else PROPOSAL_COLUMNS)


def proposal_labels(frame: pd.DataFrame) -> dict[int, str]:
    """id -> ``#3 · Operating point · demo_xgboost v1 · by alice (analyst, local mode)``, in frame order."""
    return {int(r.id): f"#{r.id} · {KIND_LABELS.get(r.kind, r.kind)} · {version_label(r.model, int(r.version))} · "
                       f"by {r.proposed_by}" for r in frame.itertuples(index=False)}


def when(text: str | None) -> str:
    """A stored UTC time in the app's time zone, to the minute."""
    return cached.local_time(text, cached.timezone_name())


def same_person(a: str, b: str) -> bool:
    """The four-eyes rule's comparison (the person, whatever role they act in)."""
    return governance.same_person(a, b)


# ---------------------------------------------------------------------------- proposals

def all_proposals(home: Path) -> pd.DataFrame:
    return governance.proposals(cfg=cfg_for(home))


def decided(home: Path, status: str | None, model: str | None) -> pd.DataFrame:
    """Approved and rejected proposals (or one status), optionally of one model, newest first."""
    frame = governance.proposals(status=status, model=model, cfg=cfg_for(home))
    return frame[frame["status"] != "pending"]


def proposal(home: Path, proposal_id: int) -> governance.Proposal:
    return governance.get(proposal_id, cfg_for(home))


def approve(home: Path, proposal_id: int, comment: str) -> governance.Proposal:
    """Approve as the user of this run; GovernanceError when the four-eyes rule refuses."""
    return governance.approve(proposal_id, auth.user(), auth.role(), comment, cfg_for(home))


def reject(home: Path, proposal_id: int, comment: str) -> governance.Proposal:
    return governance.reject(proposal_id, auth.user(), auth.role(), comment, cfg_for(home))


def changed_since(home: Path, p: governance.Proposal) -> str | None:
    """A warning when the live threshold or champion is no longer what the proposal was based on."""
    if p.kind == "operating_point":
        live = models_cache.live_threshold(home, f"{p.model}@{p.version}")
        before = p.payload.get("previous_threshold")
        if live == before:
            return None
        return (f"Since this was proposed the live threshold changed from {fmt(before, 'thr')} to "
                f"{fmt(live, 'thr')}; the 'current' column shows the numbers at the old one.")
    now, before = registry.champion(p.model, cfg_for(home).home), p.payload.get("previous_champion")
    if now == before:
        return None
    return (f"Since this was proposed the champion changed from {version_label(p.model, before)} to "
            f"{version_label(p.model, now)}.")


def evidence_pack(home: Path, proposal_id: int) -> bytes:
    """The evidence pack zip of a proposal, built once per proposal."""
    return _evidence_pack(str(home), int(proposal_id))


@st.cache_data(ttl=TTL, max_entries=8, show_spinner="Building the evidence pack...")
def _evidence_pack(home: str, proposal_id: int) -> bytes:
    return evidence.evidence_pack(proposal_id, cfg_for(home))


def evidence_file_name(proposal_id: int) -> str:
    return f"fraudlens_evidence_{int(proposal_id)}.zip"


def record(home: Path, detail: dict) -> audit.Entry:
    """Record an export or download by the user of this run."""
    return audit.record(auth.user(), audit.EXPORT, detail, cfg=cfg_for(home))


# ---------------------------------------------------------------------------- audit log

@dataclass(frozen=True)
class LogPage:
    """One page of the audit log, newest first; ``total`` is None under an action filter."""

    entries: list[audit.Entry]
    offset: int
    has_next: bool
    total: int | None


def verification(home: Path) -> audit.Verification:
    return audit.verify(cfg=cfg_for(home))


def verification_text(check: audit.Verification) -> str:
    if check.ok:
        head = f", head hash `{check.head_hash}` (entry {check.head_seq})" if check.head_seq else ""
        return f"{check.entries:,} entries, chain intact{head}."
    return (f"The audit log is broken at entry {check.first_bad_seq}: {check.reason}. "
            f"{check.entries:,} entries before it fit the chain.")


def log_page(home: Path, page: int, action: str | None) -> LogPage:
    """Entries of page ``page`` (0-based); one more row is read to know whether a next page exists."""
    offset = max(int(page), 0) * PAGE_SIZE
    found = audit.entries(PAGE_SIZE + 1, offset, action=action, cfg=cfg_for(home))
    total = audit.count(cfg_for(home)) if action is None else None
    return LogPage(found[:PAGE_SIZE], offset, len(found) > PAGE_SIZE, total)


def log_table(entries: list[audit.Entry]) -> pd.DataFrame:
    tz = cached.timezone_name()
    rows = [{"seq": e.seq, "when": cached.local_time(e.at, tz, seconds=True), "user": e.user, "action": e.action,
             "detail": json.dumps(e.detail, ensure_ascii=False, sort_keys=True), "hash": e.hash[:12]}
            for e in entries]
    return pd.DataFrame(rows, columns=["seq", "when", "user", "action", "detail", "hash"])


def page_caption(page: LogPage) -> str:
    if not page.entries:
        return "No entries."
    first, last = page.offset + 1, page.offset + len(page.entries)
    of = f" of {page.total:,}" if page.total is not None else ""
    return f"Entries {first:,}–{last:,}{of}, newest first."


def detail_json(entry: audit.Entry) -> str:
    return json.dumps(entry.detail, ensure_ascii=False, indent=2, sort_keys=True)


def log_export(home: Path, fmt_: str) -> bytes:
    """The whole log as CSV or JSON Lines, built again only when the log has grown."""
    return _log_export(str(home), fmt_, audit.head(cfg_for(home)))


@st.cache_data(ttl=600, max_entries=4, show_spinner=False)
def _log_export(home: str, fmt_: str, head: tuple) -> bytes:
    return audit.export(fmt_, cfg_for(home))
