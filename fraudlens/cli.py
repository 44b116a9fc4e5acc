"""``python -m fraudlens``: every step the app does, without the app.

Exit 0 on success, 2 on bad input or usage with a short message on stderr (no traceback).
Heavy libraries are imported inside the commands that need them.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from datetime import date

from fraudlens.errors import FraudLensError

logger = logging.getLogger("fraudlens")


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # usage errors: exit 2 with one line, like bad input
        self.print_usage(sys.stderr)
        raise _UsageError(f"{self.prog}: {message}")


class _UsageError(Exception):
    pass


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m fraudlens", description="FraudLens command line.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress to stderr")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    gen = sub.add_parser("generate", help="write a synthetic transaction file")
    gen.add_argument("--rows", type=int, required=True)
    gen.add_argument("--seed", type=int, default=42)
    gen.add_argument("--fraud-rate", type=float, default=0.008)
    gen.add_argument("--start", type=_date, default=date(2025, 1, 1))
    gen.add_argument("--days", type=int, default=90)
    gen.add_argument("--late-labels", action="store_true",
                     help="labels arrive late or never, as in a real bank")
    gen.add_argument("--out", required=True, help="PATH ending in .parquet, .csv or .csv.gz")

    ing = sub.add_parser("ingest", help="load files into a dataset")
    ing.add_argument("paths", nargs="+", metavar="PATH")
    ing.add_argument("--dataset", required=True)
    ing.add_argument("--mapping", help="MAPPING.json: {canonical: source column}")
    mode = ing.add_mutually_exclusive_group()
    mode.add_argument("--append", action="store_true")
    mode.add_argument("--replace", action="store_true")
    ing.add_argument("--strict", action="store_true", help="fail on any rejected row")
    ing.add_argument("--pseudonymise", action="store_true",
                     help="store keyed hashes of account_id and ip_address")
    ing.add_argument("--json", action="store_true")

    lst = sub.add_parser("datasets", help="list datasets")
    lst.add_argument("--json", action="store_true")

    prof = sub.add_parser("profile", help="data-quality profile of a dataset")
    prof.add_argument("--dataset", required=True)
    prof.add_argument("--json", action="store_true")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except _UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        return COMMANDS[args.command](args)
    except FraudLensError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _generate(args) -> int:
    from fraudlens.synth import generate

    result = generate(
        args.out, args.rows, seed=args.seed, fraud_rate=args.fraud_rate, start=args.start,
        days=args.days, late_labels=args.late_labels,
    )
    print(
        f"wrote {result.rows:,} rows ({result.frauds:,} fraud) to {result.path} "
        f"in {result.seconds:.1f} s"
    )
    return 0


def _ingest(args) -> int:
    from fraudlens.ingest import ingest, load_mapping

    mapping = load_mapping(args.mapping) if args.mapping else None
    mode = "append" if args.append else "replace" if args.replace else "create"
    result = ingest(
        args.paths, args.dataset, mapping=mapping, mode=mode, strict=args.strict,
        pseudonymise=args.pseudonymise,
    )
    if args.json:
        print(json.dumps({
            "dataset": result.dataset, "version": result.version, "rows_read": result.rows_read,
            "loaded": result.loaded, "rejected": result.rejected,
            "rejects_by_reason": result.rejects_by_reason, "rejects_file": result.rejects_file,
            "seconds": round(result.seconds, 3),
        }, indent=1))
        return 0
    print(f"{result.dataset}: read {result.rows_read:,} rows, loaded {result.loaded:,}, "
          f"rejected {result.rejected:,} ({result.seconds:.1f} s)")
    for reason, n in sorted(result.rejects_by_reason.items(), key=lambda kv: -kv[1]):
        print(f"  rejected {n:,}: {reason}")
    if result.rejects_file:
        print(f"  rejects: {result.rejects_file} (under the dataset folder)")
    return 0


def _datasets(args) -> int:
    from fraudlens import datasets
    from fraudlens.config import data_home

    found = datasets.list_all(data_home())
    if args.json:
        print(json.dumps([d.to_summary() for d in found], indent=1))
        return 0
    if not found:
        print("no datasets; ingest one with: python -m fraudlens ingest PATH --dataset NAME")
        return 0
    print(f"{'name':<20} {'rows':>12} {'rejected':>9} {'frauds':>8}  first .. last")
    for d in found:
        print(f"{d.name:<20} {d.rows:>12,} {d.rejected:>9,} {d.frauds:>8,}  {d.first} .. {d.last}")
    return 0


def _profile(args) -> int:
    from fraudlens import quality

    profile = quality.load(args.dataset)
    if args.json:
        print(json.dumps(profile, indent=1, default=str))
        return 0
    print(f"{profile['dataset']}: {profile['rows']:,} rows, {profile['rejected']:,} rejected")
    print(f"{'column':<24} {'type':<10} {'nulls':>10} {'distinct':>10}  min .. max")
    for c in profile["columns"]:
        print(f"{c['column']:<24} {c['type'][:10]:<10} {c['nulls']:>10,} {c['distinct']:>10,}  "
              f"{c['min']} .. {c['max']}")
    for reason, n in profile["rejects_by_reason"].items():
        print(f"rejected {n:,}: {reason}")
    return 0


COMMANDS = {"generate": _generate, "ingest": _ingest, "datasets": _datasets, "profile": _profile}
