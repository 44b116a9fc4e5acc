"""Overview and Explore in headless Chromium at 1366 px wide: a filter changes the numbers (to the
library's figures for the same filters), a chart element drills into its transactions, the CSV
of the drill-down downloads, and an executive gets only Home and Overview, with masked accounts.

Full-height screenshots go to tests/e2e/artifacts/ for a person to look at.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from fraudlens import analytics, export, operating
from fraudlens.analytics import Filters
from fraudlens.config import DEMO_DATASET, Settings
from fraudlens.store import Store
from test_browser import assert_clean, downloaded_text, metric, screenshot, wait_idle

pytestmark = pytest.mark.e2e

WAIT_MS = 120_000
WIDTH = 1366


@pytest.fixture
def library(server):
    """The library on the server's data folder (a separate DuckDB connection, read-only use)."""
    store = Store(Settings(home=server.home, memory_limit="512MB", threads=2, timezone="America/Lima"))
    yield store
    store.close()


def go(page: Page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()
    expect(page.get_by_role("heading", level=1, name=title)).to_be_visible(timeout=WAIT_MS)
    wait_idle(page)


def open_tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name, exact=True).click()
    expect(page.get_by_role("tab", name=name, exact=True)).to_have_attribute("aria-selected", "true",
                                                                           timeout=WAIT_MS)
    wait_idle(page)


def charts_ready(page: Page, count: int) -> None:
    charts = page.locator('[data-testid="stPlotlyChart"]')
    expect(charts).to_have_count(count, timeout=WAIT_MS)
    for i in range(count):
        charts.nth(i).locator(".main-svg").first.wait_for(timeout=WAIT_MS)
    wait_idle(page)


def choose(page: Page, label: str, option: str) -> None:
    """Pick ``option`` in the multiselect labelled ``label``."""
    box = page.get_by_test_id("stMultiSelect").filter(has_text=label)
    box.locator("input").click()
    box.locator("input").fill(option)  # typing narrows the list: no scrolling through options
    page.get_by_role("option", name=option, exact=True).click()
    page.keyboard.press("Escape")
    expect(box.get_by_text(option, exact=True)).to_be_visible()  # the chosen chip


def apply_filters(page: Page) -> None:
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_timeout(500)  # let the rerun start before waiting for it to end
    wait_idle(page)


def summary(page: Page) -> str:
    """The bold line above the transactions table."""
    return page.locator('[data-testid="stMarkdownContainer"]').filter(
        has_text=re.compile(r"transactions, [\d,]+ frauds")).last.inner_text()


def test_overview_and_explore(server, page: Page, artifacts: Path, library: Store):
    console_errors: list[str] = []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: console_errors.append(str(e)))
    page.set_viewport_size({"width": WIDTH, "height": 2200})
    page.goto(server.url)
    page.locator('[data-testid="stMetric"]').first.wait_for(timeout=WAIT_MS)
    wait_idle(page)

    # Overview: the last 30 days against the 30 before; then only online transactions.
    go(page, "Overview")
    charts_ready(page, 4)
    options = analytics.filter_options(library, DEMO_DATASET)
    period = Filters(date_from=options.last_date - timedelta(days=29), date_until=options.last_date)
    k = analytics.kpis(library, DEMO_DATASET, period)
    assert metric(page, "Transactions") == f"{k.current.transactions:,}"
    assert metric(page, "Fraud rate") == f"{k.current.fraud_rate:.2%}"
    live = operating.live_point(server.home, "demo_xgboost")  # set at first start
    assert metric(page, "Alert precision") == f"{live.point.precision:.1%}"
    assert_clean(page, console_errors)
    screenshot(page, artifacts / "overview.png")

    choose(page, "Channel", "online")
    apply_filters(page)
    online = analytics.kpis(library, DEMO_DATASET, period.replace(channels=["online"]))
    expect(page.locator('[data-testid="stMetric"]').first).to_contain_text(f"{online.current.transactions:,}",
                                                                          timeout=WAIT_MS)
    assert metric(page, "Transactions") == f"{online.current.transactions:,}" != f"{k.current.transactions:,}"

    # Explore: each tab's charts, a filter, then a click on a bar drills into its transactions.
    go(page, "Explore")
    charts_ready(page, 2)  # the first tab's: only the open tab is drawn
    everything = Filters(date_from=options.first_date, date_until=options.last_date)
    total = analytics.count_matching(library, DEMO_DATASET, everything)
    assert summary(page).startswith(f"All filtered transactions — {total.transactions:,} transactions")
    assert_clean(page, console_errors)
    screenshot(page, artifacts / "explore.png")
    for view, count in (("Who", 2), ("What and where", 3)):
        open_tab(page, view)
        charts_ready(page, count)
        assert_clean(page, console_errors)
        screenshot(page, artifacts / f"explore_{view.split()[0].lower()}.png")

    choose(page, "Region", "Lima")
    apply_filters(page)
    charts_ready(page, 3)
    lima = everything.replace(regions=["Lima"])
    in_lima = analytics.count_matching(library, DEMO_DATASET, lima)
    expect(page.get_by_test_id("stCaptionContainer").filter(has_text="Calendar views").first).to_contain_text(
        f"{in_lima.transactions:,} transactions", timeout=WAIT_MS)
    assert in_lima.transactions < total.transactions

    segments = page.locator('[data-testid="stPlotlyChart"]').nth(0)  # fraud rate by channel
    bars = segments.locator(".barlayer .point path")  # the bars, not their error bars
    widths = [(bars.nth(i).bounding_box() or {"width": 0})["width"] for i in range(bars.count())]
    widest = bars.nth(widths.index(max(widths)))
    widest.scroll_into_view_if_needed()
    box = widest.bounding_box()
    page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    expect(page.get_by_text(re.compile(r"^Selected: channel \w+"))).to_be_visible(timeout=WAIT_MS)
    wait_idle(page)
    channel = re.search(r"Selected: channel (\w+)", summary(page)).group(1)
    drilled = analytics.count_matching(library, DEMO_DATASET, lima, {"channel": channel})
    assert summary(page).startswith(f"Selected: channel {channel} — {drilled.transactions:,} transactions")
    expect(page.get_by_text(f"Rows 1–{min(50, drilled.transactions)} of {drilled.transactions:,}",
                            exact=False)).to_be_visible()
    if drilled.transactions > 50:
        page.get_by_role("button", name="Next ▶").click()
        expect(page.get_by_text(f"Rows 51–", exact=False)).to_be_visible(timeout=WAIT_MS)
        wait_idle(page)

    rows = list(csv.DictReader(io.StringIO(
        downloaded_text(page, page.get_by_role("button", name=re.compile(r"^Download CSV"))), newline="")))
    assert len(rows) == drilled.transactions
    assert {r["channel"] for r in rows} == {channel} and {r["merchant_location"] for r in rows} == {"Lima"}
    assert not any(r["account_id"].startswith(export.MASK) for r in rows)
    wait_idle(page)
    assert_clean(page, console_errors)
    screenshot(page, artifacts / "explore_drilldown.png")
    open_tab(page, "When")  # the selection belongs to the charts on screen
    expect(page.get_by_text(re.compile(r"^All filtered transactions — "))).to_be_visible(timeout=WAIT_MS)
    assert summary(page).startswith(f"All filtered transactions — {in_lima.transactions:,} transactions")

    # An executive: Home and Overview only, account ids masked.
    role = page.get_by_test_id("stSelectbox").filter(has_text="Role (local mode)")
    role.click()
    page.get_by_role("option", name="Executive").click()
    wait_idle(page)
    nav = page.get_by_test_id("stSidebarNav")
    expect(nav.get_by_role("link", name="Overview", exact=True)).to_be_visible(timeout=WAIT_MS)
    expect(nav.get_by_role("link", name="Explore", exact=True)).to_have_count(0)
    expect(nav.get_by_role("link", name="Data", exact=True)).to_have_count(0)
    go(page, "Overview")
    charts_ready(page, 4)
    cases = list(csv.DictReader(io.StringIO(
        downloaded_text(page, page.get_by_role("button", name="Largest fraud cases (CSV)")), newline="")))
    assert cases and all(r["account_id"].startswith(export.MASK) for r in cases)
    assert_clean(page, console_errors)
    screenshot(page, artifacts / "overview_executive.png")
