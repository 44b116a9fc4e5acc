"""The Alerts page in headless Chromium at 1366x768: raise alerts, open the first one, confirm it as
fraud with a comment; then check with the library (on the server's data folder) that the
transaction is labelled fraud and the audit log has the disposition. A full-page screenshot goes
to tests/e2e/artifacts/alerts.png for a person to look at.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from test_browser import assert_clean, downloaded_text, wait_idle
from test_model_pages_browser import metric, open_page, shoot

pytestmark = pytest.mark.e2e

WAIT_MS = 120_000
MODEL = "demo_xgboost"
COMMENT = "Customer denied the payment by phone"


def cfg_of(home: Path):
    from fraudlens.config import settings

    return dataclasses.replace(settings(), home=home)


def status_line(page: Page):
    """The open alert's status line (a coloured badge after 'Status:')."""
    return page.locator('[data-testid="stMarkdownContainer"] p').filter(has_text=re.compile(r"^Status:"))


def tick_row(page: Page, row: int) -> None:
    """Tick a row of the queue table: its cells are drawn on a canvas, so click the checkbox's spot
    (the row-marker column on the left; header and rows are 35 px high)."""
    grid = page.locator('[data-testid="stDataFrame"]').first
    grid.scroll_into_view_if_needed()
    box = grid.bounding_box()
    page.mouse.click(box["x"] + 16, box["y"] + 35 + 35 * row + 17)
    wait_idle(page)


def open_app(page: Page, url: str, console_errors: list[str] | None = None) -> list[str]:
    """Open the app at ``url`` and wait for its first page; returns the list console errors go to
    (given one, the page already reports to it)."""
    if console_errors is None:
        console_errors = []
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: console_errors.append(str(e)))
    page.goto(url)
    page.locator('[data-testid="stMetric"]').first.wait_for(timeout=WAIT_MS)
    wait_idle(page)
    return console_errors


@pytest.fixture
def small_page(browser: Browser) -> Page:
    """A laptop-sized window, the size the page must read well at."""
    context = browser.new_context(viewport={"width": 1366, "height": 768}, accept_downloads=True)
    page = context.new_page()
    yield page
    context.close()


def test_work_one_alert_end_to_end(server, small_page: Page, artifacts: Path):
    from fraudlens import alerts, audit

    page = small_page
    console_errors = open_app(page, server.url)
    cfg = cfg_of(server.home)

    open_page(page, "Alerts")
    expect(page.get_by_role("heading", name="Alerts", exact=True)).to_be_visible()
    expect(page.get_by_text("No alerts on 'demo' yet")).to_be_visible()
    page.get_by_role("button", name="Raise alerts").click()
    expect(page.get_by_text(re.compile(r"\d+ alerts raised"))).to_be_visible(timeout=WAIT_MS)
    wait_idle(page)
    total = alerts.queue(dataset="demo", status=None, cfg=cfg).total
    assert total > 0
    assert metric(page, "Open alerts") == f"{total:,}"
    expect(page.get_by_text(re.compile(rf"^Alerts 1–{min(total, 50)} of {total:,}"))).to_be_visible()

    # The page's CSV is the first page of the queue, formula-like cells escaped.
    rows = list(csv.DictReader(io.StringIO(downloaded_text(page, page.get_by_role("button", name="Download CSV")))))
    first = alerts.queue(dataset="demo", limit=50, cfg=cfg).rows
    assert [int(r["id"]) for r in rows] == first["id"].tolist()
    assert not any(v.startswith(("=", "+", "-", "@")) for r in rows for v in r.values() if v)

    # Open the first alert of the queue by ticking its row, and confirm it as fraud.
    alert_id = int(first["id"].iloc[0])
    tx = str(first["transaction_id"].iloc[0])
    tick_row(page, 0)
    expect(page.get_by_role("heading", name=f"Alert #{alert_id} · transaction {tx}")).to_be_visible(
        timeout=WAIT_MS)
    expect(page.get_by_role("spinbutton", name="Alert id")).to_have_value(str(alert_id))
    expect(page.get_by_text(f"1 selected (#{alert_id})")).to_be_visible()
    expect(page.locator(".js-plotly-plot")).to_have_count(2, timeout=WAIT_MS)  # waterfall, timeline
    wait_idle(page)
    expect(status_line(page)).to_have_text("Status: Open")
    form = page.locator('[data-testid="stForm"]').filter(has=page.get_by_role("button", name="Save disposition"))
    form.locator('[data-testid="stRadio"]').get_by_text("Confirmed fraud", exact=True).click()
    form.get_by_role("textbox", name="Comment (required)").fill(COMMENT)
    form.get_by_role("button", name="Save disposition").click()
    expect(page.get_by_text(f"Alert #{alert_id} is now")).to_be_visible(timeout=WAIT_MS)
    wait_idle(page)

    # The library agrees: labelled fraud, and the audit log has the disposition.
    assert alerts.get_alert(alert_id, cfg=cfg).status == "confirmed_fraud"
    assert alerts.effective_label("demo", tx, cfg=cfg) is True
    entry = next(e for e in audit.entries(limit=20, action=audit.ALERT_DISPOSED, cfg=cfg)
                 if e.detail.get("alert_id") == alert_id)
    assert (entry.detail["disposition"], entry.detail["comment"], entry.user) == (
        "confirmed_fraud", COMMENT, "analyst (local mode)")
    # And the page shows it.
    expect(status_line(page)).to_have_text("Status: Confirmed fraud")
    assert metric(page, "Disposed") == "1"
    expect(page.get_by_role("listitem").filter(has_text=f"Confirmed fraud · analyst (local mode): “{COMMENT}”")
           ).to_be_visible()
    expect(page.get_by_role("switch", name="Change the disposition")).to_be_visible()
    assert_clean(page, console_errors)
    shoot(page, artifacts / "alerts.png")


def test_monitoring_approvals_and_audit_pages(server, small_page: Page, artifacts: Path):
    """The pages of the review loop open cleanly; the audit page is reached as an admin through
    the role kept in the URL (local mode), as a reload would."""
    page = small_page
    console_errors = open_app(page, server.url)

    open_page(page, "Monitoring")
    expect(page.get_by_role("heading", name="Monitoring", exact=True)).to_be_visible()
    expect(page.locator(".js-plotly-plot").first).to_be_visible(timeout=WAIT_MS)
    wait_idle(page)
    assert_clean(page, console_errors)
    shoot(page, artifacts / "monitoring.png")

    open_page(page, "Approvals")
    expect(page.get_by_role("heading", name="Approvals", exact=True)).to_be_visible()
    assert_clean(page, console_errors)
    shoot(page, artifacts / "approvals.png")

    assert page.get_by_role("link", name="Audit", exact=True).count() == 0  # analysts have no Audit page
    open_app(page, f"{server.url}/?role=admin", console_errors)
    open_page(page, "Audit")
    expect(page.get_by_role("heading", name="Audit log", exact=True)).to_be_visible()
    expect(page.get_by_text(re.compile(r"intact", re.I)).first).to_be_visible(timeout=WAIT_MS)
    assert "role=admin" in page.url
    assert_clean(page, console_errors)
    shoot(page, artifacts / "audit.png")
