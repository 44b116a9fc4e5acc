"""Evidence packs: one zip per proposal with what an inspector asks to see.

``evidence_pack(proposal_id)`` returns the bytes of a zip holding:

- ``README.md`` — the change in words: who proposed and approved it, when, why, and its impact;
- ``proposal.json`` — the proposal as stored (payload included);
- ``MODEL_CARD.md`` — the model card of the version concerned;
- ``metrics.csv`` — the operating point before and after (precision, recall, alerts per day,
  money caught and missed, expected cost) on the version's test window, and the change;
- ``pr_curve.svg`` and ``pr_curve.csv`` — the precision-recall curve with both points marked (a
  self-contained SVG: no script, no network);
- ``approvals.csv`` — the proposal and its decision;
- ``audit.csv`` and ``audit_verification.json`` — the audit entries of this proposal and the
  state of the whole chain (with its head, to keep as an anchor).

Building a pack changes nothing; the caller records the download with ``audit.record(user,
audit.EXPORT, ...)`` when a person actually takes it.
"""

from __future__ import annotations

import io
import json
import logging
import math
import zipfile
from xml.sax.saxutils import escape

import numpy as np
import pandas as pd

from fraudlens import audit, governance, operating, registry
from fraudlens.config import Settings, settings
from fraudlens.errors import ModelError
from fraudlens.export import to_csv_bytes
from fraudlens.thresholds import OperatingPoint

logger = logging.getLogger(__name__)

METRIC_FIELDS = ("threshold", "alerts", "alerts_per_day", "tp", "fp", "fn", "precision", "recall", "f1",
                 "fraud_amount_caught", "fraud_amount_missed", "expected_cost")
DEFAULT_THRESHOLD = 0.5


def evidence_pack(proposal_id: int, cfg: Settings | None = None) -> bytes:
    """The evidence pack of a proposal as zip bytes (any status; the README says which).

    Parameters
    ----------
    proposal_id : int

    Returns
    -------
    bytes
        A zip archive; see the module docstring for its files.
    """
    cfg = cfg or settings()
    proposal = governance.get(proposal_id, cfg)
    points, inputs = _points(cfg, proposal)
    metrics = _metrics_frame(points)
    curve = _curve(inputs, points)
    files = {
        "README.md": _readme(proposal, points).encode("utf-8"),
        "proposal.json": json.dumps(_proposal_dict(proposal), indent=1, ensure_ascii=False).encode("utf-8"),
        "MODEL_CARD.md": _card(cfg, proposal).encode("utf-8"),
        "metrics.csv": to_csv_bytes(metrics),
        "pr_curve.svg": pr_curve_svg(curve, _marks(points), title=f"Precision-recall, {proposal.ref}").encode("utf-8"),
        "pr_curve.csv": to_csv_bytes(curve),
        "approvals.csv": to_csv_bytes(_approvals(proposal)),
        "audit.csv": to_csv_bytes(_audit_frame(cfg, proposal)),
        "audit_verification.json": _verification(cfg),
    }
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(f"evidence_{proposal.id}/{name}", date_time=_zip_time(proposal))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, data)
    logger.info("evidence pack of proposal %d: %d files, %d bytes", proposal.id, len(files), out.tell())
    return out.getvalue()


def _zip_time(proposal: governance.Proposal) -> tuple[int, int, int, int, int, int]:
    stamp = pd.Timestamp(proposal.decided_at or proposal.proposed_at)
    return (max(stamp.year, 1980), stamp.month, stamp.day, stamp.hour, stamp.minute, stamp.second)


def _points(cfg: Settings, proposal: governance.Proposal) -> tuple[dict[str, OperatingPoint | None], object]:
    """The "before" and "after" operating points, and the threshold inputs of the curve."""
    if proposal.kind == "operating_point":
        inputs = _inputs(cfg, f"{proposal.model}@{proposal.version}")
        before = governance.point_from_dict(proposal.payload.get("previous_point"))
        after = governance.point_from_dict(proposal.payload.get("point"))
        return {"before": before, "after": after}, inputs
    previous = proposal.payload.get("previous_champion")
    after_inputs = _inputs(cfg, f"{proposal.model}@{proposal.version}")
    before_point = None
    if previous is not None:
        before_inputs = _inputs(cfg, f"{proposal.model}@{previous}")
        if before_inputs is not None:
            before_point = _at_live(cfg, before_inputs)
    after_point = _at_live(cfg, after_inputs) if after_inputs is not None else None
    return {"before": before_point, "after": after_point}, after_inputs


def _inputs(cfg: Settings, ref: str):
    try:
        return operating.threshold_inputs(cfg.home, ref, cfg.timezone)
    except ModelError as exc:
        logger.warning("no test-window scores for %s: %s", ref, exc)
        return None


def _at_live(cfg: Settings, inputs) -> OperatingPoint:
    live = operating.live_point(cfg.home, inputs.ref)
    t = float(live.point.threshold) if live is not None else DEFAULT_THRESHOLD
    return operating.with_costs(inputs.table, operating.Costs()).at(t)


def _metrics_frame(points: dict[str, OperatingPoint | None]) -> pd.DataFrame:
    rows = []
    for when, point in points.items():
        row = {"when": when}
        row.update({f: (getattr(point, f) if point is not None else np.nan) for f in METRIC_FIELDS})
        rows.append(row)
    frame = pd.DataFrame(rows, columns=["when", *METRIC_FIELDS])
    if all(p is not None for p in points.values()):
        change = {"when": "change"}
        change.update({f: frame[f].iloc[1] - frame[f].iloc[0] for f in METRIC_FIELDS})
        frame = pd.concat([frame, pd.DataFrame([change])], ignore_index=True)
    return frame


def _curve(inputs, points: dict[str, OperatingPoint | None]) -> pd.DataFrame:
    """The curve through the table's breakpoints, an even grid and the marked points themselves,
    so a marked point always lies on the drawn line."""
    columns = ["threshold", "precision", "recall", "alerts", "alerts_per_day", "fraud_amount_caught"]
    if inputs is None:
        return pd.DataFrame(columns=columns)
    curve = operating.curve_frame(inputs.table)
    marked = pd.DataFrame([{c: getattr(p, c) for c in columns} for p in points.values() if p is not None],
                          columns=columns)
    both = pd.concat([curve[columns], marked], ignore_index=True) if len(marked) else curve[columns]
    return both.sort_values("threshold", kind="stable").drop_duplicates("threshold").reset_index(drop=True)


def _marks(points: dict[str, OperatingPoint | None]) -> list[tuple[str, float, float, str]]:
    colours = {"before": "#7f7f7f", "after": "#d62728"}
    out = []
    for when, point in points.items():
        if point is not None and not math.isnan(point.precision) and not math.isnan(point.recall):
            out.append((f"{when} (t = {point.threshold:.3f})", point.recall, point.precision, colours[when]))
    return out


def _card(cfg: Settings, proposal: governance.Proposal) -> str:
    try:
        return registry.model_card(proposal.model, proposal.version, cfg.home)
    except ModelError as exc:
        return f"# {proposal.ref}\n\nThe model card cannot be read: {exc}\n"


def _proposal_dict(proposal: governance.Proposal) -> dict:
    return {k: getattr(proposal, k) for k in governance.COLUMNS}


def _approvals(proposal: governance.Proposal) -> pd.DataFrame:
    fields = [c for c in governance.COLUMNS if c != "payload"]
    return pd.DataFrame([{k: getattr(proposal, k) for k in fields}], columns=fields)


def _audit_frame(cfg: Settings, proposal: governance.Proposal) -> pd.DataFrame:
    found = audit.related("proposal_id", proposal.id, cfg)
    return pd.DataFrame([{"seq": e.seq, "at": e.at, "user": e.user, "action": e.action,
                          "detail": audit.canonical(e.detail), "prev_hash": e.prev_hash, "hash": e.hash}
                         for e in found], columns=audit.COLUMNS)


def _verification(cfg: Settings) -> bytes:
    check = audit.verify(cfg=cfg)
    data = {"ok": check.ok, "entries": check.entries, "first_bad_seq": check.first_bad_seq,
            "reason": check.reason, "head_seq": check.head_seq, "head_hash": check.head_hash}
    return json.dumps(data, indent=1).encode("utf-8")


def _fmt(value: float, kind: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return {"pct": f"{value:.1%}", "num": f"{value:,.1f}", "pen": f"PEN {value:,.2f}",
            "thr": f"{value:.4f}"}[kind]


def _readme(proposal: governance.Proposal, points: dict[str, OperatingPoint | None]) -> str:
    what = (f"live operating point of {proposal.ref}" if proposal.kind == "operating_point"
            else f"champion of {proposal.model}: version {proposal.version} "
                 f"(was {proposal.payload.get('previous_champion')})")
    lines = [
        f"# Evidence pack: proposal {proposal.id}",
        "",
        f"Change: {what}.",
        f"Status: **{proposal.status}**.",
        f"Proposed by {proposal.proposed_by} at {proposal.proposed_at}: {proposal.comment}",
    ]
    if proposal.decided_by:
        lines.append(f"{proposal.status.capitalize()} by {proposal.decided_by} at {proposal.decided_at}: "
                     f"{proposal.decision_comment or '(no comment)'}")
    lines += ["", "## Impact on the test window of the version", "",
              "| | before | after |", "|---|---|---|"]
    rows = (("threshold", "thr"), ("precision", "pct"), ("recall", "pct"), ("alerts_per_day", "num"),
            ("fraud_amount_caught", "pen"), ("fraud_amount_missed", "pen"), ("expected_cost", "pen"))
    for field, kind in rows:
        cells = [_fmt(getattr(p, field), kind) if p is not None else "n/a" for p in points.values()]
        lines.append(f"| {field.replace('_', ' ')} | {cells[0]} | {cells[1]} |")
    lines += ["", "Expected cost = PEN 5 per reviewed alert + the fraud amount missed.", "",
              "## Files", "",
              "- `proposal.json`: the proposal as stored; `approvals.csv`: its decision",
              "- `MODEL_CARD.md`: the model version concerned",
              "- `metrics.csv`: before, after and change; `pr_curve.svg`/`.csv`: the precision-recall curve",
              "- `audit.csv`: the audit entries of this proposal; `audit_verification.json`: the whole chain "
              "checked when this pack was made, with its head (seq, hash) to keep", ""]
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# A precision-recall curve as a self-contained SVG


def pr_curve_svg(curve: pd.DataFrame, marks: list[tuple[str, float, float, str]] | None = None, *,
                 title: str = "Precision-recall curve", width: int = 640, height: int = 440) -> str:
    """Draw precision against recall as SVG text (no script, no external resource).

    Parameters
    ----------
    curve : DataFrame with columns recall and precision
        Points of the curve (any order; NaN rows are skipped).
    marks : list of (label, recall, precision, colour), optional
        Points to mark and name in the legend.
    title : str

    Returns
    -------
    str
        An ``<svg>`` document.
    """
    left, right, top, bottom = 64, 24, 40, 56
    pw, ph = width - left - right, height - top - bottom

    def x(r: float) -> float:
        return left + pw * min(max(r, 0.0), 1.0)

    def y(p: float) -> float:
        return top + ph * (1 - min(max(p, 0.0), 1.0))

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{width / 2:.0f}" y="22" text-anchor="middle" font-size="15">{escape(title)}</text>']
    for k in range(6):
        v = k / 5
        parts.append(f'<line x1="{x(v):.1f}" y1="{top}" x2="{x(v):.1f}" y2="{top + ph}" stroke="#e5e5e5"/>')
        parts.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{left + pw}" y2="{y(v):.1f}" stroke="#e5e5e5"/>')
        parts.append(f'<text x="{x(v):.1f}" y="{top + ph + 18}" text-anchor="middle">{v:.1f}</text>')
        parts.append(f'<text x="{left - 8}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.1f}</text>')
    parts.append(f'<rect x="{left}" y="{top}" width="{pw}" height="{ph}" fill="none" stroke="#333"/>')
    parts.append(f'<text x="{left + pw / 2:.0f}" y="{height - 14}" text-anchor="middle">Recall</text>')
    parts.append(f'<text x="16" y="{top + ph / 2:.0f}" text-anchor="middle" '
                 f'transform="rotate(-90 16 {top + ph / 2:.0f})">Precision</text>')
    points = curve[["recall", "precision"]].dropna().sort_values(["recall", "precision"],
                                                                 ascending=[True, False])
    if len(points):
        path = " ".join(f"{x(r):.1f},{y(p):.1f}" for r, p in points.itertuples(index=False))
        parts.append(f'<polyline points="{path}" fill="none" stroke="#1f77b4" stroke-width="2"/>')
    for n, (label, r, p, colour) in enumerate(marks or []):
        parts.append(f'<circle cx="{x(r):.1f}" cy="{y(p):.1f}" r="6" fill="{escape(colour)}" stroke="black"/>')
        ly = top + 16 + 18 * n
        parts.append(f'<circle cx="{left + pw - 190}" cy="{ly - 4}" r="5" fill="{escape(colour)}" stroke="black"/>')
        parts.append(f'<text x="{left + pw - 180}" y="{ly}">{escape(label)} P {p:.2f}, R {r:.2f}</text>')
    parts.append("</svg>")
    return "\n".join(parts)
