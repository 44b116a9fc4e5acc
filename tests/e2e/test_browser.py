"""The real app in headless Chromium: first start, Home, then upload and ingest on the Data page.

Screenshots of both pages go to tests/e2e/artifacts/ (git-ignored) for a person to look at.
"""

from __future__ import annotations

import csv
import io
import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect

pytestmark = pytest.mark.e2e

WAIT_MS = 120_000
GOOD_ROWS = 40
BAD_ROWS = [
    ("B1", "not a date", "C1", "10.00", "pos", "Lima", "0"),  # bad date
    ("B2", "2025-03-01 10:00:00", "C2", "-7", "pos", "Lima", "0"),  # negative amount
    ("B3", "2025-03-01 11:00:00", "", "12", "atm", "Cusco", "0"),  # missing account
    ("B4", "2025-03-01 12:00:00", "C4", "=1+1", "online", "Lima", "1"),  # not a number
    ("G1", "2025-03-02 09:00:00", "C5", "8.50", "pos", "Piura", "0"),  # duplicate id
]


def bank_csv(path: Path) -> Path:
    """A small bank export with Spanish headers: GOOD_ROWS good rows, then the bad ones."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["TX_ID", "Fecha", "Cuenta", "Monto", "Canal", "Ciudad", "Fraude"])
    for i in range(1, GOOD_ROWS + 1):
        writer.writerow([f"G{i}", f"2025-03-{1 + i % 28:02d} {8 + i % 12:02d}:15:00", f"C{i % 9}",
                         f"{10 + i * 3.25:.2f}", ("pos", "online", "atm")[i % 3], "Lima",
                         "1" if i % 10 == 0 else "0"])
    writer.writerows(BAD_ROWS)
    path.write_text(buffer.getvalue(), encoding="utf-8")
    return path


def wait_idle(page: Page) -> None:
    """Wait until Streamlit has no script run in flight (its status widget is gone)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=WAIT_MS)
    for _ in range(3):  # a rerun can start right after one ends
        page.wait_for_timeout(300)
        expect(page.locator('[data-testid="stStatusWidget"]')).to_have_count(0, timeout=WAIT_MS)


def downloaded_text(page: Page, button: Locator) -> str:
    """Click a download button once the app is idle and the button enabled; the file's text.

    The click also reruns the script, so it waits for a quiet app first and gives the file as
    long as any other step (a loaded machine can be slow to answer)."""
    wait_idle(page)
    expect(button).to_be_enabled(timeout=WAIT_MS)
    with page.expect_download(timeout=WAIT_MS) as download:
        button.click()
    return Path(download.value.path()).read_text(encoding="utf-8-sig")


def metric(page: Page, label: str) -> str:
    tile = page.locator('[data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]', has_text=re.compile(f"^{label}$")))
    return tile.locator('[data-testid="stMetricValue"]').inner_text().strip()


def screenshot(page: Page, path: Path) -> None:
    """The whole page: the viewport grows to the content for the shot (Streamlit scrolls
    inside its own container, which ``full_page`` alone does not unroll)."""
    size = page.viewport_size
    page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]')?.scrollTo(0, 0)")
    # The main column's own height (the tallest element anywhere can be a far taller scroller).
    height = page.evaluate(
        "() => { const m = document.querySelector('[data-testid=\"stMainBlockContainer\"]');"
        " const s = document.querySelector('[data-testid=\"stSidebarContent\"]');"
        " return Math.max(m ? m.getBoundingClientRect().top + m.scrollHeight : 0,"
        " s ? s.scrollHeight : 0) + 40; }")
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], int(height))})
    page.wait_for_timeout(500)
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(size)


def assert_clean(page: Page, console_errors: list[str]) -> None:
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    assert console_errors == []


def test_first_start_then_upload_and_ingest(server, page: Page, artifacts: Path, tmp_path: Path):
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(str(e)))

    started = time.monotonic()
    page.goto(server.url)
    page.locator('[data-testid="stMetric"]').first.wait_for(timeout=WAIT_MS)
    wait_idle(page)
    first_start = time.monotonic() - started
    (artifacts / "first_start_seconds.txt").write_text(f"{server.demo_rows} rows: {first_start:.1f} s\n")
    assert metric(page, "Transactions") == f"{server.demo_rows:,}"
    expect(page.get_by_text("Active dataset: demo")).to_be_visible()
    assert_clean(page, console_errors)
    screenshot(page, artifacts / "home.png")

    page.get_by_role("link", name="Data", exact=True).click()
    expect(page.get_by_role("heading", name="Load a file")).to_be_visible(timeout=WAIT_MS)
    wait_idle(page)
    page.locator('[data-testid="stFileUploader"] input[type="file"]').first.set_input_files(
        str(bank_csv(tmp_path / "e2e_bank.csv")))
    ingest_button = page.get_by_role("button", name="Ingest", exact=True)
    expect(ingest_button).to_be_enabled(timeout=WAIT_MS)
    wait_idle(page)
    expect(page.get_by_role("textbox", name="Dataset name")).to_have_value("e2e_bank")
    screenshot(page, artifacts / "data_mapping.png")
    ingest_button.click()
    page.get_by_text("Rows read", exact=True).wait_for(timeout=WAIT_MS)
    wait_idle(page)

    assert metric(page, "Rows read") == f"{GOOD_ROWS + len(BAD_ROWS):,}"
    assert metric(page, "Loaded") == f"{GOOD_ROWS:,}"
    assert metric(page, "Rejected") == f"{len(BAD_ROWS):,}"
    expect(page.get_by_role("heading", name="Data quality: e2e_bank")).to_be_visible()

    rejects = list(csv.DictReader(io.StringIO(downloaded_text(
        page, page.get_by_role("button", name=re.compile("Download rejected rows"))), newline="")))
    assert len(rejects) == len(BAD_ROWS)
    assert all(not (r["value"] or "").startswith(("=", "+", "-", "@")) for r in rejects)
    assert "'=1+1" in {r["value"] for r in rejects}

    wait_idle(page)
    assert_clean(page, console_errors)
    screenshot(page, artifacts / "data.png")
