"""Shared by the page test modules: one demo built per module, a private copy per test."""

from __future__ import annotations

import shutil
from pathlib import Path

from streamlit.testing.v1 import AppTest

from fraudlens.demo import build_demo

APP = Path(__file__).resolve().parents[2] / "app.py"


def module_demo(tmp_path_factory, label: str, rows: int) -> Path:
    """A demo (dataset, champion, live threshold) in a folder of its own."""
    folder = tmp_path_factory.mktemp(label) / "home"
    build_demo(folder, rows)
    return folder


def private_copy(source: Path, home, monkeypatch, rows: int) -> Path:
    """A copy of ``source`` as ``FRAUDLENS_HOME`` (the app's caches are keyed by that folder)."""
    shutil.copytree(source, home.home)
    monkeypatch.setenv("FRAUDLENS_DEMO_ROWS", str(rows))
    return Path(home.home)


def ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at
