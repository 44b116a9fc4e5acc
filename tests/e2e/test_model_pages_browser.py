"""The model pages in headless Chromium: Thresholds (slider moved with the keyboard), Explain (one
transaction), Models. Full-page screenshots go to tests/e2e/artifacts/ for a person to look at.

The pages must be in the app's navigation; if they are not (yet), the test skips and says so.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

# The helpers of the first browser test (same folder): wait for Streamlit, full-page screenshots.
from test_browser import assert_clean, screenshot, wait_idle

pytestmark = pytest.mark.e2e

WAIT_MS = 120_000
PAGES = ("Models", "Thresholds", "Explain")


def shoot(page: Page, path: Path) -> None:
    """The shared full-page screenshot, cut just below the page's last element (the shared helper
    grows the viewport to the tallest scroll height, which leaves a long blank tail)."""
    from PIL import Image

    screenshot(page, path)
    bottom = page.evaluate(
        "() => { const blocks = document.querySelectorAll('[data-testid=\"stMainBlockContainer\"] > div > *');"
        " return Math.max(0, ...Array.from(blocks, e => e.getBoundingClientRect().bottom + window.scrollY)); }")
    with Image.open(path) as image:
        if bottom and bottom + 80 < image.height:
            image.crop((0, 0, image.width, int(bottom) + 80)).save(path)


def metric(page: Page, label: str) -> str:
    """The value of the metric tile labelled exactly ``label``."""
    tile = page.locator('[data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]', has_text=re.compile(f"^{re.escape(label)}$")))
    return tile.locator('[data-testid="stMetricValue"]').inner_text().strip()


def open_page(page: Page, title: str) -> None:
    link = page.get_by_role("link", name=title, exact=True)
    if link.count() == 0:
        pytest.skip(f"pages not registered: no '{title}' link in the app's navigation yet")
    link.first.click()
    expect(page.get_by_role("heading", level=1)).to_be_visible(timeout=WAIT_MS)
    wait_idle(page)


def wait_metric_change(page: Page, label: str, before: str, timeout_s: float = 20.0) -> str:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        now = metric(page, label)
        if now != before:
            return now
        page.wait_for_timeout(50)
    return metric(page, label)


def top_transaction(home: Path) -> str:
    """The highest-scored test transaction of the demo model, read with the library."""
    from fraudlens import registry

    scores = registry.read_table("demo_xgboost", None, "test_scores.parquet", home=home)
    return str(scores.nlargest(1, "score")["transaction_id"].iloc[0])


def test_thresholds_explain_and_models_pages(server, page: Page, artifacts: Path):
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(str(e)))
    page.goto(server.url)
    page.locator('[data-testid="stMetric"]').first.wait_for(timeout=WAIT_MS)
    wait_idle(page)

    # Thresholds: move the slider with the keyboard and watch the numbers follow.
    started = time.monotonic()
    open_page(page, "Thresholds")
    expect(page.get_by_role("heading", name="Alert threshold")).to_be_visible()
    page.locator('[data-testid="stMetric"]').first.wait_for(timeout=WAIT_MS)
    wait_idle(page)
    open_seconds = time.monotonic() - started
    before = {label: metric(page, label) for label in ("Alerts per day", "Precision", "Recall")}
    assert before["Alerts per day"] != "n/a"
    slider = page.get_by_role("slider", name=re.compile("Alert threshold"))
    start_value = float(slider.input_value())  # the live threshold
    up = start_value < 0.5  # move a tenth of the range away from the nearer end
    slider.focus()
    moved = time.monotonic()
    page.keyboard.press("PageUp" if up else "PageDown")
    wait_metric_change(page, "Alerts per day", before["Alerts per day"])
    update_seconds = time.monotonic() - moved
    for _ in range(3):  # and fine steps towards the start
        page.keyboard.press("ArrowLeft" if up else "ArrowRight")
    wait_idle(page)
    expected = start_value + (0.1 - 0.003 if up else -0.1 + 0.003)
    assert float(slider.input_value()) == pytest.approx(expected, abs=0.0015)
    after_alerts = float(metric(page, "Alerts per day").replace(",", ""))
    before_alerts = float(before["Alerts per day"].replace(",", ""))
    assert (after_alerts < before_alerts) if up else (after_alerts > before_alerts)
    assert metric(page, "Recall") != before["Recall"] or metric(page, "Precision") != before["Precision"]
    assert_clean(page, console_errors)
    (artifacts / "model_pages_seconds.txt").write_text(
        f"thresholds page open: {open_seconds:.2f} s\n"
        f"slider: one PageUp/PageDown key to updated numbers on screen: {update_seconds:.2f} s\n")
    shoot(page, artifacts / "thresholds.png")

    # Explain: one transaction by id.
    transaction_id = top_transaction(server.home)
    open_page(page, "Explain")
    box = page.get_by_role("textbox", name="Transaction id")
    box.fill(transaction_id)
    box.press("Enter")
    expect(page.get_by_role("heading", name=f"Transaction {transaction_id}")).to_be_visible(timeout=WAIT_MS)
    wait_idle(page)
    score = metric(page, "Risk score")
    assert re.fullmatch(r"\d+(\.\d)?%", score), score
    expect(page.locator(".js-plotly-plot")).to_have_count(2, timeout=WAIT_MS)  # waterfall, timeline
    expect(page.get_by_text("Main reasons for the score")).to_be_visible()
    page.get_by_text("Show the global view").click()  # the toggle's label
    expect(page.get_by_text("Feature for the dependence plot")).to_be_visible(timeout=WAIT_MS)
    wait_idle(page)
    expect(page.locator(".js-plotly-plot")).to_have_count(4, timeout=WAIT_MS)  # + importance, dependence
    assert_clean(page, console_errors)
    shoot(page, artifacts / "explain.png")

    # Models: leaderboard and curves of the demo model.
    open_page(page, "Models")
    expect(page.get_by_role("heading", name="Leaderboard")).to_be_visible()
    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=WAIT_MS)
    wait_idle(page)
    assert_clean(page, console_errors)
    shoot(page, artifacts / "models.png")
