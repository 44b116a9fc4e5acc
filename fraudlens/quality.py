"""Data-quality profile of a dataset: per column nulls, distinct values, range, top values.

Computed in DuckDB after each ingest and stored beside the manifest as ``profile.json``,
tagged with the dataset version it describes.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fraudlens import datasets
from fraudlens.config import Settings, settings
from fraudlens.schema import CANONICAL, quote_ident
from fraudlens.store import get_store

PROFILE = "profile.json"
TOP_VALUES = 5
_TEXT_TYPES = ("VARCHAR", "BOOLEAN")


def compute(cfg: Settings, dataset: str) -> dict:
    """Profile every column of ``dataset`` in one pass plus one small query per text column."""
    store = get_store(cfg)
    info = datasets.read(cfg.home, dataset)
    view = store.table(dataset)
    described = store.query_rows("profile_describe", f"DESCRIBE SELECT * FROM {view}")
    # One scan for every column's figures; approx_top_k keeps top values in the same pass.
    parts = []
    for name, sql_type, *_ in described:
        col = quote_ident(name)
        # Ids are unique (ingest refuses duplicates): no top values, no distinct estimate to pay for.
        unique = name == "transaction_id"
        top = (f"approx_top_k(CAST({col} AS VARCHAR), {TOP_VALUES})"
               if sql_type.upper() in _TEXT_TYPES and not unique else "CAST(NULL AS VARCHAR[])")
        distinct = "CAST(NULL AS BIGINT)" if unique else f"approx_count_distinct({col})"
        parts.append(
            f"count(*) FILTER (WHERE {col} IS NULL), {distinct}, "
            f"CAST(min({col}) AS VARCHAR), CAST(max({col}) AS VARCHAR), {top}"
        )
    row = store.query_rows("profile", f"SELECT {', '.join(parts)} FROM {view}")[0]
    columns = []
    for i, (name, sql_type, *_) in enumerate(described):
        nulls, distinct, low, high, top = row[5 * i: 5 * i + 5]
        columns.append({
            "column": name,
            "type": sql_type,
            "canonical": name in CANONICAL,
            "present": name in info.columns,
            "nulls": int(nulls),
            "null_share": (nulls / info.rows) if info.rows else 0.0,
            # An estimate (HyperLogLog, about 2% off), never more than the non-null values; ids are
            # exact.
            "distinct": (info.rows - int(nulls) if name == "transaction_id"
                         else min(int(distinct), info.rows - int(nulls))),
            "min": low,
            "max": high,
            "top": [v for v in (top or []) if v is not None],
        })
    rejects: dict[str, int] = {}
    for ingest in info.ingests:
        for reason, n in ingest.get("rejects_by_reason", {}).items():
            rejects[reason] = rejects.get(reason, 0) + int(n)
    return {
        "dataset": dataset,
        "version": info.version,
        "rows": info.rows,
        "rejected": info.rejected,
        "columns": columns,
        "rejects_by_reason": rejects,
        "ingests": [
            {k: i.get(k) for k in ("id", "at", "mode", "sources", "rows_read", "loaded", "rejected")}
            for i in info.ingests
        ],
    }


def refresh(cfg: Settings, dataset: str) -> dict:
    """Compute and store the profile of the current version."""
    profile = compute(cfg, dataset)
    path = datasets.dataset_dir(cfg.home, dataset) / PROFILE
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(profile, indent=1, default=str), encoding="utf-8")
    os.replace(tmp, path)
    return profile


def load(dataset: str, cfg: Settings | None = None) -> dict:
    """The stored profile, recomputed if it describes an older version of the dataset."""
    cfg = cfg or settings()
    path = Path(datasets.dataset_dir(cfg.home, dataset)) / PROFILE
    info = datasets.read(cfg.home, dataset)
    try:
        profile = json.loads(path.read_text(encoding="utf-8"))
        if profile.get("version") == info.version:
            return profile
    except (OSError, json.JSONDecodeError):
        pass
    return refresh(cfg, dataset)
