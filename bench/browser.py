"""Browser timings of the real app: each page's time to interactive (cold and warm), the threshold
slider, concurrent sessions on Explore, and the server's memory while it serves them.

Starts ``streamlit run app.py`` on a loopback port over a data folder and drives Debian's Chromium
with Playwright (the e2e tests' setup). "Interactive" means the app reports no script run in
flight (``stApp[data-test-script-state=notRunning]``), the page heading is shown and every plotly
chart has drawn. Cold is a fresh browser context opening the page's URL (the page JavaScript and
the server's caches start empty for that session); new tab is the URL in a new tab of a context
that has shown the app (scripts cached, a new session); warm is the median of ``--repeat`` later
visits through the sidebar menu. Concurrent sessions each open Explore and apply three filters; each
answer is checked against the library's count for that session's filters. Their CPU time is
split between the server and the rest of the machine (the browsers run on the same cores).

    python bench/browser.py --rows 200000           # builds the demo in bench/work/browser-200000
    python bench/browser.py --home PATH             # a data folder already holding a dataset and model
    python bench/browser.py --smoke                 # 20k rows in a temp dir, nothing written

Writes ``bench/results/browser-<rows>.json`` and ``.md`` (not for --smoke). Never asserts a time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fraudlens import analytics, datasets  # noqa: E402
from fraudlens.analytics import Filters  # noqa: E402
from fraudlens.config import Settings  # noqa: E402
from fraudlens.store import Store  # noqa: E402

RESULTS = ROOT / "bench" / "results"
WORK = ROOT / "bench" / "work"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1366, "height": 768}
WAIT_MS = 300_000
# Page title, URL path, plotly charts it draws by default.
PAGES = (("Home", "", 0), ("Overview", "overview", 4), ("Monitoring", "monitoring", None),
         ("Explore", "explore", 2), ("Alerts", "alerts", None), ("Thresholds", "thresholds", 6),
         ("Explain", "explain", 0), ("Models", "models", None), ("Data", "data", None))
EXPLORE_CHARTS = next(charts for title, _path, charts in PAGES if title == "Explore")
TITLES = {"Home": "FraudLens", "Thresholds": "Alert threshold", "Explain": "Explain a score"}
RUN_LOG = re.compile(r"page run [^:\n]*: ([\d.]+) s")
# Notes, from the first byte of a cold page, when its heading and first chart appear and how
# long the main thread was blocked (tasks over 50 ms): what a cold visit's time is made of.
PROFILE_JS = """
window.__fl = {longTasks: 0, heading: null, chart: null};
new PerformanceObserver(list => {
  for (const e of list.getEntries()) window.__fl.longTasks += e.duration;
}).observe({type: 'longtask', buffered: true});
new MutationObserver(() => {
  const f = window.__fl, now = performance.now();
  if (f.heading === null && document.querySelector('h1')) f.heading = now;
  if (f.chart === null && document.querySelector('[data-testid="stPlotlyChart"] .main-svg')) f.chart = now;
}).observe(document, {childList: true, subtree: true});
"""
PROFILE_READ_JS = """() => {
  const nav = performance.getEntriesByType('navigation')[0], f = window.__fl;
  return {scripts_ms: nav.domContentLoadedEventEnd, heading_ms: f.heading, first_chart_ms: f.chart,
          done_ms: performance.now(), long_tasks_ms: f.longTasks};
}"""
IDLE_JS = "() => document.querySelector('[data-testid=stApp]')?.dataset.testScriptState === 'notRunning'"


# ---------------------------------------------------------------------------- the server

class Server:
    """``streamlit run app.py`` over ``home``; samples its resident memory while it runs."""

    def __init__(self, home: Path, log: Path):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("FRAUDLENS_")}
        # FRAUDLENS_LOG: the app logs each page run's seconds, read back by page_runs().
        env.update(FRAUDLENS_HOME=str(home), FRAUDLENS_THREADS="2", FRAUDLENS_MEMORY_LIMIT="4GB",
                   FRAUDLENS_LOG="INFO")
        cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
               "--server.address", "127.0.0.1", "--server.port", str(self.port),
               "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false"]
        self.log_path = log
        self.log = log.open("w")
        self.proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT)
        self.peak_mb = 0.0
        self._stop = threading.Event()
        threading.Thread(target=self._sample, daemon=True).start()

    def rss_mb(self) -> float:
        try:
            for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except FileNotFoundError:
            pass
        return 0.0

    def cpu_seconds(self) -> float:
        """CPU time the server has used so far (all its threads, DuckDB's included)."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def log_size(self) -> int:
        return self.log_path.stat().st_size

    def page_runs(self, since: int) -> list[float]:
        """Seconds of each page run the server logged after byte ``since`` of its log."""
        with self.log_path.open("rb") as fh:
            fh.seek(since)
            found = RUN_LOG.findall(fh.read().decode("utf-8", "replace"))
        return [float(seconds) for seconds in found]

    def _sample(self) -> None:
        while not self._stop.wait(0.25):
            self.peak_mb = max(self.peak_mb, self.rss_mb())

    def wait_healthy(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"streamlit exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as resp:
                    if resp.read().decode().strip() == "ok":
                        return
            except OSError:
                time.sleep(0.3)
        raise SystemExit("streamlit did not start")

    def stop(self) -> None:
        self._stop.set()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


# ---------------------------------------------------------------------------- one page

def wait_interactive(page, title: str, charts: int | None) -> None:
    """Until the run has ended, the heading shows and the page's charts have drawn."""
    page.wait_for_timeout(50)  # let a click's rerun begin before asking whether it ended
    page.wait_for_function(IDLE_JS, timeout=WAIT_MS, polling=25)
    page.get_by_role("heading", level=1, name=TITLES.get(title, title)).wait_for(timeout=WAIT_MS)
    if charts:
        page.locator('[data-testid="stPlotlyChart"] .main-svg').nth(charts - 1).wait_for(timeout=WAIT_MS)
    page.wait_for_function(IDLE_JS, timeout=WAIT_MS, polling=25)


def page_times(browser, server: Server, repeat: int) -> dict:
    """Cold (fresh context, by URL) and warm (menu clicks) time to interactive of every page."""
    out = {}
    for title, path, charts in PAGES:
        context = browser.new_context(viewport=VIEWPORT)
        context.add_init_script(PROFILE_JS)
        page = context.new_page()
        started = time.perf_counter()
        page.goto(f"{server.url}/{path}")
        wait_interactive(page, title, charts)
        cold = time.perf_counter() - started
        profile = {k: None if v is None else round(v) for k, v in page.evaluate(PROFILE_READ_JS).items()}
        warm = []
        for _ in range(repeat):
            other = "Home" if title != "Home" else "Overview"
            menu(page, other)
            wait_interactive(page, other, dict((t, c) for t, _p, c in PAGES)[other])
            started = time.perf_counter()
            menu(page, title)
            wait_interactive(page, title, charts)
            warm.append(time.perf_counter() - started)
        tab = new_tab_time(context, server, title, path, charts)
        out[title] = {"cold_s": round(cold, 2), "new_tab_s": round(tab, 2),
                      "warm_median_s": round(statistics.median(warm), 2), "warm_max_s": round(max(warm), 2),
                      "server_peak_mb": round(server.peak_mb), "cold_profile": profile}
        print(f"  {title:12s} cold {cold:6.2f} s   new tab {tab:6.2f} s   warm {statistics.median(warm):6.2f} s   "
              f"cold: heading at {profile['heading_ms']} ms, first chart at {profile['first_chart_ms']} ms, "
              f"main thread blocked {profile['long_tasks_ms']} ms", flush=True)
        context.close()
    return out


def new_tab_time(context, server: Server, title: str, path: str, charts: int | None) -> float:
    """The page by URL in a new tab of a context that has shown the app: a new session, the app's
    scripts from the browser's cache (as against ``cold``: a browser that has never loaded them).
    A best case: the page's cold and warm visits have just filled the server's caches."""
    tab = context.new_page()
    try:
        started = time.perf_counter()
        tab.goto(f"{server.url}/{path}")
        wait_interactive(tab, title, charts)
        return time.perf_counter() - started
    finally:
        tab.close()


def menu(page, title: str) -> None:
    page.get_by_test_id("stSidebarNav").get_by_role("link", name=title, exact=True).click()


def metric_text(page, label: str) -> str:
    tile = page.locator('[data-testid="stMetric"]').filter(
        has=page.locator('[data-testid="stMetricLabel"]', has_text=label))
    return tile.locator('[data-testid="stMetricValue"]').first.inner_text()


def slider_times(browser, server: Server, moves: int) -> list[float]:
    """Seconds from one threshold key press to the new alerts-per-day figure on screen."""
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.goto(f"{server.url}/thresholds")
    wait_interactive(page, "Thresholds", 6)
    slider = page.get_by_role("slider").first
    slider.focus()
    times = []
    for i in range(moves):
        before = metric_text(page, "Alerts per day")
        started = time.perf_counter()
        page.keyboard.press("PageUp" if i % 2 == 0 else "PageDown")
        page.wait_for_function(
            """([before]) => [...document.querySelectorAll('[data-testid=stMetric]')]
                 .some(m => m.innerText.includes('Alerts per day') && !m.innerText.includes(before))""",
            arg=[before], timeout=WAIT_MS, polling=10)
        times.append(time.perf_counter() - started)
        page.wait_for_function(IDLE_JS, timeout=WAIT_MS, polling=25)
    context.close()
    return times


# ---------------------------------------------------------------------------- concurrent sessions

async def one_session(browser, url: str, steps: list[tuple[str, str, int]]) -> dict:
    """Open Explore, then apply each (filter label, option) in turn; time each and check the count."""
    context = await browser.new_context(viewport=VIEWPORT)
    page = await context.new_page()
    started = time.perf_counter()
    await page.goto(f"{url}/explore")
    await page.wait_for_function(IDLE_JS, timeout=WAIT_MS, polling=25)
    await page.locator('[data-testid="stPlotlyChart"] .main-svg').nth(EXPLORE_CHARTS - 1).wait_for(timeout=WAIT_MS)
    opened = time.perf_counter() - started
    times, wrong = [], []
    for label, option, expected in steps:
        box = page.get_by_test_id("stMultiSelect").filter(has_text=label)
        await box.locator("input").click()
        await box.locator("input").fill(option)
        await page.get_by_role("option", name=option, exact=True).click()
        await page.keyboard.press("Escape")
        started = time.perf_counter()
        await page.get_by_role("button", name="Apply filters").click()
        text = f"{expected:,} transactions"
        await page.get_by_test_id("stCaptionContainer").filter(has_text="Calendar views").filter(
            has_text=text).first.wait_for(timeout=WAIT_MS)
        await page.wait_for_function(IDLE_JS, timeout=WAIT_MS, polling=25)
        await page.locator('[data-testid="stPlotlyChart"] .main-svg').nth(EXPLORE_CHARTS - 1).wait_for(timeout=WAIT_MS)
        times.append(time.perf_counter() - started)
        caption = await page.get_by_test_id("stCaptionContainer").filter(has_text="Calendar views").first.inner_text()
        if text not in caption:
            wrong.append((label, option, caption[:80]))
    await context.close()
    return {"open_s": opened, "interactions_s": times, "wrong": wrong}


def session_plans(store: Store, dataset: str, sessions: int) -> list[list[tuple[str, str, int]]]:
    """Per session: a region, then a channel, then a type, each with the count the library gives."""
    options = analytics.filter_options(store, dataset)
    base = Filters(date_from=options.first_date, date_until=options.last_date)
    plans = []
    for i in range(sessions):
        region = options.regions[i % len(options.regions)]
        channel = options.channels[i % len(options.channels)]
        kind = options.types[i % len(options.types)]
        steps, f = [], base
        for label, option, changed in (("Region", region, {"regions": [region]}),
                                       ("Channel", channel, {"channels": [channel]}),
                                       ("Transaction type", kind, {"types": [kind]})):
            f = f.replace(**changed)
            steps.append((label, option, analytics.count_matching(store, dataset, f).transactions))
        plans.append(steps)
    return plans


async def concurrent(url: str, plans: list, executable: str = CHROMIUM) -> list[dict]:
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            return await asyncio.gather(*(one_session(browser, url, plan) for plan in plans))
        finally:
            await browser.close()


def machine_busy_seconds() -> float:
    """CPU time all cores have spent busy since boot (``/proc/stat``)."""
    ticks = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))]


# ---------------------------------------------------------------------------- the run

def prepare(args) -> tuple[Path, Path, int]:
    """The data folder (built with the app's own first start if empty), a work dir, and its rows."""
    if args.home:
        home = Path(args.home).resolve()
        base = Path(tempfile.mkdtemp(prefix="fl-browser-"))
    else:
        rows = 20_000 if args.smoke else args.rows
        base = Path(tempfile.mkdtemp(prefix="fl-browser-")) if args.smoke else WORK / f"browser-{rows}"
        home = base / "home"
        if not datasets.list_all(home):
            from fraudlens.demo import build_demo

            os.environ["FRAUDLENS_HOME"] = str(home)
            build_demo(home, rows)
    found = datasets.list_all(home)
    if not found:
        raise SystemExit(f"No dataset in {home}.")
    return home, base, found[0].rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--home", help="an existing data folder (its first dataset is used)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--sessions", type=int, default=10)
    parser.add_argument("--smoke", action="store_true")
    args = parser.parse_args()
    if args.smoke:
        args.repeat, args.sessions = 1, 2
    from playwright.sync_api import sync_playwright

    home, base, rows = prepare(args)
    dataset = datasets.list_all(home)[0].name
    server = Server(home, base / "streamlit.log")
    try:
        server.wait_healthy()
        print(f"browser timings on {rows:,} rows ({home})", flush=True)
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            pages = page_times(browser, server, args.repeat)
            slider = slider_times(browser, server, 6 if not args.smoke else 2)
            browser.close()
        peak_before_sessions = server.peak_mb
        print(f"  slider: median {statistics.median(slider) * 1000:.0f} ms, max {max(slider) * 1000:.0f} ms")
        store = Store(Settings(home=home, memory_limit="1GB", threads=1, timezone="America/Lima"))
        try:
            plans = session_plans(store, dataset, args.sessions)
        finally:
            store.close()
        sessions = session_round(server, plans, CHROMIUM)
        rss = {"server_rss_peak_mb": round(server.peak_mb), "server_rss_end_mb": round(server.rss_mb()),
               "server_rss_peak_before_sessions_mb": round(peak_before_sessions)}
        # The same sessions with the browsers at the lowest CPU priority: the server's runs as they
        # would be with the users' browsers on their own machines. On a new server, whose caches
        # do not hold the first round's answers, warmed as the first was by one visit.
        server.stop()
        server = Server(home, base / "streamlit-niced.log")
        server.wait_healthy()
        warm_explore(server)
        niced = session_round(server, plans, niced_chromium(base))
        result = {
            "rows": rows, "date": date.today().isoformat(), "cores": os.cpu_count(),
            "machine": platform.platform(), "python": platform.python_version(),
            "pages": pages,
            "slider_ms": {"median": round(statistics.median(slider) * 1000), "max": round(max(slider) * 1000),
                          "moves": len(slider)},
            "sessions": sessions, "sessions_browsers_niced": niced, **rss,
        }
        print(f"  server RSS: peak {rss['server_rss_peak_mb']:,} MB")
        if not args.smoke:
            write(result)
        wrong = sessions["wrong_answers"] + niced["wrong_answers"]
        if wrong:
            raise SystemExit(f"sessions saw wrong answers: {wrong[:3]}")
    finally:
        server.stop()
        if args.smoke or args.home:
            shutil.rmtree(base, ignore_errors=True)


def warm_explore(server: Server) -> None:
    """One visit of Explore, as the page timings before the first round made: the analytics table
    attached and the page's default answers cached."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport=VIEWPORT)
        page.goto(f"{server.url}/explore")
        wait_interactive(page, "Explore", EXPLORE_CHARTS)
        browser.close()


def niced_chromium(folder: Path) -> str:
    """A launcher of Chromium at the lowest CPU priority (its renderers inherit it)."""
    path = folder / "chromium-niced"
    path.write_text(f'#!/bin/sh\nexec nice -n 19 {CHROMIUM} "$@"\n')
    path.chmod(0o755)
    return str(path)


def session_round(server: Server, plans: list, executable: str) -> dict:
    """The concurrent sessions once: each one's p95, the server's own page runs, where the cores went."""
    busy, served, started = machine_busy_seconds(), server.cpu_seconds(), time.perf_counter()
    logged = server.log_size()
    sessions = asyncio.run(concurrent(server.url, plans, executable))
    server_runs = server.page_runs(logged)
    wall = time.perf_counter() - started
    served, busy = server.cpu_seconds() - served, machine_busy_seconds() - busy
    runs = sum(1 + len(s["interactions_s"]) for s in sessions)
    per_session = [p95(s["interactions_s"]) for s in sessions]
    wrong = [w for s in sessions for w in s["wrong"]]
    label = "browsers niced" if executable != CHROMIUM else "same priority"
    print(f"  {len(plans)} concurrent sessions ({label}): p95 per session {min(per_session):.2f}–"
          f"{max(per_session):.2f} s; wrong answers: {len(wrong)}")
    if server_runs:
        print(f"    the server's page runs meanwhile: median {statistics.median(server_runs):.2f} s, "
              f"p95 {p95(server_runs):.2f} s, max {max(server_runs):.2f} s ({len(server_runs)} runs)")
    print(f"    in {wall:.0f} s the cores were busy {busy:.0f} CPU-s: the server {served:.0f} "
          f"({served / runs:.2f} CPU-s per page run, {runs} runs), the browsers and their driver {busy - served:.0f}")
    return {"count": len(plans), "p95_per_session_s": [round(v, 2) for v in per_session],
            "open_s": [round(s["open_s"], 2) for s in sessions], "wrong_answers": wrong,
            "wall_s": round(wall, 1), "busy_cpu_s": round(busy, 1), "server_cpu_s": round(served, 1),
            "page_runs": runs, "server_run_s": [round(v, 3) for v in server_runs]}


def server_run_lines(sessions: dict, when: str) -> list[str]:
    runs = sessions.get("server_run_s")
    if not runs:
        return []
    return [f"The server's own page runs {when} (each script run from start to end, as the app logs them): "
            f"median {statistics.median(runs):.2f} s, p95 {p95(runs):.2f} s, max {max(runs):.2f} s "
            f"({len(runs)} runs); the rest of each interaction is the wait for a run to start, the websocket "
            "and the browser's own work."]


def cold_profile_lines(pages: dict) -> list[str]:
    """Where each cold visit's time went, as the page itself saw it (ms from its first request)."""
    rows = [(t, r["cold_profile"], round(r["cold_s"] * 1000)) for t, r in pages.items() if r.get("cold_profile")]
    if not rows:
        return []
    lines = ["", "Cold visits, as the page saw them (ms from the request): the app's scripts loaded and "
             "parsed (DOMContentLoaded), the page heading drawn, the first chart drawn, the page interactive "
             "(its cold time above); and how long the browser's main thread was blocked by tasks over 50 ms "
             "(script evaluation, layout, drawing) until the figures were read, just after.", "",
             "| page | scripts loaded | heading | first chart | interactive | main thread blocked |",
             "|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {t} | {p['scripts_ms']} | {p['heading_ms'] or ''} | {first_chart(t, p)} | "
              f"{cold} | {p['long_tasks_ms']} |" for t, p, cold in rows]
    return lines


def first_chart(title: str, profile: dict) -> str:
    """When the first chart was drawn; for a page whose charts the timing does not wait for, that
    they may have come later."""
    if profile["first_chart_ms"] is not None:
        return str(profile["first_chart_ms"])
    return "none" if dict((t, c) for t, _p, c in PAGES)[title] == 0 else "not waited for"


def write(result: dict) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"browser-{result['rows']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1))
    lines = [f"# Browser timings, {result['rows']:,} rows ({result['date']}, {result['cores']} cores)", "",
             "Cold: a new browser context opens the page's URL (no cached scripts). New tab: the same in a new "
             "tab of a context that has shown the app (a new session; the scripts from the browser's cache; "
             "the server's caches filled by the visits before). Warm: later visits through the sidebar menu.", "",
             "| page | cold s | new tab s | warm median s | warm max s | server RSS peak so far MB |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {t} | {r['cold_s']} | {r.get('new_tab_s', '')} | {r['warm_median_s']} | {r['warm_max_s']} | "
              f"{r.get('server_peak_mb', '')} |" for t, r in result["pages"].items()]
    s = result["sessions"]
    lines += ["", f"Slider key to updated numbers: median {result['slider_ms']['median']} ms, "
              f"max {result['slider_ms']['max']} ms ({result['slider_ms']['moves']} moves).",
              f"{s['count']} concurrent sessions on Explore, three filters each: p95 per session "
              f"{min(s['p95_per_session_s'])}–{max(s['p95_per_session_s'])} s; wrong answers: {len(s['wrong_answers'])}.",
              f"Where the two cores went while they ran ({s['wall_s']} s): {s['busy_cpu_s']} CPU-s busy, of which the "
              f"server {s['server_cpu_s']} ({s['server_cpu_s'] / s['page_runs']:.2f} CPU-s per page run, "
              f"{s['page_runs']} runs) and the {s['count']} Chromium sessions with their driver the rest: the browsers "
              "share the server's cores here, as they would not in use.",
              f"Server RSS: peak {result['server_rss_peak_mb']} MB ({result['server_rss_peak_before_sessions_mb']} MB "
              f"before the concurrent sessions), at the end {result['server_rss_end_mb']} MB."]
    lines += server_run_lines(s, "while the sessions ran")
    niced = result.get("sessions_browsers_niced")
    if niced:
        lines += [f"The same {niced['count']} sessions again with the browsers at the lowest CPU priority (`nice 19`), "
                  f"so that the server runs first, as it would with the users' browsers on their own machines (on a "
                  f"new server, so that no answer of the first round is cached): p95 "
                  f"per session {min(niced['p95_per_session_s'])}–{max(niced['p95_per_session_s'])} s (the {niced['count']} "
                  f"browsers still share the two cores among themselves); wrong answers: {len(niced['wrong_answers'])}."]
        lines += server_run_lines(niced, "with the browsers niced")
    lines += cold_profile_lines(result["pages"])
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(f"written {stem.relative_to(ROOT)}.json/.md")


if __name__ == "__main__":
    main()
