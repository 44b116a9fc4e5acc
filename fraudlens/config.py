"""Settings read from the environment, with defaults that fit a 2-core laptop."""

from __future__ import annotations

import logging
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

from fraudlens.errors import FraudLensError

DEMO_DATASET = "demo"
DEMO_ROWS = 200_000
DEMO_SEED = 42
DEFAULT_TIMEZONE = "America/Lima"
# Datasets up to this many rows get an analytics table, a compressed DuckDB file kept per dataset
# version (~0.6 GB more memory while it is built at 10M rows); larger ones are aggregated straight
# from Parquet.
DEFAULT_HOT_ROWS = 20_000_000


@dataclass(frozen=True)
class Settings:
    home: Path
    memory_limit: str
    threads: int
    timezone: str
    hot_rows: int = DEFAULT_HOT_ROWS  # 0: aggregate from Parquet only


def data_home() -> Path:
    """The data directory: ``$FRAUDLENS_HOME`` or ``./data``."""
    return Path(os.environ.get("FRAUDLENS_HOME", "data")).resolve()


def settings() -> Settings:
    return Settings(
        home=data_home(),
        memory_limit=os.environ.get("FRAUDLENS_MEMORY_LIMIT", "4GB"),
        threads=int(os.environ.get("FRAUDLENS_THREADS", str(os.cpu_count() or 2))),
        timezone=os.environ.get("FRAUDLENS_TIMEZONE", DEFAULT_TIMEZONE),
        hot_rows=_count("FRAUDLENS_HOT_ROWS", DEFAULT_HOT_ROWS),
    )


def _count(name: str, default: int) -> int:
    text = os.environ.get(name, "").strip().replace("_", "")
    if not text:
        return default
    if not text.isdigit():
        raise FraudLensError(f"The '{name}' setting must be a whole number >= 0. Got {text!r} instead.")
    return int(text)


def secret(name: str) -> str | None:
    """A secret from the environment (``FRAUDLENS_<NAME>``) or ``.streamlit/secrets.toml``."""
    value = os.environ.get(f"FRAUDLENS_{name.upper()}")
    if value:
        return value
    path = Path(".streamlit") / "secrets.toml"
    if not path.is_file():
        return None
    with path.open("rb") as fh:
        data = tomllib.load(fh)
    found = data.get("fraudlens", {}).get(name.lower()) or data.get(name.lower())
    return str(found) if found else None


LOG_HANDLER = "fraudlens-stderr"


def configure_logging() -> None:
    """With ``FRAUDLENS_LOG`` set to a level (``INFO``, ``DEBUG``, ...), the library's log lines
    go to stderr: how long each page run, ingest and feature build took, and where it went.
    Safe to call on every page run: the handler is added once."""
    wanted = os.environ.get("FRAUDLENS_LOG", "").strip().upper()
    root = logging.getLogger("fraudlens")
    if not wanted or any(h.get_name() == LOG_HANDLER for h in root.handlers):
        return
    handler = logging.StreamHandler()
    handler.set_name(LOG_HANDLER)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    level = logging.getLevelName(wanted)
    root.setLevel(level if isinstance(level, int) else logging.INFO)
    if not isinstance(level, int):
        root.warning("FRAUDLENS_LOG=%r is not a log level (DEBUG, INFO, WARNING or ERROR); using INFO", wanted)
