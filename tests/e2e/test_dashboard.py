"""The web dashboard in a real browser (Debian's chromium driven by Playwright)
against a whole local cluster: what a person does, found by what they read.

Screenshots of the main pages are written to docs/screenshots (the README
shows them), or to $CRONFLEET_SCREENSHOTS.
"""

from __future__ import annotations

import os
import re
import shutil
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from launch.devservices import LocalEtcd, LocalPostgres
from tests.e2e.conftest import Cluster, start_cluster

ROOT = Path(__file__).parents[2]
SHOTS = Path(os.environ.get("CRONFLEET_SCREENSHOTS", ROOT / "docs" / "screenshots"))
CHROMIUM_FLAGS = [
    "--headless=new",
    "--no-sandbox",  # root in a container: chromium's sandbox needs user namespaces
    "--disable-gpu",
    "--no-first-run",
    # This machine has no route out: without these chromium keeps dialling Google.
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WAIT = 20_000  # ms: long enough for runs to fire and the page to poll them in
expect.set_options(timeout=WAIT)


@pytest.fixture(scope="module")
def web_cluster(
    pg_server: LocalPostgres, etcd_server: LocalEtcd, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Cluster]:
    assert (ROOT / "web" / "dist" / "index.html").is_file(), "the dashboard is not built: make web"
    yield from start_cluster(
        pg_server,
        etcd_server,
        tmp_path_factory.mktemp("web"),
        {"CRONFLEET_RUNTIME": "process"},
        ["--schedulers", "1", "--workers", "1"],
    )


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is not installed (make browser)"
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=CHROMIUM_FLAGS)
        yield b
        b.close()


def new_page(browser: Browser, width: int = 1280, dark: bool = False) -> Page:
    context = browser.new_context(
        viewport={"width": width, "height": 860},
        color_scheme="dark" if dark else "light",
        timezone_id="Europe/Paris",  # the person's own zone, unlike the jobs'
    )
    context.set_default_timeout(WAIT)
    return context.new_page()


def shot(page: Page, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=False)


def sign_up(page: Page, cluster: Cluster, name: str) -> str:
    """Sign up and log in through the pages; return the email used."""
    email = f"{name.lower()}-{uuid.uuid4().hex[:6]}@example.com"
    page.goto(f"{cluster.http}/signup")
    page.get_by_label("Name").fill(name)
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("correct-horse")
    page.get_by_role("button", name="Sign up").click()
    log_in = page.get_by_role("button", name="Log in")
    overview = page.get_by_role("heading", name="Overview", level=1)
    expect(log_in.or_(overview)).to_be_visible()
    if log_in.is_visible():
        page.get_by_label("Email").fill(email)
        page.get_by_label("Password").fill("correct-horse")
        log_in.click()
    expect(overview).to_be_visible()
    return email


def go(page: Page, where: str) -> None:
    """Follow a link of the main navigation (behind "Menu" at a phone's width)."""
    menu = page.get_by_role("button", name="Menu")
    if menu.is_visible():
        menu.click()
    page.get_by_role("navigation", name="Main").get_by_role("link", name=where).click()


def create_job(
    page: Page, name: str, command: str, schedule: str = "", timezone: str = "", described: str = ""
) -> str:
    """Create a job through the form, checking the schedule's preview on the
    way (``described`` in words, fires in the job's zone and the browser's);
    return its id (from the job page's URL)."""
    go(page, "Jobs")
    page.get_by_role("link", name="New job").first.click()
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Command").fill(command)
    if timezone:
        page.get_by_label("Timezone", exact=True).fill(timezone)
    if schedule:
        page.get_by_label("Schedule", exact=True).fill(schedule)
        preview = page.get_by_role("region", name="Schedule preview")
        expect(preview).to_contain_text(re.compile(described, re.I))
        fires = preview.get_by_role("table", name="Next fires")
        expect(fires.locator("tbody tr")).to_have_count(5)
        if timezone:
            expect(fires).to_contain_text(timezone)
            expect(fires).to_contain_text(re.compile("Paris|CET|GMT\\+1"))
        phone = (page.viewport_size or {"width": 0})["width"] < 600
        shot(page, "new-job-phone-dark" if phone else "new-job")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(re.compile(r"/jobs/[0-9a-f-]{36}$"))
    return page.url.rsplit("/", 1)[1]


def test_a_person_creates_watches_pauses_and_reads_a_job(web_cluster: Cluster, browser: Browser) -> None:
    page = new_page(browser)
    sign_up(page, web_cluster, "Ann")

    create_job(page, "tick", "echo tick-from-the-dashboard", "* * * * * *", "Asia/Tokyo", "every second")
    history = page.get_by_role("table", name="Run history")
    # Runs appear and finish on the job's page by themselves (no reload).
    expect(history.get_by_text("succeeded").first).to_be_visible()
    expect(history.locator("tbody tr").nth(2)).to_be_visible()
    shot(page, "job")

    history.locator("tbody tr").filter(has_text="succeeded").first.get_by_role("link").first.click()
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    expect(page.get_by_label("Console output")).to_contain_text("tick-from-the-dashboard")
    shot(page, "run")
    page.go_back()

    page.get_by_role("button", name="Pause").click()
    expect(page.get_by_role("button", name="Resume")).to_be_visible()
    paused_at = datetime.now(UTC)
    expect(page.get_by_text("paused", exact=True).first).to_be_visible()
    # Watch the history for a while: no run starts after the pause returned
    # (one already claimed for a later second is withdrawn: cancelled, never started).
    with web_cluster.api(_token(page)) as api:
        job_id = page.url.rsplit("/", 1)[1]
        ran = history.locator("tbody tr").filter(has_text="succeeded")
        seen = ran.count()
        page.wait_for_timeout(3000)  # an observation window, not a wait for a result
        runs = api.get(f"/jobs/{job_id}/executions", params={"limit": 100}).json()["executions"]
        late = [r for r in runs if datetime.fromisoformat(r["scheduled_at"]) > paused_at]
        assert all(
            r["status"] == "cancelled" and not r.get("started_at") and r.get("exit_code") is None
            for r in late
        ), late
        expect(ran).to_have_count(seen)

    create_job(page, "fails", "echo about to fail; exit 3")
    failed = page.get_by_role("table", name="Run history").locator("tbody tr").filter(has_text="failed")
    expect(failed).to_have_count(1)
    expect(failed.get_by_role("cell", name="3", exact=True)).to_be_visible()

    # A silent run: no output, and no stored log to download.
    create_job(page, "quiet", "true")
    quiet = page.get_by_role("table", name="Run history").locator("tbody tr").filter(has_text="succeeded")
    quiet.first.get_by_role("link").first.click()
    expect(page.get_by_label("Console output")).to_have_text("(no output)")
    expect(page.get_by_text("Nothing printed, so nothing stored")).to_be_visible()
    expect(page.get_by_role("button", name="Download the stored log")).to_have_count(0)
    shot(page, "run-silent")

    # A run's output streams in while it runs; the page turns green when it ends.
    create_job(page, "slow", "echo first-line; sleep 4; echo second-line")
    page.get_by_role("table", name="Run history").locator("tbody tr").first.get_by_role("link").first.click()
    output, heading = page.get_by_label("Console output"), page.get_by_role("heading", level=1)
    expect(output).to_contain_text("first-line")
    expect(heading).to_contain_text("running")
    expect(output).not_to_contain_text("second-line")
    expect(output).to_contain_text("second-line")
    expect(heading).to_contain_text("succeeded")

    go(page, "Jobs")
    expect(page.get_by_text("tick", exact=True).first).to_be_visible()
    expect(page.get_by_text("fails", exact=True).first).to_be_visible()
    shot(page, "jobs")
    go(page, "Overview")
    expect(page.get_by_role("heading", level=1)).to_be_visible()
    shot(page, "overview")
    go(page, "Cluster")
    expect(page.get_by_text("worker-1").first).to_be_visible()
    shot(page, "cluster")

    # Another person sees none of it.
    other = new_page(browser)
    sign_up(other, web_cluster, "Bob")
    go(other, "Jobs")
    expect(other.get_by_role("heading", level=1)).to_be_visible()
    expect(other.get_by_text("tick", exact=True)).to_have_count(0)
    expect(other.get_by_text("fails", exact=True)).to_have_count(0)
    other.get_by_role("button", name="Log out").click()
    expect(other.get_by_role("button", name="Log in")).to_be_visible()


def test_the_servers_errors_stand_next_to_the_field_they_name(web_cluster: Cluster, browser: Browser) -> None:
    page = new_page(browser)
    sign_up(page, web_cluster, "Dee")
    go(page, "Jobs")
    page.get_by_role("link", name="New job").first.click()
    page.get_by_label("Name", exact=True).fill("bad")
    page.get_by_label("Command").fill("true")
    page.get_by_label("Schedule", exact=True).fill("61 * * * * *")
    schedule_field = page.locator(".field").filter(has=page.get_by_label("Schedule", exact=True))
    expect(schedule_field.get_by_role("alert")).to_contain_text("61")  # the preview's 422, under Schedule
    page.get_by_label("Schedule", exact=True).fill("")
    expect(schedule_field.get_by_role("alert")).to_have_count(0)  # gone with the text
    priority = page.get_by_label(re.compile("^Priority"))
    priority.fill("12")
    page.get_by_role("button", name="Create").click()
    field = page.locator(".field").filter(has=priority)
    expect(field.get_by_role("alert")).to_contain_text("must be 0-9")
    expect(priority).to_be_focused()
    shot(page, "form-error")
    with web_cluster.api(_token(page)) as api:
        assert api.get("/jobs").json()["jobs"] == [], "a refused job is not half-created"


def test_a_phone_width_and_a_dark_system_theme(web_cluster: Cluster, browser: Browser) -> None:
    page = new_page(browser, width=390, dark=True)
    sign_up(page, web_cluster, "Cho")
    create_job(page, "nightly", "date", "0 0 2 * * *", described="At 02:00")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, f"the page is {width} px wide at a phone's 390"
    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
    rgb = [int(v) for v in re.findall(r"\d+", background)[:3]]
    assert sum(rgb) < 3 * 90, f"a dark system theme gives a dark page, not {background}"
    shot(page, "job-phone-dark")


def _token(page: Page) -> str:
    token = page.evaluate("sessionStorage.getItem('cronfleet.token')")
    assert token, "the tab keeps its token in sessionStorage"
    return str(token)
