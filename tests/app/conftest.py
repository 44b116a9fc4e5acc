"""AppTest fixtures: the app on a private data folder with a small demo dataset.

``FRAUDLENS_DEMO_ROWS`` keeps first start quick; every test gets its own ``FRAUDLENS_HOME``
(the ``home`` fixture of tests/conftest.py), and the app's caches are keyed by that folder.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[2] / "app.py"
DEMO_ROWS = 5000


@pytest.fixture
def app_home(home, monkeypatch):
    """Settings of an empty data folder the app will fill with a small demo on first start."""
    monkeypatch.setenv("FRAUDLENS_DEMO_ROWS", str(DEMO_ROWS))
    return home


@pytest.fixture
def app(app_home) -> AppTest:
    """The app after its first start (demo dataset built, Home page drawn), with no exception."""
    at = AppTest.from_file(str(APP), default_timeout=120).run()
    assert not at.exception, [e.value for e in at.exception]
    return at
