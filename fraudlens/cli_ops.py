"""``python -m fraudlens alerts ...`` and ``python -m fraudlens audit ...``.

Registered by :mod:`fraudlens.cli` (same exit codes: 0 success, 2 bad input or usage; ``audit
verify`` exits 2 when the chain is broken). The acting user is ``--user``, else
``$FRAUDLENS_USER``, else the login name.
"""

from __future__ import annotations

import argparse
import getpass
import json
import math
import os
import sys
from datetime import date

from fraudlens.errors import FraudLensError


def acting_user(explicit: str | None = None) -> str:
    """``explicit``, else ``$FRAUDLENS_USER``, else the login name."""
    if explicit and explicit.strip():
        return explicit.strip()
    env = os.environ.get("FRAUDLENS_USER", "").strip()
    if env:
        return env
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def add_parsers(sub) -> None:
    """Add the ``alerts`` and ``audit`` commands to the CLI's subparsers."""
    al = sub.add_parser("alerts", help="raise, list and dispose of alerts")
    al_sub = al.add_subparsers(dest="alerts_command", required=True, parser_class=type(al))
    ra = al_sub.add_parser("raise", help="score a dataset and queue alerts")
    ra.add_argument("--dataset", required=True)
    ra.add_argument("--model", required=True, help="MODEL (its champion) or MODEL@VERSION")
    ra.add_argument("--threshold", type=float, help="default: the version's live operating point")
    ra.add_argument("--from", dest="date_from", type=_date)
    ra.add_argument("--until", dest="date_until", type=_date)
    batch = ra.add_mutually_exclusive_group()
    batch.add_argument("--ingest", dest="ingest_id", help="only the rows of this ingest id")
    batch.add_argument("--latest-batch", action="store_true", help="only the rows of the latest ingest")
    ra.add_argument("--order", choices=["expected_loss", "score"], default="expected_loss")
    ra.add_argument("--sample-rate", type=float, default=0.005, help="below-the-line review share")
    ra.add_argument("--explain", type=int, default=200, help="alerts explained now (others on open)")
    ra.add_argument("--seed", type=int)
    ra.add_argument("--user")
    ra.add_argument("--json", action="store_true")

    ls = al_sub.add_parser("list", help="list alerts")
    ls.add_argument("--dataset")
    ls.add_argument("--status", action="append",
                    choices=["open", "confirmed_fraud", "false_positive", "needs_info", "all"],
                    help="repeatable; default open")
    ls.add_argument("--assignee")
    ls.add_argument("--source", choices=["threshold", "below_the_line"])
    ls.add_argument("--order", choices=["expected_loss", "score", "amount", "newest", "created_at"],
                    default="expected_loss")
    ls.add_argument("--limit", type=int, default=50)
    ls.add_argument("--offset", type=int, default=0)
    ls.add_argument("--json", action="store_true")

    dp = al_sub.add_parser("dispose", help="set the disposition of alerts")
    dp.add_argument("ids", nargs="+", type=int, metavar="ALERT_ID")
    dp.add_argument("--disposition", required=True, choices=["confirmed_fraud", "false_positive", "needs_info"])
    dp.add_argument("--comment", required=True)
    dp.add_argument("--user")
    dp.add_argument("--change", action="store_true",
                    help="change alerts that already have a final disposition (the old one stays in the history)")
    dp.add_argument("--json", action="store_true")

    es = al_sub.add_parser("estimate", help="estimated recall from the below-the-line sample")
    es.add_argument("--dataset", required=True)
    es.add_argument("--model", required=True)
    es.add_argument("--json", action="store_true")

    au = sub.add_parser("audit", help="verify, list or export the audit log")
    au_sub = au.add_subparsers(dest="audit_command", required=True, parser_class=type(au))
    ve = au_sub.add_parser("verify", help="check the hash chain (exit 2 if broken)")
    ve.add_argument("--json", action="store_true")
    li = au_sub.add_parser("list", help="list entries, newest first")
    li.add_argument("--limit", type=int, default=50)
    li.add_argument("--offset", type=int, default=0)
    li.add_argument("--action")
    li.add_argument("--json", action="store_true")
    ex = au_sub.add_parser("export", help="write the whole log to PATH.csv or PATH.json")
    ex.add_argument("--out", required=True)
    ex.add_argument("--user")

    add_proposal_parsers(sub)


def add_proposal_parsers(sub) -> None:
    """``proposals``: four-eyes changes of the live operating point and the champion."""
    pr = sub.add_parser("proposals", help="propose, list, approve or reject threshold and champion changes")
    pr_sub = pr.add_subparsers(dest="proposals_command", required=True, parser_class=type(pr))
    pl = pr_sub.add_parser("list", help="proposals, newest first")
    pl.add_argument("--status", choices=["pending", "approved", "rejected"])
    pl.add_argument("--model")
    pl.add_argument("--json", action="store_true")
    pp = pr_sub.add_parser("propose", help="propose a live threshold (--threshold) or a champion (--champion)")
    pp.add_argument("--model", required=True, help="MODEL@VERSION (or MODEL: its champion, else latest)")
    what = pp.add_mutually_exclusive_group(required=True)
    what.add_argument("--threshold", type=float)
    what.add_argument("--champion", action="store_true")
    pp.add_argument("--comment", required=True)
    pp.add_argument("--user")
    pp.add_argument("--json", action="store_true")
    for name, verb in (("approve", "approve (a second person: not the proposer)"), ("reject", "reject")):
        dp = pr_sub.add_parser(name, help=f"{verb} a pending proposal")
        dp.add_argument("id", type=int)
        dp.add_argument("--role", required=True, choices=["analyst", "admin"],
                        help="the role you act in (recorded; the command line has no sign-in)")
        dp.add_argument("--comment", required=name == "reject", default="")
        dp.add_argument("--user")
        dp.add_argument("--json", action="store_true")
    ev = pr_sub.add_parser("evidence", help="write the evidence pack (zip) of an approved proposal")
    ev.add_argument("id", type=int)
    ev.add_argument("--out", required=True)
    ev.add_argument("--user")


def _alerts(args) -> int:
    return {"raise": _raise, "list": _list, "dispose": _dispose, "estimate": _estimate}[args.alerts_command](args)


def _raise(args) -> int:
    from fraudlens import alerts

    ingest_id = alerts.latest_ingest(args.dataset) if args.latest_batch else args.ingest_id
    r = alerts.raise_alerts(
        args.dataset, args.model, threshold=args.threshold, date_from=args.date_from, date_until=args.date_until,
        ingest_id=ingest_id, order=args.order, sample_rate=args.sample_rate, explain_top=args.explain,
        seed=args.seed, user=acting_user(args.user),
    )
    if args.json:
        print(json.dumps({k: getattr(r, k) for k in r.__dataclass_fields__}, indent=1))
        return 0
    print(f"{r.dataset}: scored {r.scored:,} transactions ({r.scope}) with {r.model} v{r.version} at "
          f"threshold {r.threshold:.4f} in {r.seconds:.1f} s")
    print(f"  alerts raised: {r.alerts_created:,}; below-the-line sample: {r.sampled:,} of {r.below:,} "
          f"({r.sample_rate:.2%}); skipped (already alerted): {r.skipped_existing:,}; explained: {r.explained:,}")
    return 0


def _list(args) -> int:
    from fraudlens import alerts

    statuses = args.status or ["open"]
    status = None if "all" in statuses else statuses
    page = alerts.queue(dataset=args.dataset, status=status, assignee=args.assignee, source=args.source,
                        order=args.order, limit=args.limit, offset=args.offset)
    rows = page.rows
    if args.json:
        print(json.dumps({"total": page.total, "offset": page.offset, "limit": page.limit,
                          "alerts": json.loads(rows.to_json(orient="records"))}, indent=1))
        return 0
    print(f"{page.total:,} alert(s); showing {len(rows):,} from {page.offset + 1 if len(rows) else 0}")
    print(f"{'id':>7} {'status':<16} {'source':<15} {'score':>6} {'amount':>12} {'exp. loss':>11}  transaction")
    for r in rows.itertuples(index=False):
        print(f"{r.id:>7} {r.status:<16} {r.source:<15} {r.score:>6.3f} {_money(r.amount):>12} "
              f"{_money(r.expected_loss):>11}  {r.transaction_id}")
    return 0


def _money(value) -> str:
    return "" if value is None or value != value else f"{value:,.2f}"


def _dispose(args) -> int:
    from fraudlens import alerts

    n = alerts.bulk_dispose(args.ids, args.disposition, args.comment, acting_user(args.user), change=args.change)
    if args.json:
        print(json.dumps({"disposed": n, "disposition": args.disposition, "ids": args.ids}))
        return 0
    print(f"{n:,} alert(s) set to {args.disposition}")
    return 0


def _estimate(args) -> int:
    from fraudlens import alerts

    e = alerts.estimate_missed(args.dataset, args.model)
    if args.json:
        values = {k: getattr(e, k) for k in e.__dataclass_fields__}
        print(json.dumps({k: None if isinstance(v, float) and math.isnan(v) else v for k, v in values.items()},
                         indent=1, default=str))
        return 0
    print(f"{e.model} v{e.version} on {e.dataset}: {e.runs} run(s), {e.scored:,} transactions scored, "
          f"{e.above:,} alerts, {e.below:,} below the threshold")
    print(f"  alerts resolved: {e.resolved_above:,} of {e.above:,} ({e.confirmed_above:,} confirmed fraud)")
    print(f"  below-the-line sample: {e.sample_resolved:,} of {e.sample_size:,} reviewed "
          f"({e.sample_confirmed:,} confirmed fraud)")
    if math.isnan(e.recall):
        print("  estimated recall: not yet (no reviewed below-the-line sample)")
    else:
        print(f"  frauds caught (estimated): {e.frauds_above:,.0f} [{e.frauds_above_low:,.0f}, "
              f"{e.frauds_above_high:,.0f}]; missed (estimated): {e.frauds_below:,.0f} "
              f"[{e.frauds_below_low:,.0f}, {e.frauds_below_high:,.0f}]")
        print(f"  estimated recall: {e.recall:.1%} [{e.recall_low:.1%}, {e.recall_high:.1%}] "
              f"({e.confidence:.0%} interval)")
    print(f"  {e.note}")
    return 0


def _audit(args) -> int:
    return {"verify": _verify, "list": _audit_list, "export": _export}[args.audit_command](args)


def _verify(args) -> int:
    from fraudlens import audit

    check = audit.verify()
    if args.json:
        print(json.dumps({k: getattr(check, k) for k in check.__dataclass_fields__}, indent=1))
    elif check.ok:
        print(f"audit log intact: {check.entries:,} entries; head {check.head_seq} {check.head_hash}")
    else:
        print(f"audit log BROKEN at entry {check.first_bad_seq}: {check.reason}", file=sys.stderr)
    return 0 if check.ok else 2


def _audit_list(args) -> int:
    from fraudlens import audit

    if args.limit < 0 or args.offset < 0:
        raise FraudLensError("--limit and --offset must be >= 0.")
    found = audit.entries(args.limit, args.offset, action=args.action)
    if args.json:
        print(json.dumps([{k: getattr(e, k) for k in e.__dataclass_fields__} for e in found], indent=1,
                         ensure_ascii=False))
        return 0
    for e in found:
        print(f"{e.seq:>6} {e.at[:19]} {e.user:<16} {e.action:<24} {audit.canonical(e.detail)[:120]}")
    return 0


def _export(args) -> int:
    from fraudlens import audit

    path = audit.write_export(args.out, acting_user(args.user))
    print(f"audit log written to {path}")
    return 0


def record(action: str, detail: dict) -> None:
    """Audit a CLI step that already succeeded (ingest, train) as the acting user."""
    from fraudlens import audit

    try:
        audit.record(acting_user(), action, detail)
    except FraudLensError as exc:  # the step itself succeeded; say loudly that it is not audited
        print(f"warning: {action} succeeded but could not be written to the audit log: {exc}", file=sys.stderr)


def _proposals(args) -> int:
    return {"list": _proposals_list, "propose": _propose, "approve": _decide, "reject": _decide,
            "evidence": _evidence}[args.proposals_command](args)


def _proposal_json(p) -> dict:
    return {"id": p.id, "kind": p.kind, "model": p.model, "version": p.version, "status": p.status,
            "threshold": p.payload.get("threshold"), "comment": p.comment, "proposed_by": p.proposed_by,
            "proposed_at": p.proposed_at, "decided_by": p.decided_by, "decided_at": p.decided_at}


def _proposals_list(args) -> int:
    from fraudlens import governance

    found = [governance.get(int(i)) for i in governance.proposals(args.status, args.model)["id"]]
    if args.json:
        print(json.dumps([_proposal_json(p) for p in found], indent=1))
        return 0
    for p in found:
        change = f"threshold {p.payload['threshold']:.4f}" if p.kind == "operating_point" else "champion"
        print(f"#{p.id:<4} {p.status:<9} {p.model} v{p.version} {change:<18} by {p.proposed_by} "
              f"({p.proposed_at[:16]}): {p.comment}")
    if not found:
        print("no proposals")
    return 0


def _propose(args) -> int:
    from fraudlens import governance, operating
    from fraudlens.config import settings

    name, version = operating.resolve(settings().home, args.model)
    kind, payload = ("champion", {}) if args.champion else ("operating_point", {"threshold": args.threshold})
    p = governance.propose(kind, name, version, payload, args.comment, acting_user(args.user))
    if args.json:
        print(json.dumps(_proposal_json(p)))
        return 0
    print(f"proposal #{p.id}: {kind.replace('_', ' ')} for {name} v{version}, waiting for a second person")
    return 0


def _decide(args) -> int:
    from fraudlens import governance

    decide = governance.approve if args.proposals_command == "approve" else governance.reject
    p = decide(args.id, acting_user(args.user), args.role, args.comment)
    if args.json:
        print(json.dumps(_proposal_json(p)))
        return 0
    print(f"proposal #{p.id} {p.status} by {p.decided_by}")
    return 0


def _evidence(args) -> int:
    from pathlib import Path

    from fraudlens import audit, evidence, files

    data = evidence.evidence_pack(args.id)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".part")
    tmp.write_bytes(data)
    files.fsync_path(tmp)
    tmp.replace(out)
    audit.record(acting_user(args.user), audit.EXPORT, {"what": "evidence_pack", "proposal_id": args.id,
                                                        "file": out.name})
    print(f"evidence pack of proposal #{args.id} written to {out} ({len(data):,} bytes)")
    return 0


COMMANDS = {"alerts": _alerts, "audit": _audit, "proposals": _proposals}
