"""Scoring a dataset with a registered model, in batches so memory stays bounded."""

from __future__ import annotations

import logging
import os
import time
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from fraudlens import feature_store
from fraudlens import features as feats
from fraudlens.config import Settings, settings
from fraudlens.errors import FraudLensError
from fraudlens.store import get_store

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ScoreResult:
    path: Path
    rows: int
    model: str
    version: int
    seconds: float


def score_dataset(dataset: str, model_ref: str, out: str | Path, *, date_from: date | None = None,
                  date_until: date | None = None, with_time: bool = False,
                  cfg: Settings | None = None) -> ScoreResult:
    """Write ``transaction_id`` and ``score`` (probability of fraud) for the rows in the date range.

    ``with_time`` adds ``transaction_datetime``, so weekly summaries need no join back to the data.

    Features come from the dataset version's feature file (computed over the whole history, so
    the first rows of the range are point-in-time correct); only the rows in the range are scored.
    """
    from fraudlens import registry
    from fraudlens.train import predict

    started = time.perf_counter()
    cfg = cfg or settings()
    out = Path(out)
    if out.suffix != ".parquet":
        raise FraudLensError(f"The 'out' path must end in .parquet. Got '{out.name}' instead.")
    name, version = registry.parse_ref(model_ref)
    loaded = registry.load_model(name, version, home=cfg.home)
    spec = feats.FeatureSpec.from_dict(loaded.metadata["feature_spec"])
    names = loaded.metadata["features"]
    kind = loaded.metadata.get("kind", "xgboost")
    store = get_store(cfg)
    path = feature_store.feature_file(store, dataset, spec)
    sql = "SELECT * FROM read_parquet($path)"
    conds, params = [], {"path": str(path)}
    if date_from:
        conds.append("transaction_datetime >= $date_from")
        params["date_from"] = date_from
    if date_until:
        conds.append("transaction_datetime < $date_end")
        params["date_end"] = date_until + timedelta(days=1)
    if conds:
        sql += f" WHERE {' AND '.join(conds)}"
    # A name of its own: two sessions may score into the same file at once.
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    fields = [("transaction_id", pa.string()), ("score", pa.float64())]
    if with_time:
        fields.append(("transaction_datetime", pa.timestamp("us")))
    schema = pa.schema(fields)
    rows = 0
    try:
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for batch in store.query_batches("score_features", sql, params):
                frame = batch.to_pandas()
                scores = predict(loaded.model, kind, frame[names])
                columns = {"transaction_id": frame["transaction_id"].astype(str), "score": scores.astype("float64")}
                if with_time:
                    columns["transaction_datetime"] = frame["transaction_datetime"]
                writer.write_table(pa.table(columns, schema=schema))
                rows += len(frame)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    seconds = time.perf_counter() - started
    logger.info("scored %d rows of %s with %s v%s in %.1f s", rows, dataset, name, loaded.version, seconds)
    return ScoreResult(out, rows, name, int(loaded.version), seconds)
