"""Operating points of a model version: where they are logged, and what the Thresholds page shows.

The decisions (who chose which alert threshold for which version, and why) are kept in one
append-only JSON Lines log per model, ``<home>/models/<name>/operating_points.jsonl``, written and
read by :mod:`fraudlens.thresholds`. This module knows where that log is, resolves a model
reference (``name`` or ``name@version``) to the version it means, and bundles the calls one move
of the threshold slider needs (:func:`panel`), so the page stays a drawing of library results.
"""

from __future__ import annotations

import copy
import logging
import time
import warnings
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from fraudlens import registry, thresholds
from fraudlens.errors import ModelError
from fraudlens.thresholds import (
    BootstrapBands,
    OperatingPoint,
    SavedOperatingPoint,
    TargetNotReachedWarning,
    ThresholdTable,
)

logger = logging.getLogger(__name__)

LOG_FILE = "operating_points.jsonl"
TEST_SCORES = "test_scores.parquet"
GOALS = ("precision", "recall", "capacity", "cost")
N_BOOT = 200


def log_path(home: str | Path, model_name: str) -> Path:
    """The operating-point log of ``model_name``: ``<home>/models/<name>/operating_points.jsonl``.

    Raises ModelError when ``model_name`` is not a plain identifier (so a name can never point
    outside the registry).
    """
    return registry.models_root(home) / registry.check_name(model_name) / LOG_FILE


def resolve(home: str | Path, model_ref: str) -> tuple[str, int]:
    """``name@version`` -> ``(name, version)``; a bare name means its champion, else its latest."""
    name, version = registry.parse_ref(model_ref)
    if version is None:
        version = registry.champion(name, home)
    if version is None:
        found = registry.versions(name, home)
        if not found:
            raise ModelError(f"There is no model named '{name}'. Train one on the Models page.")
        version = found[-1].version
    return name, int(version)


def live_point(home: str | Path, model_ref: str) -> SavedOperatingPoint | None:
    """The latest operating point saved for the version ``model_ref`` means, or None."""
    name, version = resolve(home, model_ref)
    return thresholds.live_operating_point(log_path(home, name), name, version)


def saved_points(home: str | Path, model_name: str, version: int | None = None) -> list[SavedOperatingPoint]:
    """Every operating point saved for ``model_name`` (one version if given), newest first."""
    with warnings.catch_warnings():
        # A line cut short by a crash is skipped; the log says so at WARNING level.
        warnings.simplefilter("ignore", thresholds.OperatingPointLogWarning)
        found = thresholds.load_operating_points(log_path(home, model_name), model_name)
    if version is not None:
        found = [p for p in found if p.version == str(version)]
    return found[::-1]


def save(home: str | Path, model_ref: str, point: OperatingPoint, user: str, comment: str) -> SavedOperatingPoint:
    """Append ``point`` for the version ``model_ref`` means; ModelError if user or comment is empty."""
    name, version = resolve(home, model_ref)
    if not isinstance(comment, str) or not comment.strip():
        raise ModelError("Saving an operating point needs a comment: say why this threshold.")
    if not isinstance(user, str) or not user.strip():
        raise ModelError("Saving an operating point needs a user name.")
    return thresholds.save_operating_point(log_path(home, name), name, version, point, user, comment)


# ---------------------------------------------------------------------------------------------
# The threshold table of a version's test window


@dataclass(frozen=True, eq=False)
class ThresholdInputs:
    """The scored test window of one version and its threshold table (shared read-only).

    ``y``, ``scores`` and ``amounts`` have shape (n,); ``days`` is the number of distinct local
    days of the window (the denominator of alerts per day).
    """

    name: str
    version: int
    table: ThresholdTable
    y: np.ndarray
    scores: np.ndarray
    amounts: np.ndarray
    days: int
    first_day: date | None
    last_day: date | None

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.version}"


def local_days(moments: pd.Series, tz: str) -> np.ndarray:
    """Local calendar day of each stored (naive UTC) timestamp, as ``datetime64[D]``."""
    return local_times(moments, tz).to_numpy().astype("datetime64[D]")


def local_times(moments: pd.Series, tz: str) -> pd.Series:
    """Stored (naive UTC) timestamps as naive local times of ``tz``."""
    stamps = pd.to_datetime(moments)
    if stamps.dt.tz is None:
        stamps = stamps.dt.tz_localize("UTC")
    return stamps.dt.tz_convert(tz).dt.tz_localize(None)


def threshold_inputs(home: str | Path, model_ref: str, tz: str) -> ThresholdInputs:
    """Read the version's test-window scores and build its :class:`ThresholdTable` once.

    Raises ModelError when the version has no test-window scores (an imported model) or no
    labelled row in them.
    """
    name, version = resolve(home, model_ref)
    frame = read_test_scores(home, name, version)
    if frame.empty:
        raise ModelError(f"Model {name} v{version} has no scored test transactions.")
    y = frame["fraudulent_activity"].to_numpy(dtype=bool)
    scores = frame["score"].to_numpy(dtype=float)
    amounts = frame["transaction_amount"].to_numpy(dtype=float)
    days = local_days(frame["transaction_datetime"], tz)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # no fraud in the window: recall NaN, shown as such
        table = ThresholdTable(y, scores, amounts, days)
    return ThresholdInputs(
        name=name, version=version, table=table, y=y, scores=scores, amounts=amounts,
        days=table.n_days_, first_day=days.min().item() if len(days) else None,
        last_day=days.max().item() if len(days) else None,
    )


def read_test_scores(home: str | Path, name: str, version: int, columns: list[str] | None = None) -> pd.DataFrame:
    """The version's test-window scores (only ``columns`` when given); ModelError naming the
    reason if it has none."""
    meta = registry.read_metadata(name, version, home)
    if TEST_SCORES not in (meta.get("extra_files") or []):
        raise ModelError(
            f"Model {name} v{version} has no test-window scores (it was {_origin(meta)}), so there "
            "is nothing to set a threshold on. Train a model on the Models page, or choose one."
        )
    return registry.read_table(name, version, TEST_SCORES, home, columns=columns)


def _origin(meta: dict) -> str:
    return "imported" if meta.get("kind") == "external_xgboost" else "saved without them"


# ---------------------------------------------------------------------------------------------
# One move of the slider


@dataclass(frozen=True)
class Costs:
    """Cost of reviewing an alert (PEN) and of missing a fraud: its amount, or a fixed PEN value."""

    review: float = 5.0
    missed: str | float = "amount"


def with_costs(table: ThresholdTable, costs: Costs) -> ThresholdTable:
    """A view of ``table`` whose default costs are ``costs``; ``table`` itself is not touched.

    The copy shares the (read-only) arrays, so it costs nothing; ``table`` may be shared by every
    session of the app and must never be changed. ValueError on a negative cost.
    """
    table.at(1.0, cost_review=costs.review, cost_missed=costs.missed)  # validates both costs
    view = copy.copy(table)
    view.cost_review = float(costs.review)
    view.cost_missed = costs.missed if costs.missed == "amount" else float(costs.missed)
    return view


@dataclass(frozen=True)
class Panel:
    """Everything the threshold panel draws for one threshold; ``seconds`` is the time it took."""

    point: OperatingPoint
    bands: BootstrapBands
    curve: pd.DataFrame  # ThresholdTable.curve_frame with the panel's costs
    best_cost: OperatingPoint
    seconds: float


def panel(inputs: ThresholdInputs, threshold: float, costs: Costs, *, max_points: int = 400,
          n_boot: int = N_BOOT) -> Panel:
    """The operating point at ``threshold``, its bootstrap bands and the curves, with the costs."""
    started = time.perf_counter()
    table = with_costs(inputs.table, costs)
    point = table.at(threshold)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # undefined precision/recall are NaN on screen
        bands = thresholds.bootstrap_bands(inputs.y, inputs.scores, threshold, n_boot=n_boot)
    curve = curve_frame(table, max_points)
    best = table.min_cost(costs.review, costs.missed)
    seconds = time.perf_counter() - started
    logger.debug("threshold panel for %s at %.4f took %.1f ms", inputs.ref, threshold, 1000 * seconds)
    return Panel(point=point, bands=bands, curve=curve, best_cost=best, seconds=seconds)


CURVE_COLUMNS = ["threshold", "precision", "recall", "f1", "alerts", "alerts_per_day", "fraud_amount_caught",
                 "expected_cost"]


def curve_frame(table: ThresholdTable, max_points: int = 400, grid_points: int = 201) -> pd.DataFrame:
    """The table's curve for drawing against the threshold: its breakpoints (dense where the
    scores are) merged with an even grid of thresholds on [0, 1] (so sparse stretches, often the
    high scores that matter most, are drawn too), by increasing threshold.

    Returns
    -------
    DataFrame of shape (<= max_points + grid_points, 8)
        The columns of :meth:`ThresholdTable.curve_frame`, with the table's default costs.
    """
    breaks = table.curve_frame(max_points)
    grid = [table.at(float(t)) for t in np.linspace(0.0, 1.0, grid_points)]
    even = pd.DataFrame([{c: getattr(p, c) for c in CURVE_COLUMNS} for p in grid], columns=CURVE_COLUMNS)
    frame = pd.concat([breaks[CURVE_COLUMNS], even], ignore_index=True)
    return frame.sort_values("threshold", kind="stable").drop_duplicates("threshold").reset_index(drop=True)


@dataclass(frozen=True)
class Optimised:
    """An optimiser's answer: the point found (None if the target cannot be met) and a sentence."""

    point: OperatingPoint | None
    message: str


def optimise(table: ThresholdTable, goal: str, target: float, costs: Costs | None = None) -> Optimised:
    """Run one optimiser of the table.

    Parameters
    ----------
    goal : {"precision", "recall", "capacity", "cost"}
        Highest recall at precision >= ``target``; highest precision at recall >= ``target``;
        highest recall with at most ``target`` alerts per day; lowest expected cost (``costs``).
    target : float
        The precision or recall in [0, 1], or alerts per day >= 0; ignored for "cost".
    """
    if goal not in GOALS:
        raise ModelError(f"The 'goal' parameter must be one of {GOALS}. Got {goal!r} instead.")
    costs = costs or Costs()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", TargetNotReachedWarning)
        if goal == "precision":
            point = table.max_recall_at_precision(target)
        elif goal == "recall":
            point = table.max_precision_at_recall(target)
        elif goal == "capacity":
            point = table.within_capacity(target)
        else:
            point = table.min_cost(costs.review, costs.missed)
    if point is None:
        reason = next((str(w.message) for w in caught if issubclass(w.category, TargetNotReachedWarning)),
                      "No threshold meets the target.")
        return Optimised(None, reason.replace(" Returning None.", ""))
    return Optimised(point, _found_text(goal, target, point))


def _found_text(goal: str, target: float, p: OperatingPoint) -> str:
    what = {
        "precision": f"Highest recall with precision at least {target:.0%}",
        "recall": f"Highest precision with recall at least {target:.0%}",
        "capacity": f"Highest recall within {target:,.0f} alerts per day",
        "cost": "Lowest expected cost",
    }[goal]
    return (f"{what}: threshold {p.threshold:.4f} gives precision {_pct(p.precision)}, recall "
            f"{_pct(p.recall)}, {p.alerts_per_day:,.1f} alerts per day.")


def _pct(value: float) -> str:
    return "n/a" if value != value else f"{value:.1%}"
