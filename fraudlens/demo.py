"""The embedded default: a generated demo dataset and a trained champion model.

Built once per data folder on first start. A lock file serialises processes (browser tabs,
the CLI) that start at the same moment: the first builds, the others wait and find it there.
``FRAUDLENS_DEMO_ROWS`` sets the size (0 skips the demo, which leaves the app empty).
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from fraudlens import datasets
from fraudlens.config import DEMO_DATASET, DEMO_ROWS, DEMO_SEED, settings
from fraudlens.errors import FraudLensError

logger = logging.getLogger(__name__)

Progress = Callable[[float, str], None]
ROWS_ENV = "FRAUDLENS_DEMO_ROWS"
LOCK_NAME = "bootstrap.lock"
DEMO_MODEL = "demo_xgboost"
# Shares of the progress bar: generating, loading, then training.
STEPS = (0.2, 0.35, 1.0)
SYSTEM_USER = "fraudlens (first start)"
START_PRECISION = 0.5


@dataclass(frozen=True)
class DemoResult:
    """What first start did: rows generated and loaded, the model, and each step's seconds."""

    rows: int
    loaded: int
    frauds: int
    generate_seconds: float
    ingest_seconds: float
    built: bool  # False when another process had already built it
    model: str | None = None
    train_seconds: float = 0.0


def demo_rows() -> int:
    """The demo size: ``$FRAUDLENS_DEMO_ROWS`` or ``DEMO_ROWS``; FraudLensError if not a count."""
    text = os.environ.get(ROWS_ENV, "").strip()
    if not text:
        return DEMO_ROWS
    try:
        rows = int(text.replace("_", ""))
    except ValueError:
        rows = -1
    if rows < 0:
        raise FraudLensError(
            f"The '{ROWS_ENV}' setting must be a whole number of rows >= 0. Got {text!r} instead."
        )
    return rows


def needs_demo(home: Path) -> bool:
    """True when the data folder holds no dataset and a demo is wanted."""
    return not datasets.list_all(home) and demo_rows() > 0


def _chunk_rows(rows: int) -> int:
    """About twenty writes, so the progress bar moves; the data do not depend on it."""
    return max(10_000, rows // 20)


@contextmanager
def _first_start_lock(home: Path, waiting: Callable[[], None]) -> Iterator[None]:
    """Hold the data folder's first-start lock; call ``waiting`` once if someone else has it."""
    locks = Path(home) / ".locks"
    locks.mkdir(parents=True, exist_ok=True)
    with (locks / LOCK_NAME).open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waiting()
            fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _cfg_for(home: Path):
    from dataclasses import replace

    return replace(settings(), home=Path(home).resolve())


def build_demo(home: Path, rows: int, *, seed: int = DEMO_SEED, progress: Progress | None = None,
               waiting: Callable[[], None] | None = None, train_model: bool = True) -> DemoResult:
    """Generate ``rows`` synthetic transactions, ingest them as the demo dataset and train the
    default XGBoost model on them (made champion).

    Does nothing (``built=False``) if a dataset appeared while waiting for the lock.
    The generated file lives in ``<home>/.tmp`` and is deleted whatever happens.
    """
    from fraudlens import ingest, synth

    report = progress or (lambda _f, _m: None)
    home = Path(home)
    cfg = _cfg_for(home)
    with _first_start_lock(home, waiting or (lambda: None)):
        if datasets.list_all(home):
            return DemoResult(0, 0, 0, 0.0, 0.0, built=False)
        tmp = home / ".tmp"
        tmp.mkdir(parents=True, exist_ok=True)
        source = tmp / f"demo-{uuid.uuid4().hex[:8]}.parquet"
        try:
            started = time.perf_counter()
            generated = synth.generate(
                source, rows, seed=seed, chunk_rows=_chunk_rows(rows),
                progress=lambda f, m: report(STEPS[0] * f, f"Generating: {m}"),
            )
            generate_seconds = time.perf_counter() - started
            started = time.perf_counter()
            result = ingest.ingest(
                [source], DEMO_DATASET, mode="create", cfg=cfg,
                progress=lambda f, m: report(STEPS[0] + (STEPS[1] - STEPS[0]) * f, f"Loading: {m}"),
            )
            ingest_seconds = time.perf_counter() - started
        finally:
            source.unlink(missing_ok=True)
        _audit_ingest(cfg, result.loaded)
        model, train_seconds = None, 0.0
        if train_model:
            model, train_seconds = _train_default(cfg, report)
    logger.info("demo: %d rows generated in %.1f s, %d loaded in %.1f s, model trained in %.1f s",
                generated.rows, generate_seconds, result.loaded, ingest_seconds, train_seconds)
    return DemoResult(generated.rows, result.loaded, generated.frauds, generate_seconds,
                      ingest_seconds, built=True, model=model, train_seconds=train_seconds)


def _train_default(cfg, report: Progress) -> tuple[str | None, float]:
    """Train and crown the default model; a dataset too small to split gets none."""
    from fraudlens import registry
    from fraudlens.train import train

    started = time.perf_counter()
    try:
        trained = train(
            DEMO_DATASET, "xgboost", name=DEMO_MODEL, cfg=cfg,
            progress=lambda f, m: report(STEPS[1] + (STEPS[2] - STEPS[1]) * f, f"Training: {m}"),
        )
    except FraudLensError as exc:
        logger.warning("no default model: %s", exc)
        return None, time.perf_counter() - started
    registry.set_champion(trained.name, trained.version, user=SYSTEM_USER,
                          comment="Default model trained on the demo dataset at first start",
                          home=cfg.home)
    ref = f"{trained.name}@{trained.version}"
    threshold = _set_live_point(cfg, ref)
    _audit_first_start(cfg, ref, threshold)
    return ref, time.perf_counter() - started


def _set_live_point(cfg, ref: str) -> float:
    """Start the demo model at the highest recall with precision >= START_PRECISION on its test
    window (0.5 if none reaches it), so alerts can be raised at once; later changes go through
    four eyes."""
    from fraudlens import operating

    inputs = operating.threshold_inputs(cfg.home, ref, cfg.timezone)
    point = operating.optimise(inputs.table, "precision", START_PRECISION).point or inputs.table.at(0.5)
    operating.save(cfg.home, ref, point, SYSTEM_USER,
                   f"Initial operating point of the demo: the highest recall with at least "
                   f"{START_PRECISION:.0%} precision on the test window")
    return float(point.threshold)


def _audit_ingest(cfg, rows: int) -> None:
    from fraudlens import audit

    audit.record(SYSTEM_USER, audit.INGEST, {"dataset": DEMO_DATASET, "source": "generated demo", "rows": rows},
                 cfg=cfg)


def _audit_first_start(cfg, ref: str, threshold: float) -> None:
    """What first start did, in the audit log like any other ingest, training and change."""
    from fraudlens import audit

    audit.record(SYSTEM_USER, audit.TRAIN, {"dataset": DEMO_DATASET, "model": ref}, cfg=cfg)
    audit.record(SYSTEM_USER, audit.CHAMPION, {"model": ref, "previous_champion": None}, cfg=cfg)
    audit.record(SYSTEM_USER, audit.OPERATING_POINT, {"model": ref, "threshold": threshold}, cfg=cfg)
