"""The Data page's steps without the drawing: save an upload, edit the mapping, run the ingest.

Uploaded bytes go to ``<home>/.tmp/uploads/<random>/<file name>``: inside the data folder
(the only place DuckDB may read) and under the user's own file name, which the rejects report
quotes. Old uploads are swept after a day.
"""

from __future__ import annotations

import json
import re
import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import pandas as pd

from fraudlens import ingest
from fraudlens.config import secret
from fraudlens.errors import SchemaError
from fraudlens.schema import CANONICAL, COLUMNS, check_dataset_name, normalise_header
from fraudlens.ui.cached import cfg_for

UPLOADS = Path(".tmp") / "uploads"
MAX_AGE_SECONDS = 24 * 3600
SOURCE = "source column"
Progress = Callable[[float, str], None]


def uploads_dir(home: Path) -> Path:
    return Path(home) / UPLOADS


def safe_file_name(name: str) -> str:
    """The last path part of ``name`` with only letters, digits, ``.``, ``-`` and ``_``."""
    base = Path(str(name).replace("\\", "/")).name
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).strip("._") or "upload"
    return cleaned[-120:]


def save_upload(home: Path, name: str, data: BinaryIO) -> Path:
    """Copy an uploaded file into the uploads folder and return its path."""
    sweep_uploads(home)
    folder = uploads_dir(home) / uuid.uuid4().hex
    folder.mkdir(parents=True)
    target = folder / safe_file_name(name)
    with target.open("wb") as fh:
        shutil.copyfileobj(data, fh, length=1 << 20)
    return target


def discard_upload(home: Path, path: str | Path | None) -> None:
    """Delete an upload's folder (only ever one inside the uploads folder)."""
    if not path:
        return
    folder = Path(path).resolve().parent
    if folder.parent == uploads_dir(home).resolve():
        shutil.rmtree(folder, ignore_errors=True)


def sweep_uploads(home: Path, max_age: float = MAX_AGE_SECONDS) -> None:
    """Delete uploads older than ``max_age`` seconds (left by closed browser tabs)."""
    root = uploads_dir(home)
    if not root.is_dir():
        return
    cutoff = time.time() - max_age
    for folder in root.iterdir():
        if folder.is_dir() and folder.stat().st_mtime < cutoff:
            shutil.rmtree(folder, ignore_errors=True)


def suggest_name(file_name: str) -> str:
    """A dataset name from a file name: ``Ventas Enero.csv.gz`` -> ``ventas_enero``."""
    stem = Path(file_name).name.split(".")[0]
    name = normalise_header(stem)[:63] or "dataset"
    return name if name[0].isalpha() else f"d_{name}"[:63]


# ---------------------------------------------------------------------------- mapping


def mapping_table(mapping: dict[str, str], headers: list[str]) -> pd.DataFrame:
    """One row a canonical column for the mapping editor; unknown sources are left blank."""
    return pd.DataFrame(
        [
            {
                "canonical": c.name,
                "description": c.description,
                "required": c.required,
                SOURCE: mapping.get(c.name) if mapping.get(c.name) in headers else "",
            }
            for c in COLUMNS
        ]
    )


def mapping_from_table(table: pd.DataFrame) -> dict[str, str]:
    """``{canonical: source column}`` for the rows with a source chosen."""
    found = {}
    for canonical, source in zip(table["canonical"], table[SOURCE], strict=True):
        if isinstance(source, str) and source.strip():
            found[str(canonical)] = source
    return found


def mapping_json(mapping: dict[str, str]) -> bytes:
    """The mapping file ``--mapping`` reads, canonical order."""
    ordered = {c: mapping[c] for c in CANONICAL if c in mapping}
    return (json.dumps(ordered, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


@dataclass(frozen=True)
class LoadedMapping:
    mapping: dict[str, str]
    skipped: list[str] = field(default_factory=list)


def read_mapping(home: Path, name: str, data: bytes, headers: list[str]) -> LoadedMapping:
    """Parse a saved mapping JSON; entries that do not fit this file are skipped, with a reason.

    Raises IngestError when the file is not a mapping at all.
    """
    folder = uploads_dir(home) / uuid.uuid4().hex
    folder.mkdir(parents=True)
    path = folder / safe_file_name(name)
    try:
        path.write_bytes(data)
        raw = ingest.load_mapping(path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    kept, skipped = {}, []
    for canonical, source in raw.items():
        if canonical not in CANONICAL:
            skipped.append(f"'{canonical}' is not a canonical column")
        elif source not in headers:
            skipped.append(f"'{canonical}' -> '{source}': the file has no column '{source}'")
        else:
            kept[canonical] = source
    return LoadedMapping(kept, skipped)


# ---------------------------------------------------------------------------- ingest


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a dataset name, or None when it can."""
    try:
        check_dataset_name(name)
    except SchemaError as exc:
        return str(exc)
    return None


def has_pseudonymisation_key() -> bool:
    return bool(secret("pseudonymisation_key"))


@dataclass(frozen=True)
class IngestSummary:
    """What the page shows after an ingest: the library's own numbers."""

    dataset: str
    ingest_id: str
    mode: str
    rows_read: int
    loaded: int
    rejected: int
    rejects_by_reason: dict[str, int]
    seconds: float
    notes: list[str]


def run_ingest(
    home: Path,
    path: str | Path,
    dataset: str,
    *,
    mapping: dict[str, str],
    mode: str = "create",
    strict: bool = False,
    pseudonymise: bool = False,
    progress: Progress | None = None,
) -> IngestSummary:
    """Ingest one uploaded file into ``dataset`` under ``home``.

    Raises FraudLensError (shown to the user) for anything the user can fix.
    """
    result = ingest.ingest(
        [Path(path)],
        dataset,
        mapping=mapping,
        mode=mode,
        strict=strict,
        pseudonymise=pseudonymise,
        progress=progress,
        cfg=cfg_for(home),
    )
    return IngestSummary(
        dataset=result.dataset,
        ingest_id=result.ingest_id,
        mode=result.mode,
        rows_read=result.rows_read,
        loaded=result.loaded,
        rejected=result.rejected,
        rejects_by_reason=dict(result.rejects_by_reason),
        seconds=result.seconds,
        notes=list(result.notes),
    )
