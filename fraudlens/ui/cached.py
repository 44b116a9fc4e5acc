"""Cached data calls for the pages, keyed by data folder and dataset version.

Each public function reads the dataset's small manifest to learn its current stamp (version
plus last ingest id, so a dataset deleted and created again never hits an old entry) and then
calls a ``st.cache_data`` function keyed by ``(home, name, stamp)``. No argument of those is
named with a leading ``_``: Streamlit leaves such arguments out of the key. A new ingest
therefore shows up on the next run without clearing anything. Results are ready to draw.
"""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

from fraudlens import datasets, export, ingest, quality
from fraudlens.config import Settings, settings
from fraudlens.datasets import DatasetInfo

TTL = 600
REJECTS_LIMIT = 100_000


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


def clear() -> None:
    """Forget every cached result (after something outside the app changed the data)."""
    for fn in (_dataset_list, _datasets_table, _profile_tables, _inspect_source, _rejects):
        fn.clear()
