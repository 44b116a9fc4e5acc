"""Shared data for the operational-store tests: one small dataset and model per test session.

Building it (generate, ingest, train) takes a few seconds, so it is made once under pytest's
base temporary folder and copied into each test's own data directory, which then gets its own
``ops.sqlite``.
"""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

from fraudlens.config import Settings

DATASET = "tx"
MODEL = "tx_xgboost"
ROWS = 30_000
_BUILT: dict[str, Path] = {}


def settings_for(home: Path) -> Settings:
    return Settings(home=Path(home), memory_limit="1GB", threads=2, timezone="America/Lima")


def base_home(tmp_path_factory) -> Path:
    """The session's prepared data directory (dataset ``tx`` and model ``tx_xgboost`` v1)."""
    if "base" in _BUILT:
        return _BUILT["base"]
    from fraudlens.ingest import ingest
    from fraudlens.synth import generate
    from fraudlens.train import train

    root = tmp_path_factory.getbasetemp() / "ops_base"
    root.mkdir(exist_ok=True)
    home = root / "home"
    cfg = settings_for(home)
    src = root / "tx.parquet"
    generate(src, ROWS, seed=7, days=60, fraud_rate=0.02, start=date(2025, 1, 1), late_labels=True)
    ingest(src, DATASET, cfg=cfg)
    train(DATASET, "xgboost", name=MODEL, cfg=cfg, seed=1)
    _close_stores()
    _BUILT["base"] = home
    return home


def _close_stores() -> None:
    from fraudlens import store

    with store._STORES_LOCK:
        found = list(store._STORES.values())
        store._STORES.clear()
    for s in found:
        s.close()


def fresh_home(tmp_path_factory, dest: Path) -> Settings:
    """A private copy of the prepared data directory at ``dest``."""
    shutil.copytree(base_home(tmp_path_factory), dest)
    return settings_for(dest)
