"""Four eyes: the live operating point and the champion change only through an approved proposal.

An analyst proposes a change with a comment (:func:`propose`); it takes effect only when a
second person, with the analyst or admin role, approves it (:func:`approve`). Nobody approves
their own proposal. Each step is a row in the ``proposals`` table of the operational store and
an entry in the audit log, written in one transaction; the change itself (a line in the
version's operating-point log, or ``registry.set_champion``) is made while that transaction
holds the write lock, so two approvers cannot both apply one proposal.

A proposal's payload keeps what the decision was based on: for an operating point, the point
at the proposed threshold and at the live one on the version's test window; for a champion,
the previous champion. :mod:`fraudlens.evidence` turns it into an evidence pack.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, fields
import pandas as pd

from fraudlens import audit, operating, ops, registry, thresholds
from fraudlens.config import Settings, settings
from fraudlens.errors import FraudLensError
from fraudlens.thresholds import OperatingPoint

logger = logging.getLogger(__name__)

APPROVER_ROLES = ("analyst", "admin")
COLUMNS = ("id", "kind", "model", "version", "payload", "comment", "proposed_by", "proposed_at", "status",
           "decided_by", "decided_at", "decision_comment")


class GovernanceError(FraudLensError):
    """A proposal cannot be made, approved or rejected (four eyes, role, state)."""


@dataclass(frozen=True)
class Proposal:
    """One proposal as stored; ``payload`` is a dict."""

    id: int
    kind: str
    model: str
    version: int
    payload: dict
    comment: str
    proposed_by: str
    proposed_at: str
    status: str
    decided_by: str | None
    decided_at: str | None
    decision_comment: str | None

    @property
    def ref(self) -> str:
        return f"{self.model}@{self.version}"


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise GovernanceError(f"The '{name}' parameter must be a non-empty string. Got {value!r} instead.")
    return value.strip()


def identity(user: str) -> str:
    """Who a recorded user string names, without the role the app appends in brackets:
    ``"Ana (analyst, local mode)"`` and ``"Ana (admin, local mode)"`` are one person."""
    text = user.strip()
    if text.endswith(")") and " (" in text:
        text = text[:text.rindex(" (")]
    return text.strip().casefold()


def same_person(a: str, b: str) -> bool:
    return identity(a) == identity(b)


def point_to_dict(point: OperatingPoint | None) -> dict | None:
    """An OperatingPoint as JSON-able values (NaN as None)."""
    if point is None:
        return None
    return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in asdict(point).items()}


def point_from_dict(data: dict | None) -> OperatingPoint | None:
    if data is None:
        return None
    names = [f.name for f in fields(OperatingPoint)]
    return OperatingPoint(**{k: float("nan") if data.get(k) is None else data[k] for k in names})


def _operating_payload(cfg: Settings, name: str, version: int, payload: dict) -> dict:
    threshold = payload.get("threshold")
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
        raise GovernanceError(
            f"An operating-point proposal needs a 'threshold' in [0, 1] in its payload. Got {threshold!r} instead."
        )
    inputs = operating.threshold_inputs(cfg.home, f"{name}@{version}", cfg.timezone)
    table = operating.with_costs(inputs.table, operating.Costs())
    live = operating.live_point(cfg.home, f"{name}@{version}")
    previous = None if live is None else float(live.point.threshold)
    return {
        **payload,
        "threshold": float(threshold),
        "point": point_to_dict(table.at(float(threshold))),
        "previous_threshold": previous,
        "previous_point": None if previous is None else point_to_dict(table.at(previous)),
        "test_days": inputs.days,
    }


def _champion_payload(cfg: Settings, name: str, version: int, payload: dict) -> dict:
    registry.verify(name, version, home=cfg.home)
    return {**payload, "previous_champion": registry.champion(name, cfg.home)}


def propose(kind: str, model: str, version: int, payload: dict | None, comment: str, user: str,
            cfg: Settings | None = None) -> Proposal:
    """Propose a new live operating point or champion for ``model``.

    Parameters
    ----------
    kind : {"operating_point", "champion"}
    model : str
        Model name.
    version : int
        The version whose operating point changes, or that becomes champion.
    payload : dict
        ``{"threshold": t}`` for an operating point (plus anything worth keeping, e.g. the goal
        that found it); may be empty for a champion.
    comment : str
        Why (required).
    user : str
        Who proposes.

    Returns
    -------
    Proposal
        Pending. The payload gains the point at ``t`` and at the live threshold (operating
        point), or the previous champion (champion).
    """
    cfg = cfg or settings()
    if kind not in ops.PROPOSAL_KINDS:
        raise GovernanceError(f"The 'kind' parameter must be one of {list(ops.PROPOSAL_KINDS)}. Got {kind!r} instead.")
    name = registry.check_name(model)
    version = registry.check_version(version)
    comment, user = _text(comment, "comment"), _text(user, "user")
    payload = dict(payload or {})
    full = (_operating_payload if kind == "operating_point" else _champion_payload)(cfg, name, version, payload)
    at = ops.now()
    with ops.transaction(cfg.home) as con:
        cur = con.execute(
            "INSERT INTO proposals (kind, model, version, payload, comment, proposed_by, proposed_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            (kind, name, version, audit.canonical(audit.plain(full)), comment, user, at),
        )
        proposal_id = int(cur.lastrowid)
        audit.append(con, user, audit.PROPOSAL, {"proposal_id": proposal_id, "kind": kind, "model": name,
                                                 "version": version, "comment": comment,
                                                 **_summary(kind, full)})
    logger.info("proposal %d: %s for %s v%d by %s", proposal_id, kind, name, version, user)
    return get(proposal_id, cfg)


def _summary(kind: str, payload: dict) -> dict:
    if kind == "operating_point":
        return {"threshold": payload["threshold"], "previous_threshold": payload.get("previous_threshold")}
    return {"previous_champion": payload.get("previous_champion")}


def _row_to_proposal(row: tuple) -> Proposal:
    data = dict(zip(COLUMNS, row))
    data["payload"] = json.loads(data["payload"])
    return Proposal(**data)


def get(proposal_id: int, cfg: Settings | None = None) -> Proposal:
    """One proposal; GovernanceError if there is none with this id."""
    cfg = cfg or settings()
    found = ops.rows(cfg.home, f"SELECT {', '.join(COLUMNS)} FROM proposals WHERE id = ?", [int(proposal_id)])
    if not found:
        raise GovernanceError(f"There is no proposal {proposal_id}.")
    return _row_to_proposal(found[0])


def proposals(status: str | None = None, model: str | None = None, cfg: Settings | None = None) -> pd.DataFrame:
    """Proposals, newest first, optionally of one status and model (payload as a dict)."""
    cfg = cfg or settings()
    conds, params = [], []
    if status is not None:
        if status not in ops.PROPOSAL_STATUSES:
            raise GovernanceError(f"The 'status' parameter must be one of {list(ops.PROPOSAL_STATUSES)}. "
                                  f"Got {status!r} instead.")
        conds.append("status = ?")
        params.append(status)
    if model is not None:
        conds.append("model = ?")
        params.append(model)
    where = f"WHERE {' AND '.join(conds)}" if conds else ""
    frame = ops.frame(cfg.home, f"SELECT {', '.join(COLUMNS)} FROM proposals {where} ORDER BY id DESC", params)
    frame["payload"] = frame["payload"].map(json.loads)
    return frame


def _decide_checks(con, proposal_id: int, user: str, role: str, approving: bool) -> Proposal:
    if role not in APPROVER_ROLES:
        raise GovernanceError(f"Only the {' or '.join(APPROVER_ROLES)} role may decide on a proposal; "
                              f"{user} has the role {role!r}.")
    row = con.execute(f"SELECT {', '.join(COLUMNS)} FROM proposals WHERE id = ?", [int(proposal_id)]).fetchone()
    if row is None:
        raise GovernanceError(f"There is no proposal {proposal_id}.")
    proposal = _row_to_proposal(row)
    if proposal.status != "pending":
        raise GovernanceError(f"Proposal {proposal_id} was already {proposal.status} by {proposal.decided_by}.")
    if approving and same_person(user, proposal.proposed_by):
        raise GovernanceError(f"{user} proposed this change and cannot approve it: a second person must "
                              "(four eyes).")
    return proposal


def approve(proposal_id: int, user: str, role: str, comment: str = "", cfg: Settings | None = None) -> Proposal:
    """Approve a pending proposal and make the change live.

    Parameters
    ----------
    proposal_id : int
    user : str
        The approver: not the proposer.
    role : str
        The approver's role: ``analyst`` or ``admin``.
    comment : str

    Returns
    -------
    Proposal
        Approved. GovernanceError (and nothing changed) on self-approval, a role that may not
        approve, or a proposal that is not pending.
    """
    cfg = cfg or settings()
    user = _text(user, "user")
    comment = comment.strip() if isinstance(comment, str) else ""
    with ops.transaction(cfg.home) as con:
        proposal = _decide_checks(con, proposal_id, user, role, approving=True)
        change = _apply(cfg, proposal, user, comment)
        at = ops.now()
        con.execute("UPDATE proposals SET status = 'approved', decided_by = ?, decided_at = ?, "
                    "decision_comment = ? WHERE id = ?", (user, at, comment, proposal.id))
        audit.append(con, user, audit.APPROVAL, {"proposal_id": proposal.id, "kind": proposal.kind,
                                                 "model": proposal.model, "version": proposal.version,
                                                 "role": role, "comment": comment,
                                                 "proposed_by": proposal.proposed_by})
        audit.append(con, user, change[0], {"proposal_id": proposal.id, **change[1]})
    logger.info("proposal %d approved by %s", proposal.id, user)
    return get(proposal.id, cfg)


def _apply(cfg: Settings, proposal: Proposal, user: str, comment: str) -> tuple[str, dict]:
    why = f"proposal #{proposal.id} by {proposal.proposed_by}: {proposal.comment}"
    if comment:
        why += f" | approved by {user}: {comment}"
    else:
        why += f" | approved by {user}"
    # The audit names what the change replaced now, which another approval may have changed since
    # the proposal was made (then both are recorded).
    if proposal.kind == "operating_point":
        point = point_from_dict(proposal.payload["point"])
        live = operating.live_point(cfg.home, f"{proposal.model}@{proposal.version}")
        replaced = None if live is None else float(live.point.threshold)
        thresholds.save_operating_point(operating.log_path(cfg.home, proposal.model), proposal.model,
                                        proposal.version, point,
                                        f"{proposal.proposed_by}, approved by {user}", why)
        return audit.OPERATING_POINT, {"model": proposal.model, "version": proposal.version,
                                       "threshold": point.threshold,
                                       **_replaced("previous_threshold", replaced, proposal.payload)}
    replaced = registry.champion(proposal.model, cfg.home)
    registry.set_champion(proposal.model, proposal.version, user, why, home=cfg.home)
    return audit.CHAMPION, {"model": proposal.model, "version": proposal.version,
                            **_replaced("previous_champion", replaced, proposal.payload)}


def _replaced(key: str, replaced, payload: dict) -> dict:
    when_proposed = payload.get(key)
    return {key: replaced} if replaced == when_proposed else {key: replaced, f"{key}_when_proposed": when_proposed}


def reject(proposal_id: int, user: str, role: str, comment: str, cfg: Settings | None = None) -> Proposal:
    """Reject a pending proposal (its proposer may withdraw it); nothing else changes."""
    cfg = cfg or settings()
    user, comment = _text(user, "user"), _text(comment, "comment")
    with ops.transaction(cfg.home) as con:
        proposal = _decide_checks(con, proposal_id, user, role, approving=False)
        con.execute("UPDATE proposals SET status = 'rejected', decided_by = ?, decided_at = ?, "
                    "decision_comment = ? WHERE id = ?", (user, ops.now(), comment, proposal.id))
        audit.append(con, user, audit.REJECTION, {"proposal_id": proposal.id, "kind": proposal.kind,
                                                  "model": proposal.model, "version": proposal.version,
                                                  "role": role, "comment": comment})
    logger.info("proposal %d rejected by %s", proposal.id, user)
    return get(proposal.id, cfg)


def pending_for(model: str, cfg: Settings | None = None) -> list[Proposal]:
    """Pending proposals of ``model``, oldest first (what an approver should look at)."""
    frame = proposals("pending", model, cfg)
    return [get(int(i), cfg) for i in frame["id"].iloc[::-1]]

