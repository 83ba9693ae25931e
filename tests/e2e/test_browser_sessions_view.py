"""
The "Browser sessions" view in the live deployment, in Debian's headless Chromium: the UI's navigation entry
frames the view, which shows the emulator's sessions, picks up a session the emulator fails, renders hostile
fields as text, links sessions and runs both ways; a viewer is refused. Screenshots go where
``test_connection_forms`` puts its own (``make screenshots`` points them at ``docs/_static/screenshots``).
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING
from urllib.parse import quote

import deployment as deploy
import pytest
import requests
from chromium import logged_in_browser, screenshots_folder
from selenium.common.exceptions import (
    NoAlertPresentException,
    NoSuchElementException,
    StaleElementReferenceException,
)
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from selenium import webdriver

REPORT = "example_brightdata_daily_report"
SCRIPT_CANARY = "<script>document.title='pwned-by-url'</script>"
IMG_CANARY = "<img src=x onerror=\"document.title='pwned-by-error'\">"
# The view reloads itself every 15 s and serves a snapshot up to 15 s old: a change shows within 30 s.
SEEN_WITHIN = 120


@pytest.fixture(scope="module")
def browser(live: deploy.Deployment) -> Iterator[webdriver.Chrome]:
    with logged_in_browser(live, next_path="/", ready=EC.url_matches(rf"{live.api_url}/?$")) as driver:
        yield driver


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return screenshots_folder(tmp_path_factory)


def open_view(browser: webdriver.Chrome, live: deploy.Deployment) -> None:
    """Click "Browser sessions" in the UI's navigation and enter the frame it shows."""
    browser.switch_to.default_content()
    browser.get(f"{live.api_url}/")
    wait = WebDriverWait(browser, 60)
    entry = wait.until(
        EC.element_to_be_clickable(
            (
                By.XPATH,
                "//*[self::a or self::button][normalize-space()='Browser sessions' "
                "or @title='Browser sessions' or @aria-label='Browser sessions']",
            )
        )
    )
    entry.click()
    wait.until(EC.url_contains("/plugin/browser_sessions"))
    wait.until(EC.frame_to_be_available_and_switch_to_it((By.TAG_NAME, "iframe")))
    wait.until(EC.presence_of_element_located((By.ID, "conn")))


def reload_view(browser: webdriver.Chrome) -> None:
    """Reload the view's document only (what its own timed refresh does), not the UI around it."""
    page = browser.find_element(By.TAG_NAME, "html")
    browser.execute_script("location.reload()")
    wait = WebDriverWait(browser, 60)
    wait.until(EC.staleness_of(page))
    wait.until(EC.presence_of_element_located((By.ID, "conn")))


def refreshed_until(browser: webdriver.Chrome, check: Callable[[], bool], what: str) -> None:
    """Reload the framed view until ``check()`` holds."""
    deadline = time.monotonic() + SEEN_WITHIN
    while True:
        try:
            if check():
                return
        except (NoSuchElementException, StaleElementReferenceException):
            pass
        if time.monotonic() > deadline:
            pytest.fail(f"not seen within {SEEN_WITHIN} s: {what}")
        time.sleep(3)
        reload_view(browser)


def wait_for_run_state(api, run_id: str, *, timeout: float = 400) -> str:  # type: ignore[no-untyped-def]
    """
    The report run's final state. On this small shared machine the API server can answer nothing for 30-40 s
    while the run's first tasks start (seen in its log as a burst of ``PATCH .../run`` 400s once it answers
    again), longer than ``AirflowApi.call``'s 30 s read timeout: each read here waits up to 120 s.
    """
    deadline = time.monotonic() + timeout
    url = f"{api.url}/api/v2/dags/{REPORT}/dagRuns/{quote(run_id, safe='')}"
    while time.monotonic() < deadline:
        state = api.http.get(url, timeout=120).json()["state"]
        if state in ("success", "failed"):
            return str(state)
        time.sleep(1)
    pytest.fail(f"{REPORT} run {run_id} not finished after {timeout} s")


def row(browser: webdriver.Chrome, table: str, session_id: str):  # type: ignore[no-untyped-def]
    return browser.find_element(By.CSS_SELECTOR, f"table#{table} tr[data-session-id='{session_id}']")


def test_the_navigation_entry_shows_the_emulators_running_sessions(browser, live, live_emulator, screenshots):
    mine = live_emulator.add_session("brightdata", duration=None, api_name="e2e_zone")["session_id"]
    open_view(browser, live)
    assert browser.find_element(By.ID, "conn").text == deploy.BRIGHTDATA_CONN_ID
    refreshed_until(browser, lambda: row(browser, "running", mine).is_displayed(), f"running session {mine}")
    shown = {tr.get_attribute("data-session-id") for tr in browser.find_elements(By.CSS_SELECTOR, "#running tbody tr")}
    assert mine in shown
    assert shown <= {r["session_id"] for r in live_emulator.sessions("brightdata")}  # the platform's own ids
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg")) == 3
    browser.switch_to.default_content()
    browser.save_screenshot(str(screenshots / "browser-sessions-view.png"))


def test_a_session_the_emulator_fails_appears_as_failed_after_a_refresh(browser, live, live_emulator):
    session_id = live_emulator.add_session("brightdata", duration=None)["session_id"]
    open_view(browser, live)
    refreshed_until(browser, lambda: row(browser, "running", session_id).is_displayed(), "the new running session")
    live_emulator.end_session(
        "brightdata", session_id, status="failed", error={"code": "e2e_crash", "message": "browser crashed"}
    )
    refreshed_until(
        browser, lambda: "failed" in row(browser, "ended", session_id).text, "the session under 'ended', failed"
    )
    assert "e2e_crash" in row(browser, "ended", session_id).text


def test_hostile_fields_show_as_text_and_run_nothing(browser, live, live_emulator, screenshots):
    canary = live_emulator.add_session(
        "brightdata",
        duration=3,
        started_at=live_emulator.now() - 120,
        outcome="failed",
        target_url=SCRIPT_CANARY,
        error={"code": "xss_canary", "message": IMG_CANARY},
    )["session_id"]
    open_view(browser, live)
    refreshed_until(browser, lambda: row(browser, "ended", canary).is_displayed(), "the canary session")
    cells = row(browser, "ended", canary)
    assert SCRIPT_CANARY in cells.text
    assert IMG_CANARY in cells.text
    assert not cells.find_elements(By.TAG_NAME, "img")
    assert not cells.find_elements(By.TAG_NAME, "script")
    assert "pwned" not in browser.execute_script("return document.title")
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert  # noqa: B018 - reading it is the check
    browser.switch_to.default_content()
    assert "pwned" not in browser.title


def test_cloudflare_is_shown_with_its_active_sessions_only_note(browser, live, live_emulator):
    live_id = live_emulator.add_session("cloudflare", duration=None)["sessionId"]
    open_view(browser, live)
    Select(browser.find_element(By.ID, "conn_id")).select_by_value(deploy.CLOUDFLARE_CONN_ID)
    browser.find_element(By.XPATH, "//button[normalize-space()='Show']").click()
    # The click replaces the document: an element found in the old one goes stale while it is read.
    replaced = WebDriverWait(browser, 60, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))
    replaced.until(lambda _: browser.find_element(By.ID, "conn").text == deploy.CLOUDFLARE_CONN_ID)
    refreshed_until(browser, lambda: row(browser, "running", live_id).is_displayed(), "the Cloudflare session")
    assert "lists only active sessions" in browser.find_element(By.ID, "no-history").text


def test_browserbase_shows_its_running_and_failed_sessions(browser, live, live_emulator, screenshots):
    live_id = live_emulator.add_session("browserbase", duration=None)["id"]
    failed_id = live_emulator.add_session(
        "browserbase", duration=5, started_at=live_emulator.now() - 600, outcome="failed", failure="TIMED_OUT"
    )["id"]
    open_view(browser, live)
    Select(browser.find_element(By.ID, "conn_id")).select_by_value(deploy.BROWSERBASE_CONN_ID)
    browser.find_element(By.XPATH, "//button[normalize-space()='Show']").click()
    replaced = WebDriverWait(browser, 60, ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))
    replaced.until(lambda _: browser.find_element(By.ID, "conn").text == deploy.BROWSERBASE_CONN_ID)
    refreshed_until(browser, lambda: row(browser, "running", live_id).is_displayed(), "the Browserbase session")
    assert "TIMED_OUT" in row(browser, "ended", failed_id).text
    assert "signingKey" not in browser.page_source
    browser.save_screenshot(str(screenshots / "browser-sessions-view-browserbase.png"))


def test_sessions_and_the_runs_that_listed_them_link_both_ways(browser, live, api, screenshots):
    browser.switch_to.default_content()
    browser.get("about:blank")  # no page refreshing itself while the run's tasks start on this small machine
    api.unpause(REPORT)
    run_id = api.trigger(REPORT)
    assert wait_for_run_state(api, run_id) == "success"
    listed = [r["session_id"] for r in api.xcom(REPORT, run_id, "list_failed_sessions")]
    assert listed, "the seeded data has failed sessions in the report's window"

    # From the session: a link to the task instance whose XCom names it.
    open_view(browser, live)
    task_path = f"/dags/{REPORT}/runs/{quote(run_id, safe='')}/tasks/list_failed_sessions"
    link = f"table#ended tr[data-session-id='{listed[0]}'] a[href='{task_path}']"
    refreshed_until(browser, lambda: browser.find_element(By.CSS_SELECTOR, link).is_displayed(), "the run link")

    # From the task instance: its "Browser sessions" tab lists what it listed, with the state now.
    browser.switch_to.default_content()
    browser.get(f"{live.api_url}{task_path}/plugin/browser_sessions_task")
    wait = WebDriverWait(browser, 60)
    wait.until(EC.frame_to_be_available_and_switch_to_it((By.TAG_NAME, "iframe")))
    wait.until(EC.presence_of_element_located((By.ID, "task-sessions")))
    shown = {tr.get_attribute("data-session-id") for tr in browser.find_elements(By.CSS_SELECTOR, "tbody tr")}
    assert shown == set(listed)
    assert {td.text for td in browser.find_elements(By.CSS_SELECTOR, "tbody td:nth-child(3)")} == {"failed"}
    browser.switch_to.default_content()
    browser.save_screenshot(str(screenshots / "browser-sessions-task.png"))


def test_a_viewer_is_refused_and_gets_no_data(live, live_emulator):
    passwords = json.loads((live.home / "airflow" / "passwords.json").read_text())
    token = deploy.api_token(live.api_url, passwords[deploy.VIEWER_USERNAME], username=deploy.VIEWER_USERNAME)
    running = live_emulator.add_session("brightdata", duration=None)["session_id"]
    for path in (
        f"/browser-sessions/?conn_id={deploy.BRIGHTDATA_CONN_ID}",
        f"/browser-sessions/api/sessions?conn_id={deploy.BRIGHTDATA_CONN_ID}",
        "/browser-sessions/",
    ):
        answer = requests.get(f"{live.api_url}{path}", cookies={"_token": token}, timeout=30)
        assert answer.status_code == 403, (path, answer.text[:300])
        assert running not in answer.text
    anonymous = requests.get(f"{live.api_url}/browser-sessions/api/sessions?conn_id=brightdata_default", timeout=30)
    assert anonymous.status_code == 401


def _a_successful_report_run(api) -> str:  # type: ignore[no-untyped-def]
    """A finished report run: the newest successful one, or a new one."""
    done = [run["dag_run_id"] for run in api.runs(REPORT) if run["state"] == "success"]
    if done:
        return str(done[-1])
    api.unpause(REPORT)
    run_id = api.trigger(REPORT)
    assert wait_for_run_state(api, run_id) == "success"
    return run_id


def test_a_list_tasks_extra_link_opens_its_tab_in_the_view(browser, live, api):
    run_id = _a_successful_report_run(api)
    listed = {r["session_id"] for r in api.xcom(REPORT, run_id, "list_failed_sessions")}
    answer = api.call(
        "GET", f"/dags/{REPORT}/dagRuns/{quote(run_id, safe='')}/taskInstances/list_failed_sessions/links"
    )
    links = answer.get("extra_links", answer)
    tab = links["Browser sessions"]
    assert (
        tab == f"/dags/{REPORT}/runs/{quote(run_id, safe='')}/tasks/list_failed_sessions/plugin/browser_sessions_task"
    )
    assert str(links["Platform console"]).startswith("https://")

    browser.switch_to.default_content()
    browser.get(f"{live.api_url}{tab}")
    wait = WebDriverWait(browser, 60)
    wait.until(EC.frame_to_be_available_and_switch_to_it((By.TAG_NAME, "iframe")))
    wait.until(EC.presence_of_element_located((By.ID, "task-sessions")))
    shown = {tr.get_attribute("data-session-id") for tr in browser.find_elements(By.CSS_SELECTOR, "tbody tr")}
    assert shown == listed
    browser.switch_to.default_content()
