"""``python -m fraudlens``: every step the app does, without the app.

Exit 0 on success, 2 on bad input or usage with a short message on stderr (no traceback).
Heavy libraries are imported inside the commands that need them.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from datetime import date

from fraudlens import cli_ops
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

    tr = sub.add_parser("train", help="train a model on a dataset")
    tr.add_argument("--dataset", required=True)
    tr.add_argument("--model", required=True, choices=["xgboost", "random_forest", "logistic"])
    tr.add_argument("--name", help="registry name (default DATASET_MODEL)")
    tr.add_argument("--tune", action="store_true", help="search hyper-parameters on time folds")
    for flag in ("--train-from", "--train-until", "--test-from", "--test-until"):
        tr.add_argument(flag, type=_date)
    tr.add_argument("--label-delay-days", type=int, default=7)
    tr.add_argument("--seed", type=int, default=42)
    tr.add_argument("--json", action="store_true")

    sc = sub.add_parser("score", help="score a dataset with a model")
    sc.add_argument("--dataset", required=True)
    sc.add_argument("--model", required=True, help="MODEL or MODEL@VERSION")
    sc.add_argument("--from", dest="date_from", type=_date)
    sc.add_argument("--until", dest="date_until", type=_date)
    sc.add_argument("--out", required=True, help="PATH.parquet")

    mo = sub.add_parser("models", help="list registered models")
    mo.add_argument("--json", action="store_true")

    ex = sub.add_parser("explain", help="explain one transaction's score")
    ex.add_argument("--dataset", required=True)
    ex.add_argument("--model", required=True, help="MODEL or MODEL@VERSION")
    ex.add_argument("--transaction-id", required=True)
    ex.add_argument("--json", action="store_true")

    be = sub.add_parser("bench", help="run the benchmark suite (bench/suite.py) and write its report")
    be.add_argument("--rows", type=int, default=1_000_000, help="transactions to generate (default 1,000,000)")
    be.add_argument("--json", action="store_true", help="print the JSON report instead of the table")
    be.add_argument("--out", help="folder for suite-ROWS.md/.json (default bench/results from 1M rows, "
                                  "else a new temporary folder)")
    be.add_argument("--work", help="folder for the generated data, reused by later runs (default bench/work/suite)")
    cli_ops.add_parsers(sub)
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
        args.paths, args.dataset, mapping=mapping, complete_mapping=True, mode=mode, strict=args.strict,
        pseudonymise=args.pseudonymise,
    )
    cli_ops.record("ingest", {"dataset": result.dataset, "version": result.version, "mode": mode,
                              "sources": [os.path.basename(str(p)) for p in args.paths], "loaded": result.loaded,
                              "rejected": result.rejected})
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


def _train(args) -> int:
    from fraudlens.train import Windows, train

    bounds = [args.train_from, args.train_until, args.test_from, args.test_until]
    if any(bounds) and not all(bounds):
        raise FraudLensError("Give all four of --train-from, --train-until, --test-from, --test-until, or none.")
    windows = Windows(*bounds) if all(bounds) else None
    result = train(args.dataset, args.model, name=args.name, windows=windows,
                   label_delay_days=args.label_delay_days, tune=args.tune, seed=args.seed)
    cli_ops.record("train", {"dataset": args.dataset, "model": result.name, "version": result.version,
                             "kind": result.kind, "average_precision": result.metrics.get("average_precision")})
    if args.json:
        print(json.dumps({"name": result.name, "version": result.version, "kind": result.kind,
                          "windows": result.windows.to_dict(), "rows_train": result.rows_train,
                          "rows_test": result.rows_test, "seconds": round(result.seconds, 2),
                          "legit_sample_share": result.legit_share,
                          "metrics": result.metrics}, indent=1, default=_plain))
        return 0
    m = result.metrics
    w = result.windows
    print(f"{result.name}@{result.version}")
    print(f"  {result.kind} trained on {result.rows_train:,} rows ({w.train_from}..{w.train_until}), "
          f"tested on {result.rows_test:,} rows ({w.test_from}..{w.test_until}) in {result.seconds:.1f} s")
    if result.legit_share < 1:
        print(f"  every fraud and {result.legit_share:.1%} of the legitimate rows of the train window, "
              "each weighted by the inverse of that share")
    rows = [("ROC AUC", m["roc_auc"]), ("average precision", m["average_precision"]),
            ("card precision@100 per day", m["card_precision_at_100_per_day"]),
            ("precision at 0.5", m["precision_at_0_5"]), ("recall at 0.5", m["recall_at_0_5"]),
            ("money recall at 0.5", m["money_recall_at_0_5"]), ("Brier score", m["brier"])]
    rows += [(f"recall at 0.5: {k}", v) for k, v in m.get("recall_by_scenario_at_0_5", {}).items()]
    for label, value in rows:
        print(f"  {label:<36} {value:>8.3f}")
    return 0


def _plain(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return str(value)


def _score(args) -> int:
    from fraudlens.scoring import score_dataset

    result = score_dataset(args.dataset, args.model, args.out, date_from=args.date_from,
                           date_until=args.date_until)
    print(f"scored {result.rows:,} rows with {result.model} v{result.version} -> {result.path}")
    return 0


def _models(args) -> int:
    from fraudlens import registry

    found = registry.list_models()
    rows = [registry.summary(v) for v in found]
    if args.json:
        print(json.dumps(rows, indent=1, default=_plain))
        return 0
    if not rows:
        print("no models; train one with: python -m fraudlens train --dataset NAME --model xgboost")
        return 0
    print(f"{'model':<28} {'ver':>4} {'kind':<16} {'AP':>6} {'ROC AUC':>8}  champion  dataset")
    for r in rows:
        print(f"{r['name']:<28} {r['version']:>4} {r['kind']:<16} {r['average_precision']:>6.3f} "
              f"{r['roc_auc']:>8.3f}  {'yes' if r['champion'] else '':<8}  {r['dataset']}")
    return 0


def _explain(args) -> int:
    from fraudlens.explain import explain_transaction

    result = explain_transaction(args.dataset, args.model, args.transaction_id)
    if args.json:
        print(json.dumps(result.to_dict(), indent=1, default=_plain))
        return 0
    print(f"transaction {result.transaction_id}: score {result.score:.4f} "
          f"({result.model} v{result.version}); base {result.base:.3f} {result.units}")
    for reason in result.reasons:
        print(f"  - {reason}")
    return 0


def _bench(args) -> int:
    # The suite lives in the repository's bench/ folder, beside the package.
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if root not in sys.path:
        sys.path.insert(0, root)
    try:
        from bench import suite
    except ModuleNotFoundError as exc:  # polars, the second baseline, is a test requirement
        if exc.name != "polars":
            raise
        raise FraudLensError(f"The benchmark needs the package '{exc.name}', installed with the test "
                             "requirements: .venv/bin/pip install -r requirements-dev.txt") from None

    return suite.run(args.rows, args.json, out=args.out, work=args.work)


COMMANDS = {"generate": _generate, "ingest": _ingest, "datasets": _datasets, "profile": _profile,
            "train": _train, "score": _score, "models": _models, "explain": _explain, "bench": _bench,
            **cli_ops.COMMANDS}
