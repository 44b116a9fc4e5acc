"""Shared fixtures: a private data directory per test, a clean store cache, the CLI in a subprocess.

Every test that touches data gets its own ``FRAUDLENS_HOME`` (``home``), so tests never see each
other's datasets, and ``fraudlens.store._STORES`` is emptied after each test so a connection made
for one directory is never reused for another.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fraudlens import store as _store  # noqa: E402
from fraudlens.config import Settings, settings  # noqa: E402


def _close_stores() -> None:
    with _store._STORES_LOCK:
        stores = list(_store._STORES.values())
        _store._STORES.clear()
    for s in stores:
        try:
            s.close()
        except Exception:  # noqa: BLE001 - a store already closed by its test is fine
            pass


@pytest.fixture(autouse=True)
def _fresh_stores():
    """No store (DuckDB connection) outlives the test that made it."""
    _close_stores()
    yield
    _close_stores()


@pytest.fixture
def home(tmp_path, monkeypatch) -> Settings:
    """A temporary ``FRAUDLENS_HOME``; returns the Settings the library will read from it."""
    data = tmp_path / "home"
    monkeypatch.setenv("FRAUDLENS_HOME", str(data))
    monkeypatch.setenv("FRAUDLENS_TIMEZONE", "America/Lima")
    monkeypatch.setenv("FRAUDLENS_THREADS", "2")
    monkeypatch.setenv("FRAUDLENS_MEMORY_LIMIT", "1GB")
    monkeypatch.delenv("FRAUDLENS_PSEUDONYMISATION_KEY", raising=False)
    return settings()


@pytest.fixture
def write(tmp_path):
    """``write(name, content)`` -> Path: a source file with exactly these bytes (str is UTF-8)."""
    src = tmp_path / "src"
    src.mkdir(exist_ok=True)

    def _write(name: str, content: str | bytes) -> Path:
        path = src / name
        path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
        return path

    return _write


def _cli_env(home: Settings, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDLENS_")}
    env.update(
        FRAUDLENS_HOME=str(home.home),
        FRAUDLENS_TIMEZONE=home.timezone,
        FRAUDLENS_THREADS="2",
        FRAUDLENS_MEMORY_LIMIT="1GB",
        PYTHONPATH=str(ROOT) + os.pathsep + env.get("PYTHONPATH", ""),
    )
    env.update(extra)
    return env


@pytest.fixture
def cli_env(home) -> dict:
    """Environment for a ``python -m fraudlens`` subprocess on the test's ``home``."""
    return _cli_env(home)


@pytest.fixture
def run_cli(home, tmp_path):
    """``run_cli(*args, **env)`` -> CompletedProcess of ``python -m fraudlens ARGS`` (real process)."""

    def _run(*args: str, timeout: float = 120, **extra_env: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "fraudlens", *map(str, args)],
            env=_cli_env(home, **extra_env), cwd=tmp_path, capture_output=True, text=True,
            timeout=timeout,
        )

    return _run


@pytest.fixture
def snapshot(home):
    """``snapshot(name)`` -> everything a reader could see of a dataset, to compare before/after.

    The manifest, the sorted rows of the files it lists (read straight from Parquet, not through
    the library), and a hash of every regular file in the dataset folder.
    """
    import duckdb

    def _snap(name: str) -> dict:
        base = Path(home.home) / name
        manifest_path = base / "manifest.json"
        if not manifest_path.is_file():
            files = sorted(str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()) \
                if base.exists() else []
            return {"manifest": None, "rows": None, "files": files, "live": None}
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        parts = [str(base / f) for f in manifest["files"]]
        con = duckdb.connect()
        try:
            rows = con.execute(
                "SELECT * FROM read_parquet($p, union_by_name = true) ORDER BY ALL", {"p": parts}
            ).fetchall()
        finally:
            con.close()
        files = {
            str(p.relative_to(base)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(base.rglob("*"))
            if p.is_file()
        }
        live = {f: files.get(f) for f in manifest["files"]}
        return {"manifest": manifest, "rows": rows, "files": files, "live": live}

    return _snap
