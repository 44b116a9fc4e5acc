"""How much fraud does the threshold miss? An estimate from the below-the-line sample.

Each alert-raising run queues, besides the alerts, a random sample of the transactions scored
under the threshold (``source = 'below_the_line'``, inclusion probability = the run's sample
rate). Once analysts resolve them, the share of fraud in the sample estimates the fraud below
the threshold, and with the confirmed alerts above it, the recall of the operating point.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np

from fraudlens import operating, ops
from fraudlens.config import Settings, settings
from fraudlens.errors import FraudLensError
from fraudlens.schema import check_dataset_name

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MissedEstimate:
    """Estimated recall of a model version's alerts, from the dispositions of its alerts and of
    the below-the-line sample.

    Frauds above the threshold = confirmed alerts (plus, for alerts not yet resolved, their
    share estimated from the resolved ones); frauds below = transactions below the threshold x
    the fraud share of the resolved sample (= confirmed sample frauds / sample rate when the
    whole sample is resolved). ``recall_low``/``recall_high`` combine Wilson intervals of the
    two shares (each at ``1 - (1 - confidence) / 2`` when both are estimated). NaN when no
    sample alert is resolved yet.
    """

    dataset: str
    model: str
    version: int
    runs: int
    thresholds: tuple[float, ...]
    sample_rates: tuple[float, ...]
    scored: int
    above: int
    below: int
    resolved_above: int
    confirmed_above: int
    sample_size: int
    sample_resolved: int
    sample_confirmed: int
    frauds_above: float
    frauds_above_low: float
    frauds_above_high: float
    frauds_below: float
    frauds_below_low: float
    frauds_below_high: float
    recall: float
    recall_low: float
    recall_high: float
    confidence: float
    note: str
    # Pairs of run ids that scored overlapping transactions: their rows under the threshold are
    # counted once per run, so the frauds below are overstated (and recall understated).
    overlaps: tuple[tuple[int, int], ...] = ()


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion ``k / n``; (0, 1) when n = 0."""
    if n == 0:
        return 0.0, 1.0
    z = NormalDist().inv_cdf(1 - (1 - confidence) / 2)
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


_RUN_COUNTS = """
SELECT r.id, r.threshold, r.sample_rate, r.scored, r.above, r.below,
       sum(a.source = 'threshold' AND a.status IN ('confirmed_fraud', 'false_positive')),
       sum(a.source = 'threshold' AND a.status = 'confirmed_fraud'),
       sum(a.source = 'below_the_line'),
       sum(a.source = 'below_the_line' AND a.status IN ('confirmed_fraud', 'false_positive')),
       sum(a.source = 'below_the_line' AND a.status = 'confirmed_fraud'),
       r.first_ts, r.last_ts, r.scope
FROM alert_runs r LEFT JOIN alerts a ON a.run_id = r.id
WHERE r.dataset = ? AND r.model = ? AND r.version = ?
GROUP BY r.id ORDER BY r.id
"""


def estimate_missed(dataset: str, model_ref: str, *, confidence: float = 0.95,
                    cfg: Settings | None = None) -> MissedEstimate:
    """Estimated recall of the version's alerts over every run that raised them on ``dataset``.

    Assumes the runs scored different transactions (new days or new batches); alerts that
    already existed are never counted twice. See :class:`MissedEstimate` for the estimator.
    """
    cfg = cfg or settings()
    check_dataset_name(dataset)
    if isinstance(confidence, bool) or not isinstance(confidence, float) or not 0 < confidence < 1:
        raise FraudLensError(f"The 'confidence' parameter must be a float in (0, 1). Got {confidence!r} instead.")
    name, version = operating.resolve(cfg.home, model_ref)
    runs = ops.rows(cfg.home, _RUN_COUNTS, [dataset, name, int(version)])
    c = np.array([[v or 0 for v in r[3:11]] for r in runs], dtype=float).reshape(-1, 8).sum(axis=0)
    scored, above, below, resolved_a, confirmed_a, n_sample, resolved_b, confirmed_b = (int(v) for v in c)
    both = resolved_a < above
    level = 1 - (1 - confidence) / 2 if both else confidence
    pa_lo, pa_hi = wilson_interval(confirmed_a, resolved_a, level)
    pa = confirmed_a / resolved_a if resolved_a else float("nan")
    open_a = above - resolved_a
    f_above = confirmed_a + (open_a * pa if open_a else 0.0)
    fa_lo, fa_hi = confirmed_a + open_a * pa_lo, confirmed_a + open_a * pa_hi
    pb_lo, pb_hi = wilson_interval(confirmed_b, resolved_b, level)
    pb = confirmed_b / resolved_b if resolved_b else float("nan")
    f_below, fb_lo, fb_hi = below * pb, below * pb_lo, below * pb_hi
    recall = _share(f_above, f_below)
    low, high = _share(fa_lo, fb_hi), _share(fa_hi, fb_lo)
    overlaps = _overlapping(runs)
    note = _missed_note(len(runs), resolved_b, n_sample, open_a, overlaps)
    if resolved_b == 0:
        recall = low = high = f_below = fb_lo = fb_hi = float("nan")
    return MissedEstimate(
        dataset=dataset, model=name, version=int(version), runs=len(runs),
        thresholds=tuple(sorted({float(r[1]) for r in runs})), sample_rates=tuple(sorted({float(r[2]) for r in runs})),
        scored=scored, above=above, below=below, resolved_above=resolved_a, confirmed_above=confirmed_a,
        sample_size=n_sample, sample_resolved=resolved_b, sample_confirmed=confirmed_b,
        frauds_above=float(f_above), frauds_above_low=float(fa_lo), frauds_above_high=float(fa_hi),
        frauds_below=float(f_below), frauds_below_low=float(fb_lo), frauds_below_high=float(fb_hi),
        recall=recall, recall_low=low, recall_high=high, confidence=confidence, note=note, overlaps=overlaps,
    )


def _overlapping(runs: list[tuple]) -> tuple[tuple[int, int], ...]:
    """Pairs of runs (ids) whose scored rows may be the same ones: their time spans meet, and they
    were not limited to two different ingest batches."""
    spans = [(r[0], r[11], r[12], _batch(r[13])) for r in runs if r[11] and r[12]]
    return tuple((a[0], b[0]) for i, a in enumerate(spans) for b in spans[i + 1:]
                 if a[1] <= b[2] and b[1] <= a[2] and not (a[3] and b[3] and a[3] != b[3]))


def _batch(scope: str) -> str | None:
    words = scope.split()
    return words[words.index("ingest") + 1] if "ingest" in words[:-1] else None


def _share(above: float, below: float) -> float:
    total = above + below
    return float(above / total) if total > 0 else float("nan")


def overlap_text(overlaps: tuple[tuple[int, int], ...]) -> str:
    """What overlapping runs do to the estimate, and how to avoid them."""
    pairs = ", ".join(f"#{a} and #{b}" for a, b in overlaps[:3]) + (" and others" if len(overlaps) > 3 else "")
    return (f"Alert runs {pairs} scored the same period: transactions under the threshold in both are "
            "counted once per run, so the frauds below the threshold are overstated and recall understated. "
            "Score only new transactions: leave 'Score earlier transactions again' unticked on the Alerts page, or "
            "use `alerts raise --from` or `--latest-batch`.")


def _missed_note(runs: int, resolved_b: int, n_sample: int, open_a: int,
                 overlaps: tuple[tuple[int, int], ...] = ()) -> str:
    if overlaps:
        return overlap_text(overlaps) + " " + _missed_note(runs, resolved_b, n_sample, open_a)
    if runs == 0:
        return "No alerts were raised with this model version on this dataset yet."
    if resolved_b == 0:
        return (f"None of the {n_sample:,} below-the-line sample alerts is resolved yet: recall cannot "
                "be estimated. Work some of them (confirmed fraud or false positive).")
    parts = [f"{resolved_b:,} of {n_sample:,} sample alerts resolved"]
    if open_a:
        parts.append(f"{open_a:,} alerts above the threshold not yet resolved (their frauds are estimated)")
    return "; ".join(parts) + "."
