"""Labels people set (dispositions, chargebacks) laid over the dataset's label at query time.

The ``labels`` table of the operational store keeps every label ever set; the latest per
transaction wins, and a NULL row withdraws the earlier ones. Nothing rewrites the Parquet
files: queries read the dataset through :func:`labels_overlay_sql`, and a trainer merges
:func:`effective_labels` into its rows (``ops.apply_labels``).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from fraudlens import audit, datasets, ops
from fraudlens.config import Settings, settings
from fraudlens.errors import FraudLensError
from fraudlens.schema import LABEL, check_dataset_name
from fraudlens.store import Store, get_store

logger = logging.getLogger(__name__)
LABEL_SET = "label.set"


def _text(value: object, name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise FraudLensError(f"The '{name}' parameter must be a non-empty string. Got {value!r} instead.")
    return value.strip()


def set_label(dataset: str, transaction_id: str, label: bool | None, user: str, source: str = "manual",
              cfg: Settings | None = None) -> None:
    """Record a label from outside the queue (a chargeback, a customer claim); None withdraws one."""
    cfg = cfg or settings()
    check_dataset_name(dataset)
    tx = _text(transaction_id, "transaction_id")
    user = _text(user, "user")
    source = _text(source, "source")
    if label is not None and not isinstance(label, (bool, np.bool_)):
        raise FraudLensError(f"The 'label' parameter must be True, False or None. Got {label!r} instead.")
    value = None if label is None else int(bool(label))
    with ops.transaction(cfg.home) as con:
        con.execute("INSERT INTO labels (dataset, transaction_id, label, source, user, at) VALUES (?, ?, ?, ?, ?, ?)",
                    (dataset, tx, value, source, user, ops.now()))
        audit.append(con, user, LABEL_SET, {"dataset": dataset, "transaction_id": tx, "source": source,
                                            "label": None if value is None else bool(value)})


def effective_labels(dataset: str, cfg: Settings | None = None) -> pd.DataFrame:
    """The labels the operational store sets for ``dataset``: the latest per transaction.

    Returns
    -------
    DataFrame with columns transaction_id (str), label (bool), source, user, at
        Withdrawn labels (a later ``needs_info``) are left out: the dataset's own label applies.
    """
    cfg = cfg or settings()
    return ops.effective_labels(cfg.home, check_dataset_name(dataset))


def apply_effective_labels(frame: pd.DataFrame, dataset: str, cfg: Settings | None = None) -> pd.DataFrame:
    """A copy of ``frame`` (with transaction_id and fraudulent_activity) whose labels are
    overridden by :func:`effective_labels` (see ``ops.apply_labels``)."""
    return ops.apply_labels(frame, effective_labels(dataset, cfg))


def labels_overlay_sql(store: Store, dataset: str, cfg: Settings | None = None) -> tuple[str, dict]:
    """``(sql, params)`` selecting every row of ``dataset`` with its effective label.

    ``fraudulent_activity`` is the latest operational label where there is one, else the
    dataset's own; ``label_source`` says which (``ops``, ``dataset`` or NULL when unknown).
    Use it as a subquery: ``f"SELECT ... FROM ({sql}) t"`` with ``params``.
    """
    cfg = cfg or settings()
    labels = effective_labels(dataset, cfg)
    view = store.table(dataset)
    info = datasets.read(store.home, dataset)
    own = f"t.{LABEL}" if LABEL in info.columns else "CAST(NULL AS BOOLEAN)"
    star = f"t.* EXCLUDE ({LABEL})" if LABEL in info.columns else "t.*"
    sql = (
        "WITH ops_labels AS (SELECT unnest(CAST($ops_label_ids AS VARCHAR[])) AS transaction_id, "
        "unnest(CAST($ops_label_values AS BOOLEAN[])) AS label) "
        f"SELECT {star}, coalesce(o.label, {own}) AS {LABEL}, "
        f"CASE WHEN o.label IS NOT NULL THEN 'ops' WHEN {own} IS NOT NULL THEN 'dataset' END AS label_source "
        f"FROM {view} t LEFT JOIN ops_labels o ON t.transaction_id = o.transaction_id"
    )
    params = {"ops_label_ids": labels["transaction_id"].tolist(),
              "ops_label_values": labels["label"].astype(bool).tolist()}
    return sql, params


def effective_label(dataset: str, transaction_id: str, cfg: Settings | None = None) -> bool | None:
    """The effective label of one transaction (operational label, else the dataset's)."""
    cfg = cfg or settings()
    found = ops.rows(cfg.home, "SELECT label FROM labels WHERE dataset = ? AND transaction_id = ? "
                     "ORDER BY id DESC LIMIT 1", [check_dataset_name(dataset), str(transaction_id)])
    if found and found[0][0] is not None:
        return bool(found[0][0])
    store = get_store(cfg)
    if LABEL not in datasets.read(cfg.home, dataset).columns:
        return None
    rows = store.query_rows("dataset_label", f"SELECT {LABEL} FROM {store.table(dataset)} WHERE transaction_id = $id",
                            {"id": str(transaction_id)})
    return None if not rows or rows[0][0] is None else bool(rows[0][0])
