"""Datasets on disk: a folder of Parquet parts and a manifest that says which parts are live.

``<home>/<name>/manifest.json`` is the single source of truth. Readers use only the files it
lists, so parts written by an ingest that died before its manifest swap are never seen.
The manifest is replaced atomically (write, fsync, rename).
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from fraudlens.errors import DatasetError
from fraudlens.files import fsync_path
from fraudlens.schema import check_dataset_name

MANIFEST = "manifest.json"
PARTS = "transactions"
REJECTS = "rejects"
STAGING = ".staging"


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    version: int
    rows: int
    rejected: int
    frauds: int
    first: str | None
    last: str | None
    files: tuple[str, ...]
    columns: tuple[str, ...]
    size_bytes: int
    pseudonymised: bool
    ingests: tuple[dict, ...] = field(default_factory=tuple)
    timezone: str | None = None  # zone of local (calendar) time; None: the settings' zone

    def to_summary(self) -> dict:
        """The fields of ``datasets --json``."""
        return {
            "name": self.name,
            "rows": self.rows,
            "rejected": self.rejected,
            "frauds": self.frauds,
            "first": self.first,
            "last": self.last,
            "size_bytes": self.size_bytes,
            "version": self.version,
        }


def dataset_dir(home: Path, name: str) -> Path:
    return Path(home) / check_dataset_name(name)


def exists(home: Path, name: str) -> bool:
    return (dataset_dir(home, name) / MANIFEST).is_file()


def read(home: Path, name: str) -> DatasetInfo:
    """The dataset's manifest; DatasetError if there is none."""
    path = dataset_dir(home, name) / MANIFEST
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(
            f"There is no dataset named '{name}' in {home}. "
            "Ingest one with `python -m fraudlens ingest PATH --dataset NAME`."
        ) from None
    except (OSError, json.JSONDecodeError) as exc:
        raise DatasetError(f"The manifest of dataset '{name}' cannot be read ({exc}).") from exc
    return DatasetInfo(
        name=data["name"],
        version=int(data["version"]),
        rows=int(data["rows"]),
        rejected=int(data["rejected"]),
        frauds=int(data["frauds"]),
        first=data.get("first"),
        last=data.get("last"),
        files=tuple(data["files"]),
        columns=tuple(data["columns"]),
        size_bytes=int(data.get("size_bytes", 0)),
        pseudonymised=bool(data.get("pseudonymised", False)),
        ingests=tuple(data.get("ingests", [])),
        timezone=data.get("timezone"),
    )


def list_all(home: Path) -> list[DatasetInfo]:
    """Every dataset under ``home`` with a readable manifest, by name."""
    home = Path(home)
    if not home.is_dir():
        return []
    found = []
    for child in sorted(home.iterdir()):
        if (child / MANIFEST).is_file():
            try:
                found.append(read(home, child.name))
            except (DatasetError, KeyError, ValueError):
                continue
    return found


def part_paths(home: Path, info: DatasetInfo) -> list[Path]:
    base = dataset_dir(home, info.name)
    return [base / f for f in info.files]


def write_manifest(home: Path, data: dict) -> None:
    """Atomically replace the manifest: nobody ever reads a half-written one."""
    base = dataset_dir(home, data["name"])
    base.mkdir(parents=True, exist_ok=True)
    tmp = base / f".{MANIFEST}.tmp"
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=1, default=str)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, base / MANIFEST)
    fsync_dir(base)


def fsync_dir(path: Path) -> None:
    fsync_path(path)


def fsync_tree(path: Path) -> None:
    """fsync every file under ``path`` and the folders themselves."""
    for root, _dirs, files in os.walk(path):
        for name in files:
            fsync_path(Path(root) / name)
        fsync_dir(Path(root))


def remove_unlisted(home: Path, name: str) -> None:
    """Delete parts and staging left behind by replaced versions or by an ingest that died."""
    base = dataset_dir(home, name)
    info = read(home, name)
    live = set(info.files)
    live_rejects = {i.get("rejects_file") for i in info.ingests}
    parts = base / PARTS
    if parts.is_dir():
        for path in parts.iterdir():
            if f"{PARTS}/{path.name}" not in live:
                path.unlink(missing_ok=True)
    rejects = base / REJECTS
    if rejects.is_dir():
        for path in rejects.iterdir():
            if f"{REJECTS}/{path.name}" not in live_rejects:
                path.unlink(missing_ok=True)
    shutil.rmtree(base / STAGING, ignore_errors=True)


def delete(home: Path, name: str) -> None:
    base = dataset_dir(home, name)
    if not (base / MANIFEST).is_file():
        raise DatasetError(f"There is no dataset named '{name}'.")
    (base / MANIFEST).unlink()
    shutil.rmtree(base, ignore_errors=True)
    from fraudlens import feature_store, monitor, store  # import this module

    feature_store.remove(home, name)
    monitor.remove(home, name)
    store.remove_hot(home, name)
