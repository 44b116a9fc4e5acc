"""Cached data calls for the pages, keyed by data folder and dataset version.

Each public function reads the dataset's small manifest to learn its current stamp (version
plus last ingest id, so a dataset deleted and created again never hits an old entry) and then
calls a ``st.cache_data`` function keyed by ``(home, name, stamp)``. No argument of those is
named with a leading ``_``: Streamlit leaves such arguments out of the key. A new ingest
therefore shows up on the next run without clearing anything. Results are ready to draw.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import threading
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from fraudlens import analytics, background, datasets, export, ingest, ops, quality
from fraudlens.analytics import Filters
from fraudlens.config import Settings, settings
from fraudlens.datasets import DatasetInfo
from fraudlens.errors import ModelError
from fraudlens.store import get_store

logger = logging.getLogger(__name__)

TTL = 600
REJECTS_LIMIT = 100_000
ANALYSIS_ENTRIES = 256


def cfg_for(home: str | Path) -> Settings:
    """Settings pointed at ``home`` (the cache key), the rest from the environment."""
    return dataclasses.replace(settings(), home=Path(home))


def stamp(info: DatasetInfo) -> str:
    last = info.ingests[-1].get("id", "") if info.ingests else ""
    return f"{info.version}:{last}"


def _listing_stamp(home: Path) -> tuple[tuple[str, int], ...]:
    """Names and manifest change times: cheap to read, changes with every ingest."""
    if not home.is_dir():
        return ()
    found = []
    for child in sorted(home.iterdir()):
        manifest = child / datasets.MANIFEST
        if manifest.is_file():
            found.append((child.name, manifest.stat().st_mtime_ns))
    return tuple(found)


# ---------------------------------------------------------------------------- datasets


def dataset_list(home: Path) -> list[DatasetInfo]:
    """Every dataset in ``home``, by name."""
    return _dataset_list(str(home), _listing_stamp(home))


@st.cache_data(ttl=TTL, max_entries=16, show_spinner=False)
def _dataset_list(home: str, listing: tuple) -> list[DatasetInfo]:
    return datasets.list_all(Path(home))


def dataset_names(home: Path) -> list[str]:
    return [info.name for info in dataset_list(home)]


def dataset_info(home: Path, name: str) -> DatasetInfo | None:
    """The manifest of ``name``, or None when it is gone."""
    for info in dataset_list(home):
        if info.name == name:
            return info
    return None


def datasets_table(home: Path) -> pd.DataFrame:
    """One row a dataset: name, rows, rejected, frauds, first, last, size MB."""
    return _datasets_table(str(home), _listing_stamp(home))


@st.cache_data(ttl=TTL, max_entries=16, show_spinner=False)
def _datasets_table(home: str, listing: tuple) -> pd.DataFrame:
    tz = cfg_for(home).timezone
    rows = [
        {
            "name": info.name,
            "rows": info.rows,
            "rejected": info.rejected,
            "frauds": info.frauds,
            "first": local_time(info.first, tz),
            "last": local_time(info.last, tz),
            "size MB": round(info.size_bytes / 1e6, 2),
        }
        for info in datasets.list_all(Path(home))
    ]
    columns = ["name", "rows", "rejected", "frauds", "first", "last", "size MB"]
    return pd.DataFrame(rows, columns=columns)


def local_time(text: str | None, tz: str, *, seconds: bool = False) -> str:
    """A stored UTC time (``2025-01-01 05:00:00``) in the dataset's time zone, as text."""
    if not text:
        return ""
    try:
        moment = datetime.fromisoformat(str(text).replace(" ", "T", 1))
    except ValueError:
        return str(text)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    local = moment.astimezone(ZoneInfo(tz))
    return local.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")


def timezone_name() -> str:
    """The time zone dates are shown in (the one datasets are ingested with)."""
    return settings().timezone


def headline(info: DatasetInfo) -> dict[str, str]:
    """The Home page's figures for one dataset, formatted for ``st.metric``."""
    rate = info.frauds / info.rows if info.rows else 0.0
    tz = timezone_name()
    return {
        "rows": f"{info.rows:,}",
        "frauds": f"{info.frauds:,}",
        "fraud_rate": f"{rate:.2%}",
        "first": local_time(info.first, tz)[:10] or "-",
        "last": local_time(info.last, tz)[:10] or "-",
        "rejected": f"{info.rejected:,}",
    }


# ---------------------------------------------------------------------------- profile


@dataclasses.dataclass(frozen=True)
class ProfileTables:
    """The data-quality profile of one dataset version, as tables to draw."""

    columns: pd.DataFrame
    rejects: pd.DataFrame
    ingests: pd.DataFrame


def profile_tables(home: Path, name: str) -> ProfileTables:
    info = datasets.read(home, name)
    return _profile_tables(str(home), name, stamp(info))


@st.cache_data(ttl=TTL, max_entries=32, show_spinner="Profiling the dataset...")
def _profile_tables(home: str, name: str, version: str) -> ProfileTables:
    profile = quality.load(name, cfg_for(home))
    tz = cfg_for(home).timezone
    rows = int(profile.get("rows") or 0)
    columns = pd.DataFrame(
        [_profile_row(c, rows, tz) for c in profile["columns"]],
        columns=["column", "type", "in source", "nulls %", "distinct", "min", "max", "top values"],
    )
    return ProfileTables(
        columns=columns,
        rejects=reasons_table(profile.get("rejects_by_reason", {})),
        ingests=_ingests_table(profile.get("ingests", []), tz),
    )


def _profile_row(entry: dict, rows: int, tz: str) -> dict:
    low, high = entry.get("min"), entry.get("max")
    if str(entry.get("type", "")).upper().startswith("TIMESTAMP"):
        low, high = local_time(low, tz, seconds=True), local_time(high, tz, seconds=True)
    # The distinct count is approximate; it can never exceed the non-empty rows.
    distinct = min(int(entry.get("distinct") or 0), max(rows - int(entry.get("nulls") or 0), 0))
    return {
        "column": entry["column"],
        "type": entry["type"],
        "in source": bool(entry.get("present", True)),
        "nulls %": round(100 * float(entry.get("null_share") or 0.0), 2),
        "distinct": distinct,
        "min": low,
        "max": high,
        "top values": ", ".join(_top_text(t) for t in entry.get("top") or []),
    }


def _top_text(item: object) -> str:
    """A top value, with its count when the profile has one."""
    if isinstance(item, dict):
        count = item.get("count")
        return f"{item.get('value')} ({count:,})" if isinstance(count, int) else str(item.get("value"))
    return str(item)


def reasons_table(by_reason: dict[str, int]) -> pd.DataFrame:
    """Rejects by reason, most frequent first."""
    rows = sorted(by_reason.items(), key=lambda kv: (-int(kv[1]), kv[0]))
    return pd.DataFrame(rows, columns=["reason", "rows"]).astype({"rows": "int64"})


def _ingests_table(entries: list[dict], tz: str) -> pd.DataFrame:
    rows = [
        {
            "when": local_time(e.get("at"), tz, seconds=True),
            "mode": e.get("mode"),
            "files": ", ".join(e.get("sources") or []),
            "rows read": e.get("rows_read"),
            "loaded": e.get("loaded"),
            "rejected": e.get("rejected"),
        }
        for e in reversed(entries)
    ]
    return pd.DataFrame(rows, columns=["when", "mode", "files", "rows read", "loaded", "rejected"])


# ---------------------------------------------------------------------------- sources and rejects


def inspect_source(path: str | Path) -> ingest.SourceInfo:
    """What ingest detects in an uploaded file; cached by path and file change time."""
    path = Path(path)
    return _inspect_source(str(path), path.stat().st_mtime_ns)


@st.cache_data(ttl=TTL, max_entries=8, show_spinner="Reading the file...")
def _inspect_source(path: str, mtime_ns: int) -> ingest.SourceInfo:
    return ingest.inspect(path)


@dataclasses.dataclass(frozen=True)
class Rejects:
    """The rejected rows of one ingest: a preview and the CSV download."""

    preview: pd.DataFrame
    csv: bytes
    shown: int


def rejects(home: Path, name: str, ingest_id: str) -> Rejects | None:
    """Rejects of ingest ``ingest_id`` of ``name``; None when it rejected nothing."""
    return _rejects(str(home), name, ingest_id)


@st.cache_data(ttl=TTL, max_entries=8, show_spinner=False)
def _rejects(home: str, name: str, ingest_id: str) -> Rejects | None:
    frame = ingest.read_rejects(name, ingest_id=ingest_id, limit=REJECTS_LIMIT, cfg=cfg_for(home))
    if frame is None:
        return None
    return Rejects(preview=frame.head(200), csv=export.to_csv_bytes(frame), shown=len(frame))


# ---------------------------------------------------------------------------- dashboard aggregates

# The analytics functions the pages may call through the cache, by name.
_ANALYSES = {
    fn.__name__: fn for fn in (
        analytics.filter_options, analytics.kpis, analytics.daily_series,
        analytics.hour_weekday_heatmap, analytics.segments, analytics.amount_distribution,
        analytics.top_entities, analytics.region_breakdown, analytics.transactions_page,
        analytics.count_matching, analytics.summary,
    )
}


def _analysis(fn: str, home: Path, name: str, *args, **kwargs):
    info = datasets.read(home, name)
    return _cached_analysis(str(home), name, stamp(info), fn, args, tuple(sorted(kwargs.items())))


@st.cache_data(ttl=TTL, max_entries=ANALYSIS_ENTRIES, show_spinner=False)
def _cached_analysis(home: str, name: str, version: str, fn: str, args: tuple, kwargs: tuple):
    """One analytics call, keyed by data folder, dataset, its version and every argument."""
    return _ANALYSES[fn](get_store(cfg_for(home)), name, *args, **dict(kwargs))


_WARMED: set[tuple[str, str, str]] = set()
_WARM_LOCK = threading.Lock()


def warm_analytics(home: Path, name: str | None) -> None:
    """Start building the active dataset's analytics table in the background, once per version
    and server process, so the first chart finds it built or under way (not yet started)."""
    info = dataset_info(home, name) if name else None
    if info is None:
        return
    key = (str(home), info.name, stamp(info))
    with _WARM_LOCK:
        if key in _WARMED:
            return
        _WARMED.add(key)
    background.start(_prepare_quietly, Path(home), info.name, name=f"fraudlens-warm-{info.name}")


def _prepare_quietly(home: Path, name: str) -> None:
    try:
        store = get_store(cfg_for(home))
        analytics.prepare(store, name)
        analytics.filter_options(store, name)  # kept per version: every page with filters asks first
    except Exception as exc:  # noqa: BLE001 - the first chart then builds it, or reports why not
        logger.info("analytics table of %s not prepared in the background: %s", name, exc)
    _import_drawing()


@functools.cache
def _import_drawing() -> None:
    """Import what the chart pages draw with (plotly, the chart modules, Streamlit's emoji table
    that its first alert box loads): ~1 s the first page with charts would otherwise wait for.
    In the order the pages import them, so the page's thread at most waits for this one."""
    try:
        import plotly.graph_objects  # noqa: F401
        import streamlit.emojis  # noqa: F401

        from fraudlens import charts, charts_models, charts_monitor  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - the page imports them itself
        logger.info("chart modules not imported in the background: %s", exc)


def filter_options(home: Path, name: str) -> analytics.FilterOptions:
    return _analysis("filter_options", home, name)


def kpis(home: Path, name: str, filters: Filters) -> analytics.Kpis:
    return _analysis("kpis", home, name, filters)


def daily_series(home: Path, name: str, filters: Filters, grain: str = "day") -> pd.DataFrame:
    return _analysis("daily_series", home, name, filters, grain=grain)


def hour_weekday_heatmap(home: Path, name: str, filters: Filters) -> pd.DataFrame:
    return _analysis("hour_weekday_heatmap", home, name, filters)


def segments(home: Path, name: str, filters: Filters, by: str) -> pd.DataFrame:
    return _analysis("segments", home, name, filters, by)


def amount_distribution(home: Path, name: str, filters: Filters) -> pd.DataFrame:
    return _analysis("amount_distribution", home, name, filters)


def top_entities(home: Path, name: str, filters: Filters, by: str, n: int = 20) -> pd.DataFrame:
    return _analysis("top_entities", home, name, filters, by=by, n=n)


def region_breakdown(home: Path, name: str, filters: Filters) -> pd.DataFrame:
    return _analysis("region_breakdown", home, name, filters)


def transactions_page(home: Path, name: str, filters: Filters, extra: dict | None = None, *,
                      sort: str = "transaction_datetime", descending: bool = True, limit: int = 50,
                      offset: int = 0) -> analytics.TransactionsPage:
    return _analysis("transactions_page", home, name, filters, extra=dict(extra or {}), sort=sort,
                     descending=descending, limit=limit, offset=offset)


def summary(home: Path, name: str, filters: Filters, by: str = "channel") -> analytics.Summary:
    return _analysis("summary", home, name, filters, by=by)


def count_matching(home: Path, name: str, filters: Filters, extra: dict | None = None) -> analytics.PeriodFigures:
    return _analysis("count_matching", home, name, filters, extra=dict(extra or {}))


def dataset_timezone(home: Path, name: str) -> str:
    """The zone calendar views of ``name`` are drawn in."""
    return analytics.dataset_zone(get_store(cfg_for(home)), name).name


# ---------------------------------------------------------------------------- live operating point


@dataclasses.dataclass(frozen=True)
class LivePoint:
    """The operating point an analyst saved for the model in use on a dataset (test window)."""

    model: str
    version: str
    threshold: float
    alerts_per_day: float
    precision: float
    recall: float
    fraud_amount_caught: float
    saved_by: str
    saved_at: str


def live_point(home: Path, name: str) -> LivePoint | None:
    """The live operating point of the model in use on dataset ``name``, or None.

    Only what the model registry and the operating-point logs hold: of the models trained on
    ``name``, the version in use (champion, else latest) of each, and the newest operating point
    saved for it; the most recently saved one wins. None when those modules do not offer it
    (checked at call time) or nothing was saved: the page then says so, never shows a number.
    """
    try:
        from fraudlens import operating, registry
    except ImportError:
        return None
    if not (hasattr(operating, "live_point") and hasattr(registry, "list_models")):
        return None
    saved = []
    for model in sorted({v.name for v in registry.list_models(home) if getattr(v, "dataset", None) == name}):
        try:
            point = operating.live_point(home, model)
        except ModelError as exc:
            logger.warning("no live operating point for %s: %s", model, exc)
            continue
        if point is not None:
            saved.append(point)
    if not saved:
        return None
    latest = max(saved, key=lambda s: s.saved_at)
    p = latest.point
    return LivePoint(model=latest.model, version=latest.version, threshold=float(p.threshold),
                     alerts_per_day=float(p.alerts_per_day), precision=float(p.precision),
                     recall=float(p.recall), fraud_amount_caught=float(p.fraud_amount_caught),
                     saved_by=latest.user, saved_at=latest.saved_at)


def clear() -> None:
    """Forget every cached result (after something outside the app changed the data)."""
    for fn in (_dataset_list, _datasets_table, _profile_tables, _inspect_source, _rejects,
               _cached_analysis):
        fn.clear()


def case_labels(home: Path, dataset: str) -> int:
    """How many transactions of ``dataset`` carry a label from an alert disposition."""
    return len(ops.effective_labels(home, dataset))
