"""Paging while sessions start, Cloudflare's lockout window, and waits that outlive their triggerer or worker."""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from airflow.providers.common.compat.sdk import TaskDeferred

from airflow_provider_browsersessions.hooks.brightdata import BrightDataBrowserHook
from airflow_provider_browsersessions.hooks.cloudflare import CloudflareBrowserRenderingHook
from airflow_provider_browsersessions.sensors.sessions import BrowserSessionsSensor
from airflow_provider_browsersessions.sessions import SessionQuery
from airflow_provider_browsersessions.transport import RetryPolicy
from airflow_provider_browsersessions.triggers.sessions import BrowserSessionsTrigger
from airflow_provider_browsersessions.waiting import SessionsFailedError, WaitPlan

LOCKOUT_WINDOW = 0.8
RESTART_DAGS = Path(__file__).parent / "dags" / "restart_dags.py"


async def first_event(trigger):
    """What the triggerer does: iterate the trigger's run() until it fires."""
    async for event in trigger.run():
        return event
    return None


@pytest.fixture
def emulator(frozen_emulator):
    return frozen_emulator


# -- pagination drift ------------------------------------------------------------------------------


def start_sessions(emulator, count: int) -> None:
    for _ in range(count):
        emulator.add_session("brightdata", duration=None)


@pytest.mark.parametrize("new_per_page", [1, 37, 150])
def test_sessions_starting_while_paging_newest_first_cause_no_duplicate_and_no_miss(emulator, new_per_page):
    emulator.seed_sessions(platform="brightdata", count=450, seed=21)
    before = {r["session_id"] for r in emulator.sessions("brightdata")}
    walk = BrightDataBrowserHook().iter_sessions()  # newest first: new sessions push older ones to later pages
    seen: list[str] = []
    for index, session in enumerate(walk):
        seen.append(session.session_id)
        if index % 100 == 99:  # a page was used up: sessions start before the next one is fetched
            start_sessions(emulator, new_per_page)
    assert len(seen) == len(set(seen))  # no duplicates handed out
    assert before <= set(seen)  # every session that existed when the listing began
    assert walk.walk.stats.duplicates > 0  # the shift really happened, and was absorbed
    assert walk.walk.stats.duplicates + len(seen) == walk.walk.stats.scanned
    print(f"\ndrift, {new_per_page} new per page: {walk.walk.describe()}")


@pytest.mark.parametrize("filters", [{"status": "running"}, {"api_name": "scraping_browser1"}], ids=["running", "zone"])
def test_drift_under_a_pushed_down_filter_in_the_triggerers_async_walk(emulator, filters):
    emulator.seed_sessions(platform="brightdata", count=300, seed=22)
    start_sessions(emulator, 260)  # enough running sessions for three pages of them
    hook = BrightDataBrowserHook()
    before = {s.session_id for s in hook.iter_sessions(**filters)}
    assert len(before) > 150  # two pages at least

    async def walk():
        seen: list[str] = []
        try:
            async for session in hook.aiter_sessions(SessionQuery.build(**filters)):
                seen.append(session.session_id)
                if len(seen) % 100 == 0:
                    for _ in range(40):
                        emulator.add_session("brightdata", duration=None, api_name="scraping_browser1")
        finally:
            await hook.aclose()
        return seen

    seen = asyncio.run(walk())
    assert len(seen) == len(set(seen))
    assert before <= set(seen)


def test_sessions_ending_while_paging_the_running_list_cannot_open_a_gate_early(emulator):
    """
    The other drift: sessions that *end* leave a ``status=running`` listing, so later pages shift up and
    offset paging skips still-running sessions. A listing cannot prevent that (see docs/reliability.md);
    a wait must not be fooled by it: the sensor and trigger read every watched id the walk did not show.
    """
    emulator.seed_sessions(platform="brightdata", count=200, seed=23)
    watched = [emulator.add_session("brightdata", duration=None)["session_id"] for _ in range(250)]
    hook = BrightDataBrowserHook()
    plan = WaitPlan(query=SessionQuery(), session_ids=tuple(watched))
    drain = WaitPlan(query=SessionQuery(), session_ids=None)
    running = []
    for index, session in enumerate(hook.iter_sessions(plan.running_query)):
        running.append(session)
        if index % 100 == 99:  # after each page, 30 of the sessions already listed end
            for listed in running[index - 99 : index - 69]:
                emulator.end_session("brightdata", listed.session_id)
    listed = {s.session_id for s in running}
    still_running = {r["session_id"] for r in emulator.sessions("brightdata") if r["status"] == "running"}
    still_running &= set(watched)  # the seeded history has running sessions of its own
    skipped = still_running - listed
    print(f"\nending drift: {len(listed)} listed, {len(skipped)} still-running sessions skipped by offset paging")

    # The drift really skipped some (if paging ever stops skipping, this page of the docs is out of date).
    assert skipped

    reads = {sid: hook.get_session(sid) for sid in plan.record_running_and_ids_to_read(listed)}
    outcome = plan.evaluate(running, reads)
    assert not outcome.done
    assert skipped <= set(reads)  # every skipped one was read...
    assert still_running <= set(outcome.running)  # ...and counts as running: nothing still running is lost
    assert set(outcome.running) | {r["session_id"] for r in outcome.records} == set(watched)
    drain.record_running_and_ids_to_read(listed)
    assert not drain.evaluate(running, {}).done  # a drain opens only on an empty first page


# -- Cloudflare's lockout ----------------------------------------------------------------------------


def locked_runs(log: list[dict]) -> list[int]:
    """Lengths of the runs of consecutive locked-out answers: a tight loop would make long runs."""
    runs, current = [], 0
    for entry in log:
        if entry["fault"] == "lockout":
            current += 1
        elif current:
            runs.append(current)
            current = 0
    return [*runs, current] if current else runs


def test_a_hook_waits_out_the_lockout_with_backoff_not_a_tight_loop(emulator, monkeypatch):
    emulator.add_session("cloudflare", duration=None)
    emulator.set_lockout(budget=2, window=LOCKOUT_WINDOW)
    # Without pacing (which would wait for the next window instead of knocking: test_network_bounds.py).
    connection = json.loads(emulator.connection_env()["AIRFLOW_CONN_CLOUDFLARE_BROWSER_RENDERING_DEFAULT"])
    connection["extra"]["pace"] = False
    monkeypatch.setenv("AIRFLOW_CONN_CLOUDFLARE_UNPACED", json.dumps(connection))
    hook = CloudflareBrowserRenderingHook(
        conn_id="cloudflare_unpaced", retry=RetryPolicy(max_retries=10, max_wait=10.0, backoff=0.05)
    )
    # The third call hits the locked window; it can only succeed once the window is over (a new window).
    results = [len(hook.list_sessions()) for _ in range(4)]
    assert results == [1, 1, 1, 1]
    log = emulator.request_log(platform="cloudflare")
    locked = [entry for entry in log if entry["fault"] == "lockout"]
    assert 1 <= len(locked) <= 3  # Retry-After said how long is left: one or two early knocks, no hammering
    assert len(log) == 4 + len(locked)
    print(f"\nlockout, hook: {len(log)} requests, {len(locked)} in the locked window")


def test_a_poking_sensor_survives_a_lockout_longer_than_its_retry_budget(emulator):
    session = emulator.add_session("cloudflare", duration=None)
    sensor = BrowserSessionsSensor(
        task_id="s", conn_id="cloudflare_browser_rendering_default", session_ids=[session["sessionId"]]
    )
    # Give up at once: the poke itself must cope with a 429 that outlived its retries.
    sensor.hook = CloudflareBrowserRenderingHook(retry=RetryPolicy(max_retries=0, max_wait=0.1))
    emulator.set_lockout(budget=0, window=LOCKOUT_WINDOW)
    assert sensor.poke({}).is_done is False  # locked out: "not yet", not a failed task
    assert sensor.poke({}).is_done is False
    assert [e["fault"] for e in emulator.request_log()] == ["lockout", "lockout"]  # one request per poke
    emulator.end_session("cloudflare", session["sessionId"])
    emulator.set_lockout(budget=None)  # the window is over
    result = sensor.poke({})
    assert result.is_done is True
    assert [s["session_id"] for s in result.xcom_value] == [session["sessionId"]]


def test_a_trigger_survives_the_lockout_and_fires_once_it_ends(emulator, monkeypatch):
    session = emulator.add_session("cloudflare", duration=None)
    # Without pacing: the poll and the read share the connection's one hook (triggers/shared_hook.py), whose
    # pacer would wait for the next window instead of knocking, and the lockout would never be met.
    connection = json.loads(emulator.connection_env()["AIRFLOW_CONN_CLOUDFLARE_BROWSER_RENDERING_DEFAULT"])
    connection["extra"]["pace"] = False
    monkeypatch.setenv("AIRFLOW_CONN_CLOUDFLARE_UNPACED", json.dumps(connection))
    trigger = BrowserSessionsTrigger(
        conn_id="cloudflare_unpaced",
        session_ids=[session["sessionId"]],
        filters=SessionQuery().to_dict(),
        poll_interval=0.1,
    )
    emulator.set_lockout(budget=1, window=LOCKOUT_WINDOW)

    async def scenario():
        task = asyncio.create_task(first_event(trigger))
        await asyncio.sleep(1.5)  # about two windows of being locked out
        emulator.end_session("cloudflare", session["sessionId"])
        return await asyncio.wait_for(task, 30)

    event = asyncio.run(scenario())
    assert event.payload["status"] == "success"
    assert event.payload["sessions"][0]["session_id"] == session["sessionId"]
    log = emulator.request_log(platform="cloudflare")
    locked = [e for e in log if e["fault"] == "lockout"]
    answered = [e for e in log if e["fault"] is None]
    # The budget (1 per window) locks it out again and again. A window's first request is answered, so
    # `answered` counts the windows. Two callers knock here (the shared list poll, and the read of the ended
    # session, through one shared hook); each honours the locked answer's Retry-After (the time left in the
    # window), so each knocks at most once per window. Blind polling every 0.1 s would knock 7 times per window.
    assert locked
    assert max(locked_runs(log)) <= 2
    assert len(locked) <= 2 * len(answered)
    print(f"\nlockout, trigger: {len(log)} requests, {len(locked)} locked, runs {locked_runs(log)}")


# -- restarts ----------------------------------------------------------------------------------------


def rebuild_from_trigger_row(trigger: BrowserSessionsTrigger) -> BrowserSessionsTrigger:
    """What a triggerer does after a restart: the trigger row (classpath, encrypted kwargs) -> a new instance."""
    from airflow.models.trigger import Trigger

    row = Trigger(*trigger.serialize())  # Airflow's own serialization and encryption of the kwargs
    module, _, name = row.classpath.rpartition(".")
    return getattr(importlib.import_module(module), name)(**row.kwargs)


def test_a_deferred_wait_survives_a_triggerer_restart_even_if_the_sessions_ended_meanwhile(emulator):
    ids = [emulator.add_session("brightdata", duration=None)["session_id"] for _ in range(3)]
    first = BrowserSessionsTrigger(
        conn_id="brightdata_default",
        session_ids=ids,
        filters=SessionQuery().to_dict(),
        poll_interval=0.05,
        end_time=time.time() + 600,
    )

    async def polled(count: int) -> None:
        # Counted in requests, not seconds: a loaded machine may take a second to make the first one.
        while emulator.request_count() < count:
            await asyncio.sleep(0.02)

    async def run_until_cancelled():
        task = asyncio.create_task(first_event(first))
        await asyncio.wait_for(polled(2), 60)
        emulator.end_session("brightdata", ids[0])  # one ends while the first triggerer still runs
        await asyncio.wait_for(polled(emulator.request_count() + 2), 60)
        task.cancel()  # the triggerer goes away
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(run_until_cancelled())
    polls_before = emulator.request_count()
    assert polls_before > 2  # the first trigger really polled
    # While no triggerer runs, the other watched sessions end, one of them failed.
    emulator.end_session("brightdata", ids[1], status="finished")
    emulator.end_session("brightdata", ids[2], status="failed")

    second = rebuild_from_trigger_row(first)
    assert second.serialize() == first.serialize()
    event = asyncio.run(asyncio.wait_for(first_event(second), 30))
    assert event.payload["status"] == "failed"
    assert ids[2] in event.payload["message"]
    final = {s["session_id"]: s["status"] for s in event.payload["sessions"]}
    assert final == {ids[0]: "finished", ids[1]: "finished", ids[2]: "failed"}  # no completion lost


def zone_polls(emulator, zone: str) -> int:
    """Walks of the running list of ``zone`` the emulator answered."""
    return sum(
        1
        for entry in emulator.request_log(platform="brightdata")
        if entry["path"].endswith("/browser_sessions") and entry["query"].get("api_name") == [zone]
    )


def deferral(call) -> BrowserSessionsTrigger:
    """Run a sensor's ``execute`` or ``execute_complete`` up to its deferral; the trigger it hands the triggerer."""
    with pytest.raises(TaskDeferred) as deferred:
        call()
    return deferred.value.trigger


@pytest.mark.timeout(120)
def test_a_deferred_drain_remembers_what_it_saw_across_a_triggerer_killed_between_a_failure_and_the_next_poll(
    emulator,
):
    zone = "restart_drain"
    seen_by_the_worker = emulator.add_session("brightdata", duration=None, api_name=zone)["session_id"]

    def sensor_on_a_worker() -> BrowserSessionsSensor:
        # Each resume of a deferred task runs on some worker from the DAG file: a new sensor object.
        return BrowserSessionsSensor(
            task_id="drain",
            conn_id="brightdata_default",
            api_name=zone,
            deferrable=True,
            poke_interval=3600,  # after its first poll a trigger polls again only when the test restarts it
            timeout=600,
        )

    row = deferral(lambda: sensor_on_a_worker().execute({}))  # the worker's first poke saw one session running
    seen_by_the_triggerer = emulator.add_session("brightdata", duration=None, api_name=zone)["session_id"]

    async def run_in_a_triggerer(trigger: BrowserSessionsTrigger):
        """Its event, if it fires one on its first poll; else its task, still waiting for its next poll."""
        polls = zone_polls(emulator, zone)
        task = asyncio.create_task(first_event(rebuild_from_trigger_row(trigger)))
        while zone_polls(emulator, zone) <= polls and not task.done():
            await asyncio.sleep(0.02)
        try:
            return await asyncio.wait_for(asyncio.shield(task), 5)  # an event follows its poll at once, if any
        except TimeoutError:
            return task

    async def until_a_trigger_waits():
        nonlocal row
        running = await run_in_a_triggerer(row)
        while not isinstance(running, asyncio.Task):
            # A checkpoint: the sensor resumes on a worker and defers again, its memory in the new trigger row.
            assert running.payload["status"] == "checkpoint", running.payload
            assert seen_by_the_triggerer in running.payload["message"]
            row = deferral(lambda event=running.payload: sensor_on_a_worker().execute_complete({}, event))
            running = await run_in_a_triggerer(row)
        # The session the triggerer saw fails while the trigger waits for its next poll; then the triggerer dies.
        emulator.end_session("brightdata", seen_by_the_triggerer, status="failed")
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running

    asyncio.run(until_a_trigger_waits())
    emulator.end_session("brightdata", seen_by_the_worker)  # the zone drains while no triggerer runs

    # Another triggerer adopts the wait from its trigger row: nothing it needs lived in the dead one.
    event = asyncio.run(asyncio.wait_for(first_event(rebuild_from_trigger_row(row)), 30))
    assert event.payload["status"] == "failed", event.payload  # before: success, the failed session unseen
    assert seen_by_the_triggerer in event.payload["message"]
    final = {s["session_id"]: s["status"] for s in event.payload["sessions"]}
    assert final == {seen_by_the_worker: "finished", seen_by_the_triggerer: "failed"}
    with pytest.raises(SessionsFailedError, match=seen_by_the_triggerer):
        sensor_on_a_worker().execute_complete({}, event.payload)


@pytest.mark.parametrize(
    "memory",
    [{"version": 1, "wait": "other"}, {"version": 1, "final": [1, 2]}, {"version": 1, "final": {"x": "y"}}, "x"],
)
def test_a_trigger_row_whose_memory_cannot_be_read_starts_from_its_ids_instead(emulator, memory):
    zone = "odd_memory"
    sid = emulator.add_session("brightdata", duration=None, api_name=zone)["session_id"]
    emulator.end_session("brightdata", sid, status="failed")
    trigger = BrowserSessionsTrigger(
        conn_id="brightdata_default",
        session_ids=None,
        filters=SessionQuery.build(api_name=zone).to_dict(),
        seen_running=[sid],
        memory=memory,  # type: ignore[arg-type]  # what a hand-edited or foreign trigger row may hold
        end_time=time.time() + 30,
    )
    event = asyncio.run(asyncio.wait_for(first_event(rebuild_from_trigger_row(trigger)), 30))
    assert event.payload["status"] == "failed"
    assert sid in event.payload["message"]


def test_a_rescheduled_sensor_resumes_on_a_new_worker(emulator):
    ids = [emulator.add_session("brightdata", duration=None)["session_id"] for _ in range(2)]

    def new_worker_poke():
        # In reschedule mode each poke runs in a fresh process from the DAG file: nothing survives but the
        # task's arguments. A new sensor object per poke is that, in-process (the next test uses processes).
        sensor = BrowserSessionsSensor(task_id="s", conn_id="brightdata_default", session_ids=ids, mode="reschedule")
        return sensor.poke({})

    assert new_worker_poke().is_done is False
    emulator.end_session("brightdata", ids[0])
    assert new_worker_poke().is_done is False
    emulator.end_session("brightdata", ids[1], status="failed")  # ends while no worker is there
    with pytest.raises(Exception, match=rf"1 watched session\(s\) failed: {ids[1]}"):
        new_worker_poke()


# A worker: parse the DAG file, take the reschedule sensor with its rendered ids, then poke once per line
# read from stdin, printing each answer as JSON.
WORKER = textwrap.dedent(
    """
    import json, sys
    sys.path.insert(0, sys.argv[1])
    from test_drift_lockout_restarts import sensor_from_dag_file
    task = sensor_from_dag_file(json.loads(sys.argv[2]))
    print(json.dumps({"ready": True}), flush=True)
    for _ in sys.stdin:
        print(json.dumps({"poking": True}), flush=True)
        result = task.poke({})
        print(json.dumps({"done": result.is_done, "xcom": result.xcom_value}), flush=True)
    """
)


def sensor_from_dag_file(ids: list[str]) -> BrowserSessionsSensor:
    """What a worker does: parse the DAG file, take the task, render its templates (here: the ids)."""
    try:
        from airflow.dag_processing.dagbag import DagBag  # Airflow 3
    except ImportError:
        from airflow.models.dagbag import DagBag  # Airflow 2.11

    task = DagBag(dag_folder=str(RESTART_DAGS)).dags["restart_gate"].get_task("wait")
    assert task.mode == "reschedule"
    task.session_ids = json.dumps(ids)  # what rendering "{{ params.ids }}" gives
    return task


def answer(worker: subprocess.Popen) -> dict:
    """The worker's next JSON line (Airflow 3 logs to stdout too: skip anything else)."""
    while True:
        line = worker.stdout.readline()
        assert line, "the worker exited without answering"
        if line.startswith("{"):
            return json.loads(line)


def tell(worker: subprocess.Popen, line: str) -> None:
    worker.stdin.write(line + "\n")
    worker.stdin.flush()


@pytest.mark.timeout(120)
def test_a_rescheduled_sensor_resumes_after_its_worker_process_is_killed_mid_poke(emulator):
    ids = [emulator.add_session("brightdata", duration=None)["session_id"] for _ in range(2)]
    worker = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(Path(__file__).parent), json.dumps(ids)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=os.environ.copy(),  # the emulator's connections (AIRFLOW_CONN_*) and the test Airflow home
    )
    try:
        assert answer(worker) == {"ready": True}
        tell(worker, "poke")
        assert answer(worker) == {"poking": True}
        assert answer(worker) == {"done": False, "xcom": None}  # both still running

        # The next poke hangs in the API call (the emulator holds the answer for 1.5 s): the worker is killed.
        emulator.script_faults([{"kind": "latency", "seconds": 1.5}], platform="brightdata")
        tell(worker, "poke")
        assert answer(worker) == {"poking": True}
        time.sleep(0.5)
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=30)
        assert '"done"' not in worker.stdout.read()  # it died before it could answer that poke
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
    deadline = time.monotonic() + 30
    while not any(e["fault"] == "latency" for e in emulator.request_log()) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert any(e["fault"] == "latency" for e in emulator.request_log())  # its request was in flight

    # With no worker alive, both sessions end: one finished, one failed.
    emulator.end_session("brightdata", ids[0])
    emulator.end_session("brightdata", ids[1], status="failed")

    # The next try of the task runs on another worker: another process (this one), the DAG file parsed anew.
    result = sensor_from_dag_file(ids).poke({})
    assert result.is_done is True
    assert {s["session_id"]: s["status"] for s in result.xcom_value} == {ids[0]: "finished", ids[1]: "failed"}
